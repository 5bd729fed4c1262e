"""Recording an occurrence of an error: grouping, regression and escalation (issue 14).

One error_logs row is one group, named by its fingerprint (data/error_fingerprint.py):
- an occurrence of an OPEN group (unresolved, investigating) adds to its occurrence_count, moves
  last_occurred_at and keeps the newest occurrence's context; no row is made;
- of a RESOLVED group reopens it as regressed (unresolved, regressed_at; the audit trigger
  writes a "regressed" entry);
- of a WONT_FIX group counts and stays ignored; of a DUPLICATE counts on the error it
  duplicates (metadata.duplicate_of);
- otherwise it is a new group: INSERT ... ON CONFLICT against the partial unique index of open
  fingerprints (migration 080), so concurrent posts of one new error make one row.
Each occurrence also counts in error_occurrence_hourly (sparklines, the escalation baseline)
and error_group_versions (services and versions seen).

Escalating (the rule, also in the README): the hour's occurrences so far exceed
    limit = max(floor, mean + K * stddev, 2 * mean)
over the group's complete hours of the last 7 days (hours without occurrences count as 0),
with K = 5, floor = 10 occurrences, and for a young group (under 24 complete hours of history)
floor = 50. A group that is back under its limit for the current and the previous hour stops
escalating.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from taskmaster_dash.data.error_fingerprint import fingerprint_of

OPEN_STATUSES = ("unresolved", "investigating")
_OPEN = "resolution_status IN ('unresolved', 'investigating')"
ESCALATION_K = 5.0
ESCALATION_FLOOR = 10
YOUNG_FLOOR = 50
YOUNG_HOURS = 24
BASELINE_HOURS = 7 * 24
_MAX_DUPLICATE_HOPS = 5
_MAX_ATTEMPTS = 3

# The newest occurrence's context replaces the group's (when it is the newest).
CONTEXT_COLUMNS = (
    "error_message",
    "error_details",
    "stack_trace",
    "context_data",
    "user_id",
    "session_id",
    "ip_address",
    "user_agent",
    "service_version",
    "task_id",
    "validation_result_id",
    "workflow_state_id",
)
_JSON_COLUMNS = frozenset({"error_details", "context_data", "metadata"})
_CASTS = {
    "ip_address": "inet",
    "task_id": "uuid",
    "validation_result_id": "uuid",
    "workflow_state_id": "uuid",
    "error_details": "jsonb",
    "context_data": "jsonb",
    "metadata": "jsonb",
    "occurred_at": "timestamptz",
}


class Outcome(StrEnum):
    CREATED = "created"  # a new group
    GROUPED = "grouped"  # another occurrence of a known group
    REGRESSED = "regressed"  # a resolved group came back


@dataclass(frozen=True)
class ErrorEvent:
    """One posted occurrence, with the spec's column names (already validated)."""

    error_code: str
    error_category: str
    error_severity: str
    error_message: str
    service_name: str | None = None
    service_version: str | None = None
    environment: str = "production"
    stack_trace: str | None = None
    error_details: dict[str, Any] = field(default_factory=dict)
    context_data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    session_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    task_id: str | None = None
    validation_result_id: str | None = None
    workflow_state_id: str | None = None
    fingerprint: str | Sequence[str] | None = None  # the client's own, if any
    occurred_at: datetime | None = None

    def group_fingerprint(self) -> str:
        return fingerprint_of(self, self.fingerprint)


@dataclass(frozen=True)
class IngestResult:
    error_id: str
    outcome: Outcome
    occurrence_count: int
    resolution_status: str
    fingerprint: str
    escalating: bool
    row: dict[str, Any] = field(repr=False)  # the group's row after this occurrence


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _param(name: str) -> str:
    return f"CAST(:{name} AS {_CASTS[name]})" if name in _CASTS else f":{name}"


