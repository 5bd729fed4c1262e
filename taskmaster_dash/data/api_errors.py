"""Errors as the REST API reads and records them: lists and one group with its hourly
occurrences, the services and versions it was seen in and the rows folded into it. Every
statement runs as the caller (RLS: errors:read to read; errors:write to post)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.api_common import Listing
from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.error_ingest import ErrorEvent, IngestResult, ingest_error

ERROR_SELECT = (
    "id::text AS id, error_code, error_category, error_severity, error_message, error_details,"
    " stack_trace, context_data, resolution_status, resolution_notes, resolved_at, resolved_by,"
    " occurrence_count, first_occurred_at, last_occurred_at, user_id, session_id,"
    " host(ip_address) AS ip_address, user_agent, environment, service_name, service_version,"
    " metadata, created_at, updated_at, task_id::text AS task_id,"
    " validation_result_id::text AS validation_result_id,"
    " workflow_state_id::text AS workflow_state_id, fingerprint, regressed_at, escalating_since,"
    " escalating_since IS NOT NULL AS escalating"
)
HISTORY_HOURS = 7 * 24
MAX_FOLDED_IDS = 100


ERRORS = Listing(ERROR_SELECT, "error_logs", order_by="last_occurred_at DESC, id DESC")


def get_error(
    actor: Actor, error_id: str, now: Callable[[], datetime] | None = None
) -> dict[str, Any] | None:
    """The group, its hourly occurrences of the last 7 days, where it was seen, and the ids of
    the rows folded into it (the newest first)."""
    since = (now or (lambda: datetime.now(UTC)))() - timedelta(hours=HISTORY_HOURS)
    with get_database().transaction(PoolName.READ, actor) as conn:
        row = (
            conn.execute(
                text(f"SELECT {ERROR_SELECT} FROM error_logs WHERE id = CAST(:id AS uuid)"),
                {"id": error_id},
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            return None
        params = {"id": error_id, "since": since, "limit": MAX_FOLDED_IDS}
        hourly = conn.execute(
            text(
                "SELECT bucket, occurrences FROM error_occurrence_hourly"
                " WHERE error_id = CAST(:id AS uuid) AND bucket >= :since ORDER BY bucket"
            ),
            params,
        ).mappings()
        seen = conn.execute(
            text(
                "SELECT NULLIF(service_name, '') AS service_name,"
                " NULLIF(service_version, '') AS service_version, occurrences, first_seen_at,"
                " last_seen_at FROM error_group_versions WHERE error_id = CAST(:id AS uuid)"
                " ORDER BY last_seen_at DESC"
            ),
            params,
        ).mappings()
        detail = dict(row) | {
            "hourly": [dict(h) for h in hourly],
            "seen_in": [dict(s) for s in seen],
        }
        detail["folded_count"] = conn.scalar(
            text("SELECT count(*) FROM error_group_folds WHERE error_id = CAST(:id AS uuid)"),
            params,
        )
        detail["folded_ids"] = list(
            conn.scalars(
                text(
                    "SELECT folded_id::text FROM error_group_folds"
                    " WHERE error_id = CAST(:id AS uuid) ORDER BY folded_at DESC, folded_id"
                    " LIMIT :limit"
                ),
                params,
            )
        )
        return detail


_AS_TEXT = ("id", "task_id", "validation_result_id", "workflow_state_id", "ip_address")
_NOT_SHOWN = ("hour_count", "spike_limit", "created")


def record_error(actor: Actor, event: ErrorEvent) -> tuple[IngestResult, dict[str, Any]]:
    """Record one occurrence (data/error_ingest.py); the group's row as ERROR_SELECT gives it,
    from the ingest statement itself (no second read)."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        result = ingest_error(conn, event)
    row = {k: v for k, v in result.row.items() if k not in _NOT_SHOWN}
    for key in _AS_TEXT:
        row[key] = None if row[key] is None else str(row[key])
    row["escalating"] = row["escalating_since"] is not None
    return result, row
