"""Backlog and throughput: aggregated in PostgreSQL from the hourly task rollup plus the raw rows
after it. Everyone reads the rollups; their RLS (migration 024) gives a developer only the rows
of their own and unassigned tasks, so their sums equal the RLS-filtered tasks table."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from taskmaster_dash.data.analytics import (
    BEGINNING,
    Filters,
    Window,
    fetch_frame,
    running_total_sql,
    when,
)
from taskmaster_dash.data.db import Actor

STEP = timedelta(hours=1)
OPEN = ("pending", "in_progress")
CLOSED = ("completed", "failed", "cancelled")
# The backlog's series as status filters ("closed since" stands for the three closed states).
BACKLOG_SERIES = {"closed since": ",".join(CLOSED)}


def _filters(status: str, type_: str, assignee: str) -> str:
    return " AND ".join(
        [when(status, "f_status"), when(type_, "f_type"), when(assignee, "f_assignee")]
    )


# Task events (created, closed) from `:lo` to `:until`: rollup rows before the split, raw rows
# after it. Users who may not see every task read the rollup's per-assignee rows (level 0 or 2;
# RLS hides the all-assignee totals and other people's rows from them, whatever Python asks).
EVENTS = f"""
WITH p AS (
    SELECT LEAST(s.covered_until, :split_cap) AS split,
           CASE WHEN current_user_sees_all_tasks() THEN CAST(:level AS int)
                ELSE CAST(:level AS int) & 2 END AS level
    FROM analytics_rollup_state s WHERE s.rollup = 'tasks'
), ev AS (
    SELECT r.bucket AS ts, r.status, r.type, r.assignee, r.created_n, r.closed_n,
           r.completed_n, r.estimated_sum, r.actual_sum, r.hours_n
    FROM analytics_task_hourly r
    WHERE r.level = (SELECT level FROM p) AND r.bucket >= :lo AND r.bucket < (SELECT split FROM p)
      AND {_filters("r.status", "r.type", "r.assignee")}
    UNION ALL
    SELECT t.created_at, t.status, t.type, COALESCE(t.assigned_to, ''), 1, 0, 0, 0, 0, 0
    FROM tasks t
    WHERE t.created_at >= GREATEST(:lo, (SELECT split FROM p)) AND t.created_at < :until
      AND {_filters("t.status", "t.type", "COALESCE(t.assigned_to, '')")}
    UNION ALL
    SELECT t.completed_at, t.status, t.type, COALESCE(t.assigned_to, ''), 0, 1,
           (t.status = 'completed')::int,
           CASE WHEN t.status = 'completed' AND t.actual_hours IS NOT NULL
                THEN COALESCE(t.estimated_hours, 0) ELSE 0 END,
           CASE WHEN t.status = 'completed' AND t.estimated_hours IS NOT NULL
                THEN COALESCE(t.actual_hours, 0) ELSE 0 END,
           (t.status = 'completed' AND t.estimated_hours IS NOT NULL
            AND t.actual_hours IS NOT NULL)::int
    FROM tasks t
    WHERE t.completed_at >= GREATEST(:lo, (SELECT split FROM p)) AND t.completed_at < :until
      AND {_filters("t.status", "t.type", "COALESCE(t.assigned_to, '')")}
)
"""


def rollup_level(filters: Filters, by_type: bool = False) -> int:
    """Which totals of the task rollup answer these filters (GROUPING(type, assignee)); for a
    developer EVENTS keeps the assignee (level & 2)."""
    return (2 if not filters.type and not by_type else 0) + (0 if filters.assignee else 1)


def _events_df(
    actor: Actor, window: Window, filters: Filters, select: str, *, lo=None, by_type=False
):
    params = {
        **window.params(STEP),
        **filters.params(),
        "lo": lo or window.start,
        "level": rollup_level(filters, by_type),
    }
    return fetch_frame(actor, EVENTS + select, params)


BACKLOG_TOTALS = running_total_sql(
    "CASE WHEN status IN ('pending', 'in_progress') THEN status ELSE 'closed since' END",
    "created_n - closed_n",
    "SELECT unnest(ARRAY['pending', 'in_progress', 'closed since'])",
    "open",
)


def backlog_over_time(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """bucket, series, open: tasks open at the end of each bucket (created and not yet closed),
    split by their status now: pending, in_progress, or closed since."""
    return _events_df(actor, window, filters, BACKLOG_TOTALS, lo=BEGINNING)


def created_vs_completed(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """bucket, created, completed (zero-filled)."""
    return _events_df(
        actor,
        window,
        filters,
        """, per AS (
               SELECT analytics_bin(:bucket, ts) AS bucket, sum(created_n) AS created,
                      sum(completed_n) AS completed
               FROM ev GROUP BY 1
           )
           SELECT b AS bucket, COALESCE(per.created, 0)::bigint AS created,
                  COALESCE(per.completed, 0)::bigint AS completed
           FROM generate_series(CAST(:start AS timestamptz), CAST(:until AS timestamptz), :bucket)
                AS b
           LEFT JOIN per ON per.bucket = b
           WHERE b < :until ORDER BY b""",
    )


def estimated_vs_actual(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """type, tasks, estimated, actual: mean hours of the tasks completed in the window."""
    return _events_df(
        actor,
        window,
        filters,
        """SELECT type, sum(hours_n)::bigint AS tasks,
                  round(sum(estimated_sum) / NULLIF(sum(hours_n), 0), 2)::float AS estimated,
                  round(sum(actual_sum) / NULLIF(sum(hours_n), 0), 2)::float AS actual
           FROM ev GROUP BY type HAVING sum(hours_n) > 0 ORDER BY type""",
        by_type=True,
    )


AGE_BUCKETS = ("< 1 day", "1-3 days", "3-7 days", "7-14 days", "14-30 days", "> 30 days")
# What the open-backlog snapshot (analytics_open_tasks, rebuilt with the rollups) counts by.
OPEN_DIMENSIONS = (
    "priority",
    "complexity",
    "type",
    "assignee",
    "tag",
    "age",
    "children",
    "dependencies",
)
BREAKDOWNS = ("priority", "complexity", "type", "assignee", "tag")


def open_counts(actor: Actor, dim: str, filters: Filters) -> pd.DataFrame:
    """key, status, tasks: the open backlog now by `dim`, from the snapshot (refreshed with the
    rollups). Its RLS gives a developer only their own and unassigned tasks' rows."""
    if dim not in OPEN_DIMENSIONS:
        raise ValueError(f"unknown dimension {dim!r}")
    return fetch_frame(
        actor,
        f"""SELECT o.key, o.status, sum(o.tasks)::bigint AS tasks FROM analytics_open_tasks o
            WHERE o.dim = :dim AND {_filters("o.status", "o.type", "o.assignee")}
            GROUP BY o.key, o.status""",
        {**filters.params(), "dim": dim},
    )


