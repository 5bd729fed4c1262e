"""The Overview's headline figures, each aggregated in one SQL query."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from data.db import Actor, PoolName, get_database


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
    row = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT count(*) FILTER (WHERE status IN ('pending', 'in_progress')) AS open_backlog,
                  count(*) FILTER (WHERE status = 'pending') AS pending,
                  count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
                  (SELECT count(*) FROM tasks WHERE status = 'completed'
                     AND completed_at >= now() - interval '7 days') AS completed_last_7_days
           FROM tasks WHERE status IN ('pending', 'in_progress')""",
    )[0]
    return TaskHeadline(**row)


def mean_validation_score(actor: Actor, days: int = 7) -> float | None:
    row = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT avg(validation_score)::float AS score FROM validation_results
           WHERE created_at >= now() - make_interval(days => :days)""",
        {"days": days},
    )[0]
    return row["score"]


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
    """Columns day, completed: one row per day, zero-filled, oldest first."""
    return get_database().fetch_df(
        PoolName.READ,
        actor,
        """SELECT d.day::date AS day, count(t.id) AS completed
           FROM generate_series(date_trunc('day', now()) - make_interval(days => :days - 1),
                                date_trunc('day', now()), interval '1 day') AS d(day)
           LEFT JOIN tasks t ON t.status = 'completed'
                AND t.completed_at >= d.day AND t.completed_at < d.day + interval '1 day'
           GROUP BY d.day ORDER BY d.day""",
        {"days": days},
    )
