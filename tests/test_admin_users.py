"""/admin/users: the grid, the create form, and the actions on a user, through the callbacks, with
what the database holds afterwards checked by independent SQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskmaster_dash.data.db import SYSTEM_ACTOR, SYSTEM_USER_ID, PoolName, user_message
from taskmaster_dash.data.users import (
    UserInputError,
    set_user_active,
    set_user_role,
    unlock_user,
)
from tests.support.auth import ROLE_PASSWORD, new_user, sign_in, signed_in_client
from tests.support.callbacks import call_callback, callback_values

BUTTONS = [
    "au-role-apply",
    "au-activate",
    "au-deactivate",
    "au-unlock",
    "au-password-apply",
    "au-key-issue",
    "au-key-revoke",
]


def act(client, app, button: str, user_id: str, role=None, password=None, days=90):
    clicks = [1 if b == button else 0 for b in BUTTONS]
    return call_callback(
        client,
        app,
        "au-action-message.children",
        clicks,
        [[{"id": user_id, "username": "someone"}], role, password, days, 0],
        changed=f"{button}.n_clicks",
    )


def message(resp, output="au-action-message") -> str:
    """The text of the message the callback shows."""
    shown = callback_values(resp)[output]["children"]
    return shown["props"]["children"] if isinstance(shown, dict) else str(shown)


def create_form(client, app, username, email, role="viewer", password=ROLE_PASSWORD):
    return call_callback(
        client, app, "au-create-message.children", [1], [username, email, role, password, 0]
    )


def row(owner_engine, user_id: str) -> dict:
    with owner_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    """SELECT u.username, u.is_active, r.role_name, u.login_attempts,
                              u.locked_until, u.password_hash, u.api_key_hash
                       FROM users u JOIN user_roles r ON r.id = u.role_id
                       WHERE u.id = CAST(:id AS uuid)"""
                ),
                {"id": user_id},
            )
            .mappings()
            .one()
        )


def test_an_admin_creates_a_user_who_can_then_sign_in(dash_app, client_as, owner_engine):
    name = f"new-{uuid.uuid4().hex[:8]}"
    resp = create_form(client_as("admin"), dash_app, name, f"{name}@example.com", "developer")
    assert f"Created {name} (developer)." in message(resp, "au-create-message")
    with owner_engine.connect() as conn:
        role, by = conn.execute(
            text(
                """SELECT r.role_name, a.username FROM users u
                   JOIN user_roles r ON r.id = u.role_id
                   JOIN audit_logs a ON a.entity_id = u.id AND a.action = 'create'
                   WHERE u.username = :u"""
            ),
            {"u": name},
        ).one()
    assert (role, by) == ("developer", "test-admin")
    assert sign_in(dash_app.server.test_client(), name, ROLE_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("username", "email", "password", "says"),
    [
        ("x" * 5000, "a@example.com", ROLE_PASSWORD, "username must be"),
        ("robert'); DROP TABLE users;--", "r@example.com", ROLE_PASSWORD, "username must be"),
        ("fine-name", "not-an-email", ROLE_PASSWORD, "e-mail address is not valid"),
        ("fine-name", "a" * 300 + "@example.com", ROLE_PASSWORD, "e-mail address is not valid"),
        ("fine-name", "f@example.com", "short", "at least 10 characters"),
        ("fine-name", "f@example.com", "alllowercaseletters", "mix at least three"),
        ("test-viewer", "other@example.com", ROLE_PASSWORD, "already exists"),
    ],
)
def test_the_create_form_refuses_bad_input_with_a_clear_message(
    dash_app, client_as, owner_engine, username, email, password, says
):
    with owner_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM users")).scalar()
    resp = create_form(client_as("admin"), dash_app, username, email, "viewer", password)
    assert says in message(resp, "au-create-message")
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == before
        assert conn.execute(text("SELECT to_regclass('users') IS NOT NULL")).scalar()


def test_the_create_form_refuses_an_unknown_role_and_wrong_types(dash_app, client_as):
    client = client_as("admin")
    unknown = create_form(client, dash_app, "fine-name2", "f2@example.com", "superuser")
    assert "no active role named 'superuser'" in message(unknown, "au-create-message")
    wrong = create_form(client, dash_app, {"$ne": 1}, ["x"], 5, None)
    assert "Fill in username" in message(wrong, "au-create-message")


def test_actions_refuse_unknown_ids_and_the_system_user(dash_app, client_as, owner_engine):
    client = client_as("admin")
    for bad in (str(uuid.uuid4()), "' OR 1=1 --", "x" * 10_000, SYSTEM_USER_ID):
        assert message(act(client, dash_app, "au-deactivate", bad)) == "There is no such user."
    with owner_engine.connect() as conn:
        assert conn.execute(
            text("SELECT is_active FROM users WHERE id = CAST(:id AS uuid)"), {"id": SYSTEM_USER_ID}
        ).scalar()


def test_the_grid_pages_sorts_and_filters_on_the_server_without_the_system_user(
    dash_app, client_as, users
):
    client = client_as("admin")

    def page(request):
        resp = call_callback(client, dash_app, "au-grid.getRowsResponse", [request])
        return callback_values(resp)["au-grid"]["getRowsResponse"]

    everyone = page({"startRow": 0, "endRow": 1000, "sortModel": [], "filterModel": {}})
    names = [r["username"] for r in everyone["rowData"]]
    assert "system" not in names and "test-admin" in names
    assert everyone["rowCount"] == len(names)

    first_two = page(
        {"startRow": 0, "endRow": 2, "sortModel": [{"colId": "username", "sort": "desc"}]}
    )
    assert [r["username"] for r in first_two["rowData"]] == sorted(names, reverse=True)[:2]
    assert first_two["rowCount"] == len(names)

    filtered = page(
        {
            "startRow": 0,
            "endRow": 100,
            "sortModel": [{"colId": "password_hash; DROP TABLE users", "sort": "asc"}],
            "filterModel": {
                "role_name": {"filterType": "text", "type": "equals", "filter": "ON_CALL"},
                "password_hash": {"filterType": "text", "type": "contains", "filter": "$"},
            },
        }
    )
    assert [r["role_name"] for r in filtered["rowData"]] == ["on_call"] * len(filtered["rowData"])
    assert "test-on-call" in [r["username"] for r in filtered["rowData"]]
    assert "password_hash" not in filtered["rowData"][0]

    nothing = page({"filterModel": {"email": {"type": "contains", "filter": "%' OR '1'='1"}}})
    assert nothing == {"rowData": [], "rowCount": 1}


def test_change_role_unlock_and_password(dash_app, client_as, owner_engine):
    client = client_as("admin")
    user_id, _ = new_user()
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE users SET login_attempts = 5, locked_until = now() + interval '1 hour'"
                " WHERE id = CAST(:id AS uuid)"
            ),
            {"id": user_id},
        )
    assert "now has the role on_call" in message(
        act(client, dash_app, "au-role-apply", user_id, role="on_call")
    )
    assert message(act(client, dash_app, "au-role-apply", user_id, role="nope")) == (
        "Choose an active role."
    )
    assert "unlocked" in message(act(client, dash_app, "au-unlock", user_id))
    before = row(owner_engine, user_id)["password_hash"]
    weak = message(act(client, dash_app, "au-password-apply", user_id, password="weak"))
    assert "at least 10 characters" in weak
    assert row(owner_engine, user_id)["password_hash"] == before
    changed = act(client, dash_app, "au-password-apply", user_id, password="Another-Pass-77")
    assert "password of" in message(changed)
    after = row(owner_engine, user_id)
    assert after["role_name"] == "on_call" and after["locked_until"] is None
    assert after["login_attempts"] == 0 and after["password_hash"] != before


def test_a_new_password_ends_the_users_other_sessions(dash_app, client_as):
    user_id, name = new_user()
    theirs = dash_app.server.test_client()
    assert sign_in(theirs, name, ROLE_PASSWORD).status_code == 302
    assert theirs.get("/api/v1/me").status_code == 200
    act(client_as("admin"), dash_app, "au-password-apply", user_id, password="Another-Pass-77")
    assert theirs.get("/api/v1/me").status_code == 401


def test_an_admin_setting_their_own_password_keeps_this_session(dash_app):
    admin_id, name = new_user("admin")
    here, elsewhere = (signed_in_client(dash_app, name, ROLE_PASSWORD) for _ in range(2))
    done = act(here, dash_app, "au-password-apply", admin_id, password="Another-Pass-77")
    assert "password of" in message(done)
    assert here.get("/api/v1/me").status_code == 200
    assert elsewhere.get("/api/v1/me").status_code == 401


def test_deactivating_signs_the_user_out_and_activating_lets_them_back(dash_app, client_as):
    client = client_as("admin")
    user_id, name = new_user()
    theirs = dash_app.server.test_client()
    sign_in(theirs, name, ROLE_PASSWORD)
    assert "inactive" in message(act(client, dash_app, "au-deactivate", user_id))
    assert theirs.get("/api/v1/me").status_code == 401
    assert sign_in(theirs, name, ROLE_PASSWORD).status_code == 401
    assert "active" in message(act(client, dash_app, "au-activate", user_id))
    assert sign_in(theirs, name, ROLE_PASSWORD).status_code == 302


def test_an_admin_cannot_deactivate_or_demote_themself(
    dash_app, client_as, users, owner_engine, database
):
    client = client_as("admin")
    me = users.ids["admin"]
    assert "your own account" in message(act(client, dash_app, "au-deactivate", me))
    assert "your own account" in message(act(client, dash_app, "au-role-apply", me, role="viewer"))
    assert row(owner_engine, me)["is_active"] and row(owner_engine, me)["role_name"] == "admin"
    # The database refuses it too, whatever code runs the SQL.
    with (
        pytest.raises(DBAPIError) as refused,
        database.transaction(PoolName.WRITE, users.actor("admin")) as conn,
    ):
        conn.execute(
            text("UPDATE users SET is_active = false WHERE id = CAST(:id AS uuid)"), {"id": me}
        )
    assert "your own account" in user_message(refused.value)


@pytest.fixture
def only_one_admin(owner_engine, users):
    """Make test-admin the only active user who can manage users, for the duration of a test."""
    with owner_engine.begin() as conn:
        others = conn.execute(
            text(
                """UPDATE users u SET is_active = false FROM user_roles r
                   WHERE r.id = u.role_id AND u.is_active
                     AND (r.permissions ? '*' OR r.permissions ? 'users:manage')
                     AND u.id NOT IN (CAST(:me AS uuid), CAST(:system AS uuid))
                   RETURNING u.id::text"""
            ),
            {"me": users.ids["admin"], "system": SYSTEM_USER_ID},
        ).scalars()
        others = list(others)
    yield users.ids["admin"]
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET is_active = true WHERE id::text = ANY(:ids)"), {"ids": others}
        )


def test_the_last_active_admin_cannot_be_deactivated_or_demoted(only_one_admin, owner_engine):
    other_admin = new_user("admin")[0]
    set_user_active(SYSTEM_ACTOR, other_admin, False)  # allowed: test-admin remains
    with pytest.raises(UserInputError, match="last active admin"):
        set_user_active(SYSTEM_ACTOR, only_one_admin, False)
    with pytest.raises(UserInputError, match="last active admin"):
        set_user_role(SYSTEM_ACTOR, only_one_admin, "viewer")
    # Hand-written SQL is refused by the database as well.
    for sql in (
        "UPDATE users SET is_active = false WHERE id = CAST(:id AS uuid)",
        "UPDATE users SET role_id = (SELECT id FROM user_roles WHERE role_name = 'viewer')"
        " WHERE id = CAST(:id AS uuid)",
        "UPDATE user_roles SET permissions = '[]' WHERE role_name = 'admin'",
    ):
        with (
            pytest.raises(DBAPIError, match="last active admin|no active user who can manage"),
            owner_engine.begin() as conn,
        ):
            conn.execute(text(sql), {"id": only_one_admin})
    assert row(owner_engine, only_one_admin)["is_active"]
    unlock_user(SYSTEM_ACTOR, only_one_admin)  # other changes to the last admin are fine


def selection(client, app, selected_row: dict, changed: int = 0) -> tuple[str, str | None]:
    """The "Selected user" line and the role dropdown's value, as the page refreshes them."""
    values = callback_values(
        call_callback(client, app, "au-selected.children", [[selected_row], changed])
    )
    return values["au-selected"]["children"], values["au-role-select"]["value"]


