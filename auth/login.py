"""Sign-in with flask-login: the /login form, /logout, and the gate in front of every request."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template_string,
    request,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy.exc import SQLAlchemyError

from auth.cloudflare import HEADER as CF_HEADER
from auth.cloudflare import CloudflareAccess
from auth.jwt_bearer import bearer_user_id, jwt_secret
from auth.passwords import hash_password, needs_rehash, verify_password
from auth.permissions import PermissionDenied, SessionUser
from data.db import user_message
from data.users import (
    api_key_session,
    email_session,
    login_record,
    record_login_failure,
    record_login_success,
    session_record,
    set_password,
)

blueprint = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
# Verifying against this keeps the time of an unknown-user attempt close to a real one.
_DUMMY_HASH = hash_password("not-a-real-password-0")


@dataclass(frozen=True)
class LoginPolicy:
    max_attempts: int = 5
    lock_minutes: int = 15

    @classmethod
    def from_environment(cls) -> LoginPolicy:
        """LOGIN_MAX_ATTEMPTS (1-10) and LOGIN_LOCK_MINUTES (1-1440), defaults 5 and 15."""

        def bounded(name: str, default: int, low: int, high: int) -> int:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
            return int(raw)

        return cls(
            bounded("LOGIN_MAX_ATTEMPTS", cls.max_attempts, 1, 10),
            bounded("LOGIN_LOCK_MINUTES", cls.lock_minutes, 1, 1440),
        )


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · TaskMaster Dash</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{{ prefix }}assets/style.css"></head>
<body class="login-body">
<main class="login-card">
  <h1>TaskMaster Dash</h1>
  <p class="muted">Sign in to monitor the TaskMaster database.</p>
  {% if message %}
  <p class="login-message" role="alert" id="login-message">{{ message }}</p>
  {% endif %}
  <form method="post" action="{{ prefix }}login">
    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    <input type="hidden" name="next" value="{{ next_path }}">
    <label>Username <input id="username" name="username" autocomplete="username"
           maxlength="100" required autofocus value="{{ username }}"></label>
    <label>Password <input id="password" name="password" type="password" maxlength="256"
           autocomplete="current-password" required></label>
    <button id="login-button" type="submit">Sign in</button>
  </form>
</main></body></html>"""

BAD_CREDENTIALS = "Incorrect username or password."
LOCKED = (
    "This account is locked after too many failed sign-in attempts. "
    "Try again later, or ask an admin to unlock it."
)
INACTIVE = "This account cannot sign in. Ask an admin."


def _safe_next(target: str | None, prefix: str) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return prefix
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return prefix
    return target


def _render(message: str = "", username: str = "", next_path: str = "/", status: int = 200):
    prefix = current_app.config["ROUTES_PREFIX"]
    html = render_template_string(
        LOGIN_PAGE,
        message=message,
        username=username,
        next_path=next_path,
        csrf_token=generate_csrf(),
        prefix=prefix,
    )
    return Response(html, status=status, mimetype="text/html")


def check_credentials(username: str, password: str, policy: LoginPolicy) -> tuple[str | None, str]:
    """(user id, "") on success, or (None, message for the form)."""
    record = login_record(username)
    if record is None or record.is_system:
        verify_password(_DUMMY_HASH, password)
        return None, BAD_CREDENTIALS
    if record.locked_until and record.locked_until > datetime.now(UTC):
        return None, LOCKED
    if not verify_password(record.password_hash, password):
        locked = record_login_failure(record.id, policy.max_attempts, policy.lock_minutes)
        return None, LOCKED if locked else BAD_CREDENTIALS
    if not (record.is_active and record.role_active):
        return None, INACTIVE
    upgraded = hash_password(password) if needs_rehash(record.password_hash or "") else None
    record_login_success(record.id, upgraded)
    return record.id, ""


WRONG_CURRENT = "The current password is not right."


def change_own_password(user: SessionUser, current: str, new: str) -> str | None:
    """Change the signed-in user's password after checking the current one; None when done,
    else the message for the form. A wrong current password counts as a failed sign-in (enough
    of them lock the account), so this form is no way round the lockout. The user's other
    sessions end; this one is issued again so it carries on."""
    policy: LoginPolicy = current_app.config["LOGIN_POLICY"]
    record = login_record(user.username)
    if record is None or record.id != user.id:
        return INACTIVE
    if record.locked_until and record.locked_until > datetime.now(UTC):
        return LOCKED
    if not verify_password(record.password_hash, current):
        locked = record_login_failure(record.id, policy.max_attempts, policy.lock_minutes)
        return LOCKED if locked else WRONG_CURRENT
    set_password(user.actor(), user.id, new)  # UserInputError when the policy refuses it
    renew_session(user)
    return None


