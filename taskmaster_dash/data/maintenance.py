"""Maintenance windows in the database (sql/migrations/092_maintenance_windows.sql): every
signed-in user may read them, creating and deleting needs alerts:manage (RLS); changes are
audited. Also the Alertmanager silences made for their occurrences (alerts/maintenance_sync.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from taskmaster_dash.alerts.maintenance import Window, is_active, window_from_row
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName, get_database
from taskmaster_dash.data.refusal import Refused

_COLUMNS = """id, name, kind, starts_at, ends_at, days, start_time, end_time, time_zone,
              matchers, note, username, created_at"""


class UnknownWindow(Refused, ValueError):
    kind = "warning"


def list_windows(actor: Actor = SYSTEM_ACTOR, pool: PoolName = PoolName.BACKGROUND) -> list[Window]:
    """Every window, newest first."""
    rows = get_database().fetch_rows(
        pool, actor, f"SELECT {_COLUMNS} FROM maintenance_windows ORDER BY created_at DESC, id"
    )
    return [window_from_row(row) for row in rows]


def active_windows(now: datetime) -> list[Window]:
    """The windows open at `now` (the evaluator's question, as the system user)."""
    return [w for w in list_windows() if is_active(w, now)]


def create_window(actor: Actor, window: Window) -> Window:
    """Store a checked window (alerts.maintenance.validate_window); the stored one."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        row = (
            conn.execute(
                text(
                    f"""INSERT INTO maintenance_windows (name, kind, starts_at, ends_at, days,
                           start_time, end_time, time_zone, matchers, note, created_by,
                           username)
                       VALUES (:name, :kind, :starts_at, :ends_at, :days, :start_time,
                               :end_time, :time_zone, CAST(:matchers AS jsonb),
                               NULLIF(:note, ''), current_app_user_id(), :username)
                       RETURNING {_COLUMNS}"""
                ),
                {
                    "name": window.name,
                    "kind": window.kind,
                    "starts_at": window.starts_at,
                    "ends_at": window.ends_at,
                    "days": list(window.days) if window.kind == "weekly" else None,
                    "start_time": window.start_time,
                    "end_time": window.end_time,
                    "time_zone": window.time_zone,
                    "matchers": json.dumps([m.as_json() for m in window.matchers]),
                    "note": window.note,
                    "username": actor.username,
                },
            )
            .mappings()
            .one()
        )
    return window_from_row(dict(row))


def delete_window(actor: Actor, window_id: str) -> Window:
    """Delete the window; the deleted one. UnknownWindow if there is none with that id (or
    someone deleted it meanwhile). Its Alertmanager silences stay linked until expired."""
    try:
        uuid.UUID(str(window_id)[:64])
    except ValueError:
        raise UnknownWindow("That maintenance window no longer exists.") from None
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        row = (
            conn.execute(
                text(
                    f"""DELETE FROM maintenance_windows
                       WHERE id = CAST(:id AS uuid) RETURNING {_COLUMNS}"""
                ),
                {"id": window_id},
            )
            .mappings()
            .one_or_none()
        )
    if row is None:
        raise UnknownWindow("That maintenance window no longer exists.")
    return window_from_row(dict(row))


# ---------------------------------------------------------------------------------------------
# Alertmanager silences made for the windows' occurrences (written by the sync).


@dataclass(frozen=True)
class SilenceLink:
    window_id: str
    starts_at: datetime
    ends_at: datetime
    silence_id: str


def silence_links(actor: Actor = SYSTEM_ACTOR) -> list[SilenceLink]:
    rows = get_database().fetch_rows(
        PoolName.BACKGROUND,
        actor,
        """SELECT window_id::text AS window_id, starts_at, ends_at, silence_id
           FROM maintenance_window_silences ORDER BY window_id, starts_at""",
    )
    return [SilenceLink(**row) for row in rows]


def link_silence(link: SilenceLink, actor: Actor = SYSTEM_ACTOR) -> None:
    """Record (or replace) the silence made for one occurrence of a window."""
    with get_database().transaction(PoolName.BACKGROUND, actor) as conn:
        conn.execute(
            text(
                """INSERT INTO maintenance_window_silences (window_id, starts_at, ends_at,
                       silence_id)
                   VALUES (CAST(:window_id AS uuid), :starts_at, :ends_at, :silence_id)
                   ON CONFLICT (window_id, starts_at) DO UPDATE SET ends_at = EXCLUDED.ends_at,
                       silence_id = EXCLUDED.silence_id, created_at = clock_timestamp()"""
            ),
            link.__dict__,
        )


def unlink_silences(silence_ids: list[str], actor: Actor = SYSTEM_ACTOR) -> None:
    if not silence_ids:
        return
    with get_database().transaction(PoolName.BACKGROUND, actor) as conn:
        conn.execute(
            text("DELETE FROM maintenance_window_silences WHERE silence_id = ANY(:ids)"),
            {"ids": silence_ids},
        )


# A transaction-level lock so two syncs (the background one, one after a change on /alerts)
# never make two silences for the same occurrence.
SYNC_XACT_LOCK_KEY = 7_310_053


@contextmanager
def sync_lock(actor: Actor = SYSTEM_ACTOR) -> Iterator[None]:
    """Held while one sync runs; another waits for it."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SYNC_XACT_LOCK_KEY})
        yield
