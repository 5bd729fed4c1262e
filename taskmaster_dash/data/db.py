"""Engines for the spec's four pools, and the one helper that runs work on a pool as a user.

Every transaction sets `app.current_user_id` (and session, IP, user agent) first, so the
database's RLS policies and audit trigger see who is acting.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd
import psycopg.errors
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool

from taskmaster_dash.data.metrics import instrumented_pool_class, record_query
from taskmaster_dash.services import current as current_services

log = logging.getLogger(__name__)
SYSTEM_USER_ID = "00000000-0000-0000-0000-000000000001"


class PoolName(StrEnum):
    READ = "read"
    WRITE = "write"
    ANALYTICS = "analytics"
    BACKGROUND = "background"


@dataclass(frozen=True)
class PoolSpec:
    name: PoolName
    max_size: int
    min_size: int
    statement_timeout_ms: int
    read_only: bool


def pool_specs(pool_max: int = 10, pool_min: int = 2) -> dict[PoolName, PoolSpec]:
    """The spec's split: read 60%, write 30%, analytics 10% of DB_POOL_MAX; background 2.
    Minimums (opened at start, see `open_minimum`): read 40%, write 30% of DB_POOL_MIN; the
    other two 1 each (none when DB_POOL_MIN is 0)."""
    others_min = 1 if pool_min else 0
    return {
        PoolName.READ: PoolSpec(
            PoolName.READ, math.ceil(pool_max * 0.6), math.ceil(pool_min * 0.4), 30_000, True
        ),
        PoolName.WRITE: PoolSpec(
            PoolName.WRITE, math.ceil(pool_max * 0.3), math.ceil(pool_min * 0.3), 60_000, False
        ),
        PoolName.ANALYTICS: PoolSpec(
            PoolName.ANALYTICS, math.ceil(pool_max * 0.1), others_min, 300_000, True
        ),
        PoolName.BACKGROUND: PoolSpec(PoolName.BACKGROUND, 2, others_min, 600_000, False),
    }


@dataclass(frozen=True)
class Actor:
    """Who a transaction runs as: RLS and the audit log see this user."""

    user_id: str
    username: str
    session_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


SYSTEM_ACTOR = Actor(SYSTEM_USER_ID, "system")


@dataclass
class PoolStats:
    """What the original kept per pool: counts, slow queries, total time, health."""

    total: int = 0
    successful: int = 0
    failed: int = 0
    slow: int = 0
    total_time_ms: float = 0.0
    healthy: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, elapsed_ms: float, ok: bool, slow_ms: int) -> None:
        with self._lock:
            self.total += 1
            self.total_time_ms += elapsed_ms
            if ok:
                self.successful += 1
            else:
                self.failed += 1
            if elapsed_ms >= slow_ms:
                self.slow += 1


class Database:
    def __init__(
        self,
        app_url: str,
        *,
        read_replica_url: str | None = None,
        analytics_url: str | None = None,
        pool_max: int = 10,
        pool_min: int = 2,
        slow_query_ms: int = 1000,
        ssl_mode: str | None = None,
    ) -> None:
        self.specs = pool_specs(pool_max, pool_min)
        self.slow_query_ms = slow_query_ms
        self.ssl_mode = ssl_mode
        self.stats = {name: PoolStats() for name in PoolName}
        urls = {
            PoolName.READ: read_replica_url or app_url,
            PoolName.WRITE: app_url,
            PoolName.ANALYTICS: analytics_url or read_replica_url or app_url,
            PoolName.BACKGROUND: app_url,
        }
        self.engines: dict[PoolName, Engine] = {
            name: self._make_engine(spec, urls[name], ssl_mode) for name, spec in self.specs.items()
        }
        self._stop_before_dispose: list[Callable[[], None]] = []

    def _make_engine(self, spec: PoolSpec, url: str, ssl_mode: str | None) -> Engine:
        connect_args: dict[str, Any] = {
            "application_name": f"taskmaster_{spec.name}_pool",
            "options": f"-c statement_timeout={spec.statement_timeout_ms}",
            "connect_timeout": 5,
        }
        if ssl_mode:
            connect_args["sslmode"] = ssl_mode
        engine = create_engine(
            url,
            poolclass=instrumented_pool_class(spec.name.value),
            pool_size=spec.max_size,
            max_overflow=0,
            pool_timeout=10,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args=connect_args,
        )
        self._count_queries(engine, spec.name)
        return engine

    def _count_queries(self, engine: Engine, pool: PoolName) -> None:
        """One set of query events feeds both the pool's own counters and /api/v1/metrics."""
        stats = self.stats[pool]

        def finished(info: dict | None, ok: bool) -> None:
            started = info.pop("query_started", None) if info is not None else None
            seconds = time.perf_counter() - started if started is not None else None
            stats.record((seconds or 0.0) * 1000, ok, self.slow_query_ms)
            record_query(pool.value, seconds, ok)

        @event.listens_for(engine, "before_cursor_execute")
        def _start(conn, cursor, statement, parameters, context, executemany):
            conn.info["query_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _done(conn, cursor, statement, parameters, context, executemany):
            finished(conn.info, True)

        @event.listens_for(engine, "handle_error")
        def _failed(context):
            finished(context.connection.info if context.connection else None, False)

    @contextmanager
    def transaction(self, pool: PoolName, actor: Actor) -> Iterator[Connection]:
        """One transaction on `pool`, as `actor`; commits on success, rolls back on error."""
        spec = self.specs[pool]
        with self.engines[pool].begin() as conn:
            if spec.read_only:
                conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(
                text(
                    "SELECT set_config('app.current_user_id', :user_id, true),"
                    " set_config('app.session_id', :session_id, true),"
                    " set_config('app.ip_address', :ip, true),"
                    " set_config('app.user_agent', :agent, true)"
                ),
                {
                    "user_id": actor.user_id,
                    "session_id": actor.session_id or "",
                    "ip": actor.ip_address or "",
                    "agent": (actor.user_agent or "")[:500],
                },
            )
            yield conn

    def fetch_df(
        self, pool: PoolName, actor: Actor, sql: str, params: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        with self.transaction(pool, actor) as conn:
            result = conn.execute(text(sql), dict(params or {}))
            # Plain tuples: pandas probes each SQLAlchemy Row for attributes it lacks, ~10 us a
            # row (30 ms for a 3000-point chart whose query took 4 ms).
            return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))

    def fetch_rows(
        self, pool: PoolName, actor: Actor, sql: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self.transaction(pool, actor) as conn:
            return [dict(row) for row in conn.execute(text(sql), dict(params or {})).mappings()]

    def ping(self, pool: PoolName = PoolName.READ) -> float:
        """Round-trip time of `SELECT 1` in milliseconds; raises when the database is down."""
        started = time.perf_counter()
        with self.engines[pool].connect() as conn:
            conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    def stop_before_dispose(self, stop: Callable[[], None]) -> None:
        """Have dispose() call `stop` first: background work that uses this database (the
        alert evaluator, the rollup refresher) ends before its pools and server go away."""
        self._stop_before_dispose.append(stop)

    def open_minimum(self) -> None:
        """Open each pool's minimum of connections now. A QueuePool keeps every connection it
        gets back (up to its size), so they stay open; a pool whose server cannot be reached
        is left to connect on first use (the health page reports it)."""
        for name, spec in self.specs.items():
            try:
                with ExitStack() as held:
                    for _ in range(spec.min_size):
                        held.enter_context(self.engines[name].connect())
            except SQLAlchemyError as exc:
                log.warning(
                    "%s pool: could not open its minimum connections: %s", name, user_message(exc)
                )

    def pool(self, name: PoolName) -> QueuePool:
        """The connection pool behind `name`: _make_engine gives every engine a QueuePool."""
        pool = self.engines[name].pool
        assert isinstance(pool, QueuePool), type(pool)
        return pool

    def dispose(self) -> None:
        while self._stop_before_dispose:
            self._stop_before_dispose.pop()()  # the last started stops first
        for engine in self.engines.values():
            engine.dispose()


def get_database() -> Database:
    """The current services' database: how every data function gets it (services.py)."""
    return current_services().database


DATABASE_UNREACHABLE = (
    "The database is unreachable right now: what you see may be out of date. "
    "The dashboard keeps retrying and recovers by itself when the database is back."
)


def user_message(exc: BaseException) -> str:
    """The one place that turns a database exception into a sentence for the UI or CLI."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, PoolTimeoutError):
        return "The database is busy: no connection was free in time. Try again in a moment."
    if isinstance(orig, psycopg.errors.QueryCanceled):
        return "The query took too long and was cancelled (statement timeout)."
    if isinstance(orig, psycopg.errors.RaiseException) and orig.diag.message_primary:
        return orig.diag.message_primary  # a rule of ours, worded for people (migration 010)
    if isinstance(orig, psycopg.errors.InsufficientPrivilege):
        return "You do not have permission to do that."
    if isinstance(orig, psycopg.errors.CheckViolation | psycopg.errors.InvalidTextRepresentation):
        return "A value is not allowed here; nothing was saved."
    if isinstance(orig, psycopg.errors.UniqueViolation):
        return "That already exists; nothing was saved."
    if isinstance(orig, psycopg.errors.ForeignKeyViolation):
        return "That refers to something that does not exist; nothing was saved."
    if isinstance(orig, psycopg.errors.StringDataRightTruncation):
        return "A value is too long; nothing was saved."
    if isinstance(orig, psycopg.OperationalError) or isinstance(exc, ConnectionError):
        return DATABASE_UNREACHABLE
    if isinstance(exc, SQLAlchemyError):
        return "The database refused the request; nothing was saved."
    return "Something went wrong; nothing was saved."
