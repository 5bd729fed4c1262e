"""Other ways in: API keys on /api/v1/*, Cloudflare Access tokens, and the cookie rules."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, request
from sqlalchemy import text

from taskmaster_dash.auth.cloudflare import CloudflareAccess, team_issuer
from taskmaster_dash.auth.login import LoginPolicy, trust_proxy
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, SYSTEM_USER_ID
from taskmaster_dash.data.users import UserInputError, issue_api_key, revoke_api_key
from tests.support.auth import ROLE_PASSWORD, csrf_token_in, new_user, sign_in
from tests.support.callbacks import call_callback, callback_values

KEY_BUTTONS = ["au-role-apply", "au-activate", "au-deactivate", "au-unlock", "au-password-apply"]


def key_action(client, app, button: str, user_id: str, days=90):
    clicks = [0] * len(KEY_BUTTONS) + [
        int(button == "au-key-issue"),
        int(button == "au-key-revoke"),
    ]
    return callback_values(
        call_callback(
            client,
            app,
            "au-action-message.children",
            clicks,
            [[{"id": user_id}], None, None, days, 0],
            changed=f"{button}.n_clicks",
        )
    )


def me(app, key: str | None = None, path: str = "/api/v1/me", **headers):
    if key is not None:
        headers["X-API-Key"] = key
    return app.server.test_client().get(path, headers=headers)


# --- API keys ---------------------------------------------------------------------------------


def test_an_issued_key_is_shown_once_stored_hashed_and_signs_in_on_the_api(
    dash_app, client_as, owner_engine
):
    user_id, name = new_user("api_client")
    shown = key_action(client_as("admin"), dash_app, "au-key-issue", user_id, days=30)
    key = shown["au-key-shown"]["children"]["props"]["children"][1]["props"]["children"]
    assert key.startswith("tmk_") and len(key) > 40
    with owner_engine.connect() as conn:
        stored, days_left = conn.execute(
            text(
                "SELECT api_key_hash, round(extract(epoch FROM api_key_expires_at - now()) / 86400)"
                " FROM users WHERE id = CAST(:id AS uuid)"
            ),
            {"id": user_id},
        ).one()
        audited = conn.execute(
            text("SELECT count(*) FROM audit_logs WHERE new_values::text LIKE :k"),
            {"k": f"%{key}%"},
        ).scalar()
    assert key not in stored and len(stored) == 64 and days_left == 30
    assert audited == 0

    answer = me(dash_app, key)
    assert answer.status_code == 200 and answer.get_json()["username"] == name
    # Only /api/v1/*: the key opens neither pages nor callbacks.
    assert me(dash_app, key, path="/").status_code == 302
    assert (
        dash_app.server.test_client()
        .post("/_dash-update-component", json={}, headers={"X-API-Key": key})
        .status_code
        == 401
    )


def test_a_rotated_or_revoked_key_stops_working(dash_app, client_as):
    user_id, _ = new_user("api_client")
    admin = client_as("admin")
    first, _ = issue_api_key(SYSTEM_ACTOR, user_id, 10)
    second, _ = issue_api_key(SYSTEM_ACTOR, user_id, 10)
    assert me(dash_app, first).status_code == 401
    assert me(dash_app, second).status_code == 200
    revoked = key_action(admin, dash_app, "au-key-revoke", user_id)
    assert "revoked" in revoked["au-action-message"]["children"]["props"]["children"]
    assert me(dash_app, second).status_code == 401


def test_expired_keys_and_keys_of_inactive_or_unknown_users_are_refused(dash_app, owner_engine):
    user_id, _ = new_user("api_client")
    key, _ = issue_api_key(SYSTEM_ACTOR, user_id, 5)
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE users SET api_key_expires_at = now() - interval '1 second'"
                " WHERE id = CAST(:id AS uuid)"
            ),
            {"id": user_id},
        )
    assert me(dash_app, key).status_code == 401

    other_id, _ = new_user("api_client")
    other_key, _ = issue_api_key(SYSTEM_ACTOR, other_id, 5)
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET is_active = false WHERE id = CAST(:id AS uuid)"),
            {"id": other_id},
        )
    assert me(dash_app, other_key).status_code == 401
    for junk in ("", "tmk_nope", "' OR 1=1 --", "x" * 100_000):
        assert me(dash_app, junk).status_code == 401


def test_key_lifetimes_outside_1_to_365_days_are_refused(dash_app, client_as):
    user_id, _ = new_user("api_client")
    with pytest.raises(UserInputError):
        issue_api_key(SYSTEM_ACTOR, user_id, 0)
    with pytest.raises(UserInputError):
        issue_api_key(SYSTEM_ACTOR, SYSTEM_USER_ID, 10)
    for days in (366, -1, 2.5, "30", None):
        shown = key_action(client_as("admin"), dash_app, "au-key-issue", user_id, days=days)
        assert "1 to 365 days" in shown["au-action-message"]["children"]["props"]["children"]
    revoke_api_key(SYSTEM_ACTOR, user_id)


# --- Cloudflare Access --------------------------------------------------------------------------

AUDIENCE = "a" * 64
TEAM = "testteam"


class _Keys(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def signing_keys():
    """The team's key pair (published on a loopback certs endpoint) and a stranger's."""
    team_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(team_key.public_key()))
    handler = type(
        "Keys", (_Keys,), {"body": json.dumps({"keys": [{**public, "kid": "k1"}]}).encode()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield team_key, other_key, f"http://127.0.0.1:{server.server_address[1]}/cdn-cgi/access/certs"
    server.shutdown()
    server.server_close()


def cloudflare_access(app, certs_url: str, monkeypatch, **settings: str) -> CloudflareAccess:
    """Cloudflare Access for TEAM and AUDIENCE, its keys at `certs_url`, plus `settings`,
    installed in `app` for this test."""
    environment = {
        "CF_ACCESS_TEAM_DOMAIN": TEAM,
        "CF_ACCESS_AUD": AUDIENCE,
        "CF_ACCESS_CERTS_URL": certs_url,
        **settings,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    access = CloudflareAccess.from_settings(load_settings())
    assert access is not None  # the settings above turn it on
    monkeypatch.setitem(app.server.config, "CF_ACCESS", access)
    return access


@pytest.fixture
def cloudflare(dash_app, signing_keys, monkeypatch):
    _, _, certs_url = signing_keys
    return cloudflare_access(dash_app, certs_url, monkeypatch)


def token(private_key, email: str, **overrides) -> str:
    now = int(time.time())
    claims = {
        "aud": [AUDIENCE],
        "email": email,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "iss": team_issuer(TEAM),
        "sub": str(uuid.uuid4()),
        "type": "app",
    }
    claims.update(overrides)
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "k1"})


def with_token(app, value: str, path: str = "/api/v1/me"):
    return app.server.test_client().get(path, headers={"Cf-Access-Jwt-Assertion": value})


def test_a_valid_access_token_signs_in_the_user_with_that_email(
    dash_app, cloudflare, signing_keys, users
):
    team_key, _, _ = signing_keys
    assert cloudflare.issuer == "https://testteam.cloudflareaccess.com"
    answer = with_token(dash_app, token(team_key, "TEST-VIEWER@example.com"))
    assert answer.status_code == 200 and answer.get_json()["username"] == "test-viewer"
    page = with_token(dash_app, token(team_key, "test-viewer@example.com"), path="/")
    assert page.status_code == 200  # a page, not the redirect to /login


@pytest.mark.parametrize(
    "case",
    [
        "wrong audience",
        "wrong issuer",
        "expired",
        "wrong key",
        "unknown e-mail",
        "system user",
        "no expiry",
        "garbage",
        "HS256 with the public key",
    ],
)
def test_an_access_token_failing_any_check_is_refused(
    dash_app, cloudflare, signing_keys, users, case
):
    team_key, other_key, _ = signing_keys
    email = "test-viewer@example.com"
    tokens = {
        "wrong audience": lambda: token(team_key, email, aud=["b" * 64]),
        "wrong issuer": lambda: token(team_key, email, iss="https://evil.cloudflareaccess.com"),
        "expired": lambda: token(team_key, email, exp=int(time.time()) - 60),
        "wrong key": lambda: token(other_key, email),
        "unknown e-mail": lambda: token(team_key, "nobody@example.com"),
        "system user": lambda: token(team_key, "system@taskmaster.invalid"),
        "no expiry": lambda: jwt.encode(
            {"aud": AUDIENCE, "iss": team_issuer(TEAM), "email": email, "iat": 1},
            team_key,
            algorithm="RS256",
            headers={"kid": "k1"},
        ),
        "garbage": lambda: "not.a.token",
        "HS256 with the public key": lambda: jwt.encode(
            {"aud": AUDIENCE, "iss": team_issuer(TEAM), "email": email, "exp": 2**31},
            "secret-that-is-long-enough-for-hs256-keys",
            algorithm="HS256",
            headers={"kid": "k1"},
        ),
    }
    assert with_token(dash_app, tokens[case]()).status_code == 401


def test_access_is_off_unless_both_team_and_audience_are_set(monkeypatch):
    monkeypatch.setenv("CF_ACCESS_TEAM_DOMAIN", TEAM)
    monkeypatch.delenv("CF_ACCESS_AUD", raising=False)
    assert CloudflareAccess.from_settings(load_settings()) is None
    monkeypatch.setenv("CF_ACCESS_AUD", AUDIENCE)
    monkeypatch.delenv("CF_ACCESS_CERTS_URL", raising=False)
    access = CloudflareAccess.from_settings(load_settings())
    assert access.certs_url == "https://testteam.cloudflareaccess.com/cdn-cgi/access/certs"


# --- Cookies and login policy --------------------------------------------------------------------


def test_the_session_cookie_is_secure_over_https_only(dash_app, users):
    plain = dash_app.server.test_client()
    response = sign_in(plain, "test-viewer", ROLE_PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    secure = dash_app.server.test_client()
    page = secure.get("/login", base_url="https://localhost").get_data(as_text=True)
    csrf = csrf_token_in(page)
    response = secure.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},  # Flask-WTF checks it over HTTPS
        data={"csrf_token": csrf, "username": "test-viewer", "password": ROLE_PASSWORD},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_forwarded_proto_counts_only_behind_a_trusted_proxy():
    def scheme_seen(hops: int) -> bool:
        app = Flask(__name__)
        trust_proxy(app, hops)
        app.add_url_rule("/", "s", lambda: str(request.is_secure))
        return app.test_client().get("/", headers={"X-Forwarded-Proto": "https"}).text == "True"

    assert scheme_seen(0) is False
    assert scheme_seen(1) is True


def test_the_login_policy_reads_the_environment(monkeypatch):
    monkeypatch.setenv("LOGIN_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("LOGIN_LOCK_MINUTES", "60")
    assert LoginPolicy.from_settings(load_settings()) == LoginPolicy(3, 60)
    monkeypatch.delenv("LOGIN_MAX_ATTEMPTS")
    assert LoginPolicy.from_settings(load_settings()).max_attempts == 5
    monkeypatch.setenv("LOGIN_LOCK_MINUTES", "forever")
    with pytest.raises(ValueError, match="LOGIN_LOCK_MINUTES"):
        LoginPolicy.from_settings(load_settings())
