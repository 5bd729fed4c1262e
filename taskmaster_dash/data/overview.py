"""The Overview's headline figures, each aggregated in SQL (through the analytics rollups where
a figure spans days; see data/analytics.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from taskmaster_dash.data.analytics import Filters, Window, floor_to
from taskmaster_dash.data.analytics_tasks import STEP, created_vs_completed, open_counts
from taskmaster_dash.data.db import Actor, PoolName, get_database

DAY = timedelta(days=1)


@dataclass(frozen=True)
class TaskHeadline:
    open_backlog: int
    pending: int
    in_progress: int
    completed_last_7_days: int

    @property
    def completed_per_day(self) -> float:
        return self.completed_last_7_days / 7


@dataclass(frozen=True)
class ErrorHeadline:
    errors_last_hour: int
    unresolved: int


def task_headline(actor: Actor) -> TaskHeadline:
    """Open counts from the open-backlog snapshot and completions from the hourly rollup (both
    refreshed with the rollups; RLS there shows developers only their own and unassigned rows)."""
    open_now = open_counts(actor, "type", Filters()).groupby("status")["tasks"].sum()
    pending, in_progress = int(open_now.get("pending", 0)), int(open_now.get("in_progress", 0))
    week = created_vs_completed(actor, Window.last(7 * DAY, step=STEP), Filters())
    return TaskHeadline(
        open_backlog=pending + in_progress,
        pending=pending,
        in_progress=in_progress,
        completed_last_7_days=int(week["completed"].sum()),
    )


def mean_validation_score(actor: Actor, days: int = 7) -> float | None:
    from taskmaster_dash.data.analytics_validations import mean_score

    return mean_score(actor, Window.last(days * DAY, step=STEP), Filters())


def error_headline(actor: Actor) -> ErrorHeadline:
    row = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT (SELECT count(*) FROM error_logs
                     WHERE created_at >= now() - interval '1 hour') AS errors_last_hour,
                  (SELECT count(*) FROM error_logs
                     WHERE resolution_status IN ('unresolved', 'investigating')) AS unresolved""",
    )[0]
    return ErrorHeadline(**row)


def completed_per_day(actor: Actor, days: int = 30) -> pd.DataFrame:
    """Columns day, completed: one row per (UTC) day, zero-filled, oldest first."""
    now = datetime.now(UTC)
    window = Window(floor_to(now - (days - 1) * DAY, DAY), now, DAY)
    frame = created_vs_completed(actor, window, Filters())
    return pd.DataFrame({"day": frame["bucket"].dt.date, "completed": frame["completed"]})
