"""What the triage list is filtered by, and the checks on values the client sends: statuses,
ids as UUIDs, times as ISO 8601; the filter becomes one WHERE clause here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OPEN_STATUSES = ("unresolved", "investigating")
CLOSED_STATUSES = ("resolved", "wont_fix", "duplicate")

# A group (one error_logs row, migration 080) is regressed while it is open again after a
# resolved one came back (ingest sets regressed_at and leaves it: resolving it again ends the
# regression), and escalating while ingest marks its hourly rate a spike (escalating_since).
# The one definition of each, for the badges, the filters and the Overview.
_OPEN_SQL = "e.resolution_status IN ('unresolved', 'investigating')"
REGRESSED_SQL = f"(e.regressed_at IS NOT NULL AND {_OPEN_SQL})"
ESCALATING_SQL = f"(e.escalating_since IS NOT NULL AND {_OPEN_SQL})"


def parse_uuid(value: Any) -> str | None:
    """The canonical form of a UUID, or None for anything else."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 date or time (UTC when no zone is given), or None for anything else."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ErrorFilter:
    """The list's filter, already checked (pages/_timerange.py builds it from the URL)."""

    statuses: tuple[str, ...] = OPEN_STATUSES  # empty: every status
    severities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    since: datetime | None = None  # errors whose first..last occurrence overlaps the window
    until: datetime | None = None
    search: str = ""
    regressed: bool | None = None  # True: only regressed groups; False: none; None: either
    escalating: bool | None = None


def search_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where_clause(
    flt: ErrorFilter, search_ids: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause for `flt`; with `search_ids` (the ids the search matched, when few),
    those replace the text match."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for column, key, values in (
        ("resolution_status", "statuses", flt.statuses),
        ("error_severity", "severities", flt.severities),
        ("error_category", "categories", flt.categories),
        ("service_name", "services", flt.services),
        ("environment", "environments", flt.environments),
        ("error_code", "codes", flt.codes),
    ):
        if values:
            clauses.append(f"e.{column} = ANY(CAST(:{key} AS text[]))")
            params[key] = list(values)
    since, until = flt.since, flt.until
    if since:  # the error occurred in the window: its [first, last] overlaps [since, until]
        clauses.append("e.last_occurred_at >= :since")
        params["since"] = since
    if until:
        clauses.append("e.first_occurred_at <= :until")
        params["until"] = until
    for condition, wanted in ((REGRESSED_SQL, flt.regressed), (ESCALATING_SQL, flt.escalating)):
        if wanted is not None:
            clauses.append(condition if wanted else f"NOT {condition}")
    if flt.search and search_ids is not None:
        clauses.append("e.id = ANY(CAST(:search_ids AS uuid[]))")
        params["search_ids"] = search_ids
    elif flt.search:
        clauses.append("(e.error_code || ' ' || e.error_message) ILIKE :pattern ESCAPE '\\'")
        params["pattern"] = search_pattern(flt.search)
    return (" AND ".join(clauses) or "true"), params


def fmt_time(value: datetime | None) -> str | None:
    """A time as the triage pages show it: UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else None
