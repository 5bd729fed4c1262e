"""Sign-in with flask-login: the /login form, /logout, server-side sessions, and the gate in front
of every request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.cloudflare import HEADER as CF_HEADER
from taskmaster_dash.auth.cloudflare import CloudflareAccess
from taskmaster_dash.auth.jwt_bearer import bearer_user_id, jwt_secret
from taskmaster_dash.auth.passwords import hash_password, needs_rehash, verify_password
from taskmaster_dash.auth.permissions import PermissionDenied, SessionUser, signed_in_user
from taskmaster_dash.auth.throttle import ThrottlePolicy, init_throttle
from taskmaster_dash.data.config import Settings, load_settings
from taskmaster_dash.data.db import Actor, user_message
from taskmaster_dash.data.sessions import (
    SessionLifetime,
    active_sessions,
    end_session,
    new_session_token,
    open_session,
    session_user,
)
from taskmaster_dash.data.users import (
    LoginRecord,
    api_key_session,
    clear_login_attempts,
    email_session,
    login_record,
    record_login_success,
    session_record,
    set_password,
    take_login_attempt,
    username_session,
)

blueprint = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
# Verifying against this keeps the time of an unknown-user attempt close to a real one.
_DUMMY_HASH = hash_password("not-a-real-password-0")


@dataclass(frozen=True)
class LoginPolicy:
    max_attempts: int
    lock_minutes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        """LOGIN_MAX_ATTEMPTS and LOGIN_LOCK_MINUTES."""
        return cls(settings.login_max_attempts, settings.login_lock_minutes)


def session_lifetime_from_settings(settings: Settings) -> SessionLifetime:
    """SESSION_IDLE_HOURS and SESSION_MAX_HOURS (Grafana's defaults: 7 and 30 days)."""
    return SessionLifetime(
        idle=timedelta(hours=settings.session_idle_hours),
        maximum=timedelta(hours=settings.session_max_hours),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def _now() -> datetime:
    """The sessions' clock (server config CLOCK, so tests can move time)."""
    return current_app.config["CLOCK"]()


_PAGE_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · TaskMaster Dash</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{{ prefix }}_favicon.ico">
<link rel="stylesheet" href="{{ prefix }}assets/style.css"></head>
<body class="login-body">
<main class="login-card">
  <h1>TaskMaster Dash</h1>
  {% if message %}
  <p class="login-message" role="alert" id="login-message">{{ message }}</p>
  {% endif %}"""

LOGIN_PAGE = (
    _PAGE_HEAD
    + """
  <p class="muted">Sign in to monitor the TaskMaster database.</p>
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
)

# GET /logout only asks: signing out takes a POST with the CSRF token, so no other site can do it.
LOGOUT_PAGE = (
    _PAGE_HEAD
    + """
  <p class="muted">Sign out of TaskMaster Dash? This ends the session on the server.</p>
  <form method="post" action="{{ prefix }}logout">
    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    <button id="logout-confirm" type="submit">Sign out</button>
  </form>
  <p><a href="{{ prefix }}">Back to the dashboard</a></p>
</main></body></html>"""
)

BAD_CREDENTIALS = "Incorrect username or password."
LOCKED = (
    "This account is locked after too many failed sign-in attempts. "
    "Try again later, or ask an admin to unlock it."
)
INACTIVE = "This account cannot sign in. Ask an admin."
WRONG_CURRENT = "The current password is not right."


def _safe_next(target: str | None, prefix: str) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return prefix
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return prefix
    return target


def _page(template: str, title: str, status: int, **values) -> Response:
    html = render_template_string(
        template,
        title=title,
        csrf_token=generate_csrf(),
        prefix=current_app.config["ROUTES_PREFIX"],
        **values,
    )
    return Response(html, status=status, mimetype="text/html")


def _render(message: str = "", username: str = "", next_path: str = "/", status: int = 200):
    return _page(
        LOGIN_PAGE, "Sign in", status, message=message, username=username, next_path=next_path
    )


def sign_in_refusal(message: str, status: int) -> Response:
    """The sign-in form with a message (the throttle's 429 uses it)."""
    prefix = current_app.config["ROUTES_PREFIX"]
    return _render(message, next_path=_safe_next(request.values.get("next"), prefix), status=status)


def _check_guess(record: LoginRecord, password: str, policy: LoginPolicy, wrong: str) -> str | None:
    """None when `password` is the user's; else the message. The attempt is counted before the
    password is checked (take_login_attempt), so parallel guesses cannot pass the limit; a locked
    account still spends one hash, so it answers as slowly as a wrong password."""
    attempt = take_login_attempt(record.id, policy.max_attempts, policy.lock_minutes)
    if attempt is None:
        verify_password(_DUMMY_HASH, password)
        return LOCKED
    if verify_password(record.password_hash, password):
        return None
    return LOCKED if attempt >= policy.max_attempts else wrong


def check_credentials(username: str, password: str, policy: LoginPolicy) -> tuple[str | None, str]:
    """(user id, "") on success, or (None, message for the form)."""
    record = login_record(username)
    if record is None or record.is_system:
        verify_password(_DUMMY_HASH, password)
        return None, BAD_CREDENTIALS
    problem = _check_guess(record, password, policy, BAD_CREDENTIALS)
    if problem:
        return None, problem
    if not (record.is_active and record.role_active):
        return None, INACTIVE
    upgraded = hash_password(password) if needs_rehash(record.password_hash or "") else None
    record_login_success(record.id, upgraded)
    return record.id, ""


def change_own_password(user: SessionUser, current: str, new: str) -> str | None:
    """Change the signed-in user's password after checking the current one; None when done,
    else the message for the form. A wrong current password counts as a failed sign-in (enough
    of them lock the account), so this form is no way round the lockout. The user's other
    sessions end; this one carries on."""
    policy: LoginPolicy = current_app.config["LOGIN_POLICY"]
    record = login_record(user.username)
    if record is None or record.id != user.id:
        return INACTIVE
    problem = _check_guess(record, current, policy, WRONG_CURRENT)
    if problem:
        return problem
    clear_login_attempts(record.id)
    set_password(user.actor(), user.id, new)  # UserInputError when the policy refuses it
    return None


def own_sessions(user: SessionUser) -> tuple[list[dict], int]:
    """The signed-in user's live sessions (for /account: this one, then the most recently seen,
    at most SESSIONS_SHOWN), and how many are live in all."""
    return active_sessions(user.actor(), _now(), current_app.config["SESSION_LIFETIME"])


def _request_actor(user_id: str, username: str) -> Actor:
    return Actor(
        user_id,
        username,
        ip_address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )


def _start_session(user_id: str) -> bool:
    """A new server-side session (a new random id on every sign-in) for a user who just proved
    their password; the session that sent the form, if any, ends. False when they may not sign
    in after all."""
    record = session_record(user_id)
    if record is None:
        return False
    previous = signed_in_user()
    if previous is not None and previous.record.session_id:
        end_session(previous.actor(), previous.record.session_id, "signed in again")
    token = new_session_token()
    session_id = open_session(_request_actor(record.id, record.username), token, _now())
    session.clear()  # nothing from before sign-in carries over (CSRF token included)
    login_user(SessionUser(replace(record, session_id=session_id), token))
    return True


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
        started = _start_session(user_id) if user_id else False
    except SQLAlchemyError as exc:
        return _render(user_message(exc), username, next_path, 503)
    if not started:
        return _render(message or INACTIVE, username, next_path, 401)
    return redirect(next_path)


@blueprint.route("/logout", methods=["GET", "POST"])
def logout():
    prefix = current_app.config["ROUTES_PREFIX"]
    user = signed_in_user()
    if user is None:
        return redirect(prefix + "login")
    if request.method == "GET":
        return _page(LOGOUT_PAGE, "Sign out", 200, message="")
    try:
        csrf.protect()
    except CSRFError:
        message = "That sign-out request did not come from this site's form; press Sign out."
        return _page(LOGOUT_PAGE, "Sign out", 400, message=message)
    if user.record.session_id:
        try:
            end_session(user.actor(), user.record.session_id, "signed out")
        except SQLAlchemyError as exc:
            return _page(LOGOUT_PAGE, "Sign out", 503, message=user_message(exc))
    logout_user()
    session.clear()
    return redirect(prefix + "login")


def _database_unavailable(exc: SQLAlchemyError) -> None:
    """The database could not say who this is: that is an outage, not a reason to end the
    session. Marked for require_sign_in, which answers 503 instead of "sign in"."""
    g.database_unavailable = user_message(exc)


def _load_user(token: str) -> SessionUser | None:
    """The user of a live server-side session: ended, idle or expired sessions, and users who may
    no longer sign in, get None (the request is not signed in)."""
    try:
        record = session_user(token, _now(), current_app.config["SESSION_LIFETIME"])
    except SQLAlchemyError as exc:
        _database_unavailable(exc)
        return None
    return SessionUser(record, token) if record else None


def _load_user_from_request(req) -> SessionUser | None:
    """Without a session: an API key or an original-API bearer token on /api/v1/*, or a verified
    Cloudflare Access token (a user's, by e-mail; on /api/v1/* also a service token's, by its
    configured common_name).
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
            if record is None and req.path.startswith(prefix + "api/v1/"):
                service_user = access.service_username(token)
                record = username_session(service_user) if service_user else None
            return SessionUser(record) if record else None
    except SQLAlchemyError as exc:
        _database_unavailable(exc)
        return None
    return None


DATABASE_DOWN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Database unreachable · TaskMaster Dash</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ retry }}">
<link rel="icon" href="{{ prefix }}_favicon.ico">
<link rel="stylesheet" href="{{ prefix }}assets/style.css"></head>
<body class="login-body">
<main class="login-card">
  <h1>TaskMaster Dash</h1>
  <p class="login-message" role="alert" id="database-unreachable">{{ message }}</p>
  <p class="muted">This page tries again every {{ retry }} seconds and opens by itself when the
  database is back. You stay signed in.</p>
</main></body></html>"""
DATABASE_RETRY_SECONDS = 10


def database_down_response(message: str, path: str, prefix: str) -> Response:
    """503 while the database cannot be read: JSON for callbacks and the API, a page that
    reloads itself for everything else."""
    if path.startswith(prefix + "_dash-") or path.startswith(prefix + "api/"):
        response = jsonify(error=message)
    else:
        html = render_template_string(
            DATABASE_DOWN_PAGE, message=message, retry=DATABASE_RETRY_SECONDS, prefix=prefix
        )
        response = Response(html, mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_SECONDS)
    return response


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
        # Flask documents wrapping wsgi_app this way; its stubs declare it a method.
        server.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )


