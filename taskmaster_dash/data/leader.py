"""Leader election for background work: a PostgreSQL session advisory lock held on a dedicated
connection for as long as the leader lives, so that across all workers and hosts exactly one
process does each job. A follower keeps its connection and retries every interval; when the
leader's process dies its session ends, the lock is free, and the next retry takes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from taskmaster_dash.data.db import PoolName, get_database

log = logging.getLogger(__name__)

# One advisory lock id per background job (the evaluator's is older; the ids are arbitrary).
EVALUATOR_LOCK_KEY = 7_310_050
ROLLUP_REFRESHER_LOCK_KEY = 7_310_051


def try_lock(conn: Connection, key: int) -> bool:
    """Take the session-level advisory lock `key` on `conn` if no other session holds it."""
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())


def check_alive(conn: Connection) -> None:
    """Raise if the connection (and so the lock it holds) is gone."""
    conn.execute(text("SELECT 1"))


class AdvisoryLock:
    """Advisory lock `key` on a connection of its own (AUTOCOMMIT, outside the pools), opened on
    the first `hold()` from the current services' database."""

    def __init__(self, key: int, name: str) -> None:
        self.key = key
        self.name = name
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self.leading = False

    def _connect(self) -> Connection:
        if self._engine is None:
            database = get_database()
            connect_args: dict[str, Any] = {
                # the pid tells which process leads (pg_stat_activity, the gunicorn test)
                "application_name": f"taskmaster_{self.name} (pid {os.getpid()})",
                "connect_timeout": 5,
            }
            if database.ssl_mode:
                connect_args["sslmode"] = database.ssl_mode
            self._engine = create_engine(
                database.engines[PoolName.WRITE].url,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",
                connect_args=connect_args,
            )
        return self._engine.connect()

    def hold(self) -> bool:
        """True when this process holds the lock (taking it if free); False when another does.

        The connection stays open while this process stands by as well: a follower then retries
        on the same session instead of opening a connection every interval. If the database
        itself is unreachable, a leader stays leader (the evaluator carries on from memory, so
        the database-connection rule can still fire and notify)."""
        if self.leading and self._conn is not None:
            try:
                check_alive(self._conn)
                return True
            except SQLAlchemyError:
                self._drop()  # the session, and so the lock, is gone: try to take it again
        try:
            if self._conn is None:
                self._conn = self._connect()
            got = try_lock(self._conn, self.key)
        except SQLAlchemyError:
            self._drop()
            if self.leading:
                log.warning("%s: database unreachable; carrying on as leader", self.name)
            return self.leading
        if got != self.leading:
            log.info(
                "%s: this process %s the leader", self.name, "is now" if got else "is no longer"
            )
        self.leading = got
        return got

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

    def release(self) -> None:
        """Give up the lock (closing its connection releases it) so another may take over."""
        self._drop()
        self.leading = False
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class ElectedLoop:
    """Background work that runs every `interval` seconds in the one process holding its lock.

    Subclasses define `work()`; `start()` runs the loop in a daemon thread and `stop()` ends it
    (the services' lifecycle calls both)."""

    thread_name = "elected-loop"

    def __init__(self, key: int, name: str, interval: float) -> None:
        self.lock = AdvisoryLock(key, name)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def work(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once when the loop ends, after the lock is released."""

    def lead(self) -> bool:
        return self.lock.hold()

    def release(self) -> None:
        self.lock.release()

    def run(self, stop: threading.Event | None = None) -> None:
        """Work every `interval` seconds while holding the lock, until `stop` is set."""
        stop = stop or self._stop
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    if self.lead():
                        self.work()
                except Exception:  # the loop must survive anything and retry
                    log.exception("%s failed; retrying next interval", self.lock.name)
                stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self.release()
            self.finish()

    def start(self) -> ElectedLoop:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
