"""The app as a Prometheus target: the spec's metric names, pool gauges and histograms.

Query counters and histograms are updated by SQLAlchemy events on every engine; pool gauges by
the pools themselves (`instrumented_pool_class`), right after each checkout and return. With
`PROMETHEUS_MULTIPROC_DIR` set (several gunicorn workers), prometheus-client keeps the values of
every worker in that directory and `render_metrics()` adds them up: counters and query totals are
summed over all workers (dead ones included, so they never go backwards), pool gauges are summed
over live workers. `taskmaster_tasks_total` is counted in SQL by whichever worker is scraped.

The spec names `taskmaster_db_queries_successful` / `_failed` do not end in `_total`, which
prometheus-client reserves for counters, so they are exported as gauges that only ever grow
(summed across workers like counters); `rate()` and `increase()` work on them as usual.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from taskmaster_dash.data.config import default_data_dir, load_settings
from taskmaster_dash.data.vocabulary import TASK_STATUSES
from taskmaster_dash.services import current

log = logging.getLogger(__name__)

POOLS = ("read", "write", "analytics", "background")
STARTED_AT = time.time()

REGISTRY = CollectorRegistry()

QUERIES_TOTAL = Counter(
    "taskmaster_db_queries", "Queries run, per pool", ["pool"], registry=REGISTRY
)
QUERIES_SUCCESSFUL = Gauge(
    "taskmaster_db_queries_successful",
    "Queries that succeeded, per pool (only grows; a counter under the spec's name)",
    ["pool"],
    registry=REGISTRY,
    multiprocess_mode="sum",
)
QUERIES_FAILED = Gauge(
    "taskmaster_db_queries_failed",
    "Queries that failed, per pool (only grows; a counter under the spec's name)",
    ["pool"],
    registry=REGISTRY,
    multiprocess_mode="sum",
)
QUERY_DURATION = Histogram(
    "taskmaster_db_query_duration_seconds",
    "Time to run one query, per pool",
    ["pool"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CONNECTION_WAIT = Histogram(
    "taskmaster_db_connection_wait_seconds",
    "Time to get a connection from the pool (checkout, pinging one idle for over 2 s), per pool",
    ["pool"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
for _pool in POOLS:  # every series exists from the start, at zero
    for _metric in (QUERIES_TOTAL, QUERIES_SUCCESSFUL, QUERIES_FAILED, QUERY_DURATION):
        _metric.labels(_pool)
    CONNECTION_WAIT.labels(_pool)


def _pool_gauge(what: str, help_text: str) -> Gauge:
    return Gauge(
        f"taskmaster_db_pool_{what}",
        help_text,
        ["pool"],
        registry=REGISTRY,
        multiprocess_mode="livesum",
    )


POOL_SIZE = _pool_gauge("size", "Connections open in the pool (in use + idle)")
POOL_IN_USE = _pool_gauge("in_use", "Connections checked out of the pool")
POOL_IDLE = _pool_gauge("idle", "Open connections waiting in the pool")
POOL_WAITING = _pool_gauge("waiting", "Requests waiting for a connection")
POOL_MAX = _pool_gauge("max", "Most connections the pool may open")


def multiprocess_dir() -> str | None:
    directory = load_settings().prometheus_multiproc_dir
    return str(directory) if directory else None


class InstrumentedQueuePool(QueuePool):
    """A QueuePool that publishes its size, use and waiters, and times each checkout."""

    pool_label = "unknown"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0
        self._gauge_lock = threading.Lock()
        label = self.pool_label
        self._max = POOL_MAX.labels(label)
        self._in_use, self._idle, self._size, self._waiters, self._wait_time = (
            POOL_IN_USE.labels(label),
            POOL_IDLE.labels(label),
            POOL_SIZE.labels(label),
            POOL_WAITING.labels(label),
            CONNECTION_WAIT.labels(label),
        )
        self.publish()

    def connect(self):
        started = time.perf_counter()
        with self._gauge_lock:
            self._waiting += 1
            self._waiters.set(self._waiting)
        try:
            return super().connect()
        finally:
            with self._gauge_lock:
                self._waiting -= 1
            self._wait_time.observe(time.perf_counter() - started)
            self.publish()

    @property
    def waiting(self) -> int:
        return self._waiting

    def _do_return_conn(self, record) -> None:
        super()._do_return_conn(record)
        self.publish()

    def dispose(self) -> None:
        super().dispose()
        self.publish()

    def publish(self) -> None:
        """Write this pool's current state to its gauges (taken under one lock, so the last
        writer always writes the newest state). The limit too: a scrape republishes the app's
        own pools, so another pool in the process (a CLI command's, a test's) does not stay."""
        with self._gauge_lock:
            self._max.set(self.size() + max(self._max_overflow, 0))
            in_use, idle = max(self.checkedout(), 0), self.checkedin()
            self._in_use.set(in_use)
            self._idle.set(idle)
            self._size.set(in_use + idle)
            self._waiters.set(self._waiting)


def instrumented_pool_class(pool: str) -> type[InstrumentedQueuePool]:
    # One subclass per pool name: SQLAlchemy's recreate() (on dispose) keeps the class.
    return type(f"InstrumentedQueuePool_{pool}", (InstrumentedQueuePool,), {"pool_label": pool})


def record_query(pool: str, seconds: float | None, ok: bool) -> None:
    """Count (and time, when known) one statement on `pool`; data/db.py's query events call it."""
    QUERIES_TOTAL.labels(pool).inc()
    (QUERIES_SUCCESSFUL if ok else QUERIES_FAILED).labels(pool).inc()
    if seconds is not None:
        QUERY_DURATION.labels(pool).observe(seconds)


