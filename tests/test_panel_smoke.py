"""Every registered analytics panel, as every default role, called server-side: the panel's
data where the role holds its permission, "not permitted" (403) exactly where it does not, and
never an exception. The browser tour covers pages; this covers each panel's own callbacks and
its rows in the analytics API, so a new panel is checked the moment it is registered."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from taskmaster_dash.data.analytics import refresh_rollups
from taskmaster_dash.pages._panels import PAGE_PANELS, Panel
from tests.support.callbacks import call_callback, callback_output
from tests.support.sql import all_rows

ROLES = ("admin", "developer", "viewer", "api_client", "on_call")
REFUSED = {"error": "not permitted"}


@pytest.fixture(scope="module")
def panels(dash_app) -> list[tuple[str, Panel]]:
    """(page, panel) for every registered panel (the app registers them as it imports pages)."""
    found = [(page, panel) for page, listed in PAGE_PANELS.items() for panel in listed]
    assert {"overview", "tasks", "validations", "errors"} <= set(PAGE_PANELS)
    return found


@pytest.fixture
def some_data(owner_engine, clean_data, database) -> None:
    """A done and an open task, a validation run, an open and a resolved error, all from the
    last few hours and rolled up: every panel has rows to show."""
    with owner_engine.begin() as conn:
        task = conn.scalars(
            text(
                """INSERT INTO tasks (title, status, type, priority, complexity_score,
                       assigned_to, tags, estimated_hours, actual_hours, created_at,
                       completed_at)
                   VALUES ('smoke', 'completed', 'feature', 3, 5, 'test-developer', '["api"]', 2, 3,
                           now() - interval '2 hours', now() - interval '1 hour'),
                          ('open', 'pending', 'bugfix', 7, 2, 'test-developer', '["db"]', 4, NULL,
                           now() - interval '2 hours', NULL)
                   RETURNING id"""
            )
        ).first()
        conn.execute(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status,
                       validation_score, execution_time_ms, created_at)
                   VALUES (:task, 'syntax', 'failed', 40, 120, now() - interval '1 hour')"""
            ),
            {"task": task},
        )
        conn.execute(
            text(
                """INSERT INTO error_logs (task_id, error_code, error_category, error_severity,
                       error_message, service_name, resolution_status, resolved_at,
                       first_occurred_at, created_at)
                   VALUES (:task, 'E_SMOKE', 'system', 'high', 'smoke', 'task-api',
                           'unresolved', NULL, now() - interval '1 hour',
                           now() - interval '1 hour'),
                          (:task, 'E_FIXED', 'network', 'low', 'fixed', 'validator',
                           'resolved', now() - interval '30 minutes',
                           now() - interval '3 hours', now() - interval '3 hours')"""
            ),
            {"task": task},
        )
    refresh_rollups(None)


@pytest.fixture(scope="module")
def role_permissions(owner_engine, users) -> dict[str, set[str]]:
    """What each default role holds, as the database says (not as the test would guess)."""
    found = all_rows(
        owner_engine,
        """SELECT role_name, permissions FROM user_roles
           WHERE role_name = ANY(CAST(:roles AS text[]))""",
        roles=list(ROLES),
    )
    return {row["role_name"]: set(row["permissions"]) for row in found}


def holds(held: set[str], permission: str) -> bool:
    return bool({"*", permission} & held)


@pytest.mark.parametrize("role", ROLES)
def test_every_panel_answers_each_role_or_refuses_it(
    dash_app, client_as, role_permissions, panels, some_data, role
):
    client = client_as(role)
    client.get("/")  # Dash registers the pages' callbacks on the first request
    problems = []
    for page, panel in panels:
        view = {"page": page, "range": "24h"}
        target = f"{panel.id}-graph.figure" if panel.figure else f"{panel.id}-table.children"
        draw = call_callback(client, dash_app, target, {"tr-view": view, "tr-interval": 0})
        csv = call_callback(
            client,
            dash_app,
            f"{panel.id}-download.data",
            state={"tr-view": view},
            changed=f"{panel.id}-csv.n_clicks",
        )
        permitted = holds(role_permissions[role], panel.permission)
        for what, response in (("draw", draw), ("csv", csv)):
            if not permitted:
                if response.status_code != 403 or response.get_json() != {
                    **REFUSED,
                    "permission": panel.permission,
                }:
                    problems.append(f"{page}/{panel.id} {what}: not refused ({response.status})")
                continue
            if response.status_code != 200:
                problems.append(f"{page}/{panel.id} {what}: {response.status}")
        if permitted and draw.status_code == 200:
            drawn = callback_output(draw, target)
            message = callback_output(draw, f"{panel.id}-msg.children")
            if drawn is None or (message is not None and "no data" not in str(message)):
                problems.append(f"{page}/{panel.id}: drew {drawn!r:.80} with {message!r:.200}")
            if "no data" in str(message):
                problems.append(f"{page}/{panel.id}: no rows from the smoke data")
        if permitted and csv.status_code == 200:
            sent = callback_output(csv, f"{panel.id}-download.data")
            if not isinstance(sent, dict) or not sent.get("content"):
                problems.append(f"{page}/{panel.id}: CSV {sent!r:.120}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_the_analytics_api_serves_exactly_the_panels_a_role_may_read(
    client_as, role_permissions, panels, some_data, role
):
    client = client_as(role)
    for page in PAGE_PANELS:
        readable = {p.id for p in PAGE_PANELS[page] if holds(role_permissions[role], p.permission)}
        response = client.get(f"/api/v1/analytics/{page}?range=24h")
        if not readable:
            assert response.status_code == 403, (page, role)
            assert response.get_json()["error"] == "Not permitted."
            continue
        assert response.status_code == 200, (page, role, response.get_data(as_text=True)[:300])
        answered = response.get_json()["data"]["panels"]
        assert set(answered) == readable, (page, role)
        failed = {pid: body for pid, body in answered.items() if "rows" not in body}
        assert failed == {}, (page, role)
