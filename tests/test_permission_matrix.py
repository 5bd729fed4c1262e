"""The permission matrix: every default role against every action of the product, through the
callback endpoint exactly as a browser would call it. A refused action answers 403 (or, on the
overview, shows "—" instead of the figure) and leaves the database as it was.

To add an action (e.g. "resolve an error", "edit alert thresholds"), append an Action to ACTIONS:
`call` posts the callback, `snapshot` reads what the action may change (independent SQL), and
`succeeded` says what an allowed caller sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.roles import create_role
from taskmaster_dash.data.users import create_user
from taskmaster_dash.pages._error_panel import BUTTON_ACTIONS
from tests.support.auth import ROLE_PASSWORD, ROLE_PERMISSIONS
from tests.support.callbacks import call_callback, callback_values
from tests.support.sql import scalar, write_row


@dataclass
class Target:
    """Things an action works on, made fresh for each test case."""

    owner_engine: Any
    suffix: str
    user_id: str = ""
    role_name: str = ""
    error: dict = field(default_factory=dict)  # {"id", "updated_at"} as the page shows it


@dataclass(frozen=True)
class Action:
    name: str
    permission: str
    call: Callable[[Any, Any, Target], Any]  # (client, dash_app, target) -> response
    snapshot: Callable[[Target], Any] = lambda _t: None  # what the action may change
    succeeded: Callable[[Any], bool] = lambda resp: resp.status_code == 200
    refused: Callable[[Any], bool] = lambda resp: resp.status_code == 403
    changes_data: bool = False


def _scalar(target: Target, sql: str, **params) -> Any:
    return scalar(target.owner_engine, sql, **params)


def _overview_card(card: str) -> tuple[Callable, Callable]:
    def value(resp) -> str:
        return callback_values(resp)[card]["children"]

    return (lambda resp: value(resp) != "—"), (lambda resp: value(resp) == "—")


def _message(resp, output: str) -> str:
    return str(callback_values(resp)[output]["children"])


def _alert_action(name: str, action: str, note: str, done: str) -> Action:
    """The acknowledge / silence form confirmed for TaskBacklog, as a banner button opens it."""
    return Action(
        name,
        "alerts:ack",
        lambda c, app, t: call_callback(
            c,
            app,
            "alert-action-message.children",
            [1],
            [{"rule": "TaskBacklog", "action": action}, note, 15, 0],
        ),
        snapshot=lambda t: _scalar(
            t,
            "SELECT (SELECT count(*) FROM alert_acknowledgements WHERE rule_name = 'TaskBacklog')"
            " + (SELECT count(*) FROM alert_silences WHERE rule_name = 'TaskBacklog')",
        ),
        succeeded=lambda resp: done in _message(resp, "alert-action-message"),
        changes_data=True,
    )


def _error_action(name: str, button: str, note: str | None, done: str) -> Action:
    """A button of the error panel, pressed on the target's error as the page shows it."""
    return Action(
        name,
        "errors:write",
        lambda c, app, t: call_callback(
            c,
            app,
            "err-body.children",
            [1 if b == button else None for b in BUTTON_ACTIONS.values()],
            [t.error, note, None],
            changed=f"err-{button}.n_clicks",
        ),
        snapshot=lambda t: _scalar(
            t,
            "SELECT resolution_status FROM error_logs WHERE id = CAST(:id AS uuid)",
            id=t.error["id"],
        ),
        succeeded=lambda resp: done in str(callback_values(resp)).lower(),
        changes_data=True,
    )


def _form_action(
    name: str,
    permission: str,
    message: str,
    state: Callable[[Target], Any],
    snapshot: Callable[[Target], Any],
    said: str,
    changed: str | None = None,
    inputs: list[Any] | None = None,
) -> Action:
    """A form saved by its button (`inputs`, `changed`: as call_callback takes them) with the
    fields `state`; an allowed caller reads `said` in the form's `message`."""
    return Action(
        name,
        permission,
        lambda c, app, t: call_callback(c, app, f"{message}.children", inputs, state(t), changed),
        snapshot=snapshot,
        succeeded=lambda resp: said in _message(resp, message),
        changes_data=True,
    )


def _read_card(what: str, card: str) -> Action:
    ok, refused = _overview_card(card)
    return Action(
        f"read {what}",
        f"{what}:read",
        lambda c, app, t: call_callback(c, app, f"{card}.children", [None]),
        succeeded=ok,
        refused=refused,
    )


