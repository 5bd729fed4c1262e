"""The app's database role really is subject to RLS, and every change is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName


def insert_error(owner_engine, message: str = "boom") -> str:
    with owner_engine.begin() as conn:
        return str(
            conn.scalar(
                text(
                    "INSERT INTO error_logs (error_code, error_category, error_severity,"
                    " error_message) VALUES ('E1', 'database', 'high', :m) RETURNING id"
                ),
                {"m": message},
            )
        )


def test_the_app_role_is_neither_superuser_nor_owner(database, users):
    row = database.fetch_rows(
        PoolName.READ,
        users.actor("admin"),
        """SELECT r.rolsuper, r.rolbypassrls,
                  (SELECT tableowner FROM pg_tables WHERE tablename = 'tasks') = current_user
                      AS owns_tasks
           FROM pg_roles r WHERE r.rolname = current_user""",
    )[0]
    assert row == {"rolsuper": False, "rolbypassrls": False, "owns_tasks": False}


def test_a_viewer_cannot_update_error_logs_with_hand_written_sql(
    database, users, owner_engine, clean_data
):
    error_id = insert_error(owner_engine)
    with database.transaction(PoolName.WRITE, users.actor("viewer")) as conn:
        visible = conn.scalar(text("SELECT count(*) FROM error_logs"))
        changed = conn.execute(
            text("UPDATE error_logs SET resolution_status = 'resolved' WHERE id = :id"),
            {"id": error_id},
        ).rowcount
    with owner_engine.connect() as conn:
        status = conn.scalar(
            text("SELECT resolution_status FROM error_logs WHERE id = :id"), {"id": error_id}
        )
    assert visible == 1  # the viewer may read it...
    assert changed == 0  # ...but the update touched nothing
    assert status == "unresolved"


def test_on_call_can_resolve_and_the_audit_log_says_who(database, users, owner_engine, clean_data):
    error_id = insert_error(owner_engine)
    actor = Actor(users.ids["on_call"], "test-on-call", session_id="s1", ip_address="127.0.0.1")
    with database.transaction(PoolName.WRITE, actor) as conn:
        changed = conn.execute(
            text("UPDATE error_logs SET resolution_status = 'resolved' WHERE id = :id"),
            {"id": error_id},
        ).rowcount
    assert changed == 1
    with owner_engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT action, username, old_values->>'resolution_status',"
                " new_values->>'resolution_status', host(ip_address) FROM audit_logs"
                " WHERE entity_id = :id AND action <> 'create'"
            ),
            {"id": error_id},
        ).one()
    assert tuple(audit) == ("status_change", "test-on-call", "unresolved", "resolved", "127.0.0.1")


def test_without_a_current_user_nothing_is_visible(database, owner_engine, clean_data):
    insert_error(owner_engine)
    nobody = Actor("00000000-0000-0000-0000-00000000dead", "nobody")
    rows = database.fetch_rows(PoolName.READ, nobody, "SELECT count(*) AS n FROM error_logs")
    assert rows == [{"n": 0}]


def test_developers_see_only_their_own_or_unassigned_tasks(
    database, users, owner_engine, clean_data
):
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (title, assigned_to) VALUES ('mine', 'test-developer'),"
                " ('free', NULL), ('theirs', 'someone-else')"
            )
        )
    seen_by_dev = database.fetch_df(
        PoolName.READ, users.actor("developer"), "SELECT title FROM tasks ORDER BY title"
    )
    seen_by_viewer = database.fetch_df(
        PoolName.READ, users.actor("viewer"), "SELECT title FROM tasks ORDER BY title"
    )
    assert list(seen_by_dev["title"]) == ["free", "mine"]
    assert list(seen_by_viewer["title"]) == ["free", "mine", "theirs"]


def test_a_user_cannot_promote_themself(database, users):
    with (
        pytest.raises(DBAPIError),
        database.transaction(PoolName.WRITE, users.actor("viewer")) as conn,
    ):
        conn.execute(
            text(
                "UPDATE users SET role_id = (SELECT id FROM user_roles WHERE role_name = 'admin')"
                " WHERE id = :id"
            ),
            {"id": users.ids["viewer"]},
        )


def test_a_viewer_reads_no_users_but_their_own_row(database, users):
    rows = database.fetch_rows(PoolName.READ, users.actor("viewer"), "SELECT username FROM users")
    assert rows == [{"username": "test-viewer"}]


@pytest.mark.parametrize("pool", [PoolName.READ, PoolName.ANALYTICS])
def test_read_pool_transactions_are_read_only(database, pool):
    """Set in the same round trip as the actor (data/db.py set_actor), and said so by
    PostgreSQL itself, not by a privilege the pool's role lacks."""
    assert database.specs[pool].read_only
    with database.transaction(pool, SYSTEM_ACTOR) as conn:
        assert conn.scalar(text("SHOW transaction_read_only")) == "on"
    refused = pytest.raises(DBAPIError, match="read-only transaction")
    with refused, database.transaction(pool, SYSTEM_ACTOR) as conn:
        conn.execute(text("CREATE TEMP TABLE nope (x int)"))
    with database.transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        assert conn.scalar(text("SHOW transaction_read_only")) == "off"


def test_password_hashes_never_reach_the_audit_log(database, users, owner_engine):
    with owner_engine.connect() as conn:
        leaked = conn.scalar(
            text(
                "SELECT count(*) FROM audit_logs WHERE new_values->>'password_hash' LIKE '$argon2%'"
                " OR old_values->>'password_hash' LIKE '$argon2%'"
            )
        )
    assert leaked == 0
