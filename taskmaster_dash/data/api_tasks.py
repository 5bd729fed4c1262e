"""Tasks, their contexts and dependencies, and workflow steps, as the REST API reads and writes
them. Every statement runs as the caller (RLS: a developer sees and changes only their own and
unassigned tasks) inside the transaction helper, so the audit trigger records who did it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.data.api_common import Filters, Listing, StaleUpdate
from taskmaster_dash.data.db import Actor, PoolName, get_database

JSON_COLUMNS = frozenset(
    {
        "affected_files",
        "requirements",
        "acceptance_criteria",
        "tags",
        "metadata",
        "context_data",
        "result",
        "validation_data",
        "validation_environment",
        "error_details",
    }
)
TASK_SELECT = (
    "id::text AS id, title, description, type, status, priority, complexity_score,"
    " affected_files, requirements, acceptance_criteria, parent_task_id::text AS parent_task_id,"
    " assigned_to, tags, estimated_hours::float8 AS estimated_hours,"
    " actual_hours::float8 AS actual_hours, created_at, updated_at, completed_at, metadata"
)
CONTEXT_SELECT = (
    "id::text AS id, task_id::text AS task_id, context_type, context_data, metadata,"
    " created_at, updated_at"
)
DEPENDENCY_SELECT = (
    "id::text AS id, parent_task_id::text AS parent_task_id,"
    " child_task_id::text AS child_task_id, dependency_type, metadata, created_at, updated_at"
)
WORKFLOW_SELECT = (
    "id::text AS id, workflow_id, task_id::text AS task_id, step, status, result, started_at,"
    " completed_at, error_message, retry_count, metadata, created_at, updated_at"
)
RECENT_CONTEXTS = 50


class DependencyCycle(Exception):
    """The new dependency would close a loop (the child already leads back to the parent)."""


def _bind(values: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Column names and bound values; JSON columns are sent as JSON text and cast."""
    params = {}
    placeholders = []
    for column, value in values.items():
        params[column] = json.dumps(value) if column in JSON_COLUMNS else value
        cast = "CAST(:{0} AS jsonb)" if column in JSON_COLUMNS else ":{0}"
        if column.endswith("task_id"):
            cast = "CAST(:{0} AS uuid)"
        placeholders.append(cast.format(column))
    return placeholders, params


def insert_row(conn: Connection, table: str, values: dict[str, Any], returning: str) -> dict:
    placeholders, params = _bind(values)
    columns = ", ".join(values)
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join(placeholders)}) RETURNING {returning}"
    )
    return dict(conn.execute(text(sql), params).mappings().one())


def update_row(
    conn: Connection,
    table: str,
    row_id: str,
    values: dict[str, Any],
    expected_updated_at: datetime | None,
    returning: str,
) -> dict | None:
    """The updated row; None when there is no such row (or it is hidden); StaleUpdate when it
    changed after `expected_updated_at`."""
    placeholders, params = _bind(values)
    sets = ", ".join(f"{c} = {p}" for c, p in zip(values, placeholders, strict=True))
    params |= {"row_id": row_id, "expected": expected_updated_at}
    row = (
        conn.execute(
            text(
                f"""UPDATE {table} SET {sets or "updated_at = updated_at"}
                    WHERE id = CAST(:row_id AS uuid)
                      AND (CAST(:expected AS timestamptz) IS NULL
                           OR updated_at = CAST(:expected AS timestamptz))
                    RETURNING {returning}"""
            ),
            params,
        )
        .mappings()
        .first()
    )
    if row is not None:
        return dict(row)
    exists = conn.scalar(
        text(f"SELECT 1 FROM {table} WHERE id = CAST(:row_id AS uuid)"), {"row_id": row_id}
    )
    if exists and expected_updated_at is not None:
        raise StaleUpdate
    return None


TASKS = Listing(TASK_SELECT, "tasks")
CONTEXTS = Listing(CONTEXT_SELECT, "task_contexts")
DEPENDENCIES = Listing(DEPENDENCY_SELECT, "task_dependencies")
WORKFLOW_STATES = Listing(WORKFLOW_SELECT, "workflow_states")


def visible_task(conn: Connection, task_id: str) -> bool:
    found = conn.scalar(text("SELECT 1 FROM tasks WHERE id = CAST(:id AS uuid)"), {"id": task_id})
    return bool(found)


