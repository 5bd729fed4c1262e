"""What the two alert senders (alertmanager.py, notify.py) share: Alertmanager's time format and
a worker thread that delivers what they queue, so a slow or dead receiver never holds up
evaluation."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Generic, TypeVar

Item = TypeVar("Item")
log = logging.getLogger(__name__)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DeliveryWorker(Generic[Item]):
    """A daemon thread that hands each item put on `_queue` to `_deliver`. Subclasses set what
    `_deliver` reads before calling `__init__`: the thread starts there."""

    def __init__(self, name: str, maxsize: int) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _deliver(self, item: Item) -> None:
        raise NotImplementedError

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._deliver(item)
            except Exception:  # a bug in one delivery must not stop every later one
                log.exception("%s: could not deliver an item", self._thread.name)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued item was delivered or given up (tests, shutdown, `alerts
        check`)."""
        done = threading.Event()

        def wait_for_queue() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait_for_queue, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
