"""The Overview's headline figures: counts of now from the counts the database keeps by trigger
(migration 095), figures over time aggregated in SQL (through the analytics rollups where a
figure spans days; see data/analytics.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from taskmaster_dash.data.analytics import Filters, Window, floor_to
from taskmaster_dash.data.analytics_tasks import OPEN, STEP, created_vs_completed
from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.errors.filters import OPEN_STATUSES

DAY = timedelta(days=1)


@dataclass(frozen=True)
class OpenBacklog:
    pending: int
    in_progress: int

    @property
    def total(self) -> int:
        return self.pending + self.in_progress


@dataclass(frozen=True)
class ErrorHeadline:
    errors_last_hour: int
    unresolved: int  # open: unresolved or investigating
    regressed: int  # open again after a resolved one came back (REGRESSED_SQL)


def task_counts(actor: Actor) -> dict[str, int]:
    """Tasks by status now, as the user may see them: the totals for users who see every task,
    else the sum of the per-assignee counts RLS lets them read (their own and unassigned)."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT status, sum(n)::bigint AS n FROM headline_task_counts
           WHERE level = CASE WHEN (SELECT current_user_sees_all_tasks()) THEN 1 ELSE 0 END
           GROUP BY status""",
    )
    return {row["status"]: int(row["n"]) for row in rows}


def open_backlog(actor: Actor) -> OpenBacklog:
    """The open tasks now (kept by trigger), as the user may see them."""
    counts = task_counts(actor)
    return OpenBacklog(*(counts.get(status, 0) for status in OPEN))


def completed_per_day_of_week(actor: Actor) -> float:
    """Tasks completed in the last 7 days, per day, from the hourly rollup (RLS there shows
    developers only their own and unassigned rows)."""
    week = created_vs_completed(actor, Window.last(7 * DAY, step=STEP), Filters())
    return int(week["completed"].sum()) / 7


def mean_validation_score(actor: Actor, days: int = 7) -> float | None:
    from taskmaster_dash.data.analytics_validations import mean_score

    return mean_score(actor, Window.last(days * DAY, step=STEP), Filters())


def error_headline(actor: Actor) -> ErrorHeadline:
    """The last hour's errors from their index, the open and regressed ones from the counts kept
    by trigger (error_logs shows every row to whoever may read errors, so they are global)."""
    row = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT (SELECT count(*) FROM error_logs
                     WHERE created_at >= now() - interval '1 hour') AS errors_last_hour,
                  COALESCE(sum(n), 0)::bigint AS unresolved,
                  COALESCE(sum(n) FILTER (WHERE regressed), 0)::bigint AS regressed
           FROM headline_error_counts WHERE status = ANY (CAST(:open AS text[]))""",
        {"open": list(OPEN_STATUSES)},
    )[0]
    return ErrorHeadline(**row)


def completed_per_day(actor: Actor, days: int = 30) -> pd.DataFrame:
    """Columns day, completed: one row per (UTC) day, zero-filled, oldest first."""
    now = datetime.now(UTC)
    window = Window(floor_to(now - (days - 1) * DAY, DAY), now, DAY)
    frame = created_vs_completed(actor, window, Filters())
    return pd.DataFrame({"day": frame["bucket"].dt.date, "completed": frame["completed"]})
