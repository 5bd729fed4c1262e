"""The catalogue of named SQL metrics alert rules read (`source: {sql: NAME}`), each with its
parameters and the columns it can be grouped by.

`read_current(rule)` runs the metric's one grouped query (the aggregation happens in SQL) and
returns {instance key: (labels, value)}: one entry per label set, '' for a rule that does not
group. A metric that does not group always answers one entry (or none: no data). A window's whole
5-minute steps are read from the error rollups (migrations 020-021) or the trigger-kept
validation counts (097) and only its edges from the indexed raw rows, so a 7-day window costs
about as much as a 5-minute one.
An SQLAlchemyError means the source could not be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName, get_database

if TYPE_CHECKING:
    from taskmaster_dash.alerts.rules import Rule

Instances = dict[str, tuple[dict[str, str], float]]
# What a metric runs: (connection, its parameters, the columns to group by) -> its instances.
Reader = Callable[[Connection, Mapping[str, float], tuple[str, ...]], Instances]


@dataclass(frozen=True)
class Param:
    default: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    description: str
    unit: str
    reader: Reader
    group_by: tuple[str, ...] = ()  # the columns a rule may group it by (its instance labels)
    params: dict[str, Param] = field(default_factory=dict)

    def read(
        self,
        params: Mapping[str, float],
        group_by: tuple[str, ...] = (),
        conn: Connection | None = None,
    ) -> Instances:
        """The metric now, per instance (on `conn`, or in a transaction of its own)."""
        values = {name: spec.default for name, spec in self.params.items()}
        values.update(params)
        if conn is not None:
            return self.reader(conn, values, group_by)
        with get_database().transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as own:
            return self.reader(own, values, group_by)


def _key(labels: Mapping[str, str]) -> str:
    # The same text as alerts.rules.instance_key (imported there; kept here to avoid a cycle).
    return ",".join(f"{name}={labels[name]}" for name in sorted(labels))


def _grouped(
    conn: Connection,
    sql: str,
    group_by: tuple[str, ...],
    columns: Mapping[str, str],
    params: dict[str, Any],
) -> Instances:
    """Run `sql` with {cols} (the grouping expressions, each `AS g<i>`), {group} (GROUP BY) and
    {keys} (the bare names) filled in; each row's last column is the value."""
    exprs = [f"{columns[name]} AS g{i}" for i, name in enumerate(group_by) if name in columns]
    statement = sql.format(
        cols="".join(f"{e}, " for e in exprs),
        group=("GROUP BY " + ", ".join(f"g{i}" for i in range(len(group_by)))) if group_by else "",
        keys="".join(f"g{i}, " for i in range(len(group_by))),
    )
    rows = conn.execute(text(statement), params).all()
    found: Instances = {}
    for row in rows:
        value = row[-1]
        if value is None:
            continue  # no data for this label set
        labels = {name: "" if row[i] is None else str(row[i]) for i, name in enumerate(group_by)}
        found[_key(labels)] = (labels, float(value))
    return found


def _fixed_query(sql: str, columns: Mapping[str, str] | None = None) -> Reader:
    """A metric's reader that runs `sql` (see _grouped; no parameters) grouped by `columns`."""

    def read(conn: Connection, _params: Mapping[str, float], group: tuple[str, ...]) -> Instances:
        return _grouped(conn, sql, group, columns or {}, {})

    return read


# ------------------------------------------------------------------------------ the metrics


def _watchdog(conn: Connection, _params: Mapping[str, float], _group: tuple[str, ...]) -> Instances:
    """Always 1: the Watchdog rule's heartbeat (it reads nothing, so only a stopped evaluator
    silences it)."""
    return {"": ({}, 1.0)}


_slow_query_seconds = _fixed_query(
    # Average run time of the app's statements running right now (0 when none run).
    r"""SELECT COALESCE(avg(extract(epoch FROM clock_timestamp() - query_start)), 0)
        FROM pg_stat_activity
        WHERE state = 'active' AND application_name LIKE 'taskmaster\_%'
          AND pid <> pg_backend_pid()"""
)


def _connection_failures(
    conn: Connection, _params: Mapping[str, float], _group: tuple[str, ...]
) -> Instances:
    """How many of the pools cannot run `SELECT 1` right now."""
    failed = 0
    for pool in PoolName:
        try:
            get_database().ping(pool)
        except Exception:  # any failure to connect counts
            failed += 1
    return {"": ({}, float(failed))}


_TASK_COLUMNS = {"assigned_to": "COALESCE(assigned_to, '')", "priority": "priority"}


_pending_tasks = _fixed_query(
    "SELECT {cols}count(*) FROM tasks WHERE status = 'pending' {group}", _TASK_COLUMNS
)
# Ungrouped, an empty backlog is 0 s old (not "no data").
_oldest_pending_age = _fixed_query(
    """SELECT {cols}COALESCE(extract(epoch FROM now() - min(created_at)), 0)
       FROM tasks WHERE status = 'pending' {group}""",
    _TASK_COLUMNS,
)