def get_task(actor: Actor, task_id: str) -> dict[str, Any] | None:
    """The task with its latest contexts and the original view's counts."""
    with get_database().transaction(PoolName.READ, actor) as conn:
        row = (
            conn.execute(
                text(
                    f"""SELECT {TASK_SELECT},
                        (SELECT count(*) FROM task_contexts c WHERE c.task_id = t.id)
                            AS context_count,
                        (SELECT count(*) FROM task_dependencies d WHERE d.parent_task_id = t.id)
                            AS child_task_count,
                        (SELECT count(*) FROM task_dependencies d WHERE d.child_task_id = t.id)
                            AS dependency_count
                        FROM tasks t WHERE t.id = CAST(:id AS uuid)"""
                ),
                {"id": task_id},
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        task = dict(row)
        task["contexts"] = [
            dict(r)
            for r in conn.execute(
                text(
                    f"""SELECT {CONTEXT_SELECT} FROM task_contexts
                        WHERE task_id = CAST(:id AS uuid)
                        ORDER BY created_at DESC, id DESC LIMIT :limit"""
                ),
                {"id": task_id, "limit": RECENT_CONTEXTS},
            ).mappings()
        ]
        return task


def create_task(actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        return insert_row(conn, "tasks", values, TASK_SELECT)


def update_task(
    actor: Actor, task_id: str, values: dict[str, Any], expected_updated_at: datetime | None
) -> dict[str, Any] | None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        return update_row(conn, "tasks", task_id, values, expected_updated_at, TASK_SELECT)


def delete_task(actor: Actor, task_id: str) -> bool:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        deleted = conn.execute(
            text("DELETE FROM tasks WHERE id = CAST(:id AS uuid) RETURNING id"), {"id": task_id}
        ).first()
        return deleted is not None


def _task_page(
    actor: Actor, task_id: str, listing: Listing, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int] | None:
    """One page of what belongs to a task; None when the task does not exist or is hidden."""
    with get_database().transaction(PoolName.READ, actor) as conn:
        if not visible_task(conn, task_id):
            return None
        return listing.page(conn, filters, limit, offset)


def list_contexts(
    actor: Actor, task_id: str, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int] | None:
    return _task_page(actor, task_id, CONTEXTS, filters.equal("task_id", task_id), limit, offset)


def add_context(actor: Actor, task_id: str, values: dict[str, Any]) -> dict[str, Any] | None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if not visible_task(conn, task_id):
            return None
        return insert_row(conn, "task_contexts", {"task_id": task_id, **values}, CONTEXT_SELECT)


def list_dependencies(
    actor: Actor, task_id: str, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int] | None:
    """Dependencies on either side of the task (it is the parent or the child)."""
    filters.clauses.append(
        "(parent_task_id = CAST(:task AS uuid) OR child_task_id = CAST(:task AS uuid))"
    )
    filters.params["task"] = task_id
    return _task_page(actor, task_id, DEPENDENCIES, filters, limit, offset)


# Every dependency insert takes this lock first, so two concurrent inserts cannot each pass the
# cycle check and together close a loop.
_DEPENDENCY_LOCK = "SELECT pg_advisory_xact_lock(hashtext('taskmaster_dash.task_dependencies'))"


def add_dependency(
    actor: Actor, parent_id: str, child_id: str, dependency_type: str, metadata: dict[str, Any]
) -> dict[str, Any] | None:
    """`parent_id` blocks (or is depended on by) `child_id`. None when either task is missing or
    hidden; DependencyCycle when `child_id` already leads back to `parent_id` ('related' links
    have no direction and never make a cycle)."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if not (visible_task(conn, parent_id) and visible_task(conn, child_id)):
            return None
        conn.execute(text(_DEPENDENCY_LOCK))
        if dependency_type != "related":
            loop = conn.scalar(
                text(
                    """WITH RECURSIVE reach(id) AS (
                           SELECT CAST(:child AS uuid)
                           UNION
                           SELECT d.child_task_id FROM task_dependencies d
                           JOIN reach r ON d.parent_task_id = r.id
                           WHERE d.dependency_type <> 'related')
                       SELECT 1 FROM reach WHERE id = CAST(:parent AS uuid) LIMIT 1"""
                ),
                {"child": child_id, "parent": parent_id},
            )
            if loop:
                raise DependencyCycle
        values = {
            "parent_task_id": parent_id,
            "child_task_id": child_id,
            "dependency_type": dependency_type,
            "metadata": metadata,
        }
        return insert_row(conn, "task_dependencies", values, DEPENDENCY_SELECT)


def add_workflow_state(actor: Actor, values: dict[str, Any]) -> dict[str, Any] | None:
    """None when the step names a task that does not exist or is hidden."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if values.get("task_id") and not visible_task(conn, values["task_id"]):
            return None
        return insert_row(conn, "workflow_states", values, WORKFLOW_SELECT)
