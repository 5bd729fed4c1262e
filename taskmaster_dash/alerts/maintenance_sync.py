"""Maintenance windows as Alertmanager silences (with ALERTMANAGER_URL set).

Each occurrence of a window that is open now or starts within the next 7 days gets one silence,
made ahead of time, from the occurrence's start to its end, with matchers on the window's
labels (and service="taskmaster-dash", so a window never mutes other systems' alerts). A sync
makes the missing ones, makes again those Alertmanager lost (a restart without its data
directory, or someone expired one there), and expires those of deleted windows. It runs after
every change on /alerts and every few minutes in the background (`MaintenanceSync`), so a
weekly window always has its next week of silences in Alertmanager.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.alertmanager import AlertmanagerClient, AlertmanagerError
from taskmaster_dash.alerts.delivery import rfc3339
from taskmaster_dash.alerts.maintenance import Occurrence, Window, occurrences
from taskmaster_dash.alerts.rules import SERVICE_LABEL
from taskmaster_dash.data import maintenance as store
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, user_message
from taskmaster_dash.data.leader import ElectedLoop
from taskmaster_dash.services import current

log = logging.getLogger(__name__)
HORIZON = timedelta(days=7)
SYNC_INTERVAL = 300.0  # seconds; the horizon is a week, so this only catches up lost silences
SYNC_LOCK_KEY = 7_310_052  # the background sync's leader lock (data/leader.py lists the others)
ALIVE = ("active", "pending")


def silence_matchers(window: Window) -> list[dict[str, Any]]:
    """The window's matchers in Alertmanager's form, scoped to this app's alerts."""
    matchers = [{"name": "service", "value": SERVICE_LABEL, "isRegex": False, "isEqual": True}]
    matchers += [
        {
            "name": m.name,
            "value": m.value,
            "isRegex": m.op in ("=~", "!~"),
            "isEqual": m.op in ("=", "=~"),
        }
        for m in window.matchers
        if not (m.name == "service" and m.op == "=" and m.value == SERVICE_LABEL)
    ]
    return matchers


def silence_body(window: Window, occurrence: Occurrence, now: datetime) -> dict[str, Any]:
    start, end = occurrence
    who = window.username or "taskmaster-dash"
    return {
        "matchers": silence_matchers(window),
        "startsAt": rfc3339(max(start, now)),
        "endsAt": rfc3339(end),
        "createdBy": who,
        "comment": f"Maintenance window {window.name!r} (TaskMaster Dash, made by {who})"
        + (f": {window.note}" if window.note else ""),
    }


def wanted(window: Window, now: datetime) -> list[Occurrence]:
    """The occurrences that should have a silence now: open, or starting within 7 days."""
    return [o for o in occurrences(window, now, now + HORIZON) if o[1] > now]


@dataclass
class SyncResult:
    created: int = 0
    expired: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self) -> str | None:
        return "; ".join(self.problems)[:500] if self.problems else None


def sync_windows(
    client: AlertmanagerClient, now: datetime | None = None, actor: Actor = SYSTEM_ACTOR
) -> SyncResult:
    """Bring Alertmanager's silences in line with the windows (see the module's docstring)."""
    now = now or datetime.now(UTC)
    result = SyncResult()
    with store.sync_lock(actor):
        windows = {w.id: w for w in store.list_windows(actor)}
        links = store.silence_links(actor)
        try:
            alive = {
                str(s.get("id"))
                for s in client.silences()
                if (s.get("status") or {}).get("state") in ALIVE
            }
        except (AlertmanagerError, ValueError) as exc:
            result.problems.append(f"Alertmanager silences could not be read: {exc}")
            return result
        gone = []
        for link in links:
            if link.window_id in windows and link.ends_at > now:
                continue
            if link.window_id not in windows and link.silence_id in alive:
                try:
                    client.expire_silence(link.silence_id)
                    result.expired += 1
                except AlertmanagerError as exc:
                    result.problems.append(str(exc))
                    continue  # linked still: the next sync tries again
            gone.append(link.silence_id)
        store.unlink_silences(gone, actor)

        have = {(lk.window_id, lk.starts_at): lk for lk in links if lk.window_id in windows}
        for window in windows.values():
            for occurrence in wanted(window, now):
                old = have.get((window.id, occurrence[0]))
                if old and old.silence_id in alive and old.ends_at == occurrence[1]:
                    continue
                try:
                    silence_id = client.post_silence(silence_body(window, occurrence, now))
                except (AlertmanagerError, ValueError, KeyError) as exc:
                    result.problems.append(str(exc))
                    continue
                if old and old.silence_id in alive:  # its end moved: replace it
                    try:
                        client.expire_silence(old.silence_id)
                    except AlertmanagerError as exc:
                        result.problems.append(str(exc))
                store.link_silence(
                    store.SilenceLink(window.id, occurrence[0], occurrence[1], silence_id), actor
                )
                result.created += 1
    return result


def sync_after_change(actor: Actor) -> str | None:
    """After a window was made or deleted on /alerts: sync now if Alertmanager is configured.
    None, or a sentence saying what did not reach Alertmanager (the sync retries later)."""
    services = current()
    if services.alertmanager is None:
        return None
    try:
        result = sync_windows(services.alertmanager, actor=actor)
    except SQLAlchemyError as exc:
        return f"Alertmanager not updated: {user_message(exc)}"
    services.caches.alertmanager_silences.clear()
    problem = result.problem()
    if problem:
        return f"Alertmanager not updated yet ({problem}); it is tried again every few minutes."
    return None


class MaintenanceSync(ElectedLoop):
    """The background sync, in the one process holding its lock."""

    thread_name = "maintenance-sync"

    def __init__(self, client: AlertmanagerClient, interval: float = SYNC_INTERVAL) -> None:
        super().__init__(SYNC_LOCK_KEY, "maintenance_sync", interval)
        self.client = client

    def work(self) -> None:
        result = sync_windows(self.client)
        if result.problems:
            log.warning("maintenance sync: %s", result.problem())
