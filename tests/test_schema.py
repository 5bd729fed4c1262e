"""The schema in PostgreSQL matches the spec, migrations are idempotent, constraints hold."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from taskmaster_dash.data.migrations import (
    HISTORY_TABLE,
    apply_migrations,
    available_migrations,
    repeatable_files,
)

SPEC_TABLES = {
    "tasks": {
        "id",
        "title",
        "description",
        "type",
        "status",
        "priority",
        "complexity_score",
        "affected_files",
        "requirements",
        "acceptance_criteria",
        "parent_task_id",
        "assigned_to",
        "tags",
        "estimated_hours",
        "actual_hours",
        "created_at",
        "updated_at",
        "completed_at",
        "metadata",
    },
    "validation_results": {
        "id",
        "task_id",
        "validation_type",
        "validation_status",
        "validation_score",
        "validation_data",
        "claude_code_version",
        "validation_environment",
        "started_at",
        "completed_at",
        "execution_time_ms",
        "error_message",
        "error_details",
        "retry_count",
        "metadata",
        "created_at",
        "updated_at",
    },
    "error_logs": {
        "id",
        "task_id",
        "validation_result_id",
        "workflow_state_id",
        "error_code",
        "error_category",
        "error_severity",
        "error_message",
        "error_details",
        "stack_trace",
        "context_data",
        "resolution_status",
        "resolution_notes",
        "resolved_at",
        "resolved_by",
        "occurrence_count",
        "first_occurred_at",
        "last_occurred_at",
        "user_id",
        "session_id",
        "ip_address",
        "user_agent",
        "environment",
        "service_name",
        "service_version",
        "metadata",
        "created_at",
        "updated_at",
    },
    "user_roles": {
        "id",
        "role_name",
        "role_description",
        "permissions",
        "is_active",
        "created_at",
        "updated_at",
    },
    "users": {
        "id",
        "username",
        "email",
        "password_hash",
        "role_id",
        "is_active",
        "last_login_at",
        "login_attempts",
        "locked_until",
        "api_key_hash",
        "api_key_expires_at",
        "metadata",
        "created_at",
        "updated_at",
    },
    "task_contexts": {"id", "task_id", "context_type", "context_data"},
    "task_dependencies": {"id", "parent_task_id", "child_task_id", "dependency_type"},
    "workflow_states": {
        "id",
        "workflow_id",
        "task_id",
        "step",
        "status",
        "result",
        "started_at",
        "completed_at",
        "error_message",
        "retry_count",
    },
    "audit_logs": {
        "id",
        "entity_type",
        "entity_id",
        "action",
        "old_values",
        "new_values",
        "user_id",
        "session_id",
        "ip_address",
        "user_agent",
        "timestamp",
    },
}


def columns(conn, table: str) -> set[str]:
    return set(
        conn.scalars(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
            {"t": table},
        )
    )


def test_every_spec_table_has_the_spec_columns(owner_engine):
    with owner_engine.connect() as conn:
        for table, expected in SPEC_TABLES.items():
            assert expected <= columns(conn, table), table


def test_every_migration_is_recorded_and_a_second_run_applies_nothing(owner_engine):
    with owner_engine.connect() as conn:
        recorded = list(conn.scalars(text(f"SELECT version FROM {HISTORY_TABLE} ORDER BY 1")))
        foreign_history = conn.scalar(text("SELECT to_regclass('schema_migrations')"))
    files = available_migrations() + repeatable_files()
    assert recorded == sorted(m.version for m in files)
    assert foreign_history is None
    assert apply_migrations(owner_engine) == []


def test_rls_is_enabled_on_every_table(owner_engine):
    with owner_engine.connect() as conn:
        without_rls = list(
            conn.scalars(
                text(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                    " AND relkind = 'r' AND NOT relrowsecurity"
                )
            )
        )
    assert without_rls == []


def test_default_roles_have_exactly_the_spec_permissions(owner_engine):
    with owner_engine.connect() as conn:
        roles = dict(conn.execute(text("SELECT role_name, permissions FROM user_roles")).all())
    assert roles["admin"] == ["*"]
    assert roles["developer"] == [
        "tasks:read",
        "tasks:write",
        "validations:read",
        "validations:write",
        "errors:read",
    ]
    assert roles["viewer"] == ["tasks:read", "validations:read", "errors:read"]
    assert roles["api_client"] == ["tasks:read", "tasks:write", "validations:write"]
    # on_call also acknowledges and silences alerts (migration 060)
    assert roles["on_call"] == [
        "errors:read",
        "errors:write",
        "tasks:read",
        "validations:read",
        "alerts:ack",
    ]


def test_every_foreign_key_has_an_index(owner_engine):
    with owner_engine.connect() as conn:
        unindexed = conn.execute(
            text(
                """SELECT c.conrelid::regclass::text, a.attname
                   FROM pg_constraint c
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                   WHERE c.contype = 'f' AND NOT EXISTS (
                       SELECT 1 FROM pg_index i
                       WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])"""
            )
        ).all()
    assert unindexed == []


BAD_ROWS = [
    "INSERT INTO tasks (title, status) VALUES ('x', 'done')",
    "INSERT INTO tasks (title, priority) VALUES ('x', 11)",
    "INSERT INTO tasks (title, priority) VALUES ('x', -1)",
    "INSERT INTO tasks (title, complexity_score) VALUES ('x', 0)",
    "INSERT INTO tasks (title, estimated_hours) VALUES ('x', -2)",
    "INSERT INTO tasks (title) VALUES (NULL)",
    "INSERT INTO validation_results (task_id, validation_type, validation_status)"
    " SELECT id, 'vibes', 'passed' FROM tasks LIMIT 1",
    "INSERT INTO validation_results (task_id, validation_type, validation_status,"
    " validation_score) SELECT id, 'syntax', 'passed', 101 FROM tasks LIMIT 1",
    "INSERT INTO error_logs (error_code, error_category, error_severity, error_message)"
    " VALUES ('E', 'database', 'catastrophic', 'm')",
    "INSERT INTO error_logs (error_code, error_category, error_severity, error_message,"
    " resolution_status) VALUES ('E', 'database', 'low', 'm', 'ignored')",
    "INSERT INTO error_logs (error_code, error_category, error_severity, error_message,"
    " occurrence_count) VALUES ('E', 'database', 'low', 'm', 0)",
    "INSERT INTO user_roles (role_name) VALUES ('Bad Name')",
    "INSERT INTO users (username, email, role_id) SELECT 'someone', 'not-an-email', id"
    " FROM user_roles LIMIT 1",
]


@pytest.mark.parametrize("statement", BAD_ROWS)
def test_constraints_reject_values_outside_the_spec(owner_engine, clean_data, statement):
    with owner_engine.begin() as conn:
        conn.execute(text("INSERT INTO tasks (title) VALUES ('anchor')"))
    with pytest.raises(IntegrityError), owner_engine.begin() as conn:
        conn.execute(text(statement))


def test_uuid_generate_v4_works_without_uuid_ossp(owner_engine):
    with owner_engine.connect() as conn:
        first, second = conn.execute(text("SELECT uuid_generate_v4(), uuid_generate_v4()")).one()
    assert first != second


def test_updated_at_moves_on_update(owner_engine, clean_data):
    with owner_engine.begin() as conn:
        task_id, before = conn.execute(
            text("INSERT INTO tasks (title) VALUES ('t') RETURNING id, updated_at")
        ).one()
    with owner_engine.begin() as conn:
        after = conn.scalar(
            text("UPDATE tasks SET priority = 3 WHERE id = :id RETURNING updated_at"),
            {"id": task_id},
        )
    assert after > before


def test_active_tasks_counts_children_and_dependencies_without_multiplying(
    owner_engine, clean_data
):
    with owner_engine.begin() as conn:
        parent = conn.scalar(text("INSERT INTO tasks (title) VALUES ('parent') RETURNING id"))
        kids = [
            conn.scalar(text("INSERT INTO tasks (title) VALUES (:t) RETURNING id"), {"t": f"k{i}"})
            for i in range(3)
        ]
        for kid in kids:
            conn.execute(
                text(
                    "INSERT INTO task_dependencies (parent_task_id, child_task_id) VALUES (:p, :c)"
                ),
                {"p": parent, "c": kid},
            )
        for _i in range(2):
            conn.execute(
                text(
                    "INSERT INTO task_contexts (task_id, context_type) VALUES (:t, 'requirement')"
                ),
                {"t": parent},
            )
        conn.execute(text("UPDATE tasks SET status = 'completed' WHERE id = :id"), {"id": kids[0]})
        row = conn.execute(
            text(
                "SELECT context_count, child_task_count, dependency_count FROM active_tasks"
                " WHERE id = :id"
            ),
            {"id": parent},
        ).one()
        open_ids = set(conn.scalars(text("SELECT id FROM active_tasks")))
    assert tuple(row) == (2, 3, 0)
    assert kids[0] not in open_ids and parent in open_ids
