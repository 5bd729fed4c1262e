"""One error with what it links to, others with the same code, and its triage history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.db import Actor, PoolName, get_database, records
from taskmaster_dash.data.errors.filters import ESCALATING_SQL, REGRESSED_SQL, parse_uuid
from taskmaster_dash.data.errors.listing import seen_in, seen_in_label

# A group is one row (migration 080), but rows that share a fingerprint are one group too (the
# rows group-errors has not folded yet): "other errors with this code" counts those once.
_GROUP_KEY = "COALESCE(e.fingerprint, e.id::text)"
# How many of the code's newest rows are read to find its groups: about 20 ms (10,000 rows took
# 200 ms, bench/triage.py). Once rows are folded a group is a row, so this is plenty; beyond it
# the total says "N+".
SAME_CODE_SCAN = 1_000


@dataclass(frozen=True)
class ErrorDetail:
    error: dict[str, Any]
    task: dict[str, Any] | None
    validation: dict[str, Any] | None
    workflow: dict[str, Any] | None
    same_code: list[dict[str, Any]]  # other groups with this code, the newest first
    same_code_total: int
    history: list[dict[str, Any]]
    seen_in: str = ""  # the services and versions the group was seen in
    same_code_more: bool = False  # more rows with this code than were read: the total is "N+"


def error_detail(actor: Actor, error_id: str, same_code_limit: int = 10) -> ErrorDetail | None:
    """Everything the detail shows, or None when there is no such error (or it is not visible)."""
    canonical = parse_uuid(error_id)
    if canonical is None:
        return None
    with get_database().transaction(PoolName.READ, actor) as conn:

        def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
            return records(conn.execute(text(sql), params))

        found = rows(
            f"""SELECT id::text AS id, task_id::text AS task_id,
                      validation_result_id::text AS validation_result_id,
                      workflow_state_id::text AS workflow_state_id, error_code, error_category,
                      error_severity, error_message, error_details, stack_trace, context_data,
                      resolution_status, resolution_notes, resolved_at, resolved_by,
                      occurrence_count, first_occurred_at, last_occurred_at, user_id, session_id,
                      host(ip_address) AS ip_address, user_agent, environment, service_name,
                      service_version, metadata, created_at, updated_at, fingerprint,
                      regressed_at, escalating_since, {REGRESSED_SQL} AS regressed,
                      {ESCALATING_SQL} AS escalating
               FROM error_logs e WHERE id = :id""",
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
        # Read along the code's index, the newest SAME_CODE_SCAN rows at most (fast at millions
        # of rows); within them, the newest row of each group stands for it, occurrences summed.
        recent = f"""WITH recent AS (
                SELECT e.id, e.error_severity, e.error_message, e.resolution_status,
                       e.last_occurred_at, e.occurrence_count, e.regressed_at,
                       e.escalating_since, {_GROUP_KEY} AS group_key
                FROM error_logs e
                WHERE e.error_code = :code ORDER BY e.last_occurred_at DESC LIMIT :cap)"""
        group = {"code": error["error_code"], "key": error["fingerprint"] or canonical}
        same_code = rows(
            f"""{recent}
                SELECT id::text, error_severity, error_message, resolution_status,
                       last_occurred_at, occurrence_count, regressed, escalating, group_rows
                FROM (SELECT DISTINCT ON (e.group_key) e.id, e.error_severity, e.error_message,
                             e.resolution_status,
                             max(e.last_occurred_at) OVER g AS last_occurred_at,
                             sum(e.occurrence_count) OVER g AS occurrence_count,
                             {REGRESSED_SQL} AS regressed, {ESCALATING_SQL} AS escalating,
                             count(*) OVER g AS group_rows
                      FROM recent e WHERE e.group_key <> :key
                      WINDOW g AS (PARTITION BY e.group_key)
                      ORDER BY e.group_key, e.last_occurred_at DESC, e.id DESC) newest
                ORDER BY last_occurred_at DESC, id DESC LIMIT :limit""",
            **group,
            cap=SAME_CODE_SCAN + 1,
            limit=same_code_limit,
        )
        scanned, same_code_total = conn.execute(
            text(
                f"""{recent} SELECT count(*), count(DISTINCT group_key) FILTER (
                        WHERE group_key <> :key) FROM recent"""
            ),
            {**group, "cap": SAME_CODE_SCAN + 1},
        ).one()
        versions = seen_in(conn, [canonical]).get(canonical)
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
    own = [(error["service_name"], error["service_version"] or "")] if error["service_name"] else []
    return ErrorDetail(
        error,
        task,
        validation,
        workflow,
        same_code,
        same_code_total,
        history,
        seen_in_label(versions or own),
        same_code_more=scanned > SAME_CODE_SCAN,
    )
