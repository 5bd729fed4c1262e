"""A metric's past values, for the rule preview (alerts/preview.py): what the evaluator would
have read at each step of the last days, per instance (label set).

SQL metrics are rebuilt from the analytics rollups (migrations 020-025: errors in 5-minute
steps, validations in hours) plus the raw rows after the rollups' end, so seven days cost a
few thousand rows, not a scan of the tables. PromQL metrics are a Prometheus range query.
Metrics that keep no history (the backlog now, slow queries now ...) cannot be previewed:
NoHistory says so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from taskmaster_dash.data.analytics import floor_to
from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName, get_database
from taskmaster_dash.data.prometheus import PrometheusReader, step_seconds
from taskmaster_dash.data.refusal import Refused

SPAN = timedelta(days=7)
ERROR_STEP = timedelta(minutes=5)
VALIDATION_STEP = timedelta(hours=1)

Labels = tuple[tuple[str, str], ...]  # an instance's labels, sorted by name


class NoHistory(Refused):
    """The metric cannot be replayed (it keeps no history, or its source cannot be read)."""


@dataclass(frozen=True)
class History:
    """Values at each evaluation time (`times`, every `step`), per instance; None where the
    metric had no value."""

    step: timedelta
    times: list[datetime]
    series: dict[Labels, list[float | None]] = field(default_factory=dict)
    note: str = ""

    def points(self, labels: Labels) -> list[tuple[datetime, float | None]]:
        return list(zip(self.times, self.series[labels], strict=True))


# The columns a group_by name reads, in the rollup and in the raw table (never client text:
# only names listed here reach the SQL).
ERROR_COLUMNS = {
    "service_name": ("service_name", "COALESCE(e.service_name, '')"),
    "severity": ("error_severity", "e.error_severity"),
    "error_type": ("error_category", "e.error_category"),
}
# The same in the error counts kept by trigger (headline_error_counts, migration 095).
OPEN_COUNT_COLUMNS = {
    "service_name": "COALESCE(h.service, '')",
    "severity": "h.severity",
    "error_type": "h.category",
}
VALIDATION_COLUMNS = {"validation_type": ("validation_type", "v.validation_type")}


def _columns(
    group_by: Sequence[str], known: Mapping[str, tuple[str, str]], metric: str
) -> list[str]:
    unknown = [g for g in group_by if g not in known]
    if unknown:
        raise NoHistory(f"{metric} cannot be grouped by {', '.join(unknown)}")
    return list(group_by)


def _grid(end: datetime, step: timedelta, span: timedelta) -> list[datetime]:
    last = floor_to(end, step)
    count = int(span / step)
    return [last - step * (count - i) for i in range(count + 1)]


def _counts_by_step(
    sql: str, params: dict, group_by: list[str], times: list[datetime], value_columns: list[str]
) -> dict[Labels, dict[str, np.ndarray]]:
    """The query's rows (ts, g0, g1 ..., values...) as arrays over `times` (0 where a step has
    no row), one set per label set (g0 is the label group_by[0] ...). The rows come back as one
    row per label set holding arrays (seconds since the epoch, values), so a week of 5-minute
    steps is a few rows to fetch, not thousands of timestamps to parse."""
    names = [f"g{i}" for i in range(len(group_by))]
    keys = "".join(f"{n}, " for n in names)
    rows = get_database().fetch_rows(
        PoolName.READ,
        SYSTEM_ACTOR,
        f"""SELECT {keys}array_agg(CAST(extract(epoch FROM ts) AS bigint)) AS at,
                   {", ".join(f"array_agg(COALESCE({c}, 0)) AS {c}" for c in value_columns)}
            FROM ({sql}) AS steps {f"GROUP BY {', '.join(names)}" if names else ""}""",
        params,
    )
    first = int(times[0].timestamp())
    step = int((times[1] - times[0]).total_seconds())
    out: dict[Labels, dict[str, np.ndarray]] = {}
    for row in rows:
        if row["at"] is None:  # no group_by and no rows: one row of NULL arrays
            continue
        labels = tuple(sorted(zip(group_by, (str(row[n]) for n in names), strict=True)))
        offset = np.array(row["at"], dtype=np.int64) - first
        at = offset // step
        keep = (offset % step == 0) & (at >= 0) & (at < len(times))  # the rows on the grid
        arrays = {c: np.zeros(len(times)) for c in value_columns}
        for c in value_columns:
            np.add.at(arrays[c], at[keep], np.array(row[c], dtype=float)[keep])
        out[labels] = arrays
    return out


def _window_sum(values: np.ndarray, steps: int) -> np.ndarray:
    """At each i, the sum of values[i - steps .. i - 1]: the steps that ended by times[i]."""
    total = np.concatenate([[0.0], np.cumsum(values)])
    upper = np.arange(len(values))
    return total[upper] - total[np.maximum(upper - steps, 0)]


def _errors(params: Mapping[str, float], group_by: list[str], end: datetime) -> History:
    """errors_per_minute: errors logged in the `window_minutes` before each 5-minute step,
    per minute. The window is counted in whole 5-minute steps."""
    window = max(1, round(float(params.get("window_minutes", 5)) / 5))
    times = _grid(end, ERROR_STEP, SPAN)
    lo = times[0] - ERROR_STEP * window
    rollup = [ERROR_COLUMNS[g][0] for g in group_by]
    raw = [ERROR_COLUMNS[g][1] for g in group_by]
    sql = f"""
    WITH p AS (SELECT GREATEST(LEAST(s.covered_until, :end), :lo) AS split
               FROM analytics_rollup_state s WHERE s.rollup = 'errors')
    SELECT r.bucket AS ts, {"".join(f"r.{c} AS g{i}, " for i, c in enumerate(rollup))}
           sum(r.created_n) AS n
    FROM analytics_error_5m r
    WHERE r.bucket >= :lo AND r.bucket < (SELECT split FROM p)
    GROUP BY {", ".join(str(i + 1) for i in range(len(group_by) + 1))}
    UNION ALL
    SELECT analytics_bin(interval '5 minutes', e.created_at),
           {"".join(f"{c}, " for c in raw)} count(*)
    FROM error_logs e
    WHERE e.created_at >= (SELECT split FROM p) AND e.created_at < :end
    GROUP BY {", ".join(str(i + 1) for i in range(len(group_by) + 1))}
    """
    steps = _grid(end, ERROR_STEP, SPAN + ERROR_STEP * window)  # the lookback of the first
    counts = _counts_by_step(sql, {"lo": lo, "end": end}, group_by, steps, ["n"])
    minutes = window * 5
    series: dict[Labels, list[float | None]] = {}
    for labels, arrays in counts.items():
        per_minute = _window_sum(arrays["n"], window)[window:] / minutes
        series[labels] = [round(v, 6) for v in per_minute.tolist()]
    if not group_by and not series:
        series = {(): [0.0] * len(times)}
    return History(ERROR_STEP, times, _sorted(series), f"{minutes}-minute windows, 5-minute steps")


def _validations(
    metric: str, params: Mapping[str, float], group_by: list[str], end: datetime
) -> History:
    """validation_failure_share (failed or errored runs / runs) and mean_validation_score over the
    `window_minutes` before each hour, counted in whole hours; no runs: no data."""
    window = max(1, round(float(params.get("window_minutes", 60)) / 60))
    times = _grid(end, VALIDATION_STEP, SPAN)
    lo = times[0] - VALIDATION_STEP * window
    cols = "".join(f"r.{VALIDATION_COLUMNS[g][0]} AS g{i}, " for i, g in enumerate(group_by))
    raw = "".join(f"{VALIDATION_COLUMNS[g][1]}, " for g in group_by)
    keys = ", ".join(str(i + 1) for i in range(len(group_by) + 1))
    sql = f"""
    WITH p AS (SELECT GREATEST(LEAST(s.covered_until, :end), :lo) AS split
               FROM analytics_rollup_state s WHERE s.rollup = 'validations')
    SELECT r.bucket AS ts, {cols} sum(r.runs) AS runs,
           sum(r.runs) FILTER (WHERE r.validation_status IN ('failed', 'error')) AS failed,
           sum(r.score_n) AS score_n, sum(r.score_sum) AS score_sum
    FROM analytics_validation_hourly r
    WHERE r.bucket >= :lo AND r.bucket < (SELECT split FROM p)
    GROUP BY {keys}
    UNION ALL
    SELECT analytics_bin(interval '1 hour', v.created_at), {raw} count(*),
           count(*) FILTER (WHERE v.validation_status IN ('failed', 'error')),
           count(v.validation_score), COALESCE(sum(v.validation_score), 0)
    FROM validation_results v
    WHERE v.created_at >= (SELECT split FROM p) AND v.created_at < :end
    GROUP BY {keys}
    """
    steps = _grid(end, VALIDATION_STEP, SPAN + VALIDATION_STEP * window)
    wanted = ["runs", "failed", "score_n", "score_sum"]
    counts = _counts_by_step(sql, {"lo": lo, "end": end}, group_by, steps, wanted)
    top, bottom = (
        ("failed", "runs") if metric == "validation_failure_share" else ("score_sum", "score_n")
    )
    series: dict[Labels, list[float | None]] = {}
    for labels, arrays in counts.items():
        summed = {c: _window_sum(arrays[c], window)[window:] for c in (top, bottom)}
        series[labels] = [
            None if b == 0 else round(t / b, 6)
            for t, b in zip(summed[top].tolist(), summed[bottom].tolist(), strict=True)
        ]
    return History(VALIDATION_STEP, times, _sorted(series), f"{window}-hour windows, 1-hour steps")


def _sorted(series: dict[Labels, list[float | None]]) -> dict[Labels, list[float | None]]:
    return dict(sorted(series.items()))


def promql_history(reader: PrometheusReader, expr: str, group_by: Sequence[str], end: datetime):
    """A PromQL expression over the last 7 days; series that share the kept labels are added
    up (as the evaluator adds up an ungrouped vector)."""
    start = end - SPAN
    step = timedelta(seconds=step_seconds(start, end))
    frame = reader.range(expr, start, end)
    times: list[datetime] = []
    series: dict[Labels, dict[datetime, float]] = {}
    if not frame.empty:
        times = sorted({t.to_pydatetime() for t in frame["time"]})
        for row in frame.to_dict("records"):
            labels = tuple(sorted((g, str(row.get(g) or "")) for g in group_by))
            at = row["time"].to_pydatetime()
            values = series.setdefault(labels, {})
            values[at] = values.get(at, 0.0) + float(row["value"])
    return History(
        step,
        times,
        {k: [v.get(t) for t in times] for k, v in sorted(series.items())},
        f"Prometheus range query, {int(step.total_seconds())}-second steps",
    )


NO_HISTORY = {
    "slow_query_seconds": "slow queries are read from the running statements only",
    "connection_failures": "connection failures are checked live only",
    "pending_tasks": "the backlog keeps no history of task statuses",
    "oldest_pending_task_age_seconds": "the backlog keeps no history of task statuses",
    "regressed_errors": "error group states keep no history",
    "escalating_errors": "error group states keep no history",
}


def sql_history(
    metric: str, params: Mapping[str, float], group_by: Sequence[str], end: datetime | None = None
) -> History:
    """A catalogue SQL metric's values over the last 7 days, per instance."""
    end = end or datetime.now(UTC)
    if metric in NO_HISTORY:
        raise NoHistory(f"{metric} cannot be previewed: {NO_HISTORY[metric]}")
    if metric == "watchdog":
        times = _grid(end, ERROR_STEP, SPAN)
        return History(ERROR_STEP, times, {(): [1.0] * len(times)}, "always 1")
    if metric == "errors_per_minute":
        return _errors(params, _columns(group_by, ERROR_COLUMNS, metric), end)
    if metric in ("validation_failure_share", "mean_validation_score"):
        columns = _columns(group_by, VALIDATION_COLUMNS, metric)
        return _validations(metric, params, columns, end)
    if metric == "open_errors":
        return _open_errors(_columns(group_by, ERROR_COLUMNS, metric), end)
    raise NoHistory(f"{metric} cannot be previewed: it keeps no history")


