"""The browser tour: every registered page as every default role, in Chromium, on the demo seed.

Each role signs in once (with the demo's own logins) and opens every page in `dash.page_registry`
(the task and error pages with a real id from the seed). Once a page has settled, the tour checks
what a user would meet: "Not permitted" exactly where the role lacks the page's permission,
every grid the server sent rows to showing rows, every chart drawn, and a clean console. All
problems of one role are collected, so a failure names every page × role that is wrong.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from dash.testing.errors import TestingTimeoutError
from dash.testing.wait import until
from sqlalchemy import create_engine, text

from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data.analytics import refresh_rollups
from taskmaster_dash.data.db import Database
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.seed import (
    DEMO_ROLES,
    SCALES,
    DemoLogin,
    ensure_demo_logins,
    seed_demo_data,
)
from taskmaster_dash.data.users import login_record, session_record
from taskmaster_dash.services import current
from tests.support.auth import browser_sign_in
from tests.support.browser import registered_pages

SETTLE_SECONDS = 30

# What the page looks like to a user right now, read from the DOM and from Dash's own store:
# the grids and charts come from the page's layout (so one that never mounts is noticed too),
# and whether a grid "has data" is what the server sent it (rowData, or getRowsResponse for
# the infinite row model), independent of what the grid draws.
PAGE_STATE = """
const state = window.store && window.store.getState();
if (!state || !state.layout) { return {ready: false}; }
const queued = Object.assign({}, state.callbacks);
delete queued.stored; delete queued.completed;
const components = {grids: [], graphs: []};
(function walk(node) {
  if (Array.isArray(node)) { node.forEach(walk); return; }
  if (!node || typeof node !== 'object' || !node.props) { return; }
  if (node.type === 'AgGrid') { components.grids.push(node.props); }
  if (node.type === 'Graph') { components.graphs.push(node.props); }
  Object.values(node.props).forEach(walk);
})(state.layout.components || state.layout);  // Dash 4 wraps the tree
const visible = el => !!el && el.getClientRects().length > 0;
const content = document.getElementById('_pages_content');
return {
  ready: true,
  busy: Boolean(state.isLoading)
    || Object.values(queued).some(list => list.length > 0)
    || document.querySelector('[data-dash-is-loading="true"]') !== null,
  notPermitted: content !== null && content.innerText.includes('Not permitted'),
  grids: components.grids.map(props => {
    const host = document.getElementById(props.id);
    const sent = props.rowModelType === 'infinite'
      ? ((props.getRowsResponse || {}).rowData || []).length
      : (props.rowData || []).length;
    return {
      id: props.id,
      mounted: !!host && !!host.querySelector('.ag-root-wrapper'),
      loading: !!host && host.querySelector('.ag-loading, .ag-overlay-loading-center') !== null,
      sent: sent,
      shown: host ? host.querySelectorAll('.ag-center-cols-container .ag-row').length : 0,
    };
  }),
  graphs: components.graphs.map(props => {
    const host = document.getElementById(props.id);
    return {
      id: props.id,
      visible: visible(host),
      drawn: !!host && host.querySelector('.main-svg') !== null
        && !host.innerText.includes('loading…'),
    };
  }),
};
"""


@dataclass(frozen=True)
class Demo:
    logins: dict[str, DemoLogin]  # by role, as the demo prints them
    task_id: str
    error_id: str


@pytest.fixture(scope="module")
def demo(pg_server, database, dash_app, users, tmp_path_factory):
    """The demo's data in its own database: the small seed, rollups refreshed as the running
    demo does, and the demo logins (created the way `taskmaster-dash demo` creates them).
    `dash_app` and `users` come first: they belong in the session's database, not this one."""
    server = pg_server.create_database("tour_demo")
    migrate(server.owner_url, server.app_url)
    seed_demo_data(server.owner_url, SCALES["small"], progress=lambda *_: None)
    tour_db = Database(server.app_url)
    # the demo on a machine without Prometheus
    with current().using(database=tour_db, prometheus=None):
        refresh_rollups(None)
        logins = ensure_demo_logins(tmp_path_factory.mktemp("demo"))
        engine = create_engine(server.owner_url)
        with engine.connect() as conn:
            # An unassigned task (a developer may see it too) with validation runs and an error.
            task_id, error_id = conn.execute(
                text(
                    "SELECT t.id, e.id FROM tasks t JOIN error_logs e ON e.task_id = t.id"
                    " WHERE t.assigned_to IS NULL"
                    " AND EXISTS (SELECT 1 FROM validation_results v WHERE v.task_id = t.id)"
                    " ORDER BY t.id, e.id LIMIT 1"
                )
            ).one()
        engine.dispose()
        yield Demo({login.role: login for login in logins}, str(task_id), str(error_id))
    tour_db.dispose()


