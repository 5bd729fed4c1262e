"""Adopting an original TaskMaster database in place, keeping every row.

First every rule our schema adds is checked against the rows already there; one refused row
stops everything before anything changes, with the table, the rule, the count and a fix. Then, in
one transaction: sql/adopt/original.sql reshapes the original's objects, the original's CHECK
constraints give way to ours (RULES below), 001's indexes are added, 002 and every later
migration run as on any database of ours, and the repeatable files recreate the views.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, text

from taskmaster_dash.data import vocabulary as v
from taskmaster_dash.data.migrations import (
    HISTORY_TABLE,
    SQL_DIR,
    Plan,
    SqlFile,
    Step,
    available_migrations,
    create_history,
    pending_steps,
    run_statements,
    split_statements,
)

ADOPT_FILE = SqlFile(
    "adopt", "reshape the original TaskMaster schema", SQL_DIR / "adopt" / "original.sql"
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


@dataclass(frozen=True)
class Rule:
    table: str
    accepted: str  # SQL true for rows we accept; NULL counts as accepted, as in a CHECK
    says: str
    fix: str
    constraint: str | None = None  # the CHECK of ours this rule becomes, if it is one


RULES: tuple[Rule, ...] = (
    Rule(
        "tasks",
        _one_of("status", v.TASK_STATUSES),
        "status is one of " + ", ".join(v.TASK_STATUSES),
        "UPDATE tasks SET status = 'cancelled' WHERE status NOT IN (...)",
        "tasks_status_check",
    ),
    Rule(
        "tasks",
        "priority BETWEEN 0 AND 10",
        "priority is between 0 and 10",
        "UPDATE tasks SET priority = LEAST(GREATEST(priority, 0), 10)",
        "tasks_priority_check",
    ),
    Rule(
        "tasks",
        "complexity_score BETWEEN 1 AND 10",
        "complexity_score is between 1 and 10",
        "UPDATE tasks SET complexity_score = LEAST(GREATEST(complexity_score, 1), 10)",
        "tasks_complexity_score_check",
    ),
    Rule(
        "tasks",
        "estimated_hours >= 0",
        "estimated_hours is not negative",
        "UPDATE tasks SET estimated_hours = NULL WHERE estimated_hours < 0",
        "tasks_estimated_hours_check",
    ),
    Rule(
        "tasks",
        "actual_hours >= 0",
        "actual_hours is not negative",
        "UPDATE tasks SET actual_hours = NULL WHERE actual_hours < 0",
        "tasks_actual_hours_check",
    ),
    Rule(
        "tasks",
        "parent_task_id IS NULL OR parent_task_id <> id",
        "a task is not its own parent",
        "UPDATE tasks SET parent_task_id = NULL WHERE parent_task_id = id",
        "tasks_check",
    ),
    Rule(
        "task_contexts",
        _one_of("context_type", v.CONTEXT_TYPES),
        "context_type is one the spec lists",
        "UPDATE task_contexts SET context_type = ... (a listed type) or DELETE those rows",
        "task_contexts_context_type_check",
    ),
    Rule(
        "task_dependencies",
        _one_of("dependency_type", v.DEPENDENCY_TYPES),
        "dependency_type is blocks, depends_on or related",
        "UPDATE task_dependencies SET dependency_type = 'related' WHERE ...",
        "task_dependencies_dependency_type_check",
    ),
    Rule(
        "task_dependencies",
        "parent_task_id <> child_task_id",
        "a task does not depend on itself",
        "DELETE FROM task_dependencies WHERE parent_task_id = child_task_id",
        "task_dependencies_check",
    ),
    Rule(
        "workflow_states",
        _one_of("status", v.STEP_STATUSES),
        "status is pending, running, completed, failed or skipped",
        "UPDATE workflow_states SET status = 'failed' WHERE ...",
        "workflow_states_status_check",
    ),
    Rule(
        "workflow_states",
        "retry_count >= 0",
        "retry_count is not negative",
        "UPDATE workflow_states SET retry_count = 0 WHERE retry_count < 0",
        "workflow_states_retry_count_check",
    ),
    Rule(
        "validation_results",
        _one_of("validation_type", v.VALIDATION_TYPES),
        "validation_type is one the spec lists",
        "UPDATE validation_results SET validation_type = ... (a listed type)",
        "validation_results_validation_type_check",
    ),
    Rule(
        "validation_results",
        _one_of("validation_status", v.VALIDATION_STATUSES),
        "validation_status is one the spec lists",
        "UPDATE validation_results SET validation_status = 'error' WHERE ...",
        "validation_results_validation_status_check",
    ),
    Rule(
        "validation_results",
        "validation_score BETWEEN 0 AND 100",
        "validation_score is between 0 and 100",
        "UPDATE validation_results SET validation_score = NULL WHERE validation_score < 0 OR > 100",
        "validation_results_validation_score_check",
    ),
    Rule(
        "validation_results",
        "execution_time_ms >= 0",
        "execution_time_ms is not negative",
        "UPDATE validation_results SET execution_time_ms = NULL WHERE execution_time_ms < 0",
        "validation_results_execution_time_ms_check",
    ),
    Rule(
        "validation_results",
        "retry_count BETWEEN 0 AND 10",
        "retry_count is between 0 and 10",
        "UPDATE validation_results SET retry_count = LEAST(GREATEST(retry_count, 0), 10)",
        "validation_results_retry_count_check",
    ),
    Rule(
        "error_logs",
        _one_of("error_category", v.CATEGORIES),
        "error_category is one the spec lists",
        "UPDATE error_logs SET error_category = 'system' WHERE ...",
        "error_logs_error_category_check",
    ),
    Rule(
        "error_logs",
        _one_of("error_severity", v.SEVERITIES),
        "error_severity is one the spec lists",
        "UPDATE error_logs SET error_severity = 'medium' WHERE ...",
        "error_logs_error_severity_check",
    ),
    Rule(
        "error_logs",
        _one_of("resolution_status", v.RESOLUTION_STATUSES),
        "resolution_status is one the spec lists",
        "UPDATE error_logs SET resolution_status = 'unresolved' WHERE ...",
        "error_logs_resolution_status_check",
    ),
    Rule(
        "error_logs",
        "occurrence_count > 0",
        "occurrence_count is at least 1",
        "UPDATE error_logs SET occurrence_count = 1 WHERE occurrence_count < 1",
        "error_logs_occurrence_count_check",
    ),
    Rule(
        "error_logs",
        # in 001's order, not ENVIRONMENTS': the CHECK made from it must read as a fresh database's
        _one_of("environment", ("development", "testing", "staging", "production")),
        "environment is development, testing, staging or production",
        "UPDATE error_logs SET environment = 'production' WHERE ...",
        "error_logs_environment_check",
    ),
    Rule(
        "user_roles",
        "role_name ~ '^[a-z][a-z_]*$'",
        "role_name starts with a lower-case letter, then letters and underscores",
        "UPDATE user_roles SET role_name = ltrim(role_name, '_') WHERE role_name LIKE '\\_%'",
        "user_roles_role_name_check",
    ),
    Rule(
        "user_roles",
        "jsonb_typeof(permissions) = 'array'",
        "permissions is a JSON array",
        "UPDATE user_roles SET permissions = '[]' WHERE jsonb_typeof(permissions) <> 'array'",
        "user_roles_permissions_check",
    ),
    Rule(
        "users",
        "username ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{2,99}$'",
        "username is 3-100 letters, digits, _ . - and starts with a letter or digit",
        "UPDATE users SET username = ... for those users (tell them their new name)",
        "users_username_check",
    ),
    Rule(
        "users",
        "email ~ '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'",
        "email looks like name@domain.tld, without spaces",
        "UPDATE users SET email = btrim(email) ... or correct the address",
        "users_email_check",
    ),
    Rule(
        "users",
        "login_attempts BETWEEN 0 AND 10",
        "login_attempts is between 0 and 10",
        "UPDATE users SET login_attempts = 0 WHERE login_attempts NOT BETWEEN 0 AND 10",
        "users_login_attempts_check",
    ),
    Rule(
        "users",
        "username <> 'system' OR id = '00000000-0000-0000-0000-000000000001'",
        "the name 'system' is free (the dashboard's background work signs its changes with it)",
        "UPDATE users SET username = 'system_user' WHERE username = 'system'",
    ),
    Rule(
        "users",
        "email <> 'system@taskmaster.invalid' OR id = '00000000-0000-0000-0000-000000000001'",
        "the e-mail system@taskmaster.invalid is free",
        "UPDATE users SET email = ... for that user",
    ),
    Rule(
        "users",
        "api_key_hash IS NULL OR NOT EXISTS (SELECT 1 FROM users o WHERE "
        "o.api_key_hash = users.api_key_hash AND o.id <> users.id)",
        "no two users share an API key",
        "UPDATE users SET api_key_hash = NULL WHERE ... (and issue new keys)",
    ),
    Rule(
        "audit_logs",
        _one_of("action", ("create", "update", "delete", "status_change")),
        "action is create, update, delete or status_change",
        "UPDATE audit_logs SET action = 'update' WHERE ...",
        "audit_logs_action_check",
    ),
    Rule(
        "audit_logs",
        "length(user_id) <= 100",
        "the acting user's name fits in 100 characters",
        "UPDATE audit_logs SET user_id = left(user_id, 100) WHERE length(user_id) > 100",
    ),
    Rule(
        "audit_logs",
        '"timestamp" IS NOT NULL',
        "every audit row has a timestamp",
        'UPDATE audit_logs SET "timestamp" = now() WHERE "timestamp" IS NULL (or a better time)',
    ),
)

# The original's CHECK constraints (spec/original-schema.md), replaced by the RULES above.
ORIGINAL_CHECKS: dict[str, tuple[str, ...]] = {
    "tasks": (
        "tasks_status_check",
        "tasks_priority_check",
        "tasks_complexity_check",
        "tasks_hours_check",
    ),
    "task_contexts": ("task_contexts_type_check",),
    "task_dependencies": ("task_dependencies_type_check", "task_dependencies_no_self_reference"),
    "workflow_states": ("workflow_states_status_check", "workflow_states_retry_check"),
    "validation_results": (
        "validation_results_type_check",
        "validation_results_status_check",
        "validation_results_score_check",
        "validation_results_retry_check",
        "validation_results_execution_time_check",
    ),
    "error_logs": (
        "error_logs_category_check",
        "error_logs_severity_check",
        "error_logs_resolution_check",
        "error_logs_occurrence_check",
        "error_logs_environment_check",
    ),
    "user_roles": ("user_roles_name_check",),
    "users": ("users_username_check", "users_email_check", "users_login_attempts_check"),
    "audit_logs": ("audit_logs_entity_type_check", "audit_logs_action_check"),
}
KEPT_TABLES = (*ORIGINAL_CHECKS, "performance_metrics")


def refused_rows(conn: Connection) -> list[str]:
    """One line per rule that rows already there would break: table, rule, count, fix. Each
    table is read once for all its rules."""
    found = []
    for table in dict.fromkeys(rule.table for rule in RULES):
        rules = [rule for rule in RULES if rule.table == table]
        counts = ", ".join(f"count(*) FILTER (WHERE NOT ({rule.accepted}))" for rule in rules)
        row = conn.execute(text(f"SELECT {counts} FROM {table}")).one()
        for rule, count in zip(rules, row, strict=True):
            if count:
                found.append(
                    f"{rule.table}: {count} row{'s' if count != 1 else ''} break the rule "
                    f'"{rule.says}"; fix: {rule.fix}'
                )
    return found


def _replace_checks_sql() -> str:
    """One ALTER TABLE per table, so each table is scanned once for all its new constraints."""
    statements = []
    for table, originals in ORIGINAL_CHECKS.items():
        ours = [rule for rule in RULES if rule.table == table and rule.constraint]
        parts = [f"DROP CONSTRAINT IF EXISTS {name}" for name in originals]
        parts += [f"DROP CONSTRAINT IF EXISTS {rule.constraint}" for rule in ours]
        parts += [f"ADD CONSTRAINT {rule.constraint} CHECK ({rule.accepted})" for rule in ours]
        statements.append(f"ALTER TABLE {table}\n    " + ",\n    ".join(parts) + ";")
    return "\n".join(statements)


def _schema_indexes_sql(schema: SqlFile) -> str:
    """001's CREATE INDEX statements, skipping those the original already has."""
    found = re.findall(r"^CREATE INDEX (\w+ ON [^;]+;)", schema.sql, flags=re.M)
    return "\n".join(f"CREATE INDEX IF NOT EXISTS {statement}" for statement in found)


