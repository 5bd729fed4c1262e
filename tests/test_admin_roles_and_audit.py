"""/admin/roles and /admin/audit through their callbacks, checked against independent SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskmaster_dash.data.audit import AuditFilter, diff_text
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.roles import create_role
from taskmaster_dash.data.users import UserInputError, create_user
from tests.support.auth import ROLE_PASSWORD
from tests.support.callbacks import call_callback, callback_values
from tests.support.grid import grid_page

ROLE_BUTTONS = ["ar-create", "ar-save", "ar-deactivate", "ar-activate"]


def role_action(client, app, button, selected=None, name=None, description=None, perms=None):
    resp = call_callback(
        client,
        app,
        "ar-message.children",
        [int(b == button) for b in ROLE_BUTTONS],
        [selected, name, description, perms, 0],
        changed=f"{button}.n_clicks",
    )
    shown = callback_values(resp)["ar-message"]["children"]
    return shown["props"]["children"]


def role_row(owner_engine, name: str):
    with owner_engine.connect() as conn:
        return conn.execute(
            text("SELECT permissions, is_active FROM user_roles WHERE role_name = :n"), {"n": name}
        ).one_or_none()


def fresh_name() -> str:
    return "r_" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def test_an_admin_creates_a_role_and_edits_its_permissions(dash_app, client_as, owner_engine):
    client = client_as("admin")
    name = fresh_name()
    said = role_action(
        client,
        dash_app,
        "ar-create",
        name=name,
        description="Auditors",
        perms=["audit:read", "tasks:read"],
    )
    assert said == f"Created the role {name}."
    assert role_row(owner_engine, name) == (["tasks:read", "audit:read"], True)
    said = role_action(client, dash_app, "ar-save", selected=name, perms=["errors:read"])
    assert said == f"Saved the permissions of {name}."
    assert role_row(owner_engine, name) == (["errors:read"], True)
    listed = callback_values(call_callback(client, dash_app, "ar-table.children", [1]))
    assert name in str(listed["ar-table"]["children"])
    assert name in listed["ar-role-select"]["options"]


@pytest.mark.parametrize(
    ("name", "perms", "says"),
    [
        ("Bad-Name", [], "lower-case letters and underscores"),
        ("x" * 5000, [], "lower-case letters and underscores"),
        ("evil'; DROP TABLE user_roles;--", [], "lower-case letters and underscores"),
        ("viewer", [], "already exists"),
        ("fine_role", ["tasks:read", "root:everything"], "Unknown permission: root:everything"),
        ("fine_role", "tasks:read", "Permissions must be a list."),
    ],
)
def test_role_forms_refuse_bad_input(dash_app, client_as, owner_engine, name, perms, says):
    with owner_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM user_roles")).scalar()
    said = role_action(client_as("admin"), dash_app, "ar-create", name=name, perms=perms)
    assert says in said
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_roles")).scalar() == before


def test_unknown_roles_and_huge_descriptions_are_refused(dash_app, client_as):
    client = client_as("admin")
    assert role_action(client, dash_app, "ar-save", selected="no_such_role", perms=[]) == (
        "There is no such role."
    )
    assert "at most 500" in role_action(
        client, dash_app, "ar-save", selected="viewer", description="d" * 10_000, perms=[]
    )


def test_a_role_can_be_deactivated_only_when_no_active_user_holds_it(
    dash_app, client_as, owner_engine
):
    client = client_as("admin")
    name = fresh_name()
    create_role(SYSTEM_ACTOR, name, None, ["tasks:read"])
    holder = f"h-{uuid.uuid4().hex[:8]}"
    holder_id = create_user(SYSTEM_ACTOR, holder, f"{holder}@example.com", name, ROLE_PASSWORD)
    said = role_action(client, dash_app, "ar-deactivate", selected=name)
    assert "held by 1 active user" in said
    assert role_row(owner_engine, name)[1] is True
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET is_active = false WHERE id = CAST(:id AS uuid)"),
            {"id": holder_id},
        )
    assert (
        role_action(client, dash_app, "ar-deactivate", selected=name) == f"{name} is now inactive."
    )
    assert role_row(owner_engine, name)[1] is False


@pytest.mark.parametrize("role", ["admin", "developer", "viewer", "api_client"])
def test_the_spec_roles_cannot_be_deleted_deactivated_or_renamed(
    dash_app, client_as, owner_engine, role
):
    assert "cannot be deactivated" in role_action(
        client_as("admin"), dash_app, "ar-deactivate", selected=role
    )
    for sql in (
        "DELETE FROM user_roles WHERE role_name = :r",
        "UPDATE user_roles SET role_name = 'renamed' WHERE role_name = :r",
        "UPDATE user_roles SET is_active = false WHERE role_name = :r",
    ):
        with pytest.raises(DBAPIError, match="built-in role"), owner_engine.begin() as conn:
            conn.execute(text(sql), {"r": role})
    assert role_row(owner_engine, role)[1] is True


# --- Audit log ------------------------------------------------------------------------------------


def audit_rows(client, app, filters=None, start=0, end=100):
    values = grid_page(client, app, "aa-grid", {"aa-filters": filters or {}}, start, end)
    return values["aa-grid"]["getRowsResponse"], values["aa-message"]["children"]


def test_the_audit_log_shows_who_changed_what_newest_first(dash_app, client_as):
    admin = client_as("admin")
    name = f"audited-{uuid.uuid4().hex[:8]}"
    call_callback(
        admin,
        dash_app,
        "au-create-message.children",
        [1],
        [name, f"{name}@example.com", "viewer", ROLE_PASSWORD, 0],
    )
    page, message = audit_rows(admin, dash_app, {"username": "test-admin", "table": "users"})
    assert message is None
    newest = page["rowData"][0]
    assert (newest["username"], newest["entity_type"], newest["action"]) == (
        "test-admin",
        "users",
        "create",
    )
    assert f"username: {name}" in newest["changes"]
    assert "password_hash: [redacted" in newest["changes"]
    times = [r["timestamp"] for r in page["rowData"]]
    assert times == sorted(times, reverse=True)


def test_audit_filters_by_operation_and_date_and_pages_on_the_server(
    dash_app, client_as, owner_engine
):
    admin = client_as("admin")
    with owner_engine.connect() as conn:
        total = conn.execute(
            # The page leaves out the counting of sign-in attempts (login_attempts alone).
            text(
                "SELECT count(*) FROM audit_logs WHERE action = 'update' AND NOT ("
                "entity_type = 'users' AND username = 'system' AND new_values - "
                "'login_attempts' - 'updated_at' = old_values - 'login_attempts' - 'updated_at')"
            )
        ).scalar()
    page, _ = audit_rows(admin, dash_app, {"action": "update"}, 0, 2)
    assert page["rowCount"] == max(total, 1) and len(page["rowData"]) == min(total, 2)
    assert {r["action"] for r in page["rowData"]} <= {"update"}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    future, _ = audit_rows(admin, dash_app, {"since": tomorrow})
    assert future == {"rowData": [], "rowCount": 1}


@pytest.mark.parametrize(
    ("filters", "says"),
    [
        ({"action": "drop"}, "operation filter is not valid"),
        ({"since": "yesterday"}, "from date is not a date"),
        ({"since": "2026-02-02", "until": "2026-01-01"}, "after the to date"),
        ({"username": "u" * 5000}, "user filter is not valid"),
        ({"table": ["users"]}, "table filter is not valid"),
    ],
)
def test_bad_audit_filters_get_a_message(dash_app, client_as, filters, says):
    page, message = audit_rows(client_as("admin"), dash_app, filters)
    assert page == {"rowData": [], "rowCount": 1}
    assert says in message["props"]["children"]


def test_sql_looking_audit_filters_match_nothing(dash_app, client_as):
    page, message = audit_rows(client_as("admin"), dash_app, {"username": "' OR '1'='1"})
    assert message is None and page == {"rowData": [], "rowCount": 1}


def test_only_audit_readers_get_the_audit_log(dash_app, client_as):
    for role in ("viewer", "developer", "on_call", "api_client"):
        resp = call_callback(
            client_as(role), dash_app, "aa-grid.getRowsResponse", [{"startRow": 0}], [{}]
        )
        assert resp.status_code == 403


def test_the_diff_shows_only_the_keys_that_changed():
    old = {"id": 1, "status": "pending", "priority": 3, "updated_at": "a", "tags": []}
    new = {"id": 1, "status": "done", "priority": 3, "updated_at": "b", "tags": None}
    assert diff_text(old, new) == "status: pending → done"
    assert diff_text(None, {"title": "x", "notes": None}) == "title: x"
    assert diff_text({"title": "x"}, None) == "title: x"
    assert len(diff_text({"t": "a" * 5000}, {"t": "b"})) < 200


def test_audit_filter_parsing():
    parsed = AuditFilter.parse("bob", "users", "create", "2026-01-01", "2026-01-02")
    where, params = parsed.sql()
    assert ":username" in where and "bob" not in where
    assert params["until"] - params["since"] == timedelta(days=2)
    with pytest.raises(UserInputError):
        AuditFilter.parse(action="truncate")


def test_past_the_count_cap_the_total_is_unknown_until_the_last_block(database, users, monkeypatch):
    import taskmaster_dash.data.audit as audit_module

    for _ in range(3):
        create_role(SYSTEM_ACTOR, fresh_name(), None, [])
    chosen = AuditFilter(username="system", table="user_roles", action="create")
    _, exact = audit_module.audit_page(users.actor("admin"), chosen, 0, 500)
    assert exact >= 3
    monkeypatch.setattr(audit_module, "COUNT_CAP", 2)
    rows, unknown = audit_module.audit_page(users.actor("admin"), chosen, 0, 1)
    assert len(rows) == 1 and unknown is None
    rows, end = audit_module.audit_page(users.actor("admin"), chosen, exact - 1, 10)
    assert len(rows) == 1 and end == exact


def test_the_audit_log_names_roles_users_and_tasks(dash_app, client_as, users, owner_engine):
    from taskmaster_dash.data import alerts as store

    admin = client_as("admin")
    name = f"renamed-{uuid.uuid4().hex[:8]}"
    user_id = create_user(SYSTEM_ACTOR, name, f"{name}@example.com", "viewer", ROLE_PASSWORD)
    call_callback(
        admin,
        dash_app,
        "au-action-message.children",
        state={
            "au-grid": [{"id": user_id, "username": name}],
            "au-role-select": "on_call",
            "au-key-days": 90,
            "au-changed": 0,
        },
        changed="au-role-apply.n_clicks",
    )
    page, _ = audit_rows(admin, dash_app, {"username": "test-admin", "table": "users"})
    changed = next(r for r in page["rowData"] if r["entity_id"] == user_id)
    assert changed["changes"] == "role: viewer → on_call"
    assert changed["entity"] == name  # the detail names the user, not their id

    store.acknowledge(users.actor("on_call"), "TaskBacklog", "seen")
    page, _ = audit_rows(admin, dash_app, {"table": "alert_acknowledgements"})
    assert "acknowledged_by: test-on-call" in page["rowData"][0]["changes"]

    title = f"parent {uuid.uuid4().hex[:6]}"
    with owner_engine.begin() as conn:
        parent = conn.execute(
            text("INSERT INTO tasks (title) VALUES (:t) RETURNING id::text"), {"t": title}
        ).scalar()
        conn.execute(
            text("INSERT INTO tasks (title, parent_task_id) VALUES ('child', CAST(:p AS uuid))"),
            {"p": parent},
        )
    page, _ = audit_rows(admin, dash_app, {"table": "tasks", "action": "create"})
    assert f"parent_task: {title}" in page["rowData"][0]["changes"]
    assert parent not in page["rowData"][0]["changes"]


def test_a_sign_in_is_the_users_own_event(dash_app, client_as):
    from tests.support.auth import signed_in_client

    name = f"signs-in-{uuid.uuid4().hex[:8]}"
    user_id = create_user(SYSTEM_ACTOR, name, f"{name}@example.com", "viewer", ROLE_PASSWORD)
    signed_in_client(dash_app, name, ROLE_PASSWORD)
    admin = client_as("admin")
    page, _ = audit_rows(admin, dash_app, {"username": name})
    assert [(r["username"], r["changes"], r["entity_id"]) for r in page["rowData"]] == [
        (name, "signed in", user_id)
    ]
    page, _ = audit_rows(admin, dash_app, {"username": "system", "table": "users"})
    assert all(r["entity_id"] != user_id or r["action"] == "create" for r in page["rowData"])
    updates, _ = audit_rows(admin, dash_app, {"table": "users", "action": "update"})
    assert not [r for r in updates["rowData"] if "last_login_at" in r["changes"]]