def page_paths(demo: Demo) -> list[tuple[str, str | None]]:
    """(path, permission) of every registered page, path variables filled from the seed."""
    return registered_pages(demo.task_id, demo.error_id)


def unsettled(state: dict[str, Any]) -> list[str]:
    """What still keeps the page from having settled, in words (empty once it has)."""
    if not state["ready"]:
        return ["the Dash app has not started"]
    waiting = ["callbacks are still running"] if state["busy"] else []
    for grid in state["grids"]:
        if not grid["mounted"]:
            waiting.append(f"grid {grid['id']} has not appeared")
        elif grid["loading"]:
            waiting.append(f"grid {grid['id']} is still loading")
        elif grid["sent"] and not grid["shown"]:
            waiting.append(f"grid {grid['id']} was sent {grid['sent']} rows but shows none")
    waiting += [
        f"chart {graph['id']} is not drawn"
        for graph in state["graphs"]
        if graph["visible"] and not graph["drawn"]
    ]
    return waiting


def settled_state(dash_duo) -> dict[str, Any]:
    """Wait until nothing keeps the page from having settled, for two readings in a row; on
    timeout return the last reading with what was still pending."""
    readings: list[dict[str, Any]] = []

    def settled() -> bool:
        readings.append(dash_duo.driver.execute_script(PAGE_STATE))
        return len(readings) > 1 and not unsettled(readings[-1]) and readings[-1] == readings[-2]

    try:
        until(settled, SETTLE_SECONDS)
    except TestingTimeoutError:
        return {**readings[-1], "pending": unsettled(readings[-1])}
    return readings[-1]


def problems_on(state: dict[str, Any], permitted: bool, logs: list) -> list[str]:
    found = [f"not settled after {SETTLE_SECONDS} s: {p}" for p in state.get("pending", [])]
    if state["ready"] and permitted and state["notPermitted"]:
        found.append('says "Not permitted" although the role holds the permission')
    if state["ready"] and not permitted and not state["notPermitted"]:
        found.append('does not say "Not permitted" although the role lacks the permission')
    # The same console error repeats (140 a second in one known case): each one once, counted.
    messages = Counter(f"{entry['level']}: {entry['message'][:300]}" for entry in logs)
    found += [f"console {message} (×{count})" for message, count in messages.items()]
    return found


@pytest.mark.browser
@pytest.mark.parametrize("role", DEMO_ROLES)
def test_every_page_works_for_the_role(dash_duo, dash_app, demo, role):
    login = demo.logins[role]
    browser_sign_in(dash_duo, dash_app, login.username, login.password)
    user = SessionUser(session_record(login_record(login.username).id))
    base = dash_duo.server.url.rstrip("/")
    problems: dict[str, list[str]] = {}
    opened = []
    for path, permission in page_paths(demo):
        dash_duo.driver.get(base + path)
        dash_duo.wait_for_element("#_pages_content")
        state = settled_state(dash_duo)
        # Leave the page before reading the console, so what it logs until it is unloaded is
        # counted against it and not against the next page.
        dash_duo.driver.get("about:blank")
        found = problems_on(state, user.has(permission), dash_duo.get_logs())
        if found:
            problems[path] = found
        opened.append((path, len(state.get("grids", [])), len(state.get("graphs", []))))
    # The tour really looked at charts (every role may read tasks) and, for admins, grids:
    # a tour whose page reading found nothing would pass without checking anything.
    assert sum(graphs for _, _, graphs in opened) > 0, opened
    assert sum(grids for _, grids, _ in opened) > 0 or not user.has("users:manage"), opened
    assert problems == {}, f"{role}: " + "; ".join(
        f"{path}: {' | '.join(found)}" for path, found in problems.items()
    )
