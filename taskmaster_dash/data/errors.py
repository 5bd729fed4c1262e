"""Error triage: the filtered, paged list of error_logs, one error's detail, and the actions
(investigate, resolve, ignore, reopen; one or many in one transaction) with a check that
nobody changed the row since the user saw it.

Everything the client sends is checked here: statuses, severities and the rest against the
spec's values, sort columns against a whitelist, ids as UUIDs, notes for presence and length.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.grid import parse_grid_request
from taskmaster_dash.data.refusal import Refused

OPEN_STATUSES = ("unresolved", "investigating")
CLOSED_STATUSES = ("resolved", "wont_fix", "duplicate")
MAX_NOTE = 5000
MAX_BULK = 500
MAX_PAGE = 500
COUNT_CAP = 10_000


class TriageRefused(Refused):
    """A request that cannot be carried out as asked; the message is meant for the user.
    Nothing was written."""


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


# -- the list ------------------------------------------------------------------------------


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


def _search_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(flt: ErrorFilter, search_ids: list[str] | None = None) -> tuple[str, dict[str, Any]]:
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
    if flt.search and search_ids is not None:
        clauses.append("e.id = ANY(CAST(:search_ids AS uuid[]))")
        params["search_ids"] = search_ids
    elif flt.search:
        clauses.append("(e.error_code || ' ' || e.error_message) ILIKE :pattern ESCAPE '\\'")
        params["pattern"] = _search_pattern(flt.search)
    return (" AND ".join(clauses) or "true"), params


SEARCH_ID_LIMIT = 10_000


@contextmanager
def _list_query(
    actor: Actor, flt: ErrorFilter, broad_search_in_order: bool = False
) -> Iterator[tuple[Connection, str, dict]]:
    """A read transaction for the list, with the filter's WHERE clause and parameters.

    Plans here depend on the values (partial indexes, how selective a filter is), so a reused
    generic plan can be very wrong: every statement is planned for its own values. A search
    first asks the trigram index for the matching ids (error_ids_matching, migration 032);
    when there are few, the list filters by them."""
    with get_database().transaction(PoolName.READ, actor) as conn:
        conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        search_ids = None
        if flt.search:
            found = conn.scalar(
                text("SELECT CAST(error_ids_matching(:pattern, :limit) AS text[])"),
                {"pattern": _search_pattern(flt.search), "limit": SEARCH_ID_LIMIT + 1},
            )
            if len(found) <= SEARCH_ID_LIMIT:
                search_ids = list(found)
            elif broad_search_in_order:
                # Matches are dense: walking an index in the page's order finds a page at
                # once. The planner cannot know (under RLS it guesses a handful of matches
                # and would sort them all), so sorting is made its last resort here.
                conn.execute(text("SET LOCAL enable_sort = off"))
        where, params = _where(flt, search_ids)
        yield conn, where, params


# Grid column id -> the SQL sort keys. Nothing else can be sorted on: these have indexes
# (sql/migrations/030, 031), so a sorted page stays fast at millions of rows. One direction for
# all keys of a sort, ending with the unique id, keeps pages stable and lets an index serve.
SORTABLE = {
    "last_occurred_at": ("e.last_occurred_at",),
    "first_occurred_at": ("e.first_occurred_at",),
    "occurrence_count": ("e.occurrence_count",),
    "error_severity": ("error_severity_rank(e.error_severity)", "e.last_occurred_at"),
}


def _order_by(sort_model: Any) -> str:
    sort = parse_grid_request({"sortModel": sort_model}).sort
    column, direction = sort[0] if sort and sort[0][0] in SORTABLE else ("last_occurred_at", "desc")
    return ", ".join(f"{key} {direction.upper()}" for key in (*SORTABLE[column], "e.id"))


def _fmt_time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else None


def error_page(
    actor: Actor, flt: ErrorFilter, sort_model: Any, start: int, end: int
) -> list[dict[str, Any]]:
    """Rows start..end-1 of the filtered list, sorted in SQL; JSON-ready dicts for the grid."""
    start = max(0, int(start))
    limit = max(1, min(MAX_PAGE, int(end) - start))
    order = _order_by(sort_model)
    # The page's ids first (an index-only scan can skip OFFSET rows without reading the table),
    # then just those rows, planned normally.
    with _list_query(actor, flt, broad_search_in_order=True) as (conn, where, params):
        ids = list(
            conn.scalars(
                text(
                    f"""SELECT e.id::text FROM error_logs e WHERE {where}
                        ORDER BY {order} LIMIT :limit OFFSET :offset"""
                ),
                {**params, "limit": limit, "offset": start},
            )
        )
        conn.execute(text("RESET enable_sort"))
        # t.id, not e.task_id: a task the user may not see (RLS) joins as NULL, so its id is
        # blanked like its title.
        result = conn.execute(
            text(
                f"""SELECT e.id::text AS id, e.error_severity, e.error_code, e.error_message,
                       e.error_category, e.service_name, e.service_version, e.environment,
                       e.occurrence_count, e.first_occurred_at, e.last_occurred_at,
                       e.resolution_status, t.id::text AS task_id, t.title AS task_title,
                       e.updated_at
                    FROM error_logs e LEFT JOIN tasks t ON t.id = e.task_id
                    WHERE e.id = ANY(CAST(:ids AS uuid[]))
                    ORDER BY {order}"""
            ),
            {"ids": ids},
        )
        rows = [dict(row) for row in result.mappings()]
    for row in rows:
        row["service"] = " ".join(p for p in (row["service_name"], row["service_version"]) if p)
        row["task"] = row["task_title"] or (row["task_id"][:8] if row["task_id"] else None)
        row["first_occurred_at"] = _fmt_time(row["first_occurred_at"])
        row["last_occurred_at"] = _fmt_time(row["last_occurred_at"])
        row["updated_at"] = row["updated_at"].isoformat()
    return rows


def count_errors(actor: Actor, flt: ErrorFilter, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many errors match, counting at most `cap`; (count, True) when there are more."""
    with _list_query(actor, flt) as (conn, where, params):
        counted = conn.scalar(
            text(f"SELECT count(*) FROM (SELECT 1 FROM error_logs e WHERE {where} LIMIT :cap) s"),
            {**params, "cap": cap + 1},
        )
    return min(counted, cap), counted > cap


