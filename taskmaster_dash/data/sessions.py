"""Server-side sessions (table user_sessions, migration 070): open one at sign-in, find the
signed-in user from the cookie's token on every request, list and end them.

The cookie carries a random token; only its SHA-256 is stored. Times come from the caller's
clock (`now`), so idle and absolute expiry can be tested without waiting.

Finding the session is one SELECT inside the request's shared read transaction (data/db.py),
on the primary. With SESSION_CACHE_SECONDS, a found session is also kept in the worker's memory
for that long, but used only while the sign-in generation (data/revocation.py) is unchanged:
any committed change to users, roles or sessions made through the app reads it again at once,
on every worker of the host (and every host with REDIS_URL).
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
from taskmaster_dash.services import current as current_services

# last_seen_at is written at most this often per session: one small UPDATE a minute, not one per
# request.
TOUCH_INTERVAL = timedelta(minutes=1)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class SessionLifetime:
    idle: timedelta
    maximum: timedelta


@dataclass(frozen=True)
class _Found:
    """A live session as read from the database, kept in the session cache."""

    record: SessionRecord
    created_at: datetime
    last_seen_at: datetime

    def live_at(self, now: datetime, lifetime: SessionLifetime) -> bool:
        """Still usable without the database: not due a last-seen touch (so not idle either),
        not past its maximum age."""
        return (
            now - TOUCH_INTERVAL < self.last_seen_at <= now
            and self.created_at > now - lifetime.maximum
            and self.last_seen_at > now - lifetime.idle
        )


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
    no longer sign in). Read on the primary: a session just ended must not live on in a
    replica's lag."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    cache = current_services().caches.sessions
    # Read before the database: a change committed meanwhile makes this entry stale at once.
    generation = get_database().revocations.current() if cache.ttl > 0 else None
    if generation is not None:
        kept: _Found | None = cache.peek((digest, generation))
        if kept is not None and kept.live_at(now, lifetime):
            return kept.record
    found = _read_session(digest, now, lifetime)
    if found is not None and generation is not None:
        cache.put((digest, generation), found)
    return found.record if found else None


def _read_session(digest: str, now: datetime, lifetime: SessionLifetime) -> _Found | None:
    database = get_database()
    rows = database.fetch_rows(
        database.primary_read_pool(),
        SYSTEM_ACTOR,
        f"""SELECT s.id::text AS session_id, s.created_at, s.last_seen_at, u.id::text AS id,
                   u.username, u.email, r.role_name, r.permissions
            FROM user_sessions s JOIN users u ON u.id = s.user_id
                 JOIN user_roles r ON r.id = u.role_id
            WHERE s.token_hash = :hash AND {_LIVE}
              AND u.is_active AND r.is_active
              AND (u.locked_until IS NULL OR u.locked_until <= now())
              AND u.id <> CAST(:system_id AS uuid)""",
        {"hash": digest, "system_id": SYSTEM_USER_ID, **_lifetime_params(now, lifetime)},
    )
    if not rows:
        return None
    row = rows[0]
    last_seen = row["last_seen_at"]
    if last_seen <= now - TOUCH_INTERVAL:
        with database.transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
            conn.execute(
                text(
                    """UPDATE user_sessions SET last_seen_at = :now
                       WHERE id = CAST(:id AS uuid) AND ended_at IS NULL AND last_seen_at < :now"""
                ),
                {"id": row["session_id"], "now": now},
            )
        last_seen = now
    record = session_record_from_row(row, session_id=row["session_id"])
    return _Found(record, row["created_at"], last_seen)


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


SESSIONS_SHOWN = 50


def active_sessions(
    actor: Actor, now: datetime, lifetime: SessionLifetime, limit: int = SESSIONS_SHOWN
) -> tuple[list[dict], int]:
    """The acting user's live sessions, theirs first, then most recently seen first, at most
    `limit` of them (a script signing in every hour keeps hundreds alive), and how many there
    are in all."""
    rows = get_database().fetch_rows(
        PoolName.WRITE,
        actor,
        f"""SELECT s.id::text AS id, s.created_at, s.last_seen_at, host(s.ip_address) AS ip_address,
                   s.user_agent, count(*) OVER () AS live
            FROM user_sessions s
            WHERE s.user_id = CAST(:user_id AS uuid) AND {_LIVE}
            ORDER BY s.id = CAST(:session_id AS uuid) DESC, s.last_seen_at DESC,
                     s.created_at DESC
            LIMIT :limit""",
        {
            "user_id": actor.user_id,
            "session_id": actor.session_id
            if actor.session_id and _UUID.match(actor.session_id)
            else None,
            "limit": limit,
            **_lifetime_params(now, lifetime),
        },
    )
    return rows, rows[0]["live"] if rows else 0


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
    except ValueError:
        return False
    return True