def renew_session(user: SessionUser) -> None:
    """Issue this request's session again after the user's own password changed, so it carries
    on while their other sessions end (their token no longer matches)."""
    renewed = session_record(user.id)
    if renewed is not None:
        login_user(SessionUser(renewed))


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    prefix = current_app.config["ROUTES_PREFIX"]
    next_path = _safe_next(request.values.get("next"), prefix)
    if request.method == "GET":
        return _render(next_path=next_path)
    csrf.protect()
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    if not username or not password or len(username) > 100 or len(password) > 256:
        return _render(BAD_CREDENTIALS, username[:100], next_path, 401)
    try:
        user_id, message = check_credentials(username, password, current_app.config["LOGIN_POLICY"])
        record = session_record(user_id) if user_id else None
    except SQLAlchemyError as exc:
        return _render(user_message(exc), username, next_path, 503)
    if record is None:
        return _render(message or INACTIVE, username, next_path, 401)
    login_user(SessionUser(record))
    return redirect(next_path)


@blueprint.route("/logout", methods=["GET", "POST"])
def logout():
    logout_user()
    return redirect(current_app.config["ROUTES_PREFIX"] + "login")


def _load_user(token: str) -> SessionUser | None:
    user_id, _, session_token = token.partition(":")
    try:
        record = session_record(user_id)
    except (SQLAlchemyError, ValueError):
        return None
    if record is None or record.session_token != session_token:
        return None  # deactivated, locked, role disabled or password changed: session ends
    return SessionUser(record)


def _load_user_from_request(req) -> SessionUser | None:
    """Without a session: an API key or an original-API bearer token on /api/v1/*, or a verified
    Cloudflare Access token.
    Neither creates a session; each request is checked again."""
    prefix = current_app.config["ROUTES_PREFIX"]
    try:
        api_key = req.headers.get("X-API-Key")
        if api_key and req.path.startswith(prefix + "api/v1/"):
            record = api_key_session(api_key)
            return SessionUser(record) if record else None
        bearer = req.headers.get("Authorization")
        if bearer and req.path.startswith(prefix + "api/v1/"):
            user_id = bearer_user_id(bearer, jwt_secret())
            if user_id:
                record = session_record(user_id)
                return SessionUser(record) if record else None
        access: CloudflareAccess | None = current_app.config.get("CF_ACCESS")
        token = req.headers.get(CF_HEADER)
        if access and token:
            email = access.verified_email(token)
            record = email_session(email) if email else None
            return SessionUser(record) if record else None
    except SQLAlchemyError:
        return None
    return None


@blueprint.route("/api/v1/me")
def who_am_i():
    """Who the request is signed in as (session, API key or Cloudflare Access)."""
    user = current_user
    return jsonify(
        username=user.username,
        email=user.record.email,
        role=user.record.role_name,
        permissions=sorted(user.record.permissions),
    )


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (see init_auth)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def trust_proxy(server: Flask, hops: int) -> None:
    """Believe X-Forwarded-For/-Proto/-Host from `hops` reverse proxies in front of the app."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    if hops > 0:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def init_auth(server: Flask, *, prefix: str, secret_key: str, policy: LoginPolicy) -> None:
    server.config.update(
        SECRET_KEY=secret_key,
        WTF_CSRF_CHECK_DEFAULT=False,  # only the login form is a form; Dash posts JSON
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE", "").lower() in {"1", "true"},
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    server.config["ROUTES_PREFIX"] = prefix
    server.config["LOGIN_POLICY"] = policy
    server.config["CF_ACCESS"] = CloudflareAccess.from_environment()
    server.session_interface = _SessionInterface()
    hops = os.environ.get("TRUSTED_PROXY_COUNT", "0").strip() or "0"
    if not hops.isdigit():
        raise ValueError(f"TRUSTED_PROXY_COUNT must be a whole number, got {hops!r}")
    trust_proxy(server, int(hops))
    csrf.init_app(server)
    login_manager.init_app(server)
    login_manager.user_loader(_load_user)
    login_manager.request_loader(_load_user_from_request)
    login_manager.session_protection = "basic"
    server.register_blueprint(blueprint, url_prefix=prefix.rstrip("/") or None)

    public_exact = {prefix + "login", prefix + "logout", prefix + "api/v1/health"}
    public_prefixes = (prefix + "assets/", prefix + "_dash-component-suites/")
    public_exact |= {prefix + "_favicon.ico", "/favicon.ico"}
    public_exact.add(prefix + "api/v1/metrics")  # checks its own bearer token or session

    @server.before_request
    def require_sign_in():
        path = request.path
        if path in public_exact or path.startswith(public_prefixes):
            return None
        if current_user.is_authenticated:
            return None
        if path.startswith(prefix + "_dash-") or path.startswith(prefix + "api/"):
            return jsonify(error="sign-in required"), 401
        full = request.full_path if request.query_string else path
        return redirect(f"{prefix}login?next={quote(full, safe='/?=&')}")

    @server.errorhandler(PermissionDenied)
    def refuse(exc: PermissionDenied):
        return jsonify(error="not permitted", permission=exc.permission), 403

    @server.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError):
        return _render("The form expired; please sign in again.", status=400)
