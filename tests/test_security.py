"""Issue 11: sessions that end on the server, sign-out by POST only, guesses capped however many
arrive at once, the per-client throttle, security headers, hidden fields and refused shapes."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

import taskmaster_dash.auth.login as login_module
from taskmaster_dash.auth.throttle import ThrottlePolicy
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.users import issue_api_key
from tests.support.auth import ROLE_PASSWORD, csrf_token, new_user, sign_in
from tests.support.callbacks import call_callback, callback_values
from tests.support.sql import tuples

ME = "/api/v1/me"


def client_from(app, address: str, agent: str = "pytest"):
    """A test client whose requests come from `address` (each test its own, for the throttle)."""
    client = app.server.test_client()
    client.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    return client


def signed_in(app, username: str, address: str = "192.0.2.1", agent: str = "pytest"):
    client = client_from(app, address, agent)
    assert sign_in(client, username, ROLE_PASSWORD).status_code == 302
    return client


def cookie_of(client) -> str:
    return client.get_cookie("session").value


def with_cookie(app, value: str):
    """Another browser holding a copy of someone's session cookie."""
    client = app.server.test_client()
    client.set_cookie("session", value)
    return client


def sessions_of(owner_engine, user_id: str) -> list[tuple]:
    with owner_engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT id::text, ended_at IS NOT NULL, end_reason, host(ip_address), "
                    "user_agent FROM user_sessions WHERE user_id = CAST(:id AS uuid) "
                    "ORDER BY created_at"
                ),
                {"id": user_id},
            )
        ]


def sign_out(client):
    token = csrf_token(client, "/logout")
    return client.post("/logout", data={"csrf_token": token})


# --- Sessions -----------------------------------------------------------------------------------


def test_after_sign_out_the_old_cookie_is_refused_everywhere(dash_app, owner_engine):
    user_id, name = new_user()
    client = signed_in(dash_app, name)
    stolen = cookie_of(client)
    assert with_cookie(dash_app, stolen).get(ME).status_code == 200
    response = sign_out(client)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    copy = with_cookie(dash_app, stolen)
    assert copy.get(ME).status_code == 401
    assert copy.get("/_dash-layout").status_code == 401
    assert copy.get("/").status_code == 302
    assert [(s[1], s[2]) for s in sessions_of(owner_engine, user_id)] == [(True, "signed out")]


def test_a_cross_site_get_or_tokenless_post_to_logout_does_not_sign_out(dash_app, users):
    client = signed_in(dash_app, "test-viewer")
    page = client.get("/logout")  # what an <img src=".../logout"> on another site sends
    assert page.status_code == 200 and 'id="logout-confirm"' in page.text
    assert client.get(ME).status_code == 200
    forged = client.post("/logout", data={})  # a cross-site form cannot know the token
    assert forged.status_code == 400 and "did not come from this site" in forged.text
    assert client.get(ME).status_code == 200
    assert sign_out(client).status_code == 302
    assert client.get(ME).status_code == 401


def test_every_sign_in_gets_a_new_session_and_ends_the_one_before(dash_app, owner_engine):
    user_id, name = new_user()
    client = client_from(dash_app, "192.0.2.2")
    client.get("/login")
    anonymous = cookie_of(client)
    assert sign_in(client, name, ROLE_PASSWORD).status_code == 302
    first = cookie_of(client)
    assert sign_in(client, name, ROLE_PASSWORD).status_code == 302
    second = cookie_of(client)
    assert len({anonymous, first, second}) == 3
    assert with_cookie(dash_app, first).get(ME).status_code == 401
    assert with_cookie(dash_app, second).get(ME).status_code == 200
    ids = [s[0] for s in sessions_of(owner_engine, user_id)]
    assert len(set(ids)) == 2
    assert [(s[1], s[2]) for s in sessions_of(owner_engine, user_id)] == [
        (True, "signed in again"),
        (False, None),
    ]