def test_the_selection_shows_what_the_database_holds_after_each_action(dash_app, client_as):
    client = client_as("admin")
    user_id, name = new_user("viewer")
    # The grid's row as it was when selected: it keeps saying viewer.
    selected = {"id": user_id, "username": name, "email": "stale", "role_name": "viewer"}
    assert selection(client, dash_app, selected) == (
        f"{name} · {name}@example.com · viewer",
        "viewer",
    )
    done = callback_values(act(client, dash_app, "au-role-apply", user_id, role="on_call"))
    assert "message-success" in str(done["au-action-message"]["children"])
    assert done["au-changed"]["data"] == 1
    line, role = selection(client, dash_app, selected, changed=1)
    assert (line, role) == (f"{name} · {name}@example.com · on_call", "on_call")
    act(client, dash_app, "au-deactivate", user_id)
    assert selection(client, dash_app, selected, changed=2)[0].endswith("on_call · inactive")
    for bad in ({"id": "'; DROP TABLE users; --"}, {"id": 5}, {"username": name}):
        assert selection(client, dash_app, bad) == ("Select a user in the table.", None)
    refused = call_callback(client_as("on_call"), dash_app, "au-selected.children", [[selected], 0])
    assert refused.status_code == 403


def test_the_create_form_is_emptied_after_a_create_and_kept_after_a_refusal(dash_app, client_as):
    client = client_as("admin")
    name = f"form-{uuid.uuid4().hex[:8]}"
    created = callback_values(create_form(client, dash_app, name, f"{name}@example.com", "on_call"))
    assert "message-success" in str(created["au-create-message"]["children"])
    form = {k: created[k]["value"] for k in created if k.startswith("au-new-")}
    assert form == {
        "au-new-username": "",
        "au-new-email": "",
        "au-new-role": "viewer",
        "au-new-password": "",
    }
    refused = callback_values(create_form(client, dash_app, name, f"{name}@example.com"))
    assert "already exists" in str(refused["au-create-message"]["children"])
    assert "message-error" in str(refused["au-create-message"]["children"])
    # The typed values stay for correcting; only the password is wiped.
    assert {k for k in refused if k.startswith("au-new-")} == {"au-new-password"}
    assert refused["au-new-password"]["value"] == ""
