"""Error rates, aggregated in PostgreSQL from the 5-minute error rollup plus the raw rows after
it. error_logs has no per-user row filter (RLS: errors:read), so every reader may use it."""

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

STEP = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def _filters(severity: str, category: str, service: str, code: str) -> str:
    return " AND ".join(
        [
            when(severity, "f_severity"),
            when(category, "f_category"),
            when(service, "f_service"),
            when(code, "f_code"),
        ]
    )


# Error events from `:lo` to `:until`: whole hours from the hourly rollup, then 5-minute steps,
# then raw rows after the rollups' end (`split`). Hours are used up to `hour_cap` only, so a
# chart with 5-minute buckets reads them just for its baseline (before the first bucket).
EVENTS = f"""
WITH p AS (
    SELECT split, LEAST(analytics_bin(interval '1 hour', split), :hour_cap) AS split_h
    FROM (SELECT GREATEST(LEAST(s.covered_until, :split_cap), :beginning) AS split
          FROM analytics_rollup_state s WHERE s.rollup = 'errors') x
), ev AS (
    SELECT r.bucket AS ts, r.error_code, r.error_category, r.error_severity, r.service_name,
           r.created_n, r.occurrences, r.resolved_n, r.resolve_seconds
    FROM analytics_error_hourly r
    WHERE r.bucket >= :lo AND r.bucket < (SELECT split_h FROM p)
      AND {_filters("r.error_severity", "r.error_category", "r.service_name", "r.error_code")}
    UNION ALL
    SELECT r.bucket, r.error_code, r.error_category, r.error_severity, r.service_name,
           r.created_n, r.occurrences, r.resolved_n, r.resolve_seconds
    FROM analytics_error_5m r
    WHERE r.bucket >= GREATEST(:lo, (SELECT split_h FROM p)) AND r.bucket < (SELECT split FROM p)
      AND {_filters("r.error_severity", "r.error_category", "r.service_name", "r.error_code")}
    UNION ALL
    SELECT e.created_at, e.error_code, e.error_category, e.error_severity,
           COALESCE(e.service_name, ''), 1, e.occurrence_count, 0, 0
    FROM error_logs e
    WHERE e.created_at >= GREATEST(:lo, (SELECT split FROM p)) AND e.created_at < :until
      AND {_filters("e.error_severity", "e.error_category", "e.service_name", "e.error_code")}
    UNION ALL
    SELECT e.resolved_at, e.error_code, e.error_category, e.error_severity,
           COALESCE(e.service_name, ''), 0, 0, 1,
           GREATEST(0, extract(epoch FROM e.resolved_at - e.first_occurred_at))::float8
    FROM error_logs e
    WHERE e.resolved_at >= GREATEST(:lo, (SELECT split FROM p)) AND e.resolved_at < :until
      AND {_filters("e.error_severity", "e.error_category", "e.service_name", "e.error_code")}
)
"""

# What the error rate can be split by (never a column name from the client).
DIMENSIONS = {
    "severity": "error_severity",
    "category": "error_category",
    "service": "NULLIF(service_name, '')",
}


def _events_df(actor: Actor, window: Window, filters: Filters, select: str, *, lo=None):
    params = {
        **window.params(STEP),
        **filters.params(),
        "lo": lo or window.start,
        "hour_cap": window.split_cap(HOUR),
        "beginning": BEGINNING,
    }
    return fetch_frame(actor, EVENTS + select, params)


def error_rate(actor: Actor, window: Window, filters: Filters, by: str) -> pd.DataFrame:
    """bucket, series, errors: error rows created per bucket, by `by` (a DIMENSIONS key)."""
    return _events_df(
        actor,
        window,
        filters,
        f"""SELECT analytics_bin(:bucket, ts) AS bucket,
                   COALESCE({DIMENSIONS[by]}, '(unknown)') AS series,
                   sum(created_n)::bigint AS errors
            FROM ev WHERE created_n > 0 GROUP BY 1, 2 ORDER BY 2, 1""",
    )


def top_errors(actor: Actor, window: Window, filters: Filters, limit: int = 10) -> pd.DataFrame:
    """error_code, severity, occurrences, errors: the codes seen most often in the window."""
    return _events_df(
        actor,
        window,
        filters,
        """SELECT error_code, min(error_severity) AS severity,
                  sum(occurrences)::bigint AS occurrences, sum(created_n)::bigint AS errors
           FROM ev WHERE created_n > 0
           GROUP BY error_code ORDER BY occurrences DESC, error_code LIMIT """
        + str(int(limit)),
    )


UNRESOLVED_TOTALS = running_total_sql(
    "error_severity", "created_n - resolved_n", "SELECT DISTINCT series FROM per", "unresolved"
)


def unresolved_over_time(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """bucket, series (severity), unresolved: errors created and not yet resolved at the end of
    each bucket."""
    return _events_df(actor, window, filters, UNRESOLVED_TOTALS, lo=BEGINNING)


def time_to_resolve(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """bucket, series (severity), hours, resolved: mean hours from first occurrence to
    resolution of the errors resolved in each bucket."""
    return _events_df(
        actor,
        window,
        filters,
        """SELECT analytics_bin(:bucket, ts) AS bucket, error_severity AS series,
                  round((sum(resolve_seconds) / sum(resolved_n) / 3600)::numeric, 2)::float
                      AS hours,
                  sum(resolved_n)::bigint AS resolved
           FROM ev WHERE resolved_n > 0 GROUP BY 1, 2 ORDER BY 2, 1""",
    )
