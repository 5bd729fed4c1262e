"""Server-side sessions (table user_sessions, migration 070): open one at sign-in, find the
signed-in user from the cookie's token on every request, list and end them.

The cookie carries a random token; only its SHA-256 is stored. Times come from the caller's
clock (`now`), so idle and absolute expiry can be tested without waiting.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.db import SYSTEM_ACTOR, SYSTEM_USER_ID, Actor, PoolName, get_database
from taskmaster_dash.data.users import SessionRecord, session_record_from_row

# last_seen_at is written at most this often per session: one small UPDATE a minute, not one per
# request.
TOUCH_INTERVAL = timedelta(minutes=1)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class SessionLifetime:
    idle: timedelta
    maximum: timedelta


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(actor: Actor, token: str, now: datetime) -> str:
    """Record a new session for `actor` (their IP and agent); returns its id. The audit log's
    row for it carries the same session id, IP and agent."""
    session_id = str(uuid.uuid4())
    with get_database().transaction(PoolName.WRITE, replace(actor, session_id=session_id)) as conn:
        conn.execute(
            text(
                """INSERT INTO user_sessions (id, token_hash, user_id, created_at, last_seen_at,
                                              ip_address, user_agent)
                   VALUES (CAST(:id AS uuid), :hash, CAST(:user_id AS uuid), :now, :now,
                           CAST(NULLIF(:ip, '') AS inet), :agent)"""
            ),
            {
                "id": session_id,
                "hash": token_hash(token),
                "user_id": actor.user_id,
                "now": now,
                "ip": actor.ip_address if _is_ip(actor.ip_address) else "",
                "agent": (actor.user_agent or "")[:500] or None,
            },
        )
    return session_id


_LIVE = """s.ended_at IS NULL AND s.last_seen_at > :now - CAST(:idle AS interval)
           AND s.created_at > :now - CAST(:maximum AS interval)"""


def _lifetime_params(now: datetime, lifetime: SessionLifetime) -> dict[str, Any]:
    return {"now": now, "idle": lifetime.idle, "maximum": lifetime.maximum}


def session_user(token: str, now: datetime, lifetime: SessionLifetime) -> SessionRecord | None:
    """The user a live session token belongs to, or None (ended, idle or too old, or the user may
    no longer sign in). Read on the primary (write pool): a session just ended must not live on
    in a replica's lag."""
    if not token or len(token) > 200:
        return None
    rows = get_database().fetch_rows(
        PoolName.WRITE,
        SYSTEM_ACTOR,
        f"""SELECT s.id::text AS session_id, s.last_seen_at, u.id::text AS id, u.username,
                   u.email, r.role_name, r.permissions
            FROM user_sessions s JOIN users u ON u.id = s.user_id
                 JOIN user_roles r ON r.id = u.role_id
            WHERE s.token_hash = :hash AND {_LIVE}
              AND u.is_active AND r.is_active
              AND (u.locked_until IS NULL OR u.locked_until <= now())
              AND u.id <> CAST(:system_id AS uuid)""",
        {"hash": token_hash(token), "system_id": SYSTEM_USER_ID, **_lifetime_params(now, lifetime)},
    )
    if not rows:
        return None
    row = rows[0]
    if row["last_seen_at"] <= now - TOUCH_INTERVAL:
        with get_database().transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
            conn.execute(
                text(
                    """UPDATE user_sessions SET last_seen_at = :now
                       WHERE id = CAST(:id AS uuid) AND ended_at IS NULL AND last_seen_at < :now"""
                ),
                {"id": row["session_id"], "now": now},
            )
    return session_record_from_row(row, session_id=row["session_id"])


def end_session(actor: Actor, session_id: object, reason: str) -> bool:
    """End one session of the acting user (RLS: their own, or anyone's with users:manage)."""
    if not isinstance(session_id, str) or not _UUID.match(session_id):
        return False
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        ended = conn.execute(
            text(
                """UPDATE user_sessions SET ended_at = now(), end_reason = :reason
                   WHERE id = CAST(:id AS uuid) AND user_id = CAST(:user_id AS uuid)
                     AND ended_at IS NULL"""
            ),
            {"id": session_id, "user_id": actor.user_id, "reason": reason},
        )
        return ended.rowcount == 1


def active_sessions(actor: Actor, now: datetime, lifetime: SessionLifetime) -> list[dict]:
    """The acting user's live sessions, most recently seen first."""
    return get_database().fetch_rows(
        PoolName.WRITE,
        actor,
        f"""SELECT s.id::text AS id, s.created_at, s.last_seen_at, host(s.ip_address) AS ip_address,
                   s.user_agent
            FROM user_sessions s
            WHERE s.user_id = CAST(:user_id AS uuid) AND {_LIVE}
            ORDER BY s.last_seen_at DESC, s.created_at DESC""",
        {"user_id": actor.user_id, **_lifetime_params(now, lifetime)},
    )


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
    except ValueError:
        return False
    return True
