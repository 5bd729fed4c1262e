"""Bearer tokens issued by the original TaskMaster API, accepted on /api/v1/* when JWT_SECRET is
set: HS256 only (never `none`, never an algorithm the token names), issuer taskmaster-api,
audience taskmaster-client, an expiry, and the user's id in the userId claim. The user must
still be active and unlocked; that is checked on every request by the caller (session_record).
"""

from __future__ import annotations

import uuid

import jwt

from taskmaster_dash.data.config import load_settings

ISSUER = "taskmaster-api"
AUDIENCE = "taskmaster-client"
MAX_TOKEN_LENGTH = 4096


def jwt_secret() -> str | None:
    return load_settings().jwt_secret


def bearer_user_id(authorization: str | None, secret: str | None) -> str | None:
    """The users.id a valid original-format token names, or None."""
    if not secret or not authorization or len(authorization) > MAX_TOKEN_LENGTH:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["exp", "iss", "aud"]},
        )
        return str(uuid.UUID(str(claims["userId"])))
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None