def service_names(actor: Actor, limit: int = 200) -> list[str]:
    """Distinct service names, read by skipping along the index (fast at millions of rows)."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """WITH RECURSIVE s(name) AS (
               (SELECT service_name FROM error_logs WHERE service_name IS NOT NULL
                ORDER BY service_name LIMIT 1)
               UNION ALL
               SELECT (SELECT service_name FROM error_logs WHERE service_name > s.name
                       ORDER BY service_name LIMIT 1)
               FROM s WHERE s.name IS NOT NULL)
           SELECT name FROM s WHERE name IS NOT NULL LIMIT :limit""",
        {"limit": limit},
    )
    return [row["name"] for row in rows]


# -- one error -----------------------------------------------------------------------------


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


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    label: str  # past tense, for messages
    allowed_from: tuple[str, ...]
    note_required: bool


ACTIONS = {
    "resolve": Action("resolved", OPEN_STATUSES, True),
    "ignore": Action("ignored", OPEN_STATUSES, True),
    "reopen": Action("reopened", CLOSED_STATUSES, False),
    # Someone is on it: the list and the Overview still count it as open.
    "investigate": Action("marked investigating", ("unresolved",), False),
}


@dataclass(frozen=True)
class Seen:
    """An error as the user saw it: its id and updated_at."""

    error_id: str
    updated_at: datetime


def parse_seen(error_id: Any, updated_at: Any) -> Seen:
    canonical = parse_uuid(error_id)
    seen_at = parse_timestamp(updated_at)
    if canonical is None:
        raise TriageRefused("That is not an error id; nothing was saved.")
    if seen_at is None:
        raise TriageRefused("The page did not say which version of the error you saw; reload it.")
    return Seen(canonical, seen_at)


def check_note(action: str, note: Any) -> str | None:
    """The note to store (None when empty and allowed); TriageRefused when it is not usable."""
    if action not in ACTIONS:
        raise TriageRefused("Unknown action; nothing was saved.")
    if note is not None and not isinstance(note, str):
        raise TriageRefused("The note must be text; nothing was saved.")
    cleaned = (note or "").replace("\x00", "").strip()
    if len(cleaned) > MAX_NOTE:
        raise TriageRefused(
            f"The note is {len(cleaned):,} characters; at most {MAX_NOTE:,} are allowed. "
            "Nothing was saved."
        )
    if not cleaned and ACTIONS[action].note_required:
        raise TriageRefused(f"A note is required to mark errors {ACTIONS[action].label}.")
    return cleaned or None


def _who_changed(conn: Connection, error_id: str, since: datetime) -> str:
    row = (
        conn.execute(
            text(
                """SELECT username, "timestamp", new_values->>'resolution_status' AS status
                   FROM audit_logs
                   WHERE entity_type = 'error_logs' AND entity_id = :id
                   ORDER BY "timestamp" DESC LIMIT 1"""
            ),
            {"id": error_id},
        )
        .mappings()
        .first()
    )
    if row is None or row["timestamp"] < since - timedelta(seconds=1):
        return "someone (outside this app)"
    when = _fmt_time(row["timestamp"])
    return f"{row['username'] or 'someone'} (at {when} UTC, now {row['status']})"


def _apply(
    conn: Connection,
    actor: Actor,
    seen: Sequence[Seen],
    action: str,
    note: str | None,
    duplicate_of: str | None,
) -> list[str]:
    """Lock the rows, check each is as seen and may take the action, then change them all.
    Raises TriageRefused (and the caller's transaction rolls back) if any one cannot."""
    ids = [s.error_id for s in seen]
    current = {
        row["id"]: row
        for row in conn.execute(
            text(
                """SELECT id::text AS id, updated_at, resolution_status FROM error_logs
                   WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE"""
            ),
            {"ids": ids},
        ).mappings()
    }
    problems = []
    for item in seen:
        row = current.get(item.error_id)
        short = item.error_id[:8]
        if row is None:
            problems.append(f"error {short} does not exist (or is not visible to you)")
        elif row["updated_at"] != item.updated_at:
            problems.append(
                f"error {short} was changed by {_who_changed(conn, item.error_id, item.updated_at)}"
                " after you loaded it; reload to see the change"
            )
        elif row["resolution_status"] not in ACTIONS[action].allowed_from:
            problems.append(
                f"error {short} is {row['resolution_status']} and cannot be {ACTIONS[action].label}"
            )
    if problems:
        raise TriageRefused("Nothing was saved: " + "; ".join(problems) + ".")
    if action == "reopen":
        status = "unresolved"
    elif action == "investigate":
        status = "investigating"
    elif action == "ignore" and duplicate_of:
        status = "duplicate"
    else:
        status = "resolved" if action == "resolve" else "wont_fix"
    closing = status in CLOSED_STATUSES
    changed = conn.execute(
        text(
            """UPDATE error_logs
               SET resolution_status = :status,
                   resolution_notes = :note,
                   resolved_at = CASE WHEN :closing THEN now() END,
                   resolved_by = CASE WHEN :closing THEN CAST(:username AS text) END,
                   metadata = CASE
                       WHEN CAST(:duplicate_of AS text) IS NOT NULL
                       THEN COALESCE(metadata, '{}'::jsonb)
                            || jsonb_build_object('duplicate_of', CAST(:duplicate_of AS text))
                       ELSE COALESCE(metadata, '{}'::jsonb) - 'duplicate_of' END
               WHERE id = ANY(CAST(:ids AS uuid[]))
               RETURNING id::text"""
        ),
        {
            "status": status,
            "note": note,
            "closing": closing,
            "username": actor.username,
            "duplicate_of": duplicate_of,
            "ids": ids,
        },
    ).scalars()
    done = list(changed)
    if len(done) != len(ids):  # RLS hid some rows from the update: write nothing
        raise TriageRefused("Nothing was saved: you may not change some of these errors.")
    return done


def change_errors(
    actor: Actor,
    seen: Sequence[Seen],
    action: str,
    note: Any,
    duplicate_of: Any = None,
) -> list[str]:
    """Apply `action` to every error in `seen` in ONE transaction: all of them or none.
    Returns the changed ids; raises TriageRefused (nothing written) or a database error."""
    cleaned = check_note(action, note)
    if not seen:
        raise TriageRefused("Select at least one error first.")
    if len(seen) > MAX_BULK:
        raise TriageRefused(f"At most {MAX_BULK} errors at once; nothing was saved.")
    if len({s.error_id for s in seen}) != len(seen):
        raise TriageRefused("The same error was selected twice; nothing was saved.")
    target = None
    if duplicate_of not in (None, ""):
        if action != "ignore":
            raise TriageRefused("Only an ignored error can be a duplicate; nothing was saved.")
        target = parse_uuid(duplicate_of)
        if target is None:
            raise TriageRefused("'Duplicate of' must be an error id; nothing was saved.")
        if any(s.error_id == target for s in seen):
            raise TriageRefused("An error cannot be a duplicate of itself; nothing was saved.")
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if target and not conn.scalar(
            text("SELECT EXISTS (SELECT 1 FROM error_logs WHERE id = :id)"), {"id": target}
        ):
            raise TriageRefused(f"There is no error {target}; nothing was saved.")
        return _apply(conn, actor, seen, action, cleaned, target)