def init_auth(
    server: Flask,
    *,
    prefix: str,
    secret_key: str,
    policy: LoginPolicy,
    session_lifetime: SessionLifetime | None = None,
    throttle: ThrottlePolicy | None = None,
    clock: Callable[[], datetime] = utc_now,
    settings: Settings | None = None,
) -> None:
    settings = settings or load_settings()
    server.config.update(
        SECRET_KEY=secret_key,
        WTF_CSRF_CHECK_DEFAULT=False,  # only the sign-in and sign-out forms; Dash posts JSON
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session it is bound to
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    server.config["ROUTES_PREFIX"] = prefix
    server.config["LOGIN_POLICY"] = policy
    server.config["SESSION_LIFETIME"] = session_lifetime or session_lifetime_from_settings(settings)
    server.config["CLOCK"] = clock
    server.config["CF_ACCESS"] = CloudflareAccess.from_settings(settings)
    server.session_interface = _SessionInterface()
    trust_proxy(server, settings.trusted_proxy_count)
    # Before the sign-in gate: a throttled client is refused before any database work.
    init_throttle(server, throttle or ThrottlePolicy.from_settings(settings), sign_in_refusal)
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
        if g.get("database_unavailable"):
            return database_down_response(g.database_unavailable, path, prefix)
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
