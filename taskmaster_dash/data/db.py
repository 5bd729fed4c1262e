"""Engines for the spec's four pools, and the one helper that runs work on a pool as a user.

Every transaction sets `app.current_user_id` (and session, IP, user agent) first, so the
database's RLS policies and audit trigger see who is acting.

Within a request scope (`request_scope`, opened by the app around every request) the reads of
one read-only pool share one transaction, opened on first use and ended with the request:
a callback of seven reads pays for one checkout, BEGIN and COMMIT instead of seven.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd
import psycopg.errors
from sqlalchemy import Connection, Engine, Result, RootTransaction, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool

from taskmaster_dash.data.config import libpq_url
from taskmaster_dash.data.metrics import instrumented_pool_class, record_query
from taskmaster_dash.data.revocation import Generation, SigninListener
from taskmaster_dash.services import current as current_services

log = logging.getLogger(__name__)
SYSTEM_USER_ID = "00000000-0000-0000-0000-000000000001"
# A write that may end a session or change what its user may do (sign-out, deactivation, a role
# or its permissions, a password, a lock): once committed, cached sessions are read again. The
# once-a-minute last-seen touch of a session is no such write.
_SIGN_IN_WRITE = re.compile(
    r"\s*(UPDATE|DELETE\s+FROM)\s+(users|user_roles|user_sessions)\b"
    r"(?!\s+SET\s+last_seen_at\s*=\s*\S+\s+WHERE)",
    re.IGNORECASE,
)
_REVOKES = "taskmaster_revokes_sessions"


# A connection back in the pool for longer than this is pinged before it is handed out (a
# closed one replaced, as pool_pre_ping would); one used more recently is not, which saves a
# round trip on every checkout under load. If the server went away within that moment, the
# first statement fails (the user is told the database is unreachable), SQLAlchemy discards the
# whole pool, and the next checkout connects again.
PING_AFTER_IDLE_SECONDS = 2.0
_RETURNED_AT = "taskmaster_returned_at"


def _ping_after_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)  # none: connected just now
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("closed while idle in the pool") from exc  # a new one


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
class Counters:
    """Numeric fields that threads add to: `add(name=amount, ...)` adds them under one lock."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, kw_only=True)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


