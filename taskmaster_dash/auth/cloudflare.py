"""Cloudflare Access: verify the `Cf-Access-Jwt-Assertion` token Cloudflare adds to each request.

The token must be signed (RS256) by one of the team's published keys (fetched from the team's
certs URL and cached), issued by the team, meant for our application (audience), and unexpired.
Any failing check refuses: the request is then treated as not signed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import jwt

from taskmaster_dash.data.config import Settings

log = logging.getLogger(__name__)
HEADER = "Cf-Access-Jwt-Assertion"


def team_issuer(team_domain: str) -> str:
    """'myteam', 'myteam.cloudflareaccess.com' or the full URL -> https://myteam.cloudflareaccess.com"""
    host = team_domain.strip().removeprefix("https://").removeprefix("http://").strip("/")
    if "." not in host:
        host += ".cloudflareaccess.com"
    return f"https://{host}"


@dataclass
class CloudflareAccess:
    issuer: str
    audience: str
    certs_url: str
    leeway_seconds: int = 0
    # service token common_name -> username (CF_ACCESS_SERVICE_TOKENS); those tokens carry no
    # e-mail, and sign in on /api/v1/* only
    service_tokens: dict[str, str] = field(default_factory=dict)
    _keys: jwt.PyJWKClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Keys are cached for 5 minutes; an unknown key id triggers one refetch (key rotation).
        self._keys = jwt.PyJWKClient(self.certs_url, cache_keys=True, lifespan=300, timeout=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudflareAccess | None:
        """Configured when CF_ACCESS_TEAM_DOMAIN and CF_ACCESS_AUD are both set."""
        team, audience = settings.cf_access_team_domain, settings.cf_access_aud
        if not team or not audience:
            return None
        issuer = team_issuer(team)
        return cls(
            issuer,
            audience,
            settings.cf_access_certs_url or f"{issuer}/cdn-cgi/access/certs",
            service_tokens=dict(settings.cf_access_service_tokens),
        )

    def verified_email(self, token: str) -> str | None:
        """The e-mail the token vouches for, or None when any check fails."""
        claims = self.verified_claims(token)
        email = claims.get("email") if claims else None
        return email if isinstance(email, str) and email else None

    def service_username(self, token: str) -> str | None:
        """The user a service token's `common_name` is mapped to, or None (not a valid token,
        a user's token, or a common name nobody configured)."""
        claims = self.verified_claims(token)
        common_name = claims.get("common_name") if claims else None
        if not claims or not isinstance(common_name, str) or not common_name or claims.get("email"):
            return None
        return self.service_tokens.get(common_name)

    def verified_claims(self, token: str) -> dict | None:
        """The token's claims when every check passes, else None."""
        if not token or len(token) > 16_384:
            return None
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            log.info("Cloudflare Access token refused: %s", exc)
            return None
        return claims