def _open_errors(group_by: list[str], end: datetime) -> History:
    """Open (unresolved or investigating) errors at each 5-minute step, walked back from now:
    open then = open now - created since + resolved since (resolved_at says when each closed).
    Open now is the trigger-kept count (migration 095) less the open errors not created
    before `end` (a handful, from the created_at index), not a count over the whole table."""
    times = _grid(end, ERROR_STEP, SPAN)
    raw = [ERROR_COLUMNS[g][1] for g in group_by]
    kept = [OPEN_COUNT_COLUMNS[g] for g in group_by]
    rollup = [ERROR_COLUMNS[g][0] for g in group_by]
    keys = ", ".join(str(i + 1) for i in range(len(group_by) + 1))
    lo = times[0]
    sql = f"""
    WITH p AS (SELECT GREATEST(LEAST(s.covered_until, :end), :lo) AS split
               FROM analytics_rollup_state s WHERE s.rollup = 'errors')
    SELECT r.bucket AS ts, {"".join(f"r.{c} AS g{i}, " for i, c in enumerate(rollup))}
           sum(r.created_n) AS created, sum(r.resolved_n) AS resolved, 0 AS open_now
    FROM analytics_error_5m r
    WHERE r.bucket >= :lo AND r.bucket < (SELECT split FROM p)
    GROUP BY {keys}
    UNION ALL
    SELECT analytics_bin(interval '5 minutes', e.created_at), {"".join(f"{c}, " for c in raw)}
           count(*), 0, 0
    FROM error_logs e WHERE e.created_at >= (SELECT split FROM p) AND e.created_at < :end
    GROUP BY {keys}
    UNION ALL
    SELECT analytics_bin(interval '5 minutes', e.resolved_at), {"".join(f"{c}, " for c in raw)}
           0, count(*), 0
    FROM error_logs e WHERE e.resolved_at >= (SELECT split FROM p) AND e.resolved_at < :end
    GROUP BY {keys}
    UNION ALL
    SELECT CAST(:last AS timestamptz), {"".join(f"o.g{i}, " for i in range(len(group_by)))}
           0, 0, sum(o.n)
    FROM (SELECT {"".join(f"{c}, " for c in kept)} h.n FROM headline_error_counts h
          WHERE h.status IN ('unresolved', 'investigating')
          UNION ALL
          SELECT {"".join(f"{c}, " for c in raw)} -1 FROM error_logs e
          WHERE e.resolution_status IN ('unresolved', 'investigating')
            AND (e.created_at >= :end OR e.created_at IS NULL)
         ) AS o ({"".join(f"g{i}, " for i in range(len(group_by)))} n)
    GROUP BY {keys} HAVING sum(o.n) <> 0
    """
    params = {"lo": lo, "end": end, "last": times[-1]}
    wanted = ["created", "resolved", "open_now"]
    counts = _counts_by_step(sql, params, group_by, times, wanted)
    series: dict[Labels, list[float | None]] = {}
    for labels, a in counts.items():
        # Created minus resolved in the steps from times[i] on (the last step runs to `end`).
        after = np.cumsum((a["created"] - a["resolved"])[::-1])[::-1]
        series[labels] = (a["open_now"].sum() - after).tolist()
    return History(ERROR_STEP, times, _sorted(series), "5-minute steps")


def rule_history(
    source_kind: str,
    source: str,
    params: Mapping[str, float],
    group_by: Sequence[str],
    end: datetime | None = None,
) -> History:
    """The last 7 days of what a rule reads: its catalogue metric, or its PromQL expression on
    the configured Prometheus. NoHistory when there is none to read."""
    end = end or datetime.now(UTC)
    if source_kind == "sql":
        return sql_history(source, params, group_by, end)
    from taskmaster_dash.data.prometheus import PrometheusUnavailable, get_prometheus

    reader = get_prometheus()
    if reader is None:
        raise NoHistory("PromQL rules cannot be previewed: Prometheus is switched off")
    try:
        return promql_history(reader, source, group_by, end)
    except PrometheusUnavailable as exc:
        raise NoHistory(f"cannot read the history from Prometheus: {exc.reason}") from None
