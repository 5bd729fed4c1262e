"""One error with what it links to, others with the same code, and its triage history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.errors.filters import parse_uuid
from taskmaster_dash.data.errors.listing import COUNT_CAP


@dataclass(frozen=True)
class ErrorDetail:
    error: dict[str, Any]
    task: dict[str, Any] | None
    validation: dict[str, Any] | None
    workflow: dict[str, Any] | None
    same_code: list[dict[str, Any]]
    same_code_total: int
    history: list[dict[str, Any]]


def error_detail(actor: Actor, error_id: str, same_code_limit: int = 10) -> ErrorDetail | None:
    """Everything the detail shows, or None when there is no such error (or it is not visible)."""
    canonical = parse_uuid(error_id)
    if canonical is None:
        return None
    with get_database().transaction(PoolName.READ, actor) as conn:

        def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]

        found = rows(
            """SELECT id::text AS id, task_id::text AS task_id,
                      validation_result_id::text AS validation_result_id,
                      workflow_state_id::text AS workflow_state_id, error_code, error_category,
                      error_severity, error_message, error_details, stack_trace, context_data,
                      resolution_status, resolution_notes, resolved_at, resolved_by,
                      occurrence_count, first_occurred_at, last_occurred_at, user_id, session_id,
                      host(ip_address) AS ip_address, user_agent, environment, service_name,
                      service_version, metadata, created_at, updated_at
               FROM error_logs WHERE id = :id""",
            id=canonical,
        )
        if not found:
            return None
        error = found[0]
        task = validation = workflow = None
        if error["task_id"]:
            task = next(
                iter(
                    rows(
                        "SELECT id::text, title, status FROM tasks WHERE id = :id",
                        id=error["task_id"],
                    )
                ),
                None,
            )
        if error["validation_result_id"]:
            validation = next(
                iter(
                    rows(
                        """SELECT id::text, validation_type, validation_status, validation_score,
                                  completed_at
                           FROM validation_results WHERE id = :id""",
                        id=error["validation_result_id"],
                    )
                ),
                None,
            )
        if error["workflow_state_id"]:
            workflow = next(
                iter(
                    rows(
                        """SELECT id::text, workflow_id, step, status, error_message, retry_count
                           FROM workflow_states WHERE id = :id""",
                        id=error["workflow_state_id"],
                    )
                ),
                None,
            )
        same_code = rows(
            """SELECT id::text, error_severity, error_message, resolution_status,
                      last_occurred_at, occurrence_count
               FROM error_logs WHERE error_code = :code AND id <> :id
               ORDER BY last_occurred_at DESC LIMIT :limit""",
            code=error["error_code"],
            id=canonical,
            limit=same_code_limit,
        )
        same_code_total = conn.scalar(
            text(
                """SELECT count(*) FROM (SELECT 1 FROM error_logs
                   WHERE error_code = :code AND id <> :id LIMIT :cap) s"""
            ),
            {"code": error["error_code"], "id": canonical, "cap": COUNT_CAP + 1},
        )
        history = rows(
            """SELECT "timestamp", username, action,
                      old_values->>'resolution_status' AS old_status,
                      new_values->>'resolution_status' AS new_status,
                      new_values->>'resolution_notes' AS notes
               FROM audit_logs
               WHERE entity_type = 'error_logs' AND entity_id = :id
               ORDER BY "timestamp" DESC LIMIT 100""",
            id=canonical,
        )
    return ErrorDetail(error, task, validation, workflow, same_code, same_code_total, history)
