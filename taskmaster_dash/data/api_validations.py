"""Validation runs as the REST API reads and writes them, as the caller (RLS: validations:read
to see them, validations:write to record them; the task must be visible to the caller)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskmaster_dash.data.api_common import Listing
from taskmaster_dash.data.api_tasks import insert_row, update_row, visible_task
from taskmaster_dash.data.db import Actor, PoolName, get_database

VALIDATION_SELECT = (
    "id::text AS id, task_id::text AS task_id, validation_type, validation_status,"
    " validation_score::float8 AS validation_score, validation_data, claude_code_version,"
    " validation_environment, started_at, completed_at, execution_time_ms, error_message,"
    " error_details, retry_count, metadata, created_at, updated_at"
)


VALIDATIONS = Listing(VALIDATION_SELECT, "validation_results")


def create_validation(actor: Actor, values: dict[str, Any]) -> dict[str, Any] | None:
    """None when the task does not exist or the caller may not see it."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if not visible_task(conn, values["task_id"]):
            return None
        return insert_row(conn, "validation_results", values, VALIDATION_SELECT)


def update_validation(
    actor: Actor, validation_id: str, values: dict[str, Any], expected: datetime | None
) -> dict[str, Any] | None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        return update_row(
            conn, "validation_results", validation_id, values, expected, VALIDATION_SELECT
        )
