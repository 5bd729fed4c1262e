"""Users and roles: what sign-in and sessions need, and creating users."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.auth.passwords import hash_password, password_problem
from taskmaster_dash.data.db import SYSTEM_ACTOR, SYSTEM_USER_ID, Actor, PoolName, get_database
from taskmaster_dash.data.grid import grid_query
from taskmaster_dash.data.refusal import Refused

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,99}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserInputError(Refused, ValueError):
    """Input a person typed that we refuse, with a sentence saying why."""


@dataclass(frozen=True)
class LoginRecord:
    id: str
    username: str
    password_hash: str | None
    is_active: bool
    role_active: bool
    login_attempts: int
    locked_until: datetime | None
    is_system: bool


@dataclass(frozen=True)
class SessionRecord:
    id: str
    username: str
    email: str
    role_name: str
    permissions: frozenset[str]
    session_id: str | None = None  # the server-side session (None: API key, Cloudflare Access)


def login_record(username: str) -> LoginRecord | None:
    row = get_database().fetch_rows(
        PoolName.WRITE,
        SYSTEM_ACTOR,
        """SELECT u.id::text, u.username, u.password_hash, u.is_active,
                  r.is_active AS role_active, u.login_attempts, u.locked_until,
                  u.id = CAST(:system_id AS uuid) AS is_system
           FROM users u JOIN user_roles r ON r.id = u.role_id
           WHERE lower(u.username) = lower(:username)""",
        {"username": username, "system_id": SYSTEM_USER_ID},
    )
    return LoginRecord(**row[0]) if row else None


def record_login_success(user_id: str, new_password_hash: str | None) -> None:
    with get_database().transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        conn.execute(
            text(
                """UPDATE users SET login_attempts = 0, locked_until = NULL,
                          last_login_at = now(),
                          password_hash = COALESCE(:new_hash, password_hash)
                   WHERE id = CAST(:id AS uuid)"""
            ),
            {"id": user_id, "new_hash": new_password_hash},
        )


def take_login_attempt(user_id: str, max_attempts: int, lock_minutes: int) -> int | None:
    """Count a sign-in attempt before its password is checked: the attempt's number (1 to
    max_attempts), or None when the account is locked. One UPDATE, so however many guesses arrive
    at once, at most max_attempts get a number; the last one locks the account at once (a right
    password then still signs in and clears it). A lock that has run out starts a new count."""
    with get_database().transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        return conn.scalar(
            text(
                """UPDATE users SET
                       login_attempts = CASE WHEN locked_until IS NOT NULL
                               OR login_attempts >= :max_attempts THEN 1
                           ELSE login_attempts + 1 END,
                       locked_until = CASE WHEN (CASE WHEN locked_until IS NOT NULL
                               OR login_attempts >= :max_attempts THEN 1
                           ELSE login_attempts + 1 END) >= :max_attempts
                           THEN now() + make_interval(mins => :lock_minutes) END
                   WHERE id = CAST(:id AS uuid)
                     AND (locked_until IS NULL OR locked_until <= now())
                   RETURNING login_attempts"""
            ),
            {"id": user_id, "max_attempts": max_attempts, "lock_minutes": lock_minutes},
        )


def clear_login_attempts(user_id: str) -> None:
    """After a right password outside sign-in (the /account form): the count starts again."""
    with get_database().transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        conn.execute(
            text(
                "UPDATE users SET login_attempts = 0, locked_until = NULL "
                "WHERE id = CAST(:id AS uuid) AND login_attempts > 0"
            ),
            {"id": user_id},
        )


def session_record(user_id: str) -> SessionRecord | None:
    """The user as a request sees them, or None when they may no longer be signed in."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        SYSTEM_ACTOR,
        """SELECT u.id::text, u.username, u.email, r.role_name, r.permissions
           FROM users u JOIN user_roles r ON r.id = u.role_id
           WHERE u.id = CAST(:id AS uuid) AND u.is_active AND r.is_active
             AND (u.locked_until IS NULL OR u.locked_until <= now())
             AND u.id <> CAST(:system_id AS uuid)""",
        {"id": user_id, "system_id": SYSTEM_USER_ID},
    )
    return session_record_from_row(rows[0]) if rows else None


