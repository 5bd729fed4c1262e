"""`taskmaster-dash migrate` on a database built by the original TaskMaster: --plan changes
nothing, migrate keeps every row and every value, a second run is a no-op, refused rows stop it
before anything changes, and the result has our schema."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from taskmaster_dash.data.migrations import HISTORY_TABLE, apply_migrations
from taskmaster_dash.data.runtime import migrate
from tests.original_taskmaster import (
    EXPECTED_FAILURES,
    ORIGINAL_TABLES,
    build_original,
    fill_original,
)
from tests.test_cli import run_cli

# What an adopted database may keep that a fresh one of ours does not have: the original's
# extra indexes, its helper functions and a default the original services rely on.
KEPT_FROM_THE_ORIGINAL = {
    ("index", "idx_tasks_complexity_score"),
    ("index", "idx_task_contexts_created_at"),
    ("index", "idx_workflow_states_started_at"),
    ("index", "idx_validation_results_started_at"),
    ("index", "idx_validation_results_completed_at"),
    ("index", "idx_validation_results_retry_count"),
    ("index", "idx_user_roles_active"),
    ("index", "idx_users_active"),
    ("index", "idx_users_last_login"),
    ("index", "idx_users_api_key_expires"),
    ("function", "update_updated_at_column"),
    ("function", "set_user_context"),
    ("function", "create_app_user"),
    ("table", "schema_migrations"),
    ("index", "schema_migrations_pkey"),
    # The original's PostgreSQL roles keep their grants (its services may log in with them).
    ("role", "taskmaster_admin"),
    ("role", "taskmaster_developer"),
    ("role", "taskmaster_viewer"),
    ("role", "taskmaster_api_client"),
}


def catalog(conn) -> dict[str, set[tuple]]:
    """Everything the schema holds, as comparable rows (column order aside)."""
    queries = {
        "table": "SELECT relname, relkind::text, relrowsecurity FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v')",
        "column": "SELECT table_name, column_name, data_type, character_maximum_length, "
        "is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = 'public'",
        "constraint": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        "index": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "trigger": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) "
        "FROM pg_trigger WHERE NOT tgisinternal",
        "policy": "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies "
        "WHERE schemaname = 'public'",
        "function": "SELECT proname, pg_get_function_identity_arguments(oid), md5(prosrc) "
        "FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        "view": "SELECT viewname, md5(definition) FROM pg_views WHERE schemaname = 'public'",
        "grant": "SELECT table_name, grantee, privilege_type "
        "FROM information_schema.role_table_grants WHERE table_schema = 'public'",
    }
    return {
        kind: {tuple(r) for r in conn.execute(text(sql)).all()} for kind, sql in queries.items()
    }


def content_checksums(conn, columns: dict[str, list[str]], renamed=None) -> dict[str, str]:
    """md5 of every listed column's values, in a stable row order."""
    renamed = renamed or {}
    sums = {}
    for table, names in columns.items():
        order = "version" if table == "schema_migrations" else "id"
        for name in names:
            column = renamed.get((table, name), name)
            sums[f"{table}.{name}"] = conn.scalar(
                text(
                    f"SELECT md5(string_agg(COALESCE(\"{column}\"::text, '<null>'), '|' "
                    f"ORDER BY {order})) FROM {table}"
                )
            )
    return sums


def original_columns(conn) -> dict[str, list[str]]:
    rows = conn.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = ANY(:t) ORDER BY 1, ordinal_position"
        ),
        {"t": list(ORIGINAL_TABLES)},
    ).all()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


def team_rows(conn, table: str, names: list[str], ids: list) -> list[tuple]:
    listed = ", ".join(f'"{name}"::text' for name in names)
    sql = f"SELECT {listed} FROM {table} WHERE id = ANY(:ids) ORDER BY id"
    return [tuple(row) for row in conn.execute(text(sql), {"ids": ids})]


def counts(conn) -> dict[str, int]:
    return {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in ORIGINAL_TABLES}


@pytest.fixture
def original_db(pg_server):
    """A fresh original TaskMaster database, filled; yields its owner URL."""

    def make(relax: str = "check"):
        server = pg_server.create_database(f"orig_{uuid.uuid4().hex[:8]}")
        failed = build_original(server.owner_url)
        assert failed == EXPECTED_FAILURES
        fill_original(server.owner_url, relax=relax)
        return server

    return make