def test_a_deactivated_users_old_cookie_stays_dead_after_reactivation(
    dash_app, client_as, owner_engine
):
    from taskmaster_dash.pages.admin_users import ACTIONS

    user_id, name = new_user()
    old = cookie_of(signed_in(dash_app, name))
    admin = client_as("admin")

    def set_active(button: str) -> str:
        values = callback_values(
            call_callback(
                admin,
                dash_app,
                "au-action-message.children",
                [int(b == button) for b in ACTIONS],
                [[{"id": user_id, "username": name}], None, None, 90, 0],
                changed=f"{button}.n_clicks",
            )
        )
        return values["au-action-message"]["children"]["props"]["children"]

    assert "inactive" in set_active("au-deactivate")
    assert with_cookie(dash_app, old).get(ME).status_code == 401
    assert "now active" in set_active("au-activate")
    assert with_cookie(dash_app, old).get(ME).status_code == 401
    assert [(s[1], s[2]) for s in sessions_of(owner_engine, user_id)] == [(True, "deactivated")]
    assert signed_in(dash_app, name).get(ME).status_code == 200  # a new sign-in works


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(dash_app, monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setitem(dash_app.server.config, "CLOCK", fake)
    return fake


def last_seen(owner_engine, user_id: str) -> datetime:
    with owner_engine.connect() as conn:
        return conn.scalar(
            text("SELECT max(last_seen_at) FROM user_sessions WHERE user_id = CAST(:id AS uuid)"),
            {"id": user_id},
        )


def test_a_session_ends_after_7_idle_days(dash_app, owner_engine, clock):
    user_id, name = new_user()
    client = signed_in(dash_app, name)
    started = last_seen(owner_engine, user_id)
    clock.advance(seconds=59)
    assert client.get(ME).status_code == 200
    assert last_seen(owner_engine, user_id) == started  # at most one write a minute
    clock.advance(seconds=2)
    assert client.get(ME).status_code == 200
    assert last_seen(owner_engine, user_id) == clock.now
    clock.advance(days=6, hours=23)
    assert client.get(ME).status_code == 200  # within 7 days of the last request
    clock.advance(days=7, seconds=1)
    assert client.get(ME).status_code == 401


def test_a_session_ends_after_30_days_however_busy(dash_app, clock):
    _, name = new_user()
    client = signed_in(dash_app, name)
    for _ in range(5):
        clock.advance(days=5, hours=23)
        assert client.get(ME).status_code == 200
    clock.advance(hours=4, minutes=59)
    assert client.get(ME).status_code == 200  # 29 days 23:59 after signing in
    clock.advance(minutes=2)
    assert client.get(ME).status_code == 401


def test_session_lifetimes_read_the_environment(monkeypatch):
    monkeypatch.setenv("SESSION_IDLE_HOURS", "8")
    monkeypatch.setenv("SESSION_MAX_HOURS", "24")
    lifetime = login_module.session_lifetime_from_settings(load_settings())
    assert (lifetime.idle, lifetime.maximum) == (timedelta(hours=8), timedelta(hours=24))
    monkeypatch.delenv("SESSION_IDLE_HOURS")
    assert login_module.session_lifetime_from_settings(load_settings()).idle == timedelta(days=7)
    monkeypatch.setenv("SESSION_MAX_HOURS", "0")
    with pytest.raises(ValueError, match="SESSION_MAX_HOURS"):
        login_module.session_lifetime_from_settings(load_settings())


# --- /account: your sessions, and an admin ending all of someone's ------------------------------


def account_sessions(client, app):
    from tests.support.callbacks import render_page

    return str(render_page(client, app, "/account"))


def end_from_account(client, app, session_id):
    """Press the End button of `session_id` (a pattern-matching input, as the browser sends it)."""
    from taskmaster_dash.pages.account import END_SESSION

    key = next(k for k in app.callback_map if "account-sessions.children" in k)
    button = {"session": session_id, "type": END_SESSION}
    payload = {
        "output": key,
        "outputs": [
            {"id": "account-sessions", "property": "children"},
            {"id": "account-sessions-message", "property": "children"},
        ],
        "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
        "state": [],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }
    return client.post("/_dash-update-component", json=payload)


def test_account_lists_your_sessions_and_ends_one(dash_app, owner_engine):
    user_id, name = new_user()
    here = signed_in(dash_app, name, "192.0.2.10", "Here-Browser/1.0")
    there = signed_in(dash_app, name, "192.0.2.11", "There-Browser/2.0")
    listed = account_sessions(here, dash_app)
    assert "Here-Browser/1.0" in listed and "There-Browser/2.0" in listed
    assert "192.0.2.10" in listed and "192.0.2.11" in listed and "this session" in listed
    there_id = next(s[0] for s in sessions_of(owner_engine, user_id) if s[4] == "There-Browser/2.0")
    # Someone else's session id, sent by hand, ends nothing.
    other_id, other_name = new_user()
    elsewhere = signed_in(dash_app, other_name, "192.0.2.12")
    elsewhere_id = sessions_of(owner_engine, other_id)[0][0]
    refused = callback_values(end_from_account(here, dash_app, elsewhere_id))
    assert "already ended" in str(refused["account-sessions-message"])
    assert elsewhere.get(ME).status_code == 200

    ended = callback_values(end_from_account(here, dash_app, there_id))
    assert "The session has ended" in str(ended["account-sessions-message"])
    assert "There-Browser/2.0" not in str(ended["account-sessions"])
    assert there.get(ME).status_code == 401
    assert here.get(ME).status_code == 200


def end_all(client, app, user_id):
    return call_callback(
        client,
        app,
        "au-sessions-message.children",
        [1],
        [[{"id": user_id, "username": "someone"}]],
    )


def test_an_admin_ends_all_sessions_of_a_user(dash_app, client_as, owner_engine):
    user_id, name = new_user()
    browsers = [signed_in(dash_app, name, f"192.0.2.{20 + i}") for i in range(2)]
    assert end_all(client_as("viewer"), dash_app, user_id).status_code == 403
    assert all(b.get(ME).status_code == 200 for b in browsers)
    said = callback_values(end_all(client_as("admin"), dash_app, user_id))
    assert "Ended 2 session(s)" in str(said["au-sessions-message"])
    assert all(b.get(ME).status_code == 401 for b in browsers)
    assert {s[2] for s in sessions_of(owner_engine, user_id)} == {"ended by an admin"}
    junk = callback_values(end_all(client_as("admin"), dash_app, "'; DROP TABLE users; --"))
    assert "There is no such user." in str(junk["au-sessions-message"])


def test_the_audit_log_records_sign_in_without_the_token(dash_app, owner_engine):
    user_id, name = new_user()
    client = signed_in(dash_app, name, "192.0.2.30")
    token = client.get_cookie("session").value
    rows = tuples(
        owner_engine,
        "SELECT username, host(ip_address), session_id, new_values::text FROM audit_logs "
        "WHERE entity_type = 'user_sessions' AND user_id = CAST(:id AS uuid)",
        id=user_id,
    )
    session_id = sessions_of(owner_engine, user_id)[0][0]
    assert [(r[0], r[1], r[2]) for r in rows] == [(name, "192.0.2.30", session_id)]
    assert "[redacted" in rows[0][3] and token not in rows[0][3]


# --- Sign-in: guesses capped, a locked account as slow as a wrong password ----------------------


@pytest.fixture
def password_checks(monkeypatch):
    """Every password hash the sign-in computes: (against whose hash, which password)."""
    seen: list[str] = []
    real = login_module.verify_password

    def counting(password_hash, password):
        seen.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(login_module, "verify_password", counting)
    return seen


def attempts_and_lock(owner_engine, user_id: str) -> tuple[int, bool]:
    with owner_engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT login_attempts, COALESCE(locked_until > now(), false) FROM users "
                    "WHERE id = CAST(:id AS uuid)"
                ),
                {"id": user_id},
            ).one()
        )


