"""Validation runs as the REST API reads and writes them, as the caller (RLS: validations:read
to see them, validations:write to record them; the task must be visible to the caller)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.api_common import Filters, fetch_page
from taskmaster_dash.data.api_tasks import insert_row, update_row
from taskmaster_dash.data.db import Actor, PoolName, get_database

VALIDATION_SELECT = (
    "id::text AS id, task_id::text AS task_id, validation_type, validation_status,"
    " validation_score::float8 AS validation_score, validation_data, claude_code_version,"
    " validation_environment, started_at, completed_at, execution_time_ms, error_message,"
    " error_details, retry_count, metadata, created_at, updated_at"
)


def list_validations(
    actor: Actor, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    with get_database().transaction(PoolName.READ, actor) as conn:
        return fetch_page(
            conn,
            select=VALIDATION_SELECT,
            from_="validation_results",
            filters=filters,
            order_by="created_at DESC, id DESC",
            limit=limit,
            offset=offset,
        )


def create_validation(actor: Actor, values: dict[str, Any]) -> dict[str, Any] | None:
    """None when the task does not exist or the caller may not see it."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        visible = conn.scalar(
            text("SELECT 1 FROM tasks WHERE id = CAST(:id AS uuid)"), {"id": values["task_id"]}
        )
        if not visible:
            return None
        return insert_row(conn, "validation_results", values, VALIDATION_SELECT)


def update_validation(
    actor: Actor, validation_id: str, values: dict[str, Any], expected: datetime | None
) -> dict[str, Any] | None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        return update_row(
            conn, "validation_results", validation_id, values, expected, VALIDATION_SELECT
        )