@dataclass
class PoolStats(Counters):
    """What the original kept per pool: counts, slow queries, total time, health."""

    total: int = 0
    successful: int = 0
    failed: int = 0
    slow: int = 0
    total_time_ms: float = 0.0
    healthy: bool = True

    def record(self, elapsed_ms: float, ok: bool, slow_ms: int) -> None:
        self.add(
            total=1,
            total_time_ms=elapsed_ms,
            successful=int(ok),
            failed=int(not ok),
            slow=int(elapsed_ms >= slow_ms),
        )


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
        self._reads_primary = urls[PoolName.READ] == urls[PoolName.WRITE]
        self.engines: dict[PoolName, Engine] = {
            name: self._make_engine(spec, urls[name], ssl_mode) for name, spec in self.specs.items()
        }
        self._stop_before_dispose: list[Callable[[], None]] = []
        # Shared by the host's processes on this database; share_revocations adds Redis.
        self._app_url = app_url
        self.revocations = Generation.for_database(app_url)

    def primary_read_pool(self) -> PoolName:
        """The pool for a read that must see the primary's latest commit (a session just ended):
        the read pool without a replica (so it shares the request's read transaction), else
        the write pool."""
        return PoolName.READ if self._reads_primary else PoolName.WRITE

    def share_revocations(self, redis_url: str | None) -> None:
        """Every process and host learns of a revocation at once: the database's notices
        (LISTEN, until dispose), and REDIS_URL's key as well when it is set."""
        if redis_url and self.revocations.shared is None and self.revocations.listener is None:
            self.revocations = Generation.for_database(self._app_url, redis_url)
        self.hear_revocations()

    def hear_revocations(self, heartbeat: float = 5.0) -> SigninListener:
        """Listen for the database's sign-in notices (migration 098) until dispose."""
        listener = self.revocations.listener
        if listener is None:
            listener = self.revocations.hear(libpq_url(self._app_url, self.ssl_mode), heartbeat)
            self.stop_before_dispose(self.revocations.stop_hearing)
        return listener

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
            pool_recycle=1800,
            pool_use_lifo=True,
            connect_args=connect_args,
        )
        _ping_after_idle(engine)
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

        if not self.specs[pool].read_only:

            @event.listens_for(engine, "after_cursor_execute")
            def _revokes(conn, cursor, statement, parameters, context, executemany):
                if _SIGN_IN_WRITE.match(statement):
                    conn.info[_REVOKES] = True

    @contextmanager
    def transaction(self, pool: PoolName, actor: Actor) -> Iterator[Connection]:
        """One transaction on `pool`, as `actor`; commits on success, rolls back on error.
        Inside a request scope, a read-only pool's transaction is the request's shared one."""
        scope = _scope.get()
        if scope is not None and scope.thread == threading.get_ident():
            shared = scope.take(self, pool, actor)
            if shared is not None:
                with shared.use() as conn:
                    yield conn
                return
            scope.end_idle()  # hold no idle connection while waiting for another
        with self.engines[pool].begin() as conn:
            self._begin(conn, pool, actor)
            try:
                yield conn
            finally:
                revokes = conn.info.pop(_REVOKES, False)
        if revokes:  # after the commit: a session read again from now on sees the change
            self.revocations.bump()

    def _begin(self, conn: Connection, pool: PoolName, actor: Actor) -> None:
        set_actor(conn, actor, read_only=self.specs[pool].read_only)

    def fetch_df(
        self, pool: PoolName, actor: Actor, sql: str, params: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        with self.transaction(pool, actor) as conn:
            result = conn.execute(text(sql), dict(params or {}))
            # Plain tuples: pandas probes each SQLAlchemy Row for attributes it lacks, ~10 us a
            # row (30 ms for a 3000-point chart whose query took 4 ms).
            return pd.DataFrame([tuple(row) for row in result.all()], columns=list(result.keys()))

    def fetch_rows(
        self, pool: PoolName, actor: Actor, sql: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self.transaction(pool, actor) as conn:
            return records(conn.execute(text(sql), dict(params or {})))

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


def set_actor(conn: Connection, actor: Actor, *, read_only: bool = False) -> None:
    """Who the transaction's next statements run as (RLS, audit), and for a read-only pool
    that it only reads (SET TRANSACTION READ ONLY, in the same round trip): local to the
    transaction."""
    conn.execute(
        text(
            "SELECT set_config('app.current_user_id', :user_id, true),"
            " set_config('app.session_id', :session_id, true),"
            " set_config('app.ip_address', :ip, true),"
            " set_config('app.user_agent', :agent, true)"
            + (", set_config('transaction_read_only', 'on', true)" if read_only else "")
        ),
        {
            "user_id": actor.user_id,
            "session_id": actor.session_id or "",
            "ip": actor.ip_address or "",
            "agent": (actor.user_agent or "")[:500],
        },
    )


class _Shared:
    """A request's open read-only transaction on one pool, and whom it runs as now."""

    def __init__(self, database: Database, pool: PoolName, actor: Actor) -> None:
        self.database, self.pool, self.actor = database, pool, actor
        self.conn = database.engines[pool].connect()
        try:
            self.txn: RootTransaction = self.conn.begin()
            database._begin(self.conn, pool, actor)
        except BaseException:
            self.conn.close()
            raise
        self.depth = 0  # how many `with transaction(...)` blocks are using it now
        self.broken = False

    @contextmanager
    def use(self) -> Iterator[Connection]:
        self.depth += 1
        try:
            yield self.conn
        except BaseException:
            self.broken = True  # a failed statement aborts the transaction: start afresh
            raise
        finally:
            self.depth -= 1

    def end(self) -> None:
        """Commit (it only read) and give the connection back; a failure here is logged, not
        raised: the request already has its answers."""
        try:
            if self.broken:
                self.txn.rollback()
            else:
                self.txn.commit()
        except SQLAlchemyError as exc:
            log.warning("%s pool: ending a request's transaction failed: %s", self.pool, exc)
        finally:
            self.conn.close()


class RequestScope:
    """One request's shared read transaction (at most one open at a time, so a request holds
    no more connections than it did with a transaction per query)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()  # threads the request starts get their own
        self.shared: _Shared | None = None

    def take(self, database: Database, pool: PoolName, actor: Actor) -> _Shared | None:
        """The shared transaction for (pool, actor), opened or switched to as needed; None when
        the caller must open its own (a writing pool, or another pool or actor while the shared
        one is in use by an enclosing block)."""
        if not database.specs[pool].read_only:
            return None
        shared = self.shared
        if shared is not None and shared.broken and shared.depth == 0:
            self.end_idle()
            shared = None
        if shared is not None and (shared.database is not database or shared.pool != pool):
            if shared.depth:
                return None
            self.end_idle()
            shared = None
        if shared is None:
            self.shared = shared = _Shared(database, pool, actor)
        elif shared.actor != actor:
            if shared.depth or shared.broken:
                return None
            set_actor(shared.conn, actor)  # the same transaction, now as this caller
            shared.actor = actor
        return shared

    def end_idle(self) -> None:
        if self.shared is not None and self.shared.depth == 0:
            shared, self.shared = self.shared, None
            shared.end()

    def close(self) -> None:
        if self.shared is not None:
            shared, self.shared = self.shared, None
            shared.end()


_scope: ContextVar[RequestScope | None] = ContextVar("taskmaster_request_scope", default=None)


@contextmanager
def request_scope() -> Iterator[RequestScope]:
    """Share one read transaction per read-only pool among the reads inside (one request)."""
    scope = RequestScope()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        scope.close()


def records(result: Result[Any]) -> list[dict[str, Any]]:
    """Every row of `result` as a dict: fetched at once and zipped with the column names, about
    twice as fast as a RowMapping per row (0.5 -> 0.3 ms for the triage grid's 100 rows)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


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