def _ceil(step: str, moment: str) -> str:
    """SQL: the first `step` boundary at or after `moment`."""
    bin_ = f"analytics_bin(interval '{step}', {moment})"
    return f"CASE WHEN {bin_} < {moment} THEN {bin_} + interval '{step}' ELSE {moment} END"


def _window_bounds(conn: Connection, held_until: str, minutes: int) -> dict[str, Any]:
    """The last `minutes` cut where a table of 5-minute steps that holds them up to
    `held_until` (SQL) can serve it: [r_from, r_end) its whole steps, [h_from, h_to) the whole
    hours among them (empty when none; the hourly error rollup is complete up to the 5-minute
    one's last whole hour), and raw rows for [since, r_from) and from r_end on. Exact whatever
    the rollup's age: one never refreshed has r_end = r_from and everything is read raw.

    Read before the query that uses them, so that it is planned with their values: as columns
    of a CTE, PostgreSQL guesses a third of the table for each range and scans error_logs."""
    return dict(
        conn.execute(
            text(
                f"""WITH w AS (
                    SELECT now() - make_interval(mins => :w) AS since,
                           least({held_until}, now()) AS c),
                b AS (SELECT since, {_ceil("5 minutes", "since")} AS r_from, c FROM w),
                e AS (SELECT since, r_from, greatest(c, r_from) AS r_end FROM b),
                h AS (SELECT e.*, least({_ceil("1 hour", "r_from")}, r_end) AS h_from FROM e)
                SELECT since, r_from, r_end, h_from,
                       greatest(analytics_bin(interval '1 hour', r_end), h_from) AS h_to
                FROM h"""
            ),
            {"w": minutes},
        )
        .mappings()
        .one()
    )


# The raw rows outside the rollup's steps, as two ranges of created_at (each an index range).
_EDGES = "(created_at >= :since AND created_at < :r_from) OR created_at >= :r_end"

_ERRORS_HELD_UNTIL = "(SELECT covered_until FROM analytics_rollup_state WHERE rollup = 'errors')"
# validation_counts_5m (migration 097) is kept by trigger: it holds every whole step.
_VALIDATIONS_HELD_UNTIL = "analytics_bin(interval '5 minutes', now())"

_ERROR_ROLLUP = {
    "service_name": ("service_name", "COALESCE(service_name, '')"),
    "severity": ("error_severity", "error_severity"),
    "error_type": ("error_category", "error_category"),
}


def _errors_per_minute(
    conn: Connection, params: Mapping[str, float], group: tuple[str, ...]
) -> Instances:
    """Errors logged per minute, averaged over the last `window_minutes`: whole hours from the
    hourly rollup, 5-minute steps around them and the raw rows at the edges, so a day's window
    reads ~24 rows per label set, not 288."""
    rollup = ", ".join(f"{_ERROR_ROLLUP[g][0]} AS g{i}" for i, g in enumerate(group))
    raw = ", ".join(f"{_ERROR_ROLLUP[g][1]} AS g{i}" for i, g in enumerate(group))
    sep = ", " if group else ""
    minutes = int(params["window_minutes"])
    sql = f"""
        SELECT {{keys}}sum(n) / CAST(:w AS float8) FROM (
            SELECT {rollup}{sep}created_n AS n FROM analytics_error_hourly
            WHERE bucket >= :h_from AND bucket < :h_to
            UNION ALL
            SELECT {rollup}{sep}created_n FROM analytics_error_5m
            WHERE bucket >= :r_from AND bucket < :h_from
            UNION ALL
            SELECT {rollup}{sep}created_n FROM analytics_error_5m
            WHERE bucket >= :h_to AND bucket < :r_end
            UNION ALL
            SELECT {raw}{sep}1 FROM error_logs WHERE {_EDGES}) x
        {{group}}"""
    bounds = _window_bounds(conn, _ERRORS_HELD_UNTIL, minutes)
    found = _grouped(conn, sql, group, {}, {"w": minutes, **bounds})
    return found or ({} if group else {"": ({}, 0.0)})


def _validations(
    conn: Connection, value: str, params: Mapping[str, float], group: tuple[str, ...]
) -> Instances:
    """Over the last `window_minutes`: `value` from runs, failed, score_n and score_sum (no
    runs: no data)."""
    cols = "validation_type AS g0, " if group else ""
    sql = f"""
        SELECT {{keys}}{value} FROM (
            SELECT {cols}runs, failed, score_n, score_sum FROM validation_counts_5m
            WHERE bucket >= :r_from AND bucket < :r_end
            UNION ALL
            SELECT {cols}1, CASE WHEN validation_status IN ('failed', 'error') THEN 1 ELSE 0 END,
                   CASE WHEN validation_score IS NULL THEN 0 ELSE 1 END,
                   COALESCE(validation_score, 0)
            FROM validation_results
            WHERE {_EDGES}) x
        {{group}}"""
    bounds = _window_bounds(conn, _VALIDATIONS_HELD_UNTIL, int(params["window_minutes"]))
    return _grouped(conn, sql, group, {}, bounds)


