"""The triage list: one page of the filtered, sorted error groups (one error_logs row each,
migration 080) with their hourly sparkline and the services and versions they were seen in,
how many match, service names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.data.db import Actor, PoolName, get_database, records
from taskmaster_dash.data.errors.filters import (
    ESCALATING_SQL,
    REGRESSED_SQL,
    ErrorFilter,
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
    # Escalating first, the newest spike first (few rows: a partial index, migration 080).
    "escalating_since": ("e.escalating_since", "e.last_occurred_at"),
}
NULLS_LAST = {"e.escalating_since"}  # the groups that are not escalating come last either way
SPARK_WINDOWS = (24, 7 * 24)  # hours of the sparkline: the last 24 h, or the last 7 days
VERSIONS_SHOWN = 4  # per service; the tooltip says how many more


def _order_by(sort_model: Any) -> str:
    sort = parse_grid_request({"sortModel": sort_model}).sort
    column, direction = sort[0] if sort and sort[0][0] in SORTABLE else ("last_occurred_at", "desc")
    return ", ".join(
        f"{key} {direction.upper()}" + (" NULLS LAST" if key in NULLS_LAST else "")
        for key in (*SORTABLE[column], "e.id")
    )


def seen_in_label(versions: list[tuple[str, str]]) -> str:
    """'api 1.4, 1.3 · worker 2.0': services (newest first) with their versions (newest first)."""
    by_service: dict[str, list[str]] = {}
    for service, version in versions:
        by_service.setdefault(service, [])
        if version and version not in by_service[service]:
            by_service[service].append(version)
    parts = []
    for service, seen in by_service.items():
        shown = ", ".join(seen[:VERSIONS_SHOWN]) + (
            f" +{len(seen) - VERSIONS_SHOWN}" if len(seen) > VERSIONS_SHOWN else ""
        )
        parts.append(" ".join(p for p in (service or "(no service)", shown) if p))
    return " · ".join(parts)


def seen_in(conn: Connection, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(service, version) pairs each group was seen in, newest first (error_group_versions)."""
    result = conn.execute(
        text(
            """SELECT error_id::text AS id, service_name, service_version
               FROM error_group_versions WHERE error_id = ANY(CAST(:ids AS uuid[]))
               ORDER BY error_id, last_seen_at DESC, service_name, service_version"""
        ),
        {"ids": ids},
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for row in result:
        found.setdefault(row.id, []).append((row.service_name, row.service_version))
    return found


def _page_ids(
    conn: Connection, where: str, params: dict[str, Any], order: str, start: int, limit: int
) -> list[str]:
    return list(
        conn.scalars(
            text(
                f"""SELECT e.id::text FROM error_logs e WHERE {where}
                    ORDER BY {order} LIMIT :limit OFFSET :offset"""
            ),
            {**params, "limit": limit, "offset": start},
        )
    )


def _escalating_first_ids(
    conn: Connection, where: str, params: dict[str, Any], order: str, start: int, limit: int
) -> list[str]:
    """The escalating sort in two index walks instead of one sort of every row: the escalating
    groups (few: the partial index of migration 080), then the rest newest first, the same
    order as `ORDER BY escalating_since NULLS LAST, last_occurred_at, id`."""
    escalating = _page_ids(
        conn, f"{where} AND e.escalating_since IS NOT NULL", params, order, start, limit
    )
    if len(escalating) == limit:
        return escalating
    ahead = start + len(escalating)  # escalating rows before the first quiet one on this page
    if not escalating:
        ahead = conn.scalar(
            text(
                f"""SELECT count(*) FROM error_logs e
                    WHERE {where} AND e.escalating_since IS NOT NULL"""
            ),
            params,
        )
    rest_order = order.split(", ", 1)[1]  # without the escalating key
    rest = _page_ids(
        conn,
        f"{where} AND e.escalating_since IS NULL",
        params,
        rest_order,
        max(0, start - ahead),
        limit - len(escalating),
    )
    return escalating + rest


def error_page(
    actor: Actor,
    flt: ErrorFilter,
    sort_model: Any,
    start: int,
    end: int,
    spark_hours: int = SPARK_WINDOWS[0],
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Groups start..end-1 of the filtered list, sorted in SQL, each with `sparkline` (its
    occurrences in each of the last `spark_hours` hours, up to `now`), `seen_in` (services and
    versions), and whether it is `regressed` / `escalating`. Times stay datetimes (the page
    formats them); the rest is ready for the grid."""
    spark_hours = spark_hours if spark_hours in SPARK_WINDOWS else SPARK_WINDOWS[0]
    start = max(0, int(start))
    limit = max(1, min(MAX_PAGE, int(end) - start))
    order = _order_by(sort_model)
    # The sparkline's hours: the current one last.
    spark_to = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    spark_from = spark_to - timedelta(hours=spark_hours - 1)
    # The page's ids first (an index-only scan can skip OFFSET rows without reading the table),
    # then just those rows, planned apart (MATERIALIZED): one statement, one round trip. The
    # escalating sort and a search (which may have turned sorting off) read the ids first.
    escalating_first = order.startswith("e.escalating_since")
    with _list_query(actor, flt, broad_search_in_order=True) as (conn, where, params):
        if escalating_first or flt.search:
            read_ids = _escalating_first_ids if escalating_first else _page_ids
            ids = read_ids(conn, where, params, order, start, limit)
            if flt.search:
                conn.execute(text("RESET enable_sort"))  # the rows below are planned normally
            page = "SELECT unnest(CAST(:ids AS uuid[])) AS id"
            page_params: dict[str, Any] = {"ids": ids}
        else:
            page = f"""SELECT e.id FROM error_logs e WHERE {where}
                       ORDER BY {order} LIMIT :limit OFFSET :offset"""
            page_params = {**params, "limit": limit, "offset": start}
        # t.id, not e.task_id: a task the user may not see (RLS) joins as NULL, so its id is
        # blanked like its title. The sparkline's hours that have occurrences (primary-key
        # ranges, zero-filled below) and the services and versions come in the same statement.
        result = conn.execute(
            text(
                f"""WITH page AS MATERIALIZED ({page})
                    SELECT e.id::text AS id, e.error_severity, e.error_code, e.error_message,
                       e.error_category, e.service_name, e.service_version, e.environment,
                       e.occurrence_count, e.first_occurred_at, e.last_occurred_at,
                       e.resolution_status, t.id::text AS task_id, t.title AS task_title,
                       e.updated_at, e.escalating_since, {REGRESSED_SQL} AS regressed,
                       {ESCALATING_SQL} AS escalating,
                       ARRAY(SELECT ARRAY[CAST(extract(epoch FROM h.bucket - :spark_from) AS int)
                                          / 3600, h.occurrences]
                             FROM error_occurrence_hourly h
                             WHERE h.error_id = e.id
                               AND h.bucket BETWEEN :spark_from AND :spark_to) AS spark_hours,
                       ARRAY(SELECT ARRAY[v.service_name, v.service_version]
                             FROM error_group_versions v WHERE v.error_id = e.id
                             ORDER BY v.last_seen_at DESC, v.service_name, v.service_version
                            ) AS versions
                    FROM page JOIN error_logs e ON e.id = page.id
                    LEFT JOIN tasks t ON t.id = e.task_id
                    ORDER BY {order}"""
            ),
            {**page_params, "spark_from": spark_from, "spark_to": spark_to},
        )
        rows = records(result)
    for row in rows:
        # Groups recorded before migration 080 have no version rows: their own service counts.
        own = [(row["service_name"], row["service_version"] or "")] if row["service_name"] else []
        versions = [(service, version) for service, version in row.pop("versions")]
        row["seen_in"] = seen_in_label(versions or own)
        sparkline = [0] * spark_hours
        for hour, occurrences in row.pop("spark_hours"):
            sparkline[hour] = occurrences
        row["sparkline"] = sparkline
        row["task"] = row["task_title"] or (row["task_id"][:8] if row["task_id"] else None)
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
