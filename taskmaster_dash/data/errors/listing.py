"""The triage list: one page of the filtered, sorted errors, how many match, service names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.errors.filters import (
    ErrorFilter,
    fmt_time,
    search_pattern,
    where_clause,
)
from taskmaster_dash.data.grid import parse_grid_request

MAX_PAGE = 500
COUNT_CAP = 10_000
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
                {"pattern": search_pattern(flt.search), "limit": SEARCH_ID_LIMIT + 1},
            )
            if len(found) <= SEARCH_ID_LIMIT:
                search_ids = list(found)
            elif broad_search_in_order:
                # Matches are dense: walking an index in the page's order finds a page at
                # once. The planner cannot know (under RLS it guesses a handful of matches
                # and would sort them all), so sorting is made its last resort here.
                conn.execute(text("SET LOCAL enable_sort = off"))
        where, params = where_clause(flt, search_ids)
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
        row["first_occurred_at"] = fmt_time(row["first_occurred_at"])
        row["last_occurred_at"] = fmt_time(row["last_occurred_at"])
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
