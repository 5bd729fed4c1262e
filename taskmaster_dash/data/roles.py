"""Roles and their permissions (the /admin/roles page). Each action is one transaction run as the
acting admin; the database refuses the same things (migration 010)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from sqlalchemy import text

from taskmaster_dash.auth.permissions import PERMISSIONS
from taskmaster_dash.data.db import SYSTEM_USER_ID, Actor, PoolName, get_database
from taskmaster_dash.data.users import UserInputError

ROLE_NAME_PATTERN = re.compile(r"^[a-z][a-z_]{1,49}$")
SPEC_ROLES = frozenset({"admin", "developer", "viewer", "api_client"})
MAX_DESCRIPTION = 500


def known_permissions() -> dict[str, str]:
    return {"*": "Everything (all permissions, present and future)", **PERMISSIONS}


def roles(actor: Actor) -> list[dict]:
    """Every role with its permissions and how many active users hold it."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT r.role_name, r.role_description, r.permissions, r.is_active,
                  count(u.id) FILTER (WHERE u.is_active AND u.id <> CAST(:system_id AS uuid))
                      AS active_users
           FROM user_roles r LEFT JOIN users u ON u.role_id = r.id
           GROUP BY r.id ORDER BY r.role_name""",
        {"system_id": SYSTEM_USER_ID},
    )


def _clean_permissions(permissions: Iterable[str] | None) -> list[str]:
    if permissions is None:
        return []
    # Only a list (a JSON array) of names: an object such as {"*": 1} must not turn into ["*"].
    if not isinstance(permissions, list | tuple):
        raise UserInputError(
            'Permissions must be a list. Send permission names in a list, such as ["tasks:read"].'
        )
    chosen = list(permissions)
    known = known_permissions()
    unknown = [p for p in chosen if not isinstance(p, str) or p not in known]
    if unknown:
        raise UserInputError("Unknown permission: " + ", ".join(map(str, unknown))[:200] + ".")
    return sorted(set(chosen), key=list(known).index)


def _clean_description(description: str | None) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise UserInputError(
            f"The description must be text of at most {MAX_DESCRIPTION} characters."
        )
    return description.strip() or None


def _role_name(name: str | None) -> str:
    if not isinstance(name, str) or not ROLE_NAME_PATTERN.match(name):
        raise UserInputError(
            "A role name is 2-50 characters: lower-case letters and underscores, "
            "starting with a letter."
        )
    return name


def create_role(
    actor: Actor, name: str, description: str | None, permissions: Iterable[str] | None
) -> None:
    name = _role_name(name)
    chosen = _clean_permissions(permissions)
    description = _clean_description(description)
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if conn.scalar(text("SELECT 1 FROM user_roles WHERE role_name = :n"), {"n": name}):
            raise UserInputError(f"A role named {name} already exists.")
        conn.execute(
            text(
                """INSERT INTO user_roles (role_name, role_description, permissions)
                   VALUES (:n, :d, CAST(:p AS jsonb))"""
            ),
            {"n": name, "d": description, "p": json.dumps(chosen)},
        )


def _existing_role(conn, name: str | None) -> str:
    if not isinstance(name, str) or not name:
        raise UserInputError("Choose a role first.")
    found = conn.scalar(
        text("SELECT role_name FROM user_roles WHERE role_name = :n FOR UPDATE"), {"n": name[:60]}
    )
    if found is None:
        raise UserInputError("There is no such role.")
    return found


def set_role_permissions(
    actor: Actor, name: str, permissions: Iterable[str] | None, description: str | None = None
) -> None:
    chosen = _clean_permissions(permissions)
    description = _clean_description(description)
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        name = _existing_role(conn, name)
        conn.execute(
            text(
                """UPDATE user_roles SET permissions = CAST(:p AS jsonb),
                          role_description = COALESCE(:d, role_description)
                   WHERE role_name = :n"""
            ),
            {"n": name, "p": json.dumps(chosen), "d": description},
        )


def set_role_active(actor: Actor, name: str, active: bool) -> None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        name = _existing_role(conn, name)
        if not active:
            if name in SPEC_ROLES:
                raise UserInputError(f"The built-in role {name} cannot be deactivated.")
            holders = conn.scalar(
                text(
                    """SELECT count(*) FROM users u JOIN user_roles r ON r.id = u.role_id
                       WHERE r.role_name = :n AND u.is_active"""
                ),
                {"n": name},
            )
            if holders:
                raise UserInputError(
                    f"The role {name} is held by {holders} active user(s); "
                    "move them to another role first."
                )
        conn.execute(
            text("UPDATE user_roles SET is_active = :a WHERE role_name = :n"),
            {"a": bool(active), "n": name},
        )
