"""The one kind of cache the app keeps: a per-process TTL cache (cachetools) behind a lock.

The caches hold answers for a few seconds so that many sessions (or a 1 s scrape) share one
query; the services object owns them, so a test resets them all at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cachetools import TTLCache

T = TypeVar("T")


class Cache:
    """Values computed by `get(key, compute)` and kept for `ttl` seconds (0: not kept).

    `timer` is the clock the lifetimes are measured on (tests inject one). Two threads missing
    the same key at once both compute it: the answers are cheap and the same, so no per-key lock.
    """

    def __init__(
        self, ttl: float, *, maxsize: int = 256, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.timer = timer
        self._data: TTLCache[Hashable, Any] = TTLCache(maxsize, max(ttl, 1e-9), timer)
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        if self.ttl > 0:
            with self._lock:
                try:
                    return self._data[key]
                except KeyError:
                    pass
        value = compute()
        if self.ttl > 0:
            with self._lock:
                self._data[key] = value
        return value

    def peek(self, key: Hashable) -> Any | None:
        """The value kept for `key`, or None (not kept, expired, or ttl 0)."""
        if self.ttl <= 0:
            return None
        with self._lock:
            return self._data.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl > 0:
            with self._lock:
                self._data[key] = value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