def open_breakdown(actor: Actor, by: str, filters: Filters) -> pd.DataFrame:
    """key, status, tasks: the open backlog now, by `by` (one of BREAKDOWNS); numbers in
    numeric order, names largest first."""
    frame = open_counts(actor, by, filters)
    if by in ("priority", "complexity"):
        order = frame["key"].map(lambda k: int(k) if k.isdigit() else -1)
    else:
        order = -frame.groupby("key")["tasks"].transform("sum")
    return frame.assign(_o=order).sort_values(["_o", "key", "status"]).drop(columns="_o")


def open_task_age(actor: Actor, filters: Filters) -> pd.DataFrame:
    """age, status, tasks: how long the open tasks have been waiting."""
    return open_counts(actor, "age", filters).rename(columns={"key": "age"})


def open_task_links(actor: Actor, filters: Filters) -> pd.DataFrame:
    """links, children, dependencies: open tasks by how many child tasks and dependencies they
    have (as the spec's active_tasks view counts them); 5 means 5 or more."""
    counts = {
        dim: open_counts(actor, dim, filters).groupby("key")["tasks"].sum()
        for dim in ("children", "dependencies")
    }
    links = pd.DataFrame({"links": range(6)})
    for dim, series in counts.items():
        series.index = series.index.astype(int)
        links[dim] = links["links"].map(series).fillna(0).astype(int)
    return links


# Age bucket -> how old (created_at before now minus ...) a task in it is: [from, to).
AGE_BOUNDS = {
    "< 1 day": ("0 days", "1 day"),
    "1-3 days": ("1 day", "3 days"),
    "3-7 days": ("3 days", "7 days"),
    "7-14 days": ("7 days", "14 days"),
    "14-30 days": ("14 days", "30 days"),
    "> 30 days": ("30 days", "100 years"),
}


def _list_filters(filters: Filters) -> tuple[str, dict]:
    """The task list's own filters (the breakdown charts' categories) as SQL and parameters."""
    clauses: list[str] = []
    params: dict[str, object] = {}
    for name, column in (("priority", "t.priority"), ("complexity", "t.complexity_score")):
        values = [int(v) for v in getattr(filters, name)]
        if values:
            clauses.append(f"{column} = ANY(CAST(:l_{name} AS int[]))")
            params[f"l_{name}"] = values
    if filters.tag:
        clauses.append("t.tags ?| CAST(:l_tag AS text[])")
        params["l_tag"] = list(filters.tag)
    ages = []
    for i, age in enumerate(filters.age):
        older, younger = AGE_BOUNDS[age]
        ages.append(
            f"(t.created_at <= now() - CAST(:l_age_from{i} AS interval)"
            f" AND t.created_at > now() - CAST(:l_age_to{i} AS interval))"
        )
        params[f"l_age_from{i}"], params[f"l_age_to{i}"] = older, younger
    if ages:
        clauses.append("(" + " OR ".join(ages) + ")")
    return "".join(f" AND {c}" for c in clauses), params


def task_list(
    actor: Actor, window: Window | None, filters: Filters, page: int = 0, size: int = 25
) -> pd.DataFrame:
    """One page of tasks matching the filters, oldest first (open ones unless a status is
    given). With a window, tasks created in it (closed statuses only: completed in it). One
    row more than `size` is returned when there is a next page."""
    closed = bool(filters.status) and set(filters.status) <= set(CLOSED)
    column = "t.completed_at" if closed else "t.created_at"
    time_filter = f"AND {column} >= :start AND {column} < :until" if window else ""
    open_only = not (filters.status or filters.task)
    status_filter = "AND t.status IN ('pending', 'in_progress')" if open_only else ""
    extra, extra_params = _list_filters(filters)
    params = {**filters.params(), **extra_params, "limit": size + 1, "offset": page * size}
    if window:
        params.update(start=window.start, until=window.end)
    return fetch_frame(
        actor,
        f"""SELECT t.id::text AS id, t.title, t.status, t.type, t.priority,
                   COALESCE(t.assigned_to, '') AS assignee, t.created_at, t.completed_at
            FROM tasks t
            WHERE {_filters("t.status", "t.type", "COALESCE(t.assigned_to, '')")}
              AND (CAST(:f_task AS uuid) IS NULL OR t.id = CAST(:f_task AS uuid))
              {status_filter} {time_filter} {extra}
            ORDER BY {column}, t.id LIMIT :limit OFFSET :offset""",
        params,
    )