def _failure_share(
    conn: Connection, params: Mapping[str, float], group: tuple[str, ...]
) -> Instances:
    return _validations(conn, "sum(failed)::float8 / NULLIF(sum(runs), 0)", params, group)


def _mean_score(conn: Connection, params: Mapping[str, float], group: tuple[str, ...]) -> Instances:
    return _validations(conn, "sum(score_sum)::float8 / NULLIF(sum(score_n), 0)", params, group)


_OPEN = "resolution_status IN ('unresolved', 'investigating')"
_OPEN_COLUMNS = {"severity": "error_severity", "service_name": "COALESCE(service_name, '')"}


def _open_error_groups(also: str = "") -> Reader:
    """How many open error groups there are (that also match `also`)."""
    where = f"{also} AND {_OPEN}" if also else _OPEN
    return _fixed_query(
        f"SELECT {{cols}}count(*) FROM error_logs WHERE {where} {{group}}", _OPEN_COLUMNS
    )


_open_errors = _open_error_groups()
# Open error groups that came back after being resolved (data/error_ingest.py).
_regressed_errors = _open_error_groups("regressed_at IS NOT NULL")
# Open error groups whose hourly rate is a spike right now (data/error_ingest.py).
_escalating_errors = _open_error_groups("escalating_since IS NOT NULL")


_WINDOW_5 = {"window_minutes": Param(5, 1, 1440)}
_WINDOW_60 = {"window_minutes": Param(60, 5, 10080)}

CATALOGUE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("watchdog", "Watchdog", "Always 1: a heartbeat for Alertmanager.", "", _watchdog),
        Metric(
            "slow_query_seconds",
            "Slow queries",
            "Average run time of the app's queries running right now.",
            "s",
            _slow_query_seconds,
        ),
        Metric(
            "connection_failures",
            "Connection failures",
            "Connection pools that cannot reach PostgreSQL.",
            "pools",
            _connection_failures,
        ),
        Metric(
            "pending_tasks",
            "Pending tasks",
            "Tasks waiting in status pending.",
            "tasks",
            _pending_tasks,
            ("assigned_to", "priority"),
        ),
        Metric(
            "oldest_pending_task_age_seconds",
            "Oldest pending task age",
            "How long the oldest pending task has waited.",
            "s",
            _oldest_pending_age,
            ("assigned_to", "priority"),
        ),
        Metric(
            "errors_per_minute",
            "Errors per minute",
            "Errors logged per minute, averaged over the window (error_type is the category).",
            "errors/min",
            _errors_per_minute,
            ("service_name", "severity", "error_type"),
            _WINDOW_5,
        ),
        Metric(
            "validation_failure_share",
            "Validation failure share",
            "Share of validation runs in the window that failed or errored (0 to 1).",
            "share",
            _failure_share,
            ("validation_type",),
            _WINDOW_60,
        ),
        Metric(
            "mean_validation_score",
            "Mean validation score",
            "Average validation score (0 to 100) of the runs in the window.",
            "score",
            _mean_score,
            ("validation_type",),
            _WINDOW_60,
        ),
        Metric(
            "open_errors",
            "Open errors",
            "Unresolved and investigating error groups.",
            "errors",
            _open_errors,
            ("severity", "service_name"),
        ),
        Metric(
            "regressed_errors",
            "Regressed errors",
            "Open error groups that came back after being resolved.",
            "errors",
            _regressed_errors,
            ("service_name",),
        ),
        Metric(
            "escalating_errors",
            "Escalating errors",
            "Open error groups whose hourly rate is a spike.",
            "errors",
            _escalating_errors,
            ("service_name",),
        ),
    )
}


def read_current(rule: Rule) -> Instances:
    """The rule's SQL metric now, per instance; SQLAlchemyError when it cannot be read."""
    return CATALOGUE[rule.source].read(rule.param_values, rule.group_by)


def read_many(rules: Sequence[Rule]) -> list[Instances | SQLAlchemyError]:
    """read_current of each rule, all in one transaction (a round trip each instead of a
    transaction each). When one fails, the rest are read each on its own, so one source that
    cannot be read does not fail the others; its place holds the error."""
    found: list[Instances | SQLAlchemyError] = []
    try:
        with get_database().transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as conn:
            for rule in rules:
                found.append(CATALOGUE[rule.source].read(rule.param_values, rule.group_by, conn))
    except SQLAlchemyError:
        for rule in rules[len(found) :]:
            try:
                found.append(read_current(rule))
            except SQLAlchemyError as exc:
                found.append(exc)
    return found