def stored_hash(owner_engine, user_id: str) -> str:
    with owner_engine.connect() as conn:
        return conn.scalar(
            text("SELECT password_hash FROM users WHERE id = CAST(:id AS uuid)"), {"id": user_id}
        )


def test_forty_parallel_wrong_passwords_get_five_checks(dash_app, owner_engine, password_checks):
    user_id, name = new_user()
    # Each guess from its own address, so that the per-client throttle stays out of the way.
    clients = [client_from(dash_app, f"198.51.100.{i + 1}") for i in range(40)]
    forms = [csrf_token(c) for c in clients]
    start = threading.Barrier(len(clients))
    answers: list[int] = []

    def guess(client, token: str, number: int) -> None:
        start.wait()
        response = client.post(
            "/login",
            data={"csrf_token": token, "username": name, "password": f"Wrong-guess-{number}"},
        )
        answers.append(response.status_code)

    threads = [
        threading.Thread(target=guess, args=(c, t, i))
        for i, (c, t) in enumerate(zip(clients, forms, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [401] * 40
    real_hash = stored_hash(owner_engine, user_id)
    assert password_checks.count(real_hash) == 5  # LOGIN_MAX_ATTEMPTS, however many arrived
    assert len(password_checks) == 40  # the other 35 spent a hash all the same
    assert attempts_and_lock(owner_engine, user_id) == (5, True)
    right = sign_in(client_from(dash_app, "198.51.100.200"), name, ROLE_PASSWORD)
    assert right.status_code == 401 and "locked" in right.text


def test_a_locked_account_spends_a_hash_like_a_wrong_password(
    dash_app, owner_engine, password_checks
):
    user_id, name = new_user()
    client = client_from(dash_app, "198.51.100.201")
    for attempt in range(1, 6):
        sign_in(client, name, "Wrong-guess-1")
        assert attempts_and_lock(owner_engine, user_id) == (attempt, attempt == 5)
    password_checks.clear()
    assert sign_in(client, name, ROLE_PASSWORD).status_code == 401
    assert password_checks == [login_module._DUMMY_HASH]  # one hash, not the user's
    assert attempts_and_lock(owner_engine, user_id) == (5, True)


def guessed_wrong(dash_app, address: str, times: int):
    """A new user (id, name) and a client at `address` that tried a wrong password for it
    `times` times."""
    user_id, name = new_user()
    client = client_from(dash_app, address)
    for _ in range(times):
        sign_in(client, name, "Wrong-guess-1")
    return user_id, name, client


def test_the_right_password_on_the_last_attempt_signs_in_and_resets(dash_app, owner_engine):
    user_id, name, client = guessed_wrong(dash_app, "198.51.100.202", 4)
    assert sign_in(client, name, ROLE_PASSWORD).status_code == 302
    assert attempts_and_lock(owner_engine, user_id) == (0, False)


def test_an_expired_lock_starts_a_new_count(dash_app, owner_engine):
    user_id, name, client = guessed_wrong(dash_app, "198.51.100.203", 5)
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE users SET locked_until = now() - interval '1 second' "
                "WHERE id = CAST(:id AS uuid)"
            ),
            {"id": user_id},
        )
    assert sign_in(client, name, "Wrong-guess-2").status_code == 401
    assert attempts_and_lock(owner_engine, user_id) == (1, False)
    assert sign_in(client, name, ROLE_PASSWORD).status_code == 302


# --- The per-client throttle --------------------------------------------------------------------


def retry_after(response) -> int:
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60
    return seconds


def test_ten_failed_sign_ins_from_one_address_get_429(dash_app, owner_engine, password_checks):
    client = client_from(dash_app, "203.0.113.10")
    targets = [new_user() for _ in range(11)]
    for _, name in targets[:10]:  # spread over many usernames: still one client
        assert sign_in(client, name, "Wrong-guess-1").status_code == 401
    checked = len(password_checks)
    refused = sign_in(client, targets[10][1], ROLE_PASSWORD)
    assert refused.status_code == 429 and retry_after(refused)
    assert "Too many failed sign-ins from your address" in refused.text
    assert len(password_checks) == checked  # refused before any password was checked
    assert attempts_and_lock(owner_engine, targets[10][0]) == (0, False)
    # Another address is not affected.
    assert (
        sign_in(client_from(dash_app, "203.0.113.11"), targets[10][1], ROLE_PASSWORD).status_code
        == 302
    )


def test_successful_sign_ins_do_not_count(dash_app, monkeypatch):
    monkeypatch.setitem(dash_app.server.config, "THROTTLE_POLICY", ThrottlePolicy(2, 600))
    _, name = new_user()
    client = client_from(dash_app, "203.0.113.12")
    for _ in range(4):
        assert sign_in(client, name, ROLE_PASSWORD).status_code == 302
    for _ in range(2):
        assert sign_in(client, name, "Wrong-guess-1").status_code == 401
    assert sign_in(client, name, ROLE_PASSWORD).status_code == 429


def test_wrong_api_keys_from_one_address_get_429(dash_app):
    user_id, _ = new_user("api_client")
    key, _ = issue_api_key(SYSTEM_ACTOR, user_id, 5)
    client = client_from(dash_app, "203.0.113.20")
    for i in range(10):
        assert client.get(ME, headers={"X-API-Key": f"tmk_wrong{i}"}).status_code == 401
    refused = client.get(ME, headers={"X-API-Key": key})
    assert refused.status_code == 429 and retry_after(refused)
    assert refused.get_json()["error"] == "too many requests"
    assert (
        client_from(dash_app, "203.0.113.21").get(ME, headers={"X-API-Key": key}).status_code == 200
    )


def test_api_requests_are_limited_per_key(dash_app, monkeypatch):
    monkeypatch.setitem(dash_app.server.config, "THROTTLE_POLICY", ThrottlePolicy(10, 5))
    first_id, _ = new_user("api_client")
    second_id, _ = new_user("api_client")
    first, _ = issue_api_key(SYSTEM_ACTOR, first_id, 5)
    second, _ = issue_api_key(SYSTEM_ACTOR, second_id, 5)
    client = client_from(dash_app, "203.0.113.30")
    for _ in range(5):
        assert client.get(ME, headers={"X-API-Key": first}).status_code == 200
    refused = client.get(ME, headers={"X-API-Key": first})
    assert refused.status_code == 429 and retry_after(refused)
    assert client.get(ME, headers={"X-API-Key": second}).status_code == 200  # per key


def test_throttle_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("THROTTLE_FAILURES_PER_MINUTE", "3")
    monkeypatch.setenv("THROTTLE_API_REQUESTS_PER_MINUTE", "100")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    assert ThrottlePolicy.from_settings(load_settings()) == ThrottlePolicy(
        3, 100, "redis://127.0.0.1:6390/0"
    )
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.delenv("THROTTLE_API_REQUESTS_PER_MINUTE")
    assert ThrottlePolicy.from_settings(load_settings()) == ThrottlePolicy(3, 600, "memory://")
    monkeypatch.setenv("THROTTLE_FAILURES_PER_MINUTE", "lots")
    with pytest.raises(ValueError, match="THROTTLE_FAILURES_PER_MINUTE"):
        ThrottlePolicy.from_settings(load_settings())


# --- Security headers ---------------------------------------------------------------------------


def assert_security_headers(response, dash_app, https: bool = False) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    scripts = directives["script-src"].split()
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert set(dash_app.csp_hashes()) <= set(scripts)
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert ("Strict-Transport-Security" in headers) is https


def test_every_kind_of_response_carries_the_security_headers(dash_app, users):
    client = signed_in(dash_app, "test-viewer", "192.0.2.40")
    page = client.get("/tasks")
    assert page.status_code == 200 and "DashRenderer" in page.text
    for response in (
        page,
        dash_app.server.test_client().get("/login"),
        client.get(ME),
        dash_app.server.test_client().get("/api/v1/health"),
        dash_app.server.test_client().get("/assets/style.css"),
        dash_app.server.test_client().get("/tasks"),  # the redirect to the sign-in form
    ):
        assert_security_headers(response, dash_app)
    secure = dash_app.server.test_client().get("/login", base_url="https://localhost")
    assert_security_headers(secure, dash_app, https=True)
    assert "max-age=31536000" in secure.headers["Strict-Transport-Security"]


def test_the_inline_scripts_of_the_page_are_the_ones_the_policy_allows(dash_app, users):
    import base64
    import hashlib

    page = signed_in(dash_app, "test-viewer", "192.0.2.41").get("/").text
    page = re.sub(r"<!--.*?-->", "", page, flags=re.S)  # Dash's IE-only note is a comment
    allowed = dash_app.csp_hashes()
    inline = re.findall(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", page, re.S
    )
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed


# --- Only the fields a user may see; only the shapes we accept ----------------------------------


def test_the_triage_grid_blanks_the_task_of_an_error_linked_to_a_hidden_task(
    dash_app, client_as, owner_engine, clean_data
):
    from tests.test_error_triage import DEFAULT_VIEW, grid_rows, one_error

    with owner_engine.begin() as conn:
        hidden, visible = (
            conn.scalar(
                text(
                    "INSERT INTO tasks (title, status, assigned_to) VALUES (:t, 'pending', :a) "
                    "RETURNING id::text"
                ),
                {"t": title, "a": assignee},
            )
            for title, assignee in (("Secret work", "someone-else"), ("Open work", None))
        )
    one_error(owner_engine, task_id=hidden, error_message="on the hidden task")
    one_error(owner_engine, task_id=visible, error_message="on the visible task")
    as_developer = grid_rows(client_as("developer"), dash_app, DEFAULT_VIEW)["rowData"]
    rows = {r["error_message"]: r for r in as_developer}
    assert rows["on the hidden task"]["task"] is None
    assert hidden not in str(as_developer) and hidden[:8] not in str(as_developer)
    assert rows["on the visible task"]["task"] == "Open work"
    as_viewer = grid_rows(client_as("viewer"), dash_app, DEFAULT_VIEW)["rowData"]
    assert {r["error_message"]: r["task"] for r in as_viewer}["on the hidden task"] == "Secret work"


@pytest.mark.parametrize("permissions", [{"*": 1}, {"tasks:read": True}, "*", 7, [["*"]]])
def test_role_permissions_of_the_wrong_shape_are_refused(
    dash_app, client_as, owner_engine, permissions
):
    from tests.test_admin_roles_and_audit import role_action, role_row

    name = "shape_" + uuid.uuid4().hex[:6].translate(str.maketrans("0123456789", "ghijklmnop"))
    said = role_action(client_as("admin"), dash_app, "ar-create", name=name, perms=permissions)
    assert "Permissions must be a list" in said or "Unknown permission" in said
    assert role_row(owner_engine, name) is None
    before = role_row(owner_engine, "viewer")
    said = role_action(
        client_as("admin"), dash_app, "ar-save", selected="viewer", perms=permissions
    )
    assert "Permissions must be a list" in said or "Unknown permission" in said
    assert role_row(owner_engine, "viewer") == before


# --- In the browser: the pages run under the policy, sessions on /account, signing out ----------


def visit(dash_duo, path: str, ready: str) -> None:
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + path)
    dash_duo.wait_for_element(ready, timeout=20)


