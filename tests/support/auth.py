"""The suite's users and signing in: over HTTP with the Flask test client, or through the real
form in Chromium."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from tests.support.processes import free_port

# The default roles' permissions as the spec (and migrations 002 and 060) define them.
ROLE_PERMISSIONS = {
    "admin": {"*"},
    "developer": {
        "tasks:read",
        "tasks:write",
        "validations:read",
        "validations:write",
        "errors:read",
    },
    "viewer": {"tasks:read", "validations:read", "errors:read"},
    "api_client": {"tasks:read", "tasks:write", "validations:write"},
    "on_call": {"errors:read", "errors:write", "tasks:read", "validations:read", "alerts:ack"},
}

ROLE_PASSWORD = "Correct-Horse-42"


@dataclass(frozen=True)
class TestUsers:
    __test__ = False  # a helper, though its name starts with Test
    ids: dict[str, str]

    @staticmethod
    def username(role: str) -> str:
        return f"test-{role.replace('_', '-')}"

    def actor(self, role: str):
        from taskmaster_dash.data.db import Actor

        return Actor(self.ids[role], self.username(role))


def new_user(role: str = "viewer", prefix: str = "u") -> tuple[str, str]:
    """A fresh user with `role` and the suite's password; (id, username)."""
    from taskmaster_dash.data.db import SYSTEM_ACTOR
    from taskmaster_dash.data.users import create_user

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    return create_user(SYSTEM_ACTOR, name, f"{name}@example.com", role, ROLE_PASSWORD), name


def csrf_token_in(page: str) -> str:
    """The CSRF token of the form in `page` (HTML)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match[1]


def csrf_token(client, path: str = "/login") -> str:
    return csrf_token_in(client.get(path).get_data(as_text=True))


def sign_in(client, username: str, password: str, next_path: str = "/"):
    return client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": username,
            "password": password,
            "next": next_path,
        },
    )


def signed_in_client(app, username: str, password: str):
    client = app.server.test_client()
    response = sign_in(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def browser_sign_in(dash_duo, app, username: str, password: str = ROLE_PASSWORD, path: str = "/"):
    """Start the app, sign in through the real form in Chromium, and wait for the app shell."""
    # A free port, so several test runs on one machine do not collide; navigate=False because
    # "/" redirects to the sign-in form, which is not a Dash page.
    dash_duo.start_server(app, navigate=False, port=free_port())
    base = dash_duo.server.url.rstrip("/")
    dash_duo.driver.get(f"{base}/login?next={path}")
    dash_duo.wait_for_element("#username").send_keys(username)
    dash_duo.find_element("#password").send_keys(password)
    dash_duo.find_element("#login-button").click()
    dash_duo.wait_for_element("#user-name", timeout=15)
