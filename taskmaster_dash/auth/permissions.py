"""The one permission check. Every callback that reads or changes protected data calls it
(directly or through @require_permission) before touching the database."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import has_request_context, request
from flask_login import UserMixin, current_user

from taskmaster_dash.data.db import Actor
from taskmaster_dash.data.users import SessionRecord

F = TypeVar("F", bound=Callable[..., Any])

# The catalogue of known permissions, with what each allows ("*" grants all of them).
PERMISSIONS: dict[str, str] = {
    "tasks:read": "See tasks, backlog and throughput analytics",
    "tasks:write": "Create and change tasks",
    "validations:read": "See validation results and score analytics",
    "validations:write": "Record validation results",
    "errors:read": "See errors, error rates and error details",
    "errors:write": "Mark as investigating, resolve, ignore and reopen errors",
    "users:manage": "Manage users and roles",
    "audit:read": "Read the audit log",
    "alerts:ack": "Acknowledge alerts with a note and silence them for a while",
    "alerts:manage": "Change alert rules (thresholds, pending periods, on/off)",
    "pools:read": "See connection pools and database health",
}


class PermissionDenied(Exception):
    def __init__(self, permission: str) -> None:
        super().__init__(f"not permitted: {permission}")
        self.permission = permission


@dataclass(frozen=True)
class SessionUser(UserMixin):
    record: SessionRecord
    # The random token the session cookie carries (the database keeps only its hash); None for
    # API keys and Cloudflare Access, which have no session.
    token: str | None = field(default=None, repr=False)

    def get_id(self) -> str | None:
        return self.token

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def username(self) -> str:
        return self.record.username

    def has(self, permission: str | None) -> bool:
        return permission is None or bool({"*", permission} & self.record.permissions)

    def actor(self) -> Actor:
        """This user as the database sees them, with the request's session, IP and agent."""
        if not has_request_context():
            return Actor(self.record.id, self.record.username)
        return Actor(
            self.record.id,
            self.record.username,
            session_id=self.record.session_id,
            ip_address=request.remote_addr,
            user_agent=request.headers.get("User-Agent"),
        )


def signed_in_user() -> SessionUser | None:
    if not has_request_context() or not current_user.is_authenticated:
        return None
    return current_user._get_current_object()


def has_permission(permission: str | None) -> bool:
    user = signed_in_user()
    return user is not None and user.has(permission)


def actor_with(permission: str) -> Actor:
    """The signed-in user's Actor if they hold `permission`; PermissionDenied otherwise."""
    user = signed_in_user()
    if user is None or not user.has(permission):
        raise PermissionDenied(permission)
    return user.actor()


def require_permission(permission: str) -> Callable[[F], F]:
    """Refuse the callback (HTTP 403) before it runs unless the caller holds `permission`."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor_with(permission)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