def test_plan_names_an_original_schema_and_changes_nothing(original_db):
    server = original_db()
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        before, rows_before = catalog(conn), counts(conn)
    result = run_cli(["migrate", "--plan"], server)
    assert result.returncode == 0, result.stderr
    assert "Found an original TaskMaster schema (its schema_migrations: 001, 002, 003)" in (
        result.stdout
    )
    assert "apply migrations/010_admin_guards.sql" in result.stdout
    assert "replace the original's CHECK constraints by ours" in result.stdout
    with engine.connect() as conn:
        assert catalog(conn) == before
        assert counts(conn) == rows_before
    engine.dispose()


@pytest.mark.parametrize("relax", ["check", "trigger"])
def test_migrate_keeps_every_row_and_value_and_a_second_run_changes_nothing(original_db, relax):
    server = original_db(relax)
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        columns = original_columns(conn)
        rows_before = counts(conn)
        sums_before = content_checksums(conn, columns)
        roles_before = dict(
            conn.execute(text("SELECT role_name, permissions FROM user_roles")).all()
        )
        foreign_history = conn.execute(text("SELECT * FROM schema_migrations ORDER BY 1")).all()
        team_ids = {
            t: list(conn.scalars(text(f"SELECT id FROM {t}"))) for t in ("users", "user_roles")
        }
        team_before = {t: team_rows(conn, t, columns[t], team_ids[t]) for t in team_ids}

    migrate(server.owner_url, server.app_url, adopt=True)

    with engine.connect() as conn:
        rows_after = counts(conn)
        # Ours adds the default roles that were missing and the system user; nothing else.
        added_roles = {"viewer", "api_client", "on_call"}
        assert rows_after["user_roles"] == rows_before["user_roles"] + len(added_roles)
        assert rows_after["users"] == rows_before["users"] + 1
        for table in set(ORIGINAL_TABLES) - {"user_roles", "users", "audit_logs"}:
            assert rows_after[table] == rows_before[table], table
        # Every original audit row stays; the only new ones record our migrations' own changes
        # to the roles they added (060 grants alerts:ack to on_call).
        kept_audit, new_audit = conn.execute(
            text(
                'SELECT count(*) FILTER (WHERE "timestamp" < h.at), '
                "array_agg(DISTINCT entity_type) "
                'FILTER (WHERE "timestamp" >= h.at) FROM audit_logs, '
                f"(SELECT min(applied_at) AS at FROM {HISTORY_TABLE}) h"
            )
        ).one()
        assert kept_audit == rows_before["audit_logs"]
        assert set(new_audit or []) <= {"user_roles"}
        kept = {
            table: names for table, names in columns.items() if table not in ("users", "user_roles")
        }
        sums_after = content_checksums(
            conn,
            kept,
            renamed={("audit_logs", "user_id"): "username"},
        )
        for key, value in sums_after.items():
            table = key.split(".")[0]
            if table == "audit_logs":  # the original rows, then ours
                continue
            assert value == sums_before[key], key
        # Original audit rows keep every value; user_id names are now in username.
        original_audit = conn.scalar(
            text(
                "SELECT md5(string_agg(COALESCE(username::text, '<null>'), '|' ORDER BY id)) "
                'FROM audit_logs WHERE "timestamp" < (SELECT min(applied_at) FROM '
                f"{HISTORY_TABLE})"
            )
        )
        assert original_audit == sums_before["audit_logs.user_id"]
        alice = conn.execute(
            text(
                "SELECT a.user_id = u.id FROM audit_logs a JOIN users u ON u.username = 'alice' "
                "WHERE a.username = 'alice' LIMIT 1"
            )
        ).scalar()
        assert alice is True
        # Users and roles the team had keep every value; ours are added beside them.
        for table in ("users", "user_roles"):
            assert team_rows(conn, table, columns[table], team_ids[table]) == team_before[table]
        roles_after = dict(
            conn.execute(text("SELECT role_name, permissions FROM user_roles")).all()
        )
        for name, permissions in roles_before.items():
            assert roles_after[name] == permissions, f"the team's {name} role was changed"
        assert added_roles <= set(roles_after)
        assert conn.execute(text("SELECT * FROM schema_migrations ORDER BY 1")).all() == (
            foreign_history
        )
        catalog_after = catalog(conn)

    assert apply_migrations(engine, adopt=True) == []
    with engine.connect() as conn:
        assert catalog(conn) == catalog_after
        assert counts(conn) == rows_after
    engine.dispose()