# --- values computed when Prometheus scrapes -------------------------------------------------


def task_counts() -> dict[str, int] | None:
    """Tasks per status, from the counts the database keeps by trigger, kept briefly in the
    services' cache; None when there is no database in this process or the count failed."""
    try:
        cache = current().caches.task_counts
    except RuntimeError:  # no services in this process (e.g. a metrics-only renderer)
        return None
    try:
        return cache.get("counts", _count_tasks)
    except _NotCounted:
        return None


class _NotCounted(Exception):
    """The count failed this time: nothing is cached, the next scrape tries again."""


def _count_tasks() -> dict[str, int]:
    from sqlalchemy.exc import SQLAlchemyError

    from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName, get_database

    try:
        with get_database().transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as conn:
            conn.execute(text("SET LOCAL statement_timeout = '2s'"))
            # the totals the triggers keep (migration 095), not a scan of every task
            rows = conn.execute(
                text(
                    "SELECT status, sum(n) FROM headline_task_counts WHERE level = 1"
                    " GROUP BY status"
                )
            )
            counts = {status: 0 for status in TASK_STATUSES}
            counts.update({status: int(n) for status, n in rows})
            return counts
    except SQLAlchemyError as exc:
        log.warning("taskmaster_tasks_total left out of this scrape: %s", exc)
        raise _NotCounted from exc


def _metric_pids() -> list[psutil.Process]:
    """The live processes that write to the multiprocess directory (or just this one)."""
    directory = multiprocess_dir()
    if not directory:
        return [psutil.Process()]
    pids = set()
    for path in Path(directory).glob("*.db"):
        tail = path.stem.rsplit("_", 1)[-1]
        if tail.isdigit():
            pids.add(int(tail))
    processes = []
    for pid in sorted(pids | {os.getpid()}):
        try:
            processes.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return processes


class ScrapeTimeCollector:
    """taskmaster_tasks_total, taskmaster_uptime_seconds, taskmaster_memory_usage_bytes."""

    def collect(self):
        counts = task_counts()
        if counts is not None:
            tasks = GaugeMetricFamily(
                "taskmaster_tasks_total",
                "Tasks in each status now (all tasks, not only recent ones)",
                labels=["status"],
            )
            for status, count in counts.items():
                tasks.add_metric([status], count)
            yield tasks
        processes = _metric_pids()
        started = min((_create_time(p) for p in processes), default=STARTED_AT)
        yield GaugeMetricFamily(
            "taskmaster_uptime_seconds",
            "Seconds since the app's first running process started",
            value=max(time.time() - started, 0.0),
        )
        memory = GaugeMetricFamily(
            "taskmaster_memory_usage_bytes",
            "Memory of the app's processes (summed over workers)",
            labels=["type"],
        )
        rss = vms = 0
        for process in processes:
            try:
                info = process.memory_info()
            except psutil.Error:
                continue
            rss, vms = rss + info.rss, vms + info.vms
        memory.add_metric(["rss"], rss)
        memory.add_metric(["vms"], vms)
        system = psutil.virtual_memory()
        memory.add_metric(["system_total"], system.total)
        memory.add_metric(["system_used"], system.total - system.available)
        yield memory
        yield _disk_usage()


def _disk_usage() -> GaugeMetricFamily:
    """The filesystem holding the data directory (the embedded database lives there)."""
    disk = GaugeMetricFamily(
        "taskmaster_disk_usage_bytes",
        "Used, free (to unprivileged users, as df counts it) and total bytes of the filesystem"
        " holding the data directory",
        labels=["type"],
    )
    path = default_data_dir()
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = psutil.disk_usage(str(path))
    disk.add_metric(["used"], usage.used)
    disk.add_metric(["free"], usage.free)
    disk.add_metric(["total"], usage.total)
    return disk


def _create_time(process: psutil.Process) -> float:
    try:
        return process.create_time() if process.pid != os.getpid() else STARTED_AT
    except psutil.Error:
        return STARTED_AT


_SCRAPE_TIME = ScrapeTimeCollector()
REGISTRY.register(_SCRAPE_TIME)


def _publish_current_pools() -> None:
    try:
        engines = current().database.engines.values()
    except RuntimeError:  # no services in this process
        return
    for engine in engines:
        if isinstance(engine.pool, InstrumentedQueuePool):
            engine.pool.publish()


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text format for this process, or for all workers in multiprocess mode."""
    _publish_current_pools()
    directory = multiprocess_dir()
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    registry.register(_SCRAPE_TIME)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """For gunicorn's `child_exit` hook: drop a dead worker's live gauges (pool state)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