ACTIONS = [
    _read_card("tasks", "ov-open-backlog"),
    _read_card("errors", "ov-unresolved"),
    _form_action(
        "create a user",
        "users:manage",
        "au-create-message",
        state=lambda t: {
            "au-new-username": f"made-{t.suffix}",
            "au-new-email": f"made-{t.suffix}@example.com",
            "au-new-role": "viewer",
            "au-new-password": ROLE_PASSWORD,
        },
        snapshot=lambda t: _scalar(
            t, "SELECT count(*) FROM users WHERE username = :u", u=f"made-{t.suffix}"
        ),
        said="Created",
    ),
    _form_action(
        "deactivate a user",
        "users:manage",
        "au-action-message",
        state=lambda t: {"au-grid": [{"id": t.user_id, "username": "victim"}], "au-key-days": 90},
        changed="au-deactivate.n_clicks",
        snapshot=lambda t: _scalar(
            t, "SELECT is_active FROM users WHERE id = CAST(:id AS uuid)", id=t.user_id
        ),
        said="inactive",
    ),
    _form_action(
        "edit a role's permissions",
        "users:manage",
        "ar-message",
        state=lambda t: {
            "ar-role-select": t.role_name,
            "ar-description": "edited",
            "ar-permissions": ["errors:read", "errors:write"],
        },
        changed="ar-save.n_clicks",
        snapshot=lambda t: _scalar(
            t,
            "SELECT permissions::text || role_description FROM user_roles WHERE role_name = :r",
            r=t.role_name,
        ),
        said="Saved",
    ),
    _error_action("resolve an error", "resolve", "fixed by the matrix", "resolved"),
    _error_action("mark an error investigating", "investigate", None, "investigating"),
    Action(
        "read error analytics over the API",
        "errors:read",
        lambda c, app, t: c.get("/api/v1/analytics/errors?range=24h"),
    ),
    _form_action(
        "edit alert thresholds",
        "alerts:manage",
        "alerts-edit-message",
        inputs=[1],
        state=lambda t: ["TaskBacklog", "150", ">", "10m", ["enabled"]],
        snapshot=lambda t: _scalar(
            t,
            "SELECT coalesce(max(updated_at)::text || max(threshold), '') FROM"
            " alert_rule_overrides WHERE rule_name = 'TaskBacklog'",
        ),
        said="Saved TaskBacklog",
    ),
    _alert_action("acknowledge an alert", "ack", "seen by the matrix", "Acknowledged TaskBacklog"),
    _alert_action("silence an alert", "silence", "", "Silenced TaskBacklog for 15 minutes"),
    _form_action(
        "create a maintenance window",
        "alerts:manage",
        "maint-message",
        inputs=[1],
        # Far ahead and matching no alert: it never mutes another test's alerts.
        state=lambda t: {
            "maint-name": f"mw-{t.suffix}",
            "maint-kind": "once",
            "maint-tz": "UTC",
            "maint-start": "2099-01-01 00:00",
            "maint-end": "2099-01-01 01:00",
            "maint-matchers": "team=permission-matrix",
        },
        snapshot=lambda t: _scalar(
            t, "SELECT count(*) FROM maintenance_windows WHERE name = :n", n=f"mw-{t.suffix}"
        ),
        said="message-success",
    ),
]


@pytest.fixture
def target(database, users, owner_engine) -> Target:
    suffix = uuid.uuid4().hex[:10]
    found = Target(owner_engine, suffix)
    found.user_id = create_user(
        SYSTEM_ACTOR, f"victim-{suffix}", f"victim-{suffix}@example.com", "viewer", ROLE_PASSWORD
    )
    # Role names take lower-case letters only: spell the hex suffix with a-p.
    found.role_name = "matrix_" + "".join(chr(ord("a") + int(c, 16)) for c in suffix)
    create_role(SYSTEM_ACTOR, found.role_name, "matrix role", ["tasks:read"])
    row = write_row(
        owner_engine,
        "INSERT INTO error_logs (error_code, error_category, error_severity, error_message)"
        " VALUES ('E_MATRIX', 'system', 'high', 'matrix') RETURNING id::text, updated_at",
    )
    found.error = {"id": row.id, "updated_at": row.updated_at.isoformat()}
    return found


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("role", list(ROLE_PERMISSIONS))
def test_each_role_may_do_exactly_what_its_permissions_allow(
    dash_app, client_as, target, role, action
):
    permissions = ROLE_PERMISSIONS[role]
    allowed = "*" in permissions or action.permission in permissions
    before = action.snapshot(target)

    response = action.call(client_as(role), dash_app, target)

    after = action.snapshot(target)
    if allowed:
        assert action.succeeded(response), response.get_data(as_text=True)[:300]
        if action.changes_data:
            assert after != before, "an allowed change reached the database"
    else:
        assert action.refused(response), response.get_data(as_text=True)[:300]
        assert after == before, "a refused action changed the database"