@pytest.mark.browser
def test_the_pages_run_under_the_content_security_policy(dash_duo, dash_app, users):
    from tests.support.auth import browser_sign_in

    browser_sign_in(dash_duo, dash_app, "test-admin", path="/")
    visit(dash_duo, "/", "#ov-backlog-graph .main-svg")  # Plotly draws
    visit(dash_duo, "/admin/users", "#au-grid .ag-row")  # AG Grid asks the server and draws
    visit(dash_duo, "/errors", "#triage-grid .ag-header")
    visit(dash_duo, "/alerts", "#alerts-table")
    dash_duo.find_element("#theme-toggle").click()  # a clientside callback (assets) runs
    dash_duo.wait_for_element("html[data-theme]")
    assert dash_duo.get_logs() == []


@pytest.mark.browser
def test_ending_another_session_from_the_account_page(dash_duo, dash_app, owner_engine):
    from tests.support.auth import browser_sign_in

    user_id, name = new_user()
    other = signed_in(dash_app, name, "192.0.2.50", "Other-Browser/1.0")
    browser_sign_in(dash_duo, dash_app, name, path="/account")
    dash_duo.wait_for_contains_text("#account-sessions", "Other-Browser/1.0", timeout=15)
    assert "this session" in dash_duo.find_element("#account-sessions").text
    dash_duo.find_element("#account-sessions button").click()
    dash_duo.wait_for_contains_text("#account-sessions-message", "The session has ended", 15)
    assert "Other-Browser/1.0" not in dash_duo.find_element("#account-sessions").text
    assert other.get(ME).status_code == 401
    live = [s for s in sessions_of(owner_engine, user_id) if not s[1]]
    assert len(live) == 1 and live[0][4] != "Other-Browser/1.0"
    assert dash_duo.get_logs() == []


@pytest.mark.browser
def test_the_header_sign_out_button_ends_the_session(dash_duo, dash_app, owner_engine):
    from tests.support.auth import browser_sign_in

    user_id, name = new_user()
    browser_sign_in(dash_duo, dash_app, name, path="/")
    dash_duo.find_element("#logout-link").click()
    dash_duo.wait_for_element("#login-button", timeout=15)
    assert [(s[1], s[2]) for s in sessions_of(owner_engine, user_id)] == [(True, "signed out")]
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/account")
    dash_duo.wait_for_element("#login-button", timeout=15)  # back at the sign-in form
    assert dash_duo.get_logs() == []


def test_choosing_a_role_of_the_wrong_shape_loads_nothing(dash_app, client_as):
    for chosen in (["viewer"], {"role": "viewer"}, 7, None, "no_such_role"):
        response = call_callback(client_as("admin"), dash_app, "ar-permissions.value", [chosen])
        values = callback_values(response)
        assert values["ar-permissions"]["value"] == [] and values["ar-description"]["value"] == ""