def session_record_from_row(row: dict[str, Any], session_id: str | None = None) -> SessionRecord:
    return SessionRecord(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        role_name=row["role_name"],
        permissions=frozenset(row["permissions"]),
        session_id=session_id,
    )


def role_names(actor: Actor = SYSTEM_ACTOR) -> list[str]:
    rows = get_database().fetch_rows(
        PoolName.READ, actor, "SELECT role_name FROM user_roles WHERE is_active ORDER BY role_name"
    )
    return [r["role_name"] for r in rows]


def validate_new_user(username: str, email: str, password: str) -> None:
    if not USERNAME_PATTERN.match(username or ""):
        raise UserInputError(
            "The username must be 3-100 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if len(email or "") > 255 or not EMAIL_PATTERN.match(email or ""):
        raise UserInputError("The e-mail address is not valid.")
    problem = password_problem(password, username)
    if problem:
        raise UserInputError(problem)


def create_user(actor: Actor, username: str, email: str, role_name: str, password: str) -> str:
    """Create a user as `actor` (RLS requires users:manage); return the new id."""
    validate_new_user(username, email, password)
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        role_id = conn.scalar(
            text("SELECT id FROM user_roles WHERE role_name = :r AND is_active"), {"r": role_name}
        )
        if role_id is None:
            raise UserInputError(f"There is no active role named {role_name!r}.")
        taken = conn.scalar(
            text(
                "SELECT count(*) FROM users WHERE lower(username) = lower(:u) "
                "OR lower(email) = lower(:e)"
            ),
            {"u": username, "e": email},
        )
        if taken:
            raise UserInputError("A user with that username or e-mail already exists.")
        return str(
            conn.scalar(
                text(
                    """INSERT INTO users (username, email, password_hash, role_id)
                       VALUES (:u, :e, :h, :r) RETURNING id"""
                ),
                {"u": username, "e": email, "h": hash_password(password), "r": role_id},
            )
        )


def set_password(actor: Actor, user_id: str, password: str) -> None:
    """Set a new password (RLS: users:manage, or the user themself); the user's sessions end,
    except the one making the change."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        username = conn.scalar(
            text("SELECT username FROM users WHERE id = CAST(:id AS uuid)"), {"id": user_id}
        )
        if username is None:
            raise UserInputError("There is no such user.")
        _store_password(conn, user_id, username, password, actor.session_id)


def _store_password(
    conn: Connection, user_id: str, username: str, password: str, keep_session_id: str | None
) -> None:
    """Check the password against the policy and store its hash; a new password also clears
    failed attempts and any lock, and ends the user's sessions but `keep_session_id`.
    UserInputError when the policy refuses it."""
    problem = password_problem(password or "", username)
    if problem:
        raise UserInputError(problem)
    conn.execute(
        text(
            "UPDATE users SET password_hash = :h, login_attempts = 0, locked_until = NULL "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {"h": hash_password(password), "id": user_id},
    )
    end_sessions_of(conn, user_id, keep_session_id, "password changed")


def end_sessions_of(
    conn: Connection, user_id: str, keep_session_id: str | None, reason: str
) -> int:
    """In the caller's transaction: end the user's sessions other than `keep_session_id`."""
    ended = conn.execute(
        text(
            """UPDATE user_sessions SET ended_at = now(), end_reason = :reason
               WHERE user_id = CAST(:user_id AS uuid) AND ended_at IS NULL
                 AND id::text IS DISTINCT FROM :keep"""
        ),
        {"user_id": user_id, "keep": keep_session_id, "reason": reason},
    )
    return ended.rowcount


def own_account(actor: Actor) -> dict[str, Any] | None:
    """The acting user's own dates (RLS lets everyone read their own row)."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT created_at, last_login_at, api_key_expires_at,
                  api_key_hash IS NOT NULL AS has_api_key
           FROM users WHERE id = CAST(:id AS uuid)""",
        {"id": actor.user_id},
    )
    return rows[0] if rows else None


# --- Administration (the /admin/users page). Every function runs as the acting admin, so RLS
# (users:manage) and the audit log see them; each action is one transaction.

API_KEY_PREFIX = "tmk_"
API_KEY_MAX_DAYS = 365
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Grid field -> SQL expression (the whitelist for sorting and filtering).
USER_GRID_COLUMNS = {
    "username": "u.username",
    "email": "u.email",
    "role_name": "r.role_name",
    "is_active": "u.is_active",
    "locked": "(u.locked_until IS NOT NULL AND u.locked_until > now())",
    "last_login_at": "u.last_login_at",
    "login_attempts": "u.login_attempts",
    "api_key_expires_at": "u.api_key_expires_at",
}
USER_GRID_FILTERS = {"username": "u.username", "email": "u.email", "role_name": "r.role_name"}


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def users_page(actor: Actor, request: dict | None) -> tuple[list[dict], int]:
    """One block of the users grid (never the system user) and the filtered total."""
    query = grid_query(request, USER_GRID_COLUMNS, USER_GRID_FILTERS, "u.username")
    where = " AND ".join(["u.id <> CAST(:system_id AS uuid)", *query.where])
    params = {**query.params, "system_id": SYSTEM_USER_ID}
    base = f"FROM users u JOIN user_roles r ON r.id = u.role_id WHERE {where}"
    with get_database().transaction(PoolName.READ, actor) as conn:
        total = conn.scalar(text(f"SELECT count(*) {base}"), params)
        rows = conn.execute(
            text(
                f"""SELECT u.id::text AS id, u.username, u.email, r.role_name, u.is_active,
                           {USER_GRID_COLUMNS["locked"]} AS locked, u.last_login_at,
                           u.login_attempts, u.api_key_expires_at
                    {base} ORDER BY {query.order_by} LIMIT :limit OFFSET :offset"""
            ),
            {**params, "limit": query.limit, "offset": query.offset},
        ).mappings()
        return [dict(row) for row in rows], int(total or 0)


def user_summary(actor: Actor, user_id: Any) -> dict | None:
    """One user as the users grid shows them, read now (None for unknown ids and `system`)."""
    if not isinstance(user_id, str) or not _UUID.match(user_id) or user_id == SYSTEM_USER_ID:
        return None
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT u.id::text AS id, u.username, u.email, r.role_name, u.is_active,
                   {USER_GRID_COLUMNS["locked"]} AS locked
            FROM users u JOIN user_roles r ON r.id = u.role_id
            WHERE u.id = CAST(:id AS uuid)""",
        {"id": user_id},
    )
    return rows[0] if rows else None


