"""What every analytics query shares: the time window and its bucket size, the filters, the
choice between the rollup tables and the raw rows, and the rollup refresh.

The rollups (sql/migrations/020_analytics_rollups.sql) hold complete time steps up to
`covered_until`; every query reads the rollup before a split point and the raw rows after it,
so charts are exact and current. The split is "-infinity" (raw rows only) when the bucket is
finer than the rollup's step, and for tasks when the user may not see every task (RLS).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName, get_database
from taskmaster_dash.data.leader import ROLLUP_REFRESHER_LOCK_KEY, ElectedLoop
from taskmaster_dash.services import current as current_services

log = logging.getLogger(__name__)

# Candidate bucket sizes, smallest first, and the most points one chart may draw. 500 keeps
# every preset range at or above the rollups' steps from 24 h up (see bucket_for).
BUCKETS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=7),
)
MAX_POINTS = 500
MIN_POINTS = 24
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # the same origin as analytics_bin() in SQL
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)  # "all history" for cumulative series
# Off: every query reads the raw rows (the benchmark's comparison; a switch if a rollup breaks).
USE_ROLLUPS = True


def bucket_for(span: timedelta, step: timedelta | None = None) -> timedelta:
    """THE bucket rule: the smallest bucket that draws at most MAX_POINTS points over `span`;
    but never finer than the data's rollup `step` when that still draws MIN_POINTS points
    (finer buckets would have to be counted from raw rows)."""
    bucket = next((b for b in BUCKETS if span / b <= MAX_POINTS), BUCKETS[-1])
    if step is not None and bucket < step and span / step >= MIN_POINTS:
        return step
    return bucket


def floor_to(ts: datetime, step: timedelta) -> datetime:
    return ORIGIN + ((ts - ORIGIN) // step) * step


@dataclass(frozen=True)
class Window:
    """A chart's time axis: buckets of `bucket` from `start` (aligned) up to `end`."""

    start: datetime
    end: datetime
    bucket: timedelta

    @classmethod
    def between(cls, start: datetime, end: datetime, step: timedelta | None = None) -> Window:
        bucket = bucket_for(end - start, step)
        return cls(floor_to(start, bucket), end, bucket)

    @classmethod
    def last(
        cls, span: timedelta, now: datetime | None = None, step: timedelta | None = None
    ) -> Window:
        now = now or datetime.now(UTC)
        return cls.between(now - span, now, step)

    def split_cap(self, step: timedelta) -> datetime:
        """Where the rollup (of `step`) must end for this window: at the last whole step before
        the window's end when the buckets are whole steps, else before the first bucket (the
        buckets then come from raw rows)."""
        if not USE_ROLLUPS:
            return BEGINNING
        if self.bucket % step == timedelta(0):
            return floor_to(self.end, step)
        return floor_to(self.start, step)

    def params(self, step: timedelta) -> dict[str, Any]:
        return {
            "start": self.start,
            "until": self.end,
            "bucket": self.bucket,
            "split_cap": self.split_cap(step),
        }


UNASSIGNED = "(unassigned)"


@dataclass(frozen=True)
class Filters:
    """Validated filter values (pages/_timerange.py checks them against each key's allowed
    values). A tuple holds the values a key may take (empty: not filtered)."""

    status: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    assignee: tuple[str, ...] = ()
    # the task list only (the rollups keep none of these)
    priority: tuple[str, ...] = ()
    complexity: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    age: tuple[str, ...] = ()
    task: str | None = None
    # the triage list only
    environment: tuple[str, ...] = ()
    q: str | None = None
    regressed: str | None = None  # "yes" / "no" (error groups, migration 080)
    escalating: str | None = None

    def params(self) -> dict[str, Any]:
        """Bound parameters f_<name>: a list, or None when the filter is not set."""
        params: dict[str, Any] = {
            f"f_{name}": list(getattr(self, name)) or None
            for name in ("status", "type", "severity", "category", "service", "code", "assignee")
        }
        # the breakdowns say "(unassigned)"; the rollups and COALESCE in SQL keep ''
        params["f_assignee"] = [
            "" if name == UNASSIGNED else name for name in self.assignee
        ] or None
        params["f_task"] = self.task
        return params


def when(column: str, param: str) -> str:
    """`column` is one of the values in :param, or true when the filter is not set (a bound
    parameter either way)."""
    return f"(CAST(:{param} AS text[]) IS NULL OR {column} = ANY(CAST(:{param} AS text[])))"


def running_total_sql(series: str, delta: str, grid_series: str, value: str) -> str:
    """The tail of a query over an `ev` CTE (rows with a time `ts`): `delta` summed per bucket
    and `series`, then a running total per series on a zero-filled grid of buckets, so the
    first bucket carries everything before the window. `grid_series` is a one-column SELECT of
    the series to draw. All four are SQL fragments written in this package, never user input."""
    return f""", per AS (
               SELECT GREATEST(analytics_bin(:bucket, ts), CAST(:start AS timestamptz) - :bucket)
                          AS bucket,
                      {series} AS series, sum({delta}) AS delta
               FROM ev GROUP BY 1, 2
           ), grid AS (
               SELECT b AS bucket, series_list.s AS series
               FROM generate_series(CAST(:start AS timestamptz) - :bucket,
                                    CAST(:until AS timestamptz), :bucket) AS b
               CROSS JOIN ({grid_series}) AS series_list(s)
               WHERE b < :until
           )
           SELECT bucket, series, {value}::bigint FROM (
               SELECT g.bucket, g.series,
                      sum(COALESCE(per.delta, 0)) OVER (PARTITION BY g.series
                                                        ORDER BY g.bucket) AS {value}
               FROM grid g LEFT JOIN per USING (bucket, series)
           ) x
           WHERE bucket >= :start ORDER BY series, bucket"""


def fetch_frame(actor: Actor, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """An analytics query on the READ pool, as the user."""
    return get_database().fetch_df(PoolName.READ, actor, sql, params)


def refresh_rollups(hours: int | None = 3) -> dict[str, int]:
    """Recompute the last `hours` hours of every rollup (None: rebuild them all). The panel
    answers this process shares were computed before: they end here."""
    rows = get_database().fetch_rows(
        PoolName.BACKGROUND,
        SYSTEM_ACTOR,
        "SELECT rollup, steps FROM analytics_refresh(CAST(:hours AS int))",
        {"hours": hours},
    )
    current_services().caches.panels.clear()
    return {row["rollup"]: row["steps"] for row in rows}


def compact_headline_counts() -> None:
    """Fold the delta rows of the trigger-kept counts into one row per key (migrations 095 and
    097), so a read sums a handful of rows however many statements changed them."""
    get_database().fetch_rows(
        PoolName.BACKGROUND,
        SYSTEM_ACTOR,
        "SELECT 1 AS done FROM headline_counts_compact(), validation_counts_compact()",
    )


class RollupRefresher(ElectedLoop):
    """Keeps the rollups current from a daemon thread on the BACKGROUND pool, in the one
    process that holds its advisory lock (refreshing them from every worker would only repeat
    the same work and contend on the same rows)."""

    thread_name = "analytics-refresh"

    def __init__(self, interval_seconds: float = 60.0, hours: int = 3) -> None:
        super().__init__(ROLLUP_REFRESHER_LOCK_KEY, "rollup_refresher", interval_seconds)
        self.hours = hours

    def work(self) -> None:
        refresh_rollups(self.hours)
        compact_headline_counts()