def _params(event: ErrorEvent, fp: str, at: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(event, name)
        for name in (*CONTEXT_COLUMNS, "error_code", "error_category", "error_severity")
    }
    values.update(
        {
            "metadata": event.metadata,
            "service_name": event.service_name,
            "environment": event.environment,
            "fingerprint": fp,
            "occurred_at": at,
            "bucket": _hour(at),
            "service_key": event.service_name or "",
            "version_key": event.service_version or "",
        }
    )
    return {k: json.dumps(v) if k in _JSON_COLUMNS else v for k, v in values.items()}


def _newest(column: str) -> str:
    return (
        f"{column} = CASE WHEN CAST(:occurred_at AS timestamptz) >= error_logs.last_occurred_at "
        f"THEN {_param(column)} ELSE error_logs.{column} END"
    )


# What one more occurrence changes on its group's row.
_OCCURRENCE_SET = ",\n    ".join(
    [
        "occurrence_count = error_logs.occurrence_count + 1",
        "last_occurred_at = GREATEST(error_logs.last_occurred_at, CAST(:occurred_at AS timestamptz))",  # noqa: E501
        "first_occurred_at = LEAST(error_logs.first_occurred_at, CAST(:occurred_at AS timestamptz))",  # noqa: E501
        *(_newest(column) for column in CONTEXT_COLUMNS),
    ]
)
_REGRESSION_SET = """resolution_status = 'unresolved',
    regressed_at = CAST(:occurred_at AS timestamptz), resolved_at = NULL, resolved_by = NULL"""

# The hourly and version counts of the row the first CTE `g` returned, in the same statement.
_SIDE_COUNTS = """,
h AS (
    INSERT INTO error_occurrence_hourly (error_id, bucket, occurrences)
    SELECT id, CAST(:bucket AS timestamptz), 1 FROM g
    ON CONFLICT (error_id, bucket)
        DO UPDATE SET occurrences = error_occurrence_hourly.occurrences + 1
    RETURNING occurrences),
v AS (
    INSERT INTO error_group_versions
        (error_id, service_name, service_version, occurrences, first_seen_at, last_seen_at)
    SELECT id, :service_key, :version_key, 1, CAST(:occurred_at AS timestamptz),
           CAST(:occurred_at AS timestamptz) FROM g
    ON CONFLICT (error_id, service_name, service_version) DO UPDATE SET
        occurrences = error_group_versions.occurrences + 1,
        first_seen_at = LEAST(error_group_versions.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = GREATEST(error_group_versions.last_seen_at, EXCLUDED.last_seen_at))
SELECT g.*, (SELECT occurrences FROM h) AS hour_count,
       (SELECT l.spike_limit FROM error_escalation_limits l
        WHERE l.error_id = g.id AND l.bucket = CAST(:bucket AS timestamptz)) AS spike_limit
FROM g"""

_INSERT_COLUMNS = (
    "error_code",
    "error_category",
    "error_severity",
    "service_name",
    "environment",
    "metadata",
    "fingerprint",
    *CONTEXT_COLUMNS,
)
_INSERT = (
    "WITH g AS (\nINSERT INTO error_logs ("
    + ", ".join(_INSERT_COLUMNS)
    + ", first_occurred_at, last_occurred_at)\nVALUES ("
    + ", ".join(_param(c) for c in _INSERT_COLUMNS)
    + ", CAST(:occurred_at AS timestamptz), CAST(:occurred_at AS timestamptz))\n"
    + f"ON CONFLICT (fingerprint) WHERE {_OPEN} DO UPDATE SET\n    {_OCCURRENCE_SET}\n"
    + "WHERE error_occurrence_mark()\n"
    + "RETURNING *, (xmax = 0) AS created)"
    + _SIDE_COUNTS
)


def _count_on(conn: Connection, where: str, params: dict[str, Any], *, regress: bool = False):
    extra = f",\n    {_REGRESSION_SET}" if regress else ""
    sql = (
        f"WITH g AS (\nUPDATE error_logs SET\n    {_OCCURRENCE_SET}{extra}\n"
        f"WHERE {where} AND error_occurrence_mark()\n"
        "RETURNING *, false AS created)" + _SIDE_COUNTS
    )
    return conn.execute(text(sql), params).one_or_none()


