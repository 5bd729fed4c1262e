"""The sign-in generation: a value that changes whenever a session may have ended or a user's
rights changed, read on every request so that a cached session (data/sessions.py) is used only
while nothing of the kind happened since it was read from the database.

Database bumps it after every committed write to users, user_roles or user_sessions (data/db.py).
Every process of this host that uses the same database shares it through an 8-byte memory-mapped
file (reading it is a memory read: no round trip); with REDIS_URL, a Redis key is shared too, by
every host. A value that cannot be read is None: the caller then asks the database.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import mmap
import os
import secrets
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

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


class Generation:
    """This host's generation, and the shared Redis one when REDIS_URL is set."""

    def __init__(self, local: LocalGeneration, shared: RedisGeneration | None = None) -> None:
        self.local, self.shared = local, shared

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
        local = self.local.current()
        if local is None or self.shared is None:
            return local
        shared = self.shared.current()
        return None if shared is None else (local, shared)

    def bump(self) -> None:
        self.local.bump()
        if self.shared is not None:
            self.shared.bump()