def _schema_triggers_sql(schema: SqlFile) -> str:
    """001's updated_at function and triggers (original.sql has dropped the original's), taken
    from 001 itself, as its indexes are."""
    return "\n".join(
        sql for _line, sql in split_statements(schema.sql) if "set_updated_at()" in sql
    )


def _run(source: str, sql_of: Callable[[], str]) -> Callable[[Connection], None]:
    return lambda conn: run_statements(conn, source, sql_of())


def plan_adoption(conn: Connection, plan: Plan) -> None:
    plan.single_transaction = True
    plan.problems += refused_rows(conn)
    counts = ", ".join(
        f"{table} {conn.scalar(text(f'SELECT count(*) FROM {table}'))}"
        for table in KEPT_TABLES
        if conn.scalar(text("SELECT to_regclass(:t)"), {"t": f"public.{table}"})
    )
    plan.notes.append(f"every row is kept ({counts}); schema_migrations is left as it is")
    files = {f.version: f for f in available_migrations()}
    schema, security = files["001"], files["002"]
    plan.steps += [
        Step(f"create the history table {HISTORY_TABLE}", create_history),
        Step(
            "sql/adopt/original.sql: drop the original's views, policies, audit and updated_at "
            "triggers and role functions (its 'unknown user is a viewer' rule); add "
            "task_dependencies.updated_at, workflow_states.created_at/updated_at and 001's "
            "defaults; audit_logs.user_id names move to a username column and user_id becomes "
            "that user's uuid",
            _run(ADOPT_FILE.name, lambda: ADOPT_FILE.sql),
        ),
        Step(
            "create 001's updated_at function and triggers",
            _run(schema.name, lambda: _schema_triggers_sql(schema)),
        ),
        Step(
            "replace the original's CHECK constraints by ours (" + ", ".join(ORIGINAL_CHECKS) + ")",
            _run("CHECK constraints of 001", _replace_checks_sql),
        ),
        Step(
            "add 001's indexes the original lacks (and record 001 as applied)",
            _run(schema.name, lambda: _schema_indexes_sql(schema)),
            [schema],
        ),
        Step(
            f"apply {security.name}: the app role, the default roles that are missing (roles "
            "already there are left as they are), the system user, our audit trigger, RLS "
            "policies and grants",
            _run(security.name, lambda: security.sql),
            [security],
        ),
    ]
    plan.steps += pending_steps({"001": schema.checksum, "002": security.checksum}, plan)