def _on_closed_group(conn: Connection, params: dict[str, Any], row: Any, hops: int = 0):
    """Count on a known group in any status; None when its status changed under us."""
    status = row.resolution_status
    same = {**params, "target": str(row.id)}
    if status in OPEN_STATUSES:
        return _count_on(conn, f"id = CAST(:target AS uuid) AND {_OPEN}", same), Outcome.GROUPED
    if status == "resolved":
        found = _count_on(
            conn,
            "id = CAST(:target AS uuid) AND resolution_status = 'resolved'",
            same,
            regress=True,
        )
        return found, Outcome.REGRESSED
    if status == "duplicate" and row.duplicate_of and hops < _MAX_DUPLICATE_HOPS:
        target = conn.execute(
            text(
                "SELECT id, resolution_status, metadata->>'duplicate_of' AS duplicate_of "
                "FROM error_logs WHERE id = CAST(:id AS uuid) FOR UPDATE"
            ),
            {"id": row.duplicate_of},
        ).one_or_none()
        if target is not None:
            return _on_closed_group(conn, params, target, hops + 1)
    # wont_fix (and a duplicate whose original is gone): counts, stays as it is.
    where = "id = CAST(:target AS uuid) AND resolution_status = :status"
    return _count_on(conn, where, {**same, "status": status}), Outcome.GROUPED


def _ingest_once(conn: Connection, params: dict[str, Any], *, look_for_open: bool = True):
    if look_for_open:
        found = _count_on(conn, f"fingerprint = :fingerprint AND {_OPEN}", params)
        if found is not None:
            return found, Outcome.GROUPED
    closed = conn.execute(
        text(
            "SELECT id, resolution_status, metadata->>'duplicate_of' AS duplicate_of "
            "FROM error_logs WHERE fingerprint = :fingerprint "
            "ORDER BY last_occurred_at DESC, id DESC LIMIT 1 FOR UPDATE"
        ),
        params,
    ).one_or_none()
    if closed is not None:
        return _on_closed_group(conn, params, closed)
    row = conn.execute(text(_INSERT), params).one()
    return row, Outcome.CREATED if row.created else Outcome.GROUPED


def ingest_error(
    conn: Connection, event: ErrorEvent, now: Callable[[], datetime] | None = None
) -> IngestResult:
    """Record one occurrence in the caller's transaction (run as the posting user, so RLS and
    the audit log see them). Concurrent calls for the same error meet in the unique index."""
    at = event.occurred_at or (now or (lambda: datetime.now(UTC)))()
    fp = event.group_fingerprint()
    params = _params(event, fp, at)
    # The common case first, without a savepoint: one statement for a known open group.
    found = _count_on(conn, f"fingerprint = :fingerprint AND {_OPEN}", params)
    outcome = Outcome.GROUPED
    attempt = 0
    while found is None:
        attempt += 1
        if attempt > _MAX_ATTEMPTS:
            raise RuntimeError("the error's group kept changing while recording it; try again")
        savepoint = conn.begin_nested()
        try:
            # (the first attempt has just looked for an open group)
            found, outcome = _ingest_once(conn, params, look_for_open=attempt > 1)
        except IntegrityError as exc:
            # A regression met a group opened meanwhile: count on that one instead.
            savepoint.rollback()
            if not isinstance(exc.orig, UniqueViolation):
                raise
            found = None
            continue
        if found is None:  # the group's status changed between our reads: look again
            savepoint.rollback()
            continue
        savepoint.commit()
    row = dict(found._mapping)
    escalating = _judge(conn, row, at)
    if escalating != (row["escalating_since"] is not None):
        row["escalating_since"] = at if escalating else None
    return IngestResult(
        str(row["id"]),
        outcome,
        row["occurrence_count"],
        row["resolution_status"],
        fp,
        escalating,
        row,
    )


