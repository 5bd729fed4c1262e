"""Validation scores, aggregated in PostgreSQL from the daily and hourly validation rollups plus
the raw rows after them. validation_results has no per-user row filter (RLS: validations:read)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from taskmaster_dash.data.analytics import BEGINNING, Filters, Window, fetch_frame, when
from taskmaster_dash.data.db import Actor

STEP = timedelta(hours=1)
# Execution-time histogram bins are floor(8 * ln(ms)); a bin's upper edge in ms:
EXEC_BIN_UPPER = "round(exp((bin + 1) / 8.0))"

# The rollup ends at `split`; whole days from `d_lo` to `d_hi` come from the daily layer (025)
# when :daily (no time binning finer than a day), the hours around them from the hourly one.
_SPLIT = """p AS (
    SELECT split, d_lo,
           CASE WHEN :daily THEN GREATEST(analytics_bin(interval '1 day', split), d_lo)
                ELSE d_lo END AS d_hi
    FROM (SELECT GREATEST(LEAST(s.covered_until, :split_cap), :start) AS split,
                 analytics_bin(interval '1 day', CAST(:start AS timestamptz)
                               - interval '1 microsecond') + interval '1 day' AS d_lo
          FROM analytics_rollup_state s WHERE s.rollup = 'validations') x
)"""


def _layers(columns: str, hourly: str, daily: str, where: str) -> str:
    """The rollup rows from :start to the split: hourly, daily (whole days), hourly."""
    return f"""
    SELECT {columns} FROM {hourly} r
    WHERE r.bucket >= :start AND r.bucket < (SELECT LEAST(d_lo, split) FROM p) AND {where}
    UNION ALL
    SELECT {columns} FROM {daily} r
    WHERE r.bucket >= (SELECT d_lo FROM p) AND r.bucket < (SELECT d_hi FROM p) AND {where}
    UNION ALL
    SELECT {columns} FROM {hourly} r
    WHERE r.bucket >= (SELECT d_hi FROM p) AND r.bucket < (SELECT split FROM p) AND {where}"""


RUNS = f"""
WITH {_SPLIT}, ev AS ({
    _layers(
        "r.bucket AS ts, r.validation_type, r.validation_status, r.version, r.runs, "
        "r.score_n, r.score_sum, r.retried_n, r.retries_sum",
        "analytics_validation_hourly",
        "analytics_validation_daily",
        f"{when('r.validation_type', 'f_type')} AND {when('r.validation_status', 'f_status')}",
    )
}
    UNION ALL
    SELECT v.created_at, v.validation_type, v.validation_status,
           COALESCE(v.claude_code_version, ''), 1, (v.validation_score IS NOT NULL)::int,
           COALESCE(v.validation_score, 0), (v.retry_count > 0)::int, COALESCE(v.retry_count, 0)
    FROM validation_results v
    WHERE v.created_at >= (SELECT split FROM p) AND v.created_at < :until
      AND {when("v.validation_type", "f_type")} AND {when("v.validation_status", "f_status")}
)
"""

HISTOGRAM = f"""
WITH {_SPLIT}, ev AS ({
    _layers(
        "r.validation_type, r.kind, r.bin, r.runs",
        "analytics_validation_hist_hourly",
        "analytics_validation_hist_daily",
        f"r.kind = :kind AND {when('r.validation_type', 'f_type')}",
    )
}
    UNION ALL
    SELECT v.validation_type, :kind,
           CASE WHEN :kind = 's' THEN LEAST(floor(v.validation_score / 10), 9)
                ELSE floor(8 * ln(GREATEST(v.execution_time_ms, 1))) END::smallint,
           1
    FROM validation_results v
    WHERE v.created_at >= (SELECT split FROM p) AND v.created_at < :until
      AND {when("v.validation_type", "f_type")}
      AND CASE WHEN :kind = 's' THEN v.validation_score IS NOT NULL
               ELSE v.execution_time_ms IS NOT NULL END
      AND {when("v.validation_status", "f_status")}
)
"""


def _df(
    actor: Actor, sql: str, window: Window, filters: Filters, binned: bool = False, **extra
) -> pd.DataFrame:
    """`binned`: the query groups by analytics_bin(:bucket, ts), so day rows only serve buckets
    of whole days."""
    daily = not binned or window.bucket % timedelta(days=1) == timedelta(0)
    params = {**window.params(STEP), **filters.params(), "daily": daily, **extra}
    if "kind" in extra and filters.status:
        # the histogram rollup keeps no status: with a status filter, count the raw rows
        params["split_cap"] = BEGINNING
    return fetch_frame(actor, sql, params)


def mean_score(actor: Actor, window: Window, filters: Filters) -> float | None:
    frame = _df(
        actor,
        RUNS + "SELECT (sum(score_sum) / NULLIF(sum(score_n), 0))::float AS score FROM ev",
        window,
        filters,
    )
    value = frame["score"].iloc[0]
    return None if pd.isna(value) else float(value)


def score_over_time(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """bucket, series (validation type), score, runs: mean score per bucket and type."""
    return _df(
        actor,
        RUNS
        + """SELECT analytics_bin(:bucket, ts) AS bucket, validation_type AS series,
                    round(sum(score_sum) / NULLIF(sum(score_n), 0), 2)::float AS score,
                    sum(runs)::bigint AS runs
             FROM ev GROUP BY 1, 2 HAVING sum(score_n) > 0 ORDER BY 2, 1""",
        window,
        filters,
        binned=True,
    )


def status_share(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """bucket, series (status), runs, percent: the share of each outcome per bucket."""
    return _df(
        actor,
        RUNS
        + """SELECT bucket, series, runs,
                    round(100.0 * runs / sum(runs) OVER (PARTITION BY bucket), 2)::float
                        AS percent
             FROM (SELECT analytics_bin(:bucket, ts) AS bucket, validation_status AS series,
                          sum(runs)::bigint AS runs
                   FROM ev GROUP BY 1, 2) x
             ORDER BY series, bucket""",
        window,
        filters,
        binned=True,
    )


def score_distribution(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """score_from, runs: runs per 10-point score band (90 includes 100)."""
    return _df(
        actor,
        HISTOGRAM
        + """SELECT (bin * 10)::int AS score_from, sum(runs)::bigint AS runs
             FROM ev GROUP BY bin ORDER BY bin""",
        window,
        filters,
        kind="s",
    )


def execution_percentiles(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """validation_type, runs, p50_ms, p95_ms, p99_ms: from the execution-time histogram, each
    percentile is the upper edge of the bin that holds it (at most 13% above the exact one)."""
    return _df(
        actor,
        HISTOGRAM
        + f"""SELECT validation_type, max(total)::bigint AS runs,
                     min({EXEC_BIN_UPPER}) FILTER (WHERE cum >= 0.50 * total)::float AS p50_ms,
                     min({EXEC_BIN_UPPER}) FILTER (WHERE cum >= 0.95 * total)::float AS p95_ms,
                     min({EXEC_BIN_UPPER}) FILTER (WHERE cum >= 0.99 * total)::float AS p99_ms
              FROM (SELECT validation_type, bin,
                           sum(sum(runs)) OVER (PARTITION BY validation_type ORDER BY bin) AS cum,
                           sum(sum(runs)) OVER (PARTITION BY validation_type) AS total
                    FROM ev GROUP BY validation_type, bin) x
              GROUP BY validation_type ORDER BY validation_type""",
        window,
        filters,
        kind="e",
    )


def retries(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """validation_type, runs, retried_percent, retries: how often runs needed a retry."""
    return _df(
        actor,
        RUNS
        + """SELECT validation_type, sum(runs)::bigint AS runs,
                    round(100.0 * sum(retried_n) / sum(runs), 2)::float AS retried_percent,
                    sum(retries_sum)::bigint AS retries
             FROM ev GROUP BY 1 ORDER BY 1""",
        window,
        filters,
    )


def by_version(actor: Actor, window: Window, filters: Filters) -> pd.DataFrame:
    """version, runs, score, passed_percent: Claude Code versions compared."""
    return _df(
        actor,
        RUNS
        + """SELECT COALESCE(NULLIF(version, ''), '(unknown)') AS version,
                    sum(runs)::bigint AS runs,
                    round(sum(score_sum) / NULLIF(sum(score_n), 0), 2)::float AS score,
                    round(100.0 * sum(runs) FILTER (WHERE validation_status = 'passed')
                          / sum(runs), 2)::float AS passed_percent
             FROM ev GROUP BY 1 ORDER BY 1""",
        window,
        filters,
    )


def lowest_scoring_runs(
    actor: Actor, window: Window, filters: Filters, limit: int = 20
) -> pd.DataFrame:
    """The lowest-scoring runs in the window, with their task (title if the user may see it)."""
    return fetch_frame(
        actor,
        f"""SELECT v.id::text AS id, v.task_id::text AS task_id, t.title AS task_title,
                   v.validation_type, v.validation_status, v.validation_score::float AS score,
                   v.claude_code_version AS version, v.created_at
            FROM (SELECT * FROM validation_results v
                  WHERE v.validation_score IS NOT NULL
                    AND v.created_at >= :start AND v.created_at < :until
                    AND {when("v.validation_type", "f_type")}
                    AND {when("v.validation_status", "f_status")}
                  ORDER BY v.validation_score, v.created_at DESC LIMIT :limit) v
            LEFT JOIN tasks t ON t.id = v.task_id
            ORDER BY v.validation_score, v.created_at DESC""",
        {"start": window.start, "until": window.end, "limit": limit, **filters.params()},
    )