def test_an_adopted_database_has_the_schema_of_a_fresh_one(original_db, pg_server):
    server = original_db()
    migrate(server.owner_url, server.app_url, adopt=True)
    fresh = pg_server.create_database(f"fresh_{uuid.uuid4().hex[:8]}")
    migrate(fresh.owner_url, fresh.app_url)
    adopted_engine, fresh_engine = create_engine(server.owner_url), create_engine(fresh.owner_url)
    with adopted_engine.connect() as conn:
        adopted = catalog(conn)
    with fresh_engine.connect() as conn:
        ours = catalog(conn)
    adopted_engine.dispose()
    fresh_engine.dispose()
    kept_names = {name for _, name in KEPT_FROM_THE_ORIGINAL}
    for kind in ours:
        missing = {row for row in ours[kind] if row not in adopted[kind]}
        extra = {
            row
            for row in adopted[kind] - ours[kind]
            if row[0] not in kept_names and row[1] not in kept_names
        }
        if kind == "column":  # kept on purpose (see sql/adopt/original.sql)
            started = ("workflow_states", "started_at")
            missing = {r for r in missing if r[:2] != started}
            extra = {r for r in extra if r[:2] != started}
        assert missing == set(), f"{kind} missing after adoption: {sorted(missing)}"
        assert extra == set(), f"{kind} left over from the original: {sorted(extra)}"