def _judge(conn: Connection, row: dict[str, Any], at: datetime) -> bool:
    """Escalation after one occurrence, usually without a query: the hour's count against the
    limit stored for this hour; a new limit is computed once per group and hour."""
    count, limit = row["hour_count"], row["spike_limit"]
    marked = row["escalating_since"] is not None
    if not marked and count <= ESCALATION_FLOOR:
        return False
    if limit is not None and (marked or count <= limit):
        # Unmarking waits for the next hour's first judgement (or refresh_escalation).
        return marked
    return update_escalation(conn, str(row["id"]), at)


# --- Escalation ------------------------------------------------------------------------------


def spike_limit(counts: Sequence[int], hours: int) -> float:
    """The hourly count above which a group escalates, from `counts` (its occurrences per hour
    with occurrences) over `hours` complete hours of history (the rest count as zero)."""
    if hours <= 0:
        return float(YOUNG_FLOOR)
    total = sum(counts)
    mean = total / hours
    variance = max(0.0, sum(c * c for c in counts) / hours - mean * mean)
    floor = YOUNG_FLOOR if hours < YOUNG_HOURS else ESCALATION_FLOOR
    return max(float(floor), mean + ESCALATION_K * math.sqrt(variance), 2 * mean)


def update_escalation(conn: Connection, error_id: str, now: datetime) -> bool:
    """Judge one group at `now` from its hourly counts: mark or unmark it as escalating, store
    the hour's limit, and return whether it is escalating."""
    hour = _hour(now)
    row = conn.execute(
        text(
            "SELECT first_occurred_at, escalating_since, resolution_status FROM error_logs "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {"id": error_id},
    ).one_or_none()
    if row is None:
        return False
    is_open = row.resolution_status in OPEN_STATUSES
    since = max(_hour(row.first_occurred_at), hour - timedelta(hours=BASELINE_HOURS))
    hours = max(0, int((hour - since).total_seconds() // 3600))
    buckets: dict[datetime, int] = dict(
        conn.execute(
            text(
                "SELECT bucket, occurrences FROM error_occurrence_hourly "
                "WHERE error_id = CAST(:id AS uuid) AND bucket >= :since AND bucket <= :hour"
            ),
            {"id": error_id, "since": since, "hour": hour},
        ).all()
    )
    current = buckets.pop(hour, 0)
    previous = buckets.get(hour - timedelta(hours=1), 0)
    history = [n for b, n in buckets.items() if b < hour]
    limit = spike_limit(history, hours)
    # The previous hour is judged against the baseline before it.
    previous_limit = spike_limit(
        [n for b, n in buckets.items() if b < hour - timedelta(hours=1)], max(0, hours - 1)
    )
    spiking = is_open and (current > limit or previous > previous_limit)
    conn.execute(
        text(
            "INSERT INTO error_escalation_limits (error_id, bucket, spike_limit)"
            " VALUES (CAST(:id AS uuid), :hour, :limit) ON CONFLICT (error_id) DO UPDATE"
            " SET bucket = EXCLUDED.bucket, spike_limit = EXCLUDED.spike_limit"
        ),
        {"id": error_id, "hour": hour, "limit": limit},
    )
    if spiking and row.escalating_since is None:
        conn.execute(
            text(
                "UPDATE error_logs SET escalating_since = :now"
                " WHERE id = CAST(:id AS uuid) AND error_occurrence_mark()"
            ),
            {"now": now, "id": error_id},
        )
    elif not spiking and row.escalating_since is not None:
        conn.execute(
            text(
                "UPDATE error_logs SET escalating_since = NULL"
                " WHERE id = CAST(:id AS uuid) AND error_occurrence_mark()"
            ),
            {"id": error_id},
        )
    return spiking


def refresh_escalation(conn: Connection, now: datetime) -> int:
    """Re-judge every group marked escalating (few: a partial index), so one that went quiet
    stops escalating without a new occurrence; returns how many still are."""
    ids = conn.scalars(text("SELECT id FROM error_logs WHERE escalating_since IS NOT NULL")).all()
    return sum(update_escalation(conn, str(error_id), now) for error_id in ids)
