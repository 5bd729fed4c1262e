"""Sign-in gates every page and callback; lockout after repeated failures."""

from __future__ import annotations

from sqlalchemy import text

from taskmaster_dash.data.users import create_user
from tests.support.auth import ROLE_PASSWORD, sign_in
from tests.support.callbacks import call_callback, callback_values
from tests.support.sql import one_tuple


def test_pages_redirect_to_login_and_callbacks_answer_401(dash_app):
    client = dash_app.server.test_client()
    page = client.get("/tasks?range=24h")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/login?next=/tasks?range=24h")
    for path in ("/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401
    assert client.post("/_dash-update-component", json={}).status_code == 401


def test_health_is_public_and_reports_the_database(dash_app):
    response = dash_app.server.test_client().get("/api/v1/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["database"] == "connected" and body["status"] == "healthy"
    assert {"timestamp", "uptime", "version", "environment", "responseTime"} <= body.keys()


def test_detailed_health_needs_sign_in_and_lists_every_pool(dash_app, client_as):
    assert dash_app.server.test_client().get("/api/v1/health/detailed").status_code == 401
    body = client_as("viewer").get("/api/v1/health/detailed").get_json()
    assert set(body["checks"]["pools"]) == {"read", "write", "analytics", "background"}


def test_wrong_password_is_refused_without_saying_which_part(dash_app, users):
    client = dash_app.server.test_client()
    wrong_password = sign_in(client, "test-viewer", "nope-nope-nope")
    unknown_user = sign_in(client, "nobody-here", "nope-nope-nope")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "Incorrect username or password." in wrong_password.get_data(as_text=True)
    assert "Incorrect username or password." in unknown_user.get_data(as_text=True)


def test_five_failures_lock_the_account_even_for_the_right_password(
    dash_app, owner_engine, database
):
    from taskmaster_dash.data.db import SYSTEM_ACTOR

    create_user(SYSTEM_ACTOR, "lock-me", "lock-me@example.com", "viewer", ROLE_PASSWORD)
    client = dash_app.server.test_client()
    for _ in range(5):
        sign_in(client, "lock-me", "wrong-password-1")
    right = sign_in(client, "lock-me", ROLE_PASSWORD)
    assert right.status_code == 401
    assert "locked" in right.get_data(as_text=True)
    with owner_engine.connect() as conn:
        attempts, locked = conn.execute(
            text(
                "SELECT login_attempts, locked_until > now() FROM users WHERE username = 'lock-me'"
            )
        ).one()
    assert (attempts, locked) == (5, True)


def test_success_resets_attempts_and_sets_last_login(dash_app, users, owner_engine):
    client = dash_app.server.test_client()
    sign_in(client, "test-developer", "wrong-password-1")
    assert sign_in(client, "test-developer", ROLE_PASSWORD).status_code == 302
    attempts, recent = one_tuple(
        owner_engine,
        "SELECT login_attempts, last_login_at > now() - interval '1 minute'"
        " FROM users WHERE username = 'test-developer'",
    )
    assert (attempts, recent) == (0, True)


def test_login_refuses_an_open_redirect(dash_app, users):
    client = dash_app.server.test_client()
    response = sign_in(client, "test-viewer", ROLE_PASSWORD, next_path="https://evil.example/")
    assert response.headers["Location"] == "/"


def test_deactivating_a_user_ends_their_session(dash_app, owner_engine, database):
    from taskmaster_dash.data.db import SYSTEM_ACTOR
    from tests.support.auth import signed_in_client

    create_user(SYSTEM_ACTOR, "short-lived", "short-lived@example.com", "viewer", ROLE_PASSWORD)
    client = signed_in_client(dash_app, "short-lived", ROLE_PASSWORD)
    assert client.get("/_dash-layout").status_code == 200
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_active = false WHERE username = 'short-lived'"))
    assert client.get("/_dash-layout").status_code == 401


def test_overview_callback_shows_only_what_the_role_may_read(dash_app, client_as, clean_data):
    values = callback_values(
        call_callback(client_as("api_client"), dash_app, "ov-open-backlog.children", [1])
    )
    assert values["ov-open-backlog"]["children"] == "0"  # api_client has tasks:read
    assert values["ov-errors-hour"]["children"] == "—"  # but not errors:read
