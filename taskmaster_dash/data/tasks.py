"""One task in full (/tasks/<id>): its fields, parent and child tasks, dependencies, workflow
steps, contexts, and its latest validation runs and errors. Everything is read as the user in
one transaction, so RLS decides what is visible: a developer sees only their own and
unassigned tasks, and validation runs or errors only with the permission to read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.db import Actor, PoolName, get_database, records
from taskmaster_dash.data.errors.filters import parse_uuid

RECENT = 50  # validation runs, errors and contexts shown per task, newest first


@dataclass(frozen=True)
class TaskDetail:
    task: dict[str, Any]
    parent: dict[str, Any] | None
    children: list[dict[str, Any]]
    dependencies: list[dict[str, Any]]  # relation ("blocks this", "this depends_on"), task
    workflow: list[dict[str, Any]]
    contexts: list[dict[str, Any]]
    validations: list[dict[str, Any]]
    errors: list[dict[str, Any]]


def task_detail(actor: Actor, task_id: str) -> TaskDetail | None:
    """Everything the task page shows, or None when there is no such task (or it is hidden)."""
    canonical = parse_uuid(task_id)
    if canonical is None:
        return None
    with get_database().transaction(PoolName.READ, actor) as conn:

        def rows(sql: str) -> list[dict[str, Any]]:
            params = {"id": canonical, "limit": RECENT}
            return records(conn.execute(text(sql), params))

        found = rows(
            """SELECT id::text, title, description, type, status, priority, complexity_score,
                      affected_files, requirements, acceptance_criteria,
                      parent_task_id::text AS parent_task_id, assigned_to, tags,
                      estimated_hours, actual_hours, created_at, updated_at, completed_at
               FROM tasks WHERE id = :id"""
        )
        if not found:
            return None
        task = found[0]
        parent = next(
            iter(
                rows(
                    """SELECT p.id::text, p.title, p.status FROM tasks t
                       JOIN tasks p ON p.id = t.parent_task_id WHERE t.id = :id"""
                )
            ),
            None,
        )
        return TaskDetail(
            task=task,
            parent=parent,
            children=rows(
                """SELECT id::text, title, status FROM tasks WHERE parent_task_id = :id
                   ORDER BY created_at LIMIT :limit"""
            ),
            dependencies=rows(
                """SELECT d.dependency_type || ' this task' AS relation, t.id::text, t.title,
                          t.status
                   FROM task_dependencies d JOIN tasks t ON t.id = d.parent_task_id
                   WHERE d.child_task_id = :id
                   UNION ALL
                   SELECT 'this task ' || d.dependency_type, t.id::text, t.title, t.status
                   FROM task_dependencies d JOIN tasks t ON t.id = d.child_task_id
                   WHERE d.parent_task_id = :id
                   ORDER BY 1, 3 LIMIT :limit"""
            ),
            workflow=rows(
                """SELECT workflow_id, step, status, started_at, completed_at, retry_count,
                          error_message
                   FROM workflow_states WHERE task_id = :id
                   ORDER BY coalesce(started_at, created_at) LIMIT :limit"""
            ),
            contexts=rows(
                """SELECT context_type, context_data, created_at FROM task_contexts
                   WHERE task_id = :id ORDER BY created_at DESC LIMIT :limit"""
            ),
            validations=rows(
                """SELECT validation_type, validation_status, validation_score,
                          execution_time_ms, retry_count, claude_code_version, created_at
                   FROM validation_results WHERE task_id = :id
                   ORDER BY created_at DESC LIMIT :limit"""
            ),
            errors=rows(
                """SELECT id::text, error_severity, error_code, error_message,
                          resolution_status, last_occurred_at
                   FROM error_logs WHERE task_id = :id
                   ORDER BY last_occurred_at DESC NULLS LAST LIMIT :limit"""
            ),
        )
