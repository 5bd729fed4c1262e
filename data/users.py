"""Users and roles: what sign-in and sessions need, and creating users."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from auth.passwords import hash_password, password_problem
from data.db import SYSTEM_ACTOR, SYSTEM_USER_ID, Actor, PoolName, get_database

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,99}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserInputError(ValueError):
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
    session_token: str


def session_token(password_hash: str | None) -> str:
    """Changes whenever the password changes, so older sessions stop being valid."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


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


def record_login_failure(user_id: str, max_attempts: int, lock_minutes: int) -> bool:
    """Count a failed attempt; lock the account when it reaches max_attempts. True if locked."""
    with get_database().transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        locked = conn.scalar(
            text(
                """UPDATE users SET
                       login_attempts = LEAST(login_attempts + 1, 10),
                       locked_until = CASE WHEN login_attempts + 1 >= :max_attempts
                           THEN now() + make_interval(mins => :lock_minutes)
                           ELSE locked_until END
                   WHERE id = CAST(:id AS uuid)
                   RETURNING locked_until IS NOT NULL AND locked_until > now()"""
            ),
            {"id": user_id, "max_attempts": max_attempts, "lock_minutes": lock_minutes},
        )
    return bool(locked)


def session_record(user_id: str) -> SessionRecord | None:
    """The signed-in user as a session sees them, or None when they may no longer be signed in."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        SYSTEM_ACTOR,
        """SELECT u.id::text, u.username, u.email, r.role_name, r.permissions, u.password_hash
           FROM users u JOIN user_roles r ON r.id = u.role_id
           WHERE u.id = CAST(:id AS uuid) AND u.is_active AND r.is_active
             AND (u.locked_until IS NULL OR u.locked_until <= now())
             AND u.id <> CAST(:system_id AS uuid)""",
        {"id": user_id, "system_id": SYSTEM_USER_ID},
    )
    if not rows:
        return None
    row = rows[0]
    return SessionRecord(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        role_name=row["role_name"],
        permissions=frozenset(row["permissions"]),
        session_token=session_token(row["password_hash"]),
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
    """Set a new password (RLS: users:manage, or the user themself); other sessions end."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        username = conn.scalar(
            text("SELECT username FROM users WHERE id = CAST(:id AS uuid)"), {"id": user_id}
        )
        if username is None:
            raise UserInputError("There is no such user.")
        problem = password_problem(password, username)
        if problem:
            raise UserInputError(problem)
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE id = CAST(:id AS uuid)"),
            {"h": hash_password(password), "id": user_id},
        )
