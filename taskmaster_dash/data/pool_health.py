"""What the Pools page shows: the app's own pools, PostgreSQL's statistics views, and the pool
series read back from Prometheus (PromQL from data/promql.yaml).

PostgreSQL queries run on the background pool, which always points at the primary (the read
pool may be a replica, whose pg_stat_activity would describe the replica instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.prometheus import PrometheusReader, load_promql, promql, step_seconds

SLOW_MEAN_MS = 1000.0  # the spec's "slow query performance (>1s average)"
UTILISATION_WARNING = 0.8  # the spec's "high connection pool utilization (>80%)"
RANGES = {"15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080}  # minutes


# --- the app's own pools, live -----------------------------------------------------------------


def own_pools() -> pd.DataFrame:
    """One row per pool of this process: in use, idle, waiting, max and query counters."""
    database = get_database()
    rows = []
    for name in database.engines:
        pool, stats, spec = database.pool(name), database.stats[name], database.specs[name]
        in_use = max(pool.checkedout(), 0)
        rows.append(
            {
                "pool": name.value,
                "in_use": in_use,
                "idle": pool.checkedin(),
                "waiting": getattr(pool, "waiting", 0),
                "max": spec.max_size,
                "utilisation": in_use / spec.max_size if spec.max_size else 0.0,
                "queries": stats.total,
                "failed": stats.failed,
                "slow": stats.slow,
                "mean_ms": stats.total_time_ms / stats.total if stats.total else 0.0,
            }
        )
    return pd.DataFrame(rows)


# --- PostgreSQL ---------------------------------------------------------------------------------

LOCK_TIMEOUT = "1s"  # never hang the page behind a table someone holds exclusively


def _fetch(actor: Actor, sql: str, params: dict | None = None) -> pd.DataFrame:
    with get_database().transaction(PoolName.BACKGROUND, actor) as conn:
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        result = conn.execute(text(sql), params or {})
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def connections(actor: Actor) -> tuple[pd.DataFrame, int]:
    """Client connections on the server by database, application and state; and max_connections."""
    frame = _fetch(
        actor,
        """SELECT coalesce(datname, '') AS database,
                  coalesce(nullif(application_name, ''), '(unnamed)') AS application,
                  coalesce(state, 'unknown') AS state, count(*)::int AS connections
           FROM pg_stat_activity WHERE backend_type = 'client backend'
           GROUP BY 1, 2, 3 ORDER BY connections DESC, application, state""",
    )
    limit = _fetch(actor, "SELECT current_setting('max_connections')::int AS n")["n"].iloc[0]
    return frame, int(limit)


def long_running_queries(actor: Actor, limit: int = 10) -> pd.DataFrame:
    """Statements running now, longest first (not this page's own query)."""
    return _fetch(
        actor,
        """SELECT pid, coalesce(usename, '') AS "user",
                  coalesce(nullif(application_name, ''), '(unnamed)') AS application, state,
                  round(extract(epoch FROM now() - query_start)::numeric, 1)::float AS seconds,
                  coalesce(wait_event_type || ': ' || wait_event, '') AS waiting_on,
                  left(query, 300) AS query
           FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND state <> 'idle'
             AND pid <> pg_backend_pid() AND query_start IS NOT NULL
           ORDER BY query_start LIMIT :limit""",
        {"limit": limit},
    )


def waiting_locks(actor: Actor, limit: int = 20) -> pd.DataFrame:
    """Lock requests not granted yet, with who blocks them."""
    return _fetch(
        actor,
        """SELECT l.pid, coalesce(nullif(a.application_name, ''), '(unnamed)') AS application,
                  l.locktype, l.mode, coalesce(l.relation::regclass::text, '') AS relation,
                  array_to_string(pg_blocking_pids(l.pid), ', ') AS blocked_by,
                  round(extract(epoch FROM now() - a.query_start)::numeric, 1)::float
                      AS seconds,
                  left(a.query, 200) AS query
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE NOT l.granted ORDER BY a.query_start LIMIT :limit""",
        {"limit": limit},
    )


@dataclass(frozen=True)
class SlowQueries:
    frame: pd.DataFrame | None  # query, calls, mean_ms, total_ms (None when unavailable)
    note: str | None  # why there is no data, and how to get it


STATEMENTS_MISSING = (
    "pg_stat_statements is not installed in this database, so slow queries cannot be listed. "
    "To enable it: add pg_stat_statements to shared_preload_libraries, restart PostgreSQL, and "
    "run CREATE EXTENSION pg_stat_statements (or `taskmaster-dash migrate`)."
)
STATEMENTS_NOT_LOADED = (
    "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries in "
    "postgresql.conf and restart PostgreSQL."
)


def slow_queries(actor: Actor, limit: int = 15) -> SlowQueries:
    """Statements by mean time from pg_stat_statements, or a note saying why there are none."""
    installed = _fetch(
        actor,
        """SELECT n.nspname AS schema FROM pg_extension e
           JOIN pg_namespace n ON n.oid = e.extnamespace
           WHERE e.extname = 'pg_stat_statements'""",
    )
    if installed.empty:
        return SlowQueries(None, STATEMENTS_MISSING)
    schema = installed["schema"].iloc[0].replace('"', '""')
    try:
        frame = _fetch(
            actor,
            f"""SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 300) AS query, calls,
                       round(mean_exec_time::numeric, 2)::float AS mean_ms,
                       round(total_exec_time::numeric, 1)::float AS total_ms
                FROM "{schema}".pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY mean_exec_time DESC LIMIT :limit""",
            {"limit": limit},
        )
    except DBAPIError as exc:
        if "shared_preload_libraries" in str(exc.orig):
            return SlowQueries(None, STATEMENTS_NOT_LOADED)
        raise
    return SlowQueries(frame, None)


@dataclass(frozen=True)
class DatabaseSummary:
    cache_hit_ratio: float | None
    database_bytes: int
    sees_all_sessions: bool  # pg_read_all_stats (else other roles' query text is hidden)


def database_summary(actor: Actor) -> DatabaseSummary:
    row = _fetch(
        actor,
        """SELECT (SELECT sum(blks_hit)::float / nullif(sum(blks_hit) + sum(blks_read), 0)
                   FROM pg_stat_database WHERE datname = current_database()) AS ratio,
                  pg_database_size(current_database()) AS bytes,
                  pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS all_stats""",
    ).iloc[0]
    ratio = None if pd.isna(row["ratio"]) else float(row["ratio"])
    return DatabaseSummary(ratio, int(row["bytes"]), bool(row["all_stats"]))


def table_health(actor: Actor, limit: int = 15) -> pd.DataFrame:
    """Largest tables with their size, live and dead tuples and last (auto)vacuum. A table
    someone holds exclusively (VACUUM FULL, a migration) is listed without its size rather
    than making the page wait for the lock."""
    return _fetch(
        actor,
        """SELECT relname AS "table",
                  CASE WHEN EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = relid
                                      AND l.mode = 'AccessExclusiveLock' AND l.granted)
                       THEN NULL ELSE pg_total_relation_size(relid) END AS bytes,
                  n_live_tup AS live_rows, n_dead_tup AS dead_rows,
                  round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1)::float
                      AS dead_pct,
                  greatest(last_autovacuum, last_vacuum) AS last_vacuum,
                  greatest(last_autoanalyze, last_analyze) AS last_analyze
           FROM pg_stat_user_tables
           ORDER BY bytes DESC NULLS LAST, relname LIMIT :limit""",
        {"limit": limit},
    )


# --- Prometheus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    step: int  # seconds

    @classmethod
    def last(cls, minutes: int, now: datetime | None = None) -> Window:
        """The last `minutes`, with the end aligned to the step so repeated views (and the
        brief cache) agree point for point."""
        now = now or datetime.now(UTC)
        span = timedelta(minutes=minutes)
        step = step_seconds(now - span, now)
        end = datetime.fromtimestamp(math.floor(now.timestamp() / step) * step, UTC)
        return cls(end - span, end, step)


SERIES_PANELS = ("pool_utilisation", "query_success_rate", "query_failure_rate")
CURRENT_PANELS = (
    "pool_in_use",
    "pool_max",
    "pool_waiting",
    "queries_total",
    "queries_failed_total",
)


@dataclass(frozen=True)
class PrometheusPanels:
    window: Window
    queries: dict[str, str]  # panel -> the PromQL actually sent
    series: dict[str, pd.DataFrame]  # panel -> time, value, pool
    current: pd.DataFrame  # one row per pool, one column per CURRENT_PANELS name


def prometheus_panels(reader: PrometheusReader, minutes: int) -> PrometheusPanels:
    """Everything the Pools page reads from Prometheus; raises PrometheusUnavailable."""
    configured = load_promql()
    window = Window.last(minutes)
    queries = {
        name: promql(name, window.step, configured) for name in SERIES_PANELS + CURRENT_PANELS
    }
    series = {name: reader.range(queries[name], window.start, window.end) for name in SERIES_PANELS}
    current: dict[str, dict[str, float]] = {}
    for name in CURRENT_PANELS:
        for sample in reader.instant(queries[name]):
            pool = sample.labels.get("pool", "")
            current.setdefault(pool, {})[name] = sample.value
    frame = pd.DataFrame(
        [{"pool": pool, **values} for pool, values in sorted(current.items())],
        columns=["pool", *CURRENT_PANELS],
    )
    return PrometheusPanels(window, queries, series, frame)