def test_a_refused_row_stops_the_migration_before_anything_changes(original_db):
    server = original_db()
    engine = create_engine(server.owner_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE tasks DROP CONSTRAINT tasks_status_check"))
        conn.execute(
            text("UPDATE tasks SET status = 'blocked' WHERE title IN ('Task 1', 'Task 2')")
        )
        conn.execute(
            text("UPDATE users SET email = 'bob smith@example.com' WHERE username = 'bob'")
        )
    with engine.connect() as conn:
        before = catalog(conn)
    plan = run_cli(["migrate", "--plan"], server)
    assert plan.returncode == 0
    assert 'tasks: 2 rows break the rule "status is one of pending' in plan.stdout
    assert "users: 1 row break" in plan.stdout and "fix: UPDATE users SET email" in plan.stdout
    result = run_cli(["migrate"], server)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "tasks: 2 rows break the rule" in result.stderr
    with engine.connect() as conn:
        assert catalog(conn) == before
    engine.dispose()


# Each original view against the same figures written by hand over the tables.
VIEW_CHECKS = {
    "active_tasks": (
        "SELECT id, context_count, child_task_count, dependency_count FROM active_tasks",
        """SELECT t.id,
                  (SELECT count(*) FROM task_contexts c WHERE c.task_id = t.id),
                  (SELECT count(*) FROM task_dependencies d WHERE d.parent_task_id = t.id),
                  (SELECT count(*) FROM task_dependencies d WHERE d.child_task_id = t.id)
           FROM tasks t WHERE t.status = 'pending' OR t.status = 'in_progress'""",
    ),
    "task_summary": (
        "SELECT status, task_count, round(avg_complexity, 6), total_estimated_hours, "
        "total_actual_hours FROM task_summary",
        """SELECT s, (SELECT count(*) FROM tasks WHERE status = s),
                  (SELECT round(sum(complexity_score)::numeric / count(complexity_score), 6)
                   FROM tasks WHERE status = s),
                  (SELECT sum(estimated_hours) FROM tasks WHERE status = s),
                  (SELECT sum(actual_hours) FROM tasks WHERE status = s)
           FROM (SELECT DISTINCT status AS s FROM tasks) x""",
    ),
    "validation_summary": (
        "SELECT validation_type, validation_status, total_validations, retried_validations, "
        "last_validation FROM validation_summary",
        """SELECT validation_type, validation_status, count(*),
                  sum(CASE WHEN retry_count > 0 THEN 1 ELSE 0 END), max(completed_at)
           FROM validation_results WHERE completed_at IS NOT NULL GROUP BY 1, 2""",
    ),
    "error_summary": (
        "SELECT error_category, error_severity, resolution_status, error_count, "
        "total_occurrences, resolved_count FROM error_summary",
        """SELECT error_category, error_severity, resolution_status, count(*),
                  sum(occurrence_count),
                  sum(CASE WHEN resolution_status = 'resolved' THEN 1 ELSE 0 END)
           FROM error_logs GROUP BY 1, 2, 3""",
    ),
    "task_validation_status": (
        "SELECT task_id, total_validations, passed_validations, failed_validations, "
        "warning_validations FROM task_validation_status",
        """SELECT t.id, (SELECT count(*) FROM validation_results v WHERE v.task_id = t.id),
                  (SELECT count(*) FROM validation_results v
                   WHERE v.task_id = t.id AND v.validation_status = 'passed'),
                  (SELECT count(*) FROM validation_results v
                   WHERE v.task_id = t.id AND v.validation_status = 'failed'),
                  (SELECT count(*) FROM validation_results v
                   WHERE v.task_id = t.id AND v.validation_status = 'warning')
           FROM tasks t""",
    ),
    "recent_errors": (
        "SELECT id, task_title, validation_type FROM recent_errors",
        """SELECT e.id, (SELECT title FROM tasks WHERE id = e.task_id),
                  (SELECT validation_type FROM validation_results WHERE id = e.validation_result_id)
           FROM error_logs e ORDER BY e.last_occurred_at DESC, e.id LIMIT 100""",
    ),
    "recent_activity": (
        "SELECT entity_id, action, task_title, user_id FROM recent_activity",
        """SELECT a.entity_id, a.action, (SELECT title FROM tasks WHERE id = a.entity_id),
                  a.username
           FROM audit_logs a ORDER BY a."timestamp" DESC LIMIT 100""",
    ),
}


def test_the_original_views_answer_what_hand_written_sql_does(original_db):
    server = original_db()
    migrate(server.owner_url, server.app_url, adopt=True)
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        for view, (through_view, by_hand) in VIEW_CHECKS.items():
            got = sorted(map(tuple, conn.execute(text(through_view)).all()), key=repr)
            expected = sorted(map(tuple, conn.execute(text(by_hand)).all()), key=repr)
            assert got and got == expected, view
        invoker = dict(
            conn.execute(
                text(
                    "SELECT relname, 'security_invoker=true' = ANY(reloptions) FROM pg_class "
                    "WHERE relname = ANY(:v)"
                ),
                {"v": list(VIEW_CHECKS)},
            ).all()
        )
    engine.dispose()
    assert invoker == dict.fromkeys(VIEW_CHECKS, True)


def test_the_views_exist_on_a_fresh_database_and_follow_rls(database, users):
    from taskmaster_dash.data.db import PoolName

    def count(role: str, view: str) -> int:
        sql = f"SELECT count(*) AS n FROM {view}"
        return database.fetch_rows(PoolName.READ, users.actor(role), sql)[0]["n"]

    for view in VIEW_CHECKS:
        count("admin", view)  # each answers on a database we created ourselves
    # The users fixture's sign-ups are audited: the admin sees them; a viewer (no audit:read)
    # sees through the view only the audit rows RLS lets them read (errors' and alerts'
    # history, which other tests may have written), never a user's.
    assert count("admin", "recent_activity") > 0
    seen = database.fetch_rows(
        PoolName.READ, users.actor("viewer"), "SELECT DISTINCT entity_type FROM recent_activity"
    )
    allowed = {"error_logs", "alert_rule_overrides", "alert_acknowledgements", "alert_silences"}
    assert {row["entity_type"] for row in seen} <= allowed
    assert count("viewer", "recent_activity") == min(
        100, count("viewer", f"audit_logs WHERE entity_type IN {tuple(sorted(allowed))}")
    )


def test_starting_the_app_never_adopts_an_original_database_by_itself(original_db):
    from taskmaster_dash.data.migrations import MigrationError

    server = original_db()
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        before = catalog(conn)
    with pytest.raises(MigrationError, match="migrate --plan"):
        migrate(server.owner_url, server.app_url)  # what serve and demo call on start
    with engine.connect() as conn:
        assert catalog(conn) == before
    engine.dispose()


def test_a_service_holding_a_table_makes_the_adoption_give_up_cleanly(original_db, monkeypatch):
    import taskmaster_dash.data.migrations as migrations

    monkeypatch.setattr(migrations, "ADOPTION_LOCK_TIMEOUT", "300ms")
    server = original_db()
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        before = catalog(conn)
    service = engine.connect()
    service.execute(text("SELECT count(*) FROM tasks"))  # an open transaction reading tasks
    try:
        with pytest.raises(migrations.MigrationError, match="lock timeout") as raised:
            migrate(server.owner_url, server.app_url, adopt=True)
        assert "\n" not in str(raised.value) and "statement at line" in str(raised.value)
    finally:
        service.rollback()
        service.close()
    with engine.connect() as conn:
        assert catalog(conn) == before
    engine.dispose()


def test_an_adopted_database_keeps_its_headline_counts_by_trigger(original_db):
    """The adoption runs 095 like every migration: the counts start from the original's rows
    and follow the original's services' writes from then on."""
    from tests.test_headline_counts import assert_counts_match

    server = original_db()
    migrate(server.owner_url, server.app_url, adopt=True)
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT sum(n) FROM headline_task_counts WHERE level = 1")) > 0
        assert conn.scalar(text("SELECT sum(n) FROM headline_error_counts")) > 0
    assert_counts_match(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET status = 'completed' WHERE status = 'pending'"))
        conn.execute(text("DELETE FROM error_logs WHERE resolution_status = 'resolved'"))
        conn.execute(text("INSERT INTO tasks (title, assigned_to) VALUES ('after', 'alice')"))
    assert_counts_match(engine)
    engine.dispose()
