"""The sign-in generation: a value that changes whenever a session may have ended or a user's
rights changed, read on every request so that a cached session (data/sessions.py) is used only
while nothing of the kind happened since it was read from the database.

Database bumps it after every committed write to users, user_roles or user_sessions (data/db.py).
Every process of this host that uses the same database shares it through an 8-byte memory-mapped
file (reading it is a memory read: no round trip); with REDIS_URL, a Redis key is shared too, by
every host. With SESSION_CACHE_SECONDS on, each process also listens for the database's own
notice of such a change (migration 098), so a change made on another host, or in SQL behind the
app's back, bumps it too; while the process cannot hear those notices, the generation is None.
A value that cannot be read is None: the caller then asks the database.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import mmap
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)
_SIZE = 8


class LocalGeneration:
    """The generation shared by this host's processes: a random value in a mapped file (random,
    not a count, so two processes bumping at once need no lock: either new value differs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._inode: int | None = None
        self._open()

    def _open(self) -> None:
        """Map the file (made if missing). Reopened when the file is replaced (a cleaner of the
        temporary directory removed it): every process must map the same one."""
        self._map, self._inode = None, None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                status = os.fstat(fd)
                if status.st_size < _SIZE:
                    os.ftruncate(fd, _SIZE)  # zero-filled; a first bump gives it a value
                self._map, self._inode = mmap.mmap(fd, _SIZE), status.st_ino
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning(
                "session cache off: cannot share revocations through %s: %s", self.path, exc
            )

    def _mapped(self) -> mmap.mmap | None:
        try:
            same = os.stat(self.path).st_ino == self._inode  # a microsecond: no round trip
        except OSError:
            same = False
        if not same:
            self._open()
        return self._map

    @classmethod
    def for_database(cls, url: str) -> LocalGeneration:
        """One file per database (URL) and operating-system user, in the temporary directory."""
        digest = hashlib.sha256(url.encode()).hexdigest()[:20]
        user = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
        return cls(Path(tempfile.gettempdir()) / f"taskmaster-dash-{user}" / f"signin-{digest}")

    def current(self) -> Hashable | None:
        mapped = self._mapped()
        return None if mapped is None else (self._inode, bytes(mapped[:_SIZE]))

    def bump(self) -> None:
        mapped = self._mapped()
        if mapped is not None:
            mapped[:_SIZE] = secrets.token_bytes(_SIZE)


class RedisGeneration:
    """The generation every host shares (REDIS_URL): one key, INCR on a bump, GET per request."""

    def __init__(self, url: str, key: str, timeout: float = 0.5) -> None:
        import redis

        self.key = key
        self._client: Any = redis.Redis.from_url(
            url.replace("redis+unix://", "unix://", 1),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    def current(self) -> Hashable | None:
        try:
            value = self._client.get(self.key)
        except Exception as exc:  # redis away: ask the database instead
            log.warning("session cache: Redis unreadable (%s); asking the database", exc)
            return None
        return value or b"0"

    def bump(self) -> None:
        try:
            self._client.incr(self.key)
        except Exception as exc:
            log.error("session cache: could not tell other hosts of a revocation: %s", exc)


CHANNEL = "taskmaster_signin"  # migration 098's notices: payload ''
_POLL_SECONDS = 0.5


class SigninListener:
    """Hears the database's sign-in notices on a connection of its own (a thread) and calls
    `on_change` for each. Every `heartbeat` seconds it sends itself a probe: `hearing()` is True
    only while its last probe came back (not yet connected, a lost connection, a pooler that
    drops notices: False, and sessions are read from the database). Hearing again after a gap
    counts as a change, since notices sent meanwhile are lost."""

    def __init__(
        self,
        conninfo: str,
        on_change: Callable[[], None],
        heartbeat: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conninfo, self._on_change = conninfo, on_change
        self._heartbeat, self._clock = heartbeat, clock
        self._heard_until = 0.0
        self.backend_pid: int | None = None  # the listening connection's server process
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="signin-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._heard_until = 0.0
        self._thread.join(timeout=_POLL_SECONDS + 5)

    def hearing(self) -> bool:
        return self._clock() < self._heard_until

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (psycopg.Error, OSError) as exc:
                log.warning("session cache: not hearing sign-in changes (%s); retrying", exc)
            self._heard_until = 0.0
            self._stopping.wait(self._heartbeat)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=5,
            application_name="taskmaster_signin_listener",
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = conn.info.backend_pid
            probe = "probe:" + secrets.token_hex(8)
            next_probe = self._clock()
            while not self._stopping.is_set():
                if self._clock() >= next_probe:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, probe))
                    next_probe = self._clock() + self._heartbeat
                # short waits, so that stop() (a worker's exit) never waits long
                for notice in conn.notifies(timeout=_POLL_SECONDS):
                    if notice.payload == "":
                        self._on_change()
                    elif notice.payload == probe:
                        if not self.hearing():
                            self._on_change()  # what was kept before the gap may be stale
                        self._heard_until = self._clock() + 2 * self._heartbeat


class Generation:
    """This host's generation, the shared Redis one when REDIS_URL is set, and the database's
    notices when a listener is attached (`hear`)."""

    def __init__(self, local: LocalGeneration, shared: RedisGeneration | None = None) -> None:
        self.local, self.shared = local, shared
        self.listener: SigninListener | None = None

    def hear(self, conninfo: str, heartbeat: float = 5.0) -> SigninListener:
        """Listen for the database's sign-in notices from now on (until stop_hearing)."""
        self.listener = SigninListener(conninfo, self.local.bump, heartbeat)
        self.listener.start()
        return self.listener

    def stop_hearing(self) -> None:
        """Stop listening; the generation is then this host's (and Redis') alone again."""
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()

    @classmethod
    def for_database(cls, url: str, redis_url: str | None = None) -> Generation:
        local = LocalGeneration.for_database(url)
        if not redis_url:
            return cls(local)
        if redis_url.startswith("redis+sentinel"):
            log.warning("session cache: Redis Sentinel is not supported; this host only")
            return cls(local)
        key = "taskmaster-dash:signin:" + hashlib.sha256(url.encode()).hexdigest()[:20]
        return cls(local, RedisGeneration(redis_url, key))

    def current(self) -> Hashable | None:
        if self.listener is not None and not self.listener.hearing():
            return None
        local = self.local.current()
        if local is None or self.shared is None:
            return local
        shared = self.shared.current()
        return None if shared is None else (local, shared)

    def bump(self) -> None:
        self.local.bump()
        if self.shared is not None:
            self.shared.bump()
