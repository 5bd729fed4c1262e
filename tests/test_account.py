"""/account: a user reads their own details and changes their own password."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from taskmaster_dash.auth.passwords import verify_password
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.sessions import SESSIONS_SHOWN
from taskmaster_dash.data.users import create_user
from tests.support.auth import browser_sign_in, sign_in, signed_in_client
from tests.support.callbacks import (
    call_callback,
    callback_values,
    find_all,
    find_component,
    render_page,
)

OLD, NEW = "Old-Password-17", "New-Password-23"
OUTPUT = "account-message.children"


@pytest.fixture
def account(database, owner_engine):
    """A fresh viewer of its own (the shared role users keep their known password)."""
    name = "acct-" + uuid.uuid4().hex[:8]
    user_id = create_user(SYSTEM_ACTOR, name, f"{name}@example.com", "viewer", OLD)
    yield name, user_id
    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = CAST(:id AS uuid)"), {"id": user_id})


def stored(owner_engine, user_id: str) -> tuple:
    with owner_engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT password_hash, login_attempts, locked_until IS NOT NULL "
                    "FROM users WHERE id = CAST(:id AS uuid)"
                ),
                {"id": user_id},
            ).one()
        )


def change(client, dash_app, current, new, repeat) -> str:
    response = call_callback(client, dash_app, OUTPUT, [1], [current, new, repeat])
    return json.dumps(callback_values(response)["account-message"]["children"])


def test_the_page_shows_who_you_are_and_what_your_role_allows(dash_app, account):
    name, _ = account
    page = json.dumps(render_page(signed_in_client(dash_app, name, OLD), dash_app, "/account"))
    assert name in page and f"{name}@example.com" in page and "viewer" in page
    assert "tasks:read" in page and "users:manage" not in page


def test_refused_changes_leave_the_password_as_it_was(dash_app, account, owner_engine):
    name, user_id = account
    client = signed_in_client(dash_app, name, OLD)
    before = stored(owner_engine, user_id)
    cases = [
        ((OLD, NEW, "Something-Else-9"), "The two new passwords differ."),
        ((OLD, "short", "short"), "at least"),
        ((OLD, OLD, OLD), "different from the current one"),
        ((None, NEW, NEW), "Type your current password"),
        (({"x": 1}, [NEW], NEW), "Type your current password"),
        ((OLD, "A1-" + "x" * 5000, "A1-" + "x" * 5000), "at most 256 characters"),
        ((OLD, "'; DROP TABLE users; --Aa1", "'; DROP TABLE users; --Aa1"), "your password is"),
    ]
    for (current, new, repeat), expected in cases[:-1]:
        assert expected in change(client, dash_app, current, new, repeat), expected
        assert stored(owner_engine, user_id) == before
    # SQL-looking text is just a password: accepted and stored hashed, nothing else happens.
    (current, new, repeat), expected = cases[-1]
    assert "Your password is changed" in change(client, dash_app, current, new, repeat)
    assert verify_password(stored(owner_engine, user_id)[0], new)


def test_a_wrong_current_password_counts_towards_the_lockout(dash_app, account, owner_engine):
    name, user_id = account
    client = signed_in_client(dash_app, name, OLD)
    before_hash = stored(owner_engine, user_id)[0]
    for attempt in range(1, 5):
        assert "current password is not right" in change(client, dash_app, "Wrong-1x", NEW, NEW)
        assert stored(owner_engine, user_id) == (before_hash, attempt, False)
    assert "locked" in change(client, dash_app, "Wrong-1x", NEW, NEW)
    assert stored(owner_engine, user_id) == (before_hash, 5, True)
    # A locked account's session has ended.
    assert call_callback(client, dash_app, OUTPUT, [1], [OLD, NEW, NEW]).status_code == 401


def test_a_change_keeps_this_session_and_ends_the_others(dash_app, account, owner_engine):
    name, user_id = account
    here, elsewhere = (signed_in_client(dash_app, name, OLD) for _ in range(2))
    assert "Your password is changed" in change(here, dash_app, OLD, NEW, NEW)
    assert verify_password(stored(owner_engine, user_id)[0], NEW)
    assert here.get("/account").status_code == 200
    assert call_callback(here, dash_app, "alert-banner.children", [1, 0], [None]).status_code == 200
    assert (
        call_callback(elsewhere, dash_app, "alert-banner.children", [1, 0], [None]).status_code
        == 401
    )
    assert sign_in(dash_app.server.test_client(), name, OLD).status_code == 401
    assert sign_in(dash_app.server.test_client(), name, NEW).status_code == 302
    with owner_engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT username, action, new_values::text LIKE '%' || :hash || '%' "
                "FROM audit_logs WHERE entity_type = 'users' AND entity_id = CAST(:id AS uuid) "
                "AND action = 'update'"
            ),
            {"id": user_id, "hash": stored(owner_engine, user_id)[0]},
        ).all()
    # Audited as the user themself, and the hash itself is not copied into the log.
    assert (name, "update", False) in [tuple(row) for row in audited]


@pytest.mark.browser
def test_changing_your_password_in_the_browser(dash_duo, dash_app, account, owner_engine):
    name, user_id = account
    browser_sign_in(dash_duo, dash_app, name, OLD, path="/")
    dash_duo.find_element("#user-name").click()
    dash_duo.wait_for_contains_text("#account-dl", name, timeout=10)
    dash_duo.find_element("#account-current").send_keys(OLD)
    dash_duo.find_element("#account-new").send_keys(NEW)
    dash_duo.find_element("#account-repeat").send_keys(NEW)
    dash_duo.find_element("#account-change").click()
    dash_duo.wait_for_contains_text("#account-message", "Your password is changed", timeout=10)
    assert verify_password(stored(owner_engine, user_id)[0], NEW)
    # Still signed in: another page opens without the sign-in form.
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/alerts")
    dash_duo.wait_for_element("#alerts-table", timeout=10)


def test_many_sessions_list_this_one_first_and_count_the_rest(dash_app, account, owner_engine):
    name, user_id = account
    client = signed_in_client(dash_app, name, OLD)
    # 51 other live sessions (a script that signs in every hour keeps that many), all seen
    # more recently than this one
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO user_sessions (token_hash, user_id, last_seen_at)
                   SELECT md5(random()::text) || md5(random()::text), CAST(:id AS uuid),
                          now() + interval '1 second'
                   FROM generate_series(1, 51)"""
            ),
            {"id": user_id},
        )
    page = render_page(client, dash_app, "/account")
    sessions = find_component(page, "account-sessions")
    assert sessions is not None
    table = find_all(sessions["children"], "Tbody")[0]["children"]
    assert len(table) == SESSIONS_SHOWN
    assert "this session" in json.dumps(table[0])
    assert sum("this session" in json.dumps(row) for row in table) == 1
    more = find_component(page, "account-sessions-more")
    assert more is not None and more["children"].startswith("2 more")