def _editable_user(conn, user_id: str | None) -> dict:
    """The target user's row, locked for this transaction; refuses unknown ids and `system`."""
    if not isinstance(user_id, str) or not _UUID.match(user_id) or user_id == SYSTEM_USER_ID:
        raise UserInputError("There is no such user.")
    row = (
        conn.execute(
            text(
                """SELECT u.id::text AS id, u.username, u.is_active, r.role_name,
                          r.is_active AND (r.permissions ? '*' OR r.permissions ? 'users:manage')
                              AS manages_users
                   FROM users u JOIN user_roles r ON r.id = u.role_id
                   WHERE u.id = CAST(:id AS uuid) FOR UPDATE OF u"""
            ),
            {"id": user_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise UserInputError("There is no such user.")
    return dict(row)


def _refuse_losing_last_manager(conn, target: dict) -> None:
    managers = conn.scalar(text("SELECT active_user_manager_count()"))
    if target["is_active"] and target["manages_users"] and managers <= 1:
        raise UserInputError("The last active admin cannot be deactivated, demoted or deleted.")


def set_user_role(actor: Actor, user_id: str, role_name: str) -> None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        target = _editable_user(conn, user_id)
        if target["id"] == actor.user_id:
            raise UserInputError("You cannot change the role of your own account.")
        role = (
            conn.execute(
                text(
                    """SELECT id, is_active AND (permissions ? '*' OR permissions ? 'users:manage')
                              AS manages_users
                       FROM user_roles WHERE role_name = :r AND is_active"""
                ),
                {"r": role_name if isinstance(role_name, str) else ""},
            )
            .mappings()
            .first()
        )
        if role is None:
            raise UserInputError("Choose an active role.")
        if not role["manages_users"]:
            _refuse_losing_last_manager(conn, target)
        conn.execute(
            text("UPDATE users SET role_id = :r WHERE id = CAST(:id AS uuid)"),
            {"r": role["id"], "id": target["id"]},
        )


def set_user_active(actor: Actor, user_id: str, active: bool) -> None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        target = _editable_user(conn, user_id)
        if not active:
            if target["id"] == actor.user_id:
                raise UserInputError("You cannot deactivate your own account.")
            _refuse_losing_last_manager(conn, target)
        conn.execute(
            text("UPDATE users SET is_active = :a WHERE id = CAST(:id AS uuid)"),
            {"a": bool(active), "id": target["id"]},
        )


def _clear(actor: Actor, user_id: str, assignments: str) -> None:
    """Reset columns (`assignments`, written by this module) of a user the actor may edit."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        target = _editable_user(conn, user_id)
        conn.execute(
            text(f"UPDATE users SET {assignments} WHERE id = CAST(:id AS uuid)"),
            {"id": target["id"]},
        )


def unlock_user(actor: Actor, user_id: str) -> None:
    _clear(actor, user_id, "locked_until = NULL, login_attempts = 0")


def admin_set_password(actor: Actor, user_id: str, password: str) -> None:
    """An admin sets someone's password: the target's sessions end (but the admin's own)."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        target = _editable_user(conn, user_id)
        _store_password(conn, target["id"], target["username"], password, actor.session_id)


def end_all_sessions(actor: Actor, user_id: str) -> int:
    """An admin signs a user out everywhere (but the admin's own session); how many ended."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        target = _editable_user(conn, user_id)
        return end_sessions_of(conn, target["id"], actor.session_id, "ended by an admin")


def issue_api_key(actor: Actor, user_id: str, days: int) -> tuple[str, datetime]:
    """A new API key (replacing any earlier one): returned once, stored only as SHA-256."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= API_KEY_MAX_DAYS:
        raise UserInputError(f"An API key lasts 1 to {API_KEY_MAX_DAYS} days.")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        target = _editable_user(conn, user_id)
        expires = conn.scalar(
            text(
                """UPDATE users SET api_key_hash = :h,
                          api_key_expires_at = now() + make_interval(days => :days)
                   WHERE id = CAST(:id AS uuid) RETURNING api_key_expires_at"""
            ),
            {"h": api_key_hash(key), "days": days, "id": target["id"]},
        )
    return key, expires


def revoke_api_key(actor: Actor, user_id: str) -> None:
    _clear(actor, user_id, "api_key_hash = NULL, api_key_expires_at = NULL")


def _signable_user_id(where: str, params: dict) -> str | None:
    rows = get_database().fetch_rows(
        PoolName.READ,
        SYSTEM_ACTOR,
        f"""SELECT u.id::text AS id FROM users u JOIN user_roles r ON r.id = u.role_id
            WHERE {where} AND u.is_active AND r.is_active
              AND (u.locked_until IS NULL OR u.locked_until <= now())
              AND u.id <> CAST(:system_id AS uuid)""",
        {**params, "system_id": SYSTEM_USER_ID},
    )
    return rows[0]["id"] if len(rows) == 1 else None


def api_key_session(key: str) -> SessionRecord | None:
    """The user an unexpired, unrevoked API key belongs to, if they may still sign in. Keys
    without an expiry come from the original TaskMaster (ours always set one)."""
    if not key or len(key) > 200:
        return None
    user_id = _signable_user_id(
        "u.api_key_hash = :h AND (u.api_key_expires_at IS NULL OR u.api_key_expires_at > now())",
        {"h": api_key_hash(key)},
    )
    return session_record(user_id) if user_id else None


def email_session(email: str) -> SessionRecord | None:
    """The active user with this e-mail (Cloudflare Access vouches for it)."""
    if not email or len(email) > 255:
        return None
    user_id = _signable_user_id("lower(u.email) = lower(:e)", {"e": email})
    return session_record(user_id) if user_id else None


def username_session(username: str) -> SessionRecord | None:
    """The active user with this username (a configured Cloudflare service token maps to it)."""
    if not username or len(username) > 100:
        return None
    user_id = _signable_user_id("u.username = :u", {"u": username})
    return session_record(user_id) if user_id else None
