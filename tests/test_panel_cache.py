"""The shared panel cache (pages/_panel_cache.py): a cached panel answers what an uncached one
does, callers who see the same rows share an answer, and nobody is ever served an answer
computed for someone who sees other rows (a developer's for an admin, or the other way round)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.data.analytics import refresh_rollups
from taskmaster_dash.data.cache import Cache
from taskmaster_dash.data.db import Actor, PoolName
from taskmaster_dash.pages._panel_cache import USER_FILTERED_ROLES
from taskmaster_dash.pages._panels import PAGE_PANELS
from taskmaster_dash.pages._timerange import parse_query
from tests.support.auth import ROLE_PASSWORD, new_user, signed_in_client
from tests.support.callbacks import call_callback, callback_output

# A window fixed for each test: the same buckets on every call.
WINDOW: dict[str, str] = {}


@pytest.fixture(autouse=True)
def fixed_window():
    """The last two days to two whole hours ahead, set when the test starts (not at import: the
    suite may cross an hour before it gets here), so rows added during the test fall inside."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    WINDOW.update(
        {"range": "custom", "from": (end - timedelta(days=2)).isoformat(), "to": end.isoformat()}
    )


def view(page: str) -> dict[str, str]:
    return {"page": page, **WINDOW}


@pytest.fixture
def panel_cache(dash_app, services):
    """The app's panel cache on (60 s), on a clock the test moves: clock[0] is now."""
    clock = [1_000_000.0]
    saved = services.caches.panels
    services.caches.panels = Cache(60, maxsize=512, timer=lambda: clock[0])
    yield services.caches.panels, clock
    services.caches.panels = saved


def add_tasks(
    conn, n: int, assignee: str | None, status: str = "pending", hours_ago: int = 3
) -> None:
    conn.execute(
        text(
            """INSERT INTO tasks (title, status, type, assigned_to, created_at, completed_at)
               SELECT 'c' || g, CAST(:status AS text), 'feature', CAST(:who AS text),
                      now() - make_interval(hours => :ago),
                      CASE WHEN CAST(:status AS text) = 'completed'
                           THEN now() - interval '2 hours' END
               FROM generate_series(1, :n) g"""
        ),
        {"n": n, "who": assignee, "status": status, "ago": hours_ago},
    )


@pytest.fixture
def rows(owner_engine, clean_data, database):
    """Tasks of the test developer, of someone else and unassigned; a validation; errors."""
    with owner_engine.begin() as conn:
        add_tasks(conn, 3, "test-developer")
        add_tasks(conn, 2, "test-developer", "completed")
        add_tasks(conn, 7, "bob")
        add_tasks(conn, 4, "bob", "completed")
        add_tasks(conn, 2, None)
        conn.execute(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status,
                       validation_score, execution_time_ms, created_at)
                   SELECT id, 'syntax', 'passed', 80, 100, now() - interval '2 hours'
                   FROM tasks LIMIT 3"""
            )
        )
        conn.execute(
            text(
                """INSERT INTO error_logs (error_code, error_category, error_severity,
                       error_message, service_name, resolution_status, created_at)
                   SELECT 'E' || g, 'system', 'high', 'm', 'api', 'unresolved',
                          now() - interval '2 hours'
                   FROM generate_series(1, 4) g"""
            )
        )
    refresh_rollups(None)


def target(panel) -> str:
    return f"{panel.id}-graph.figure" if panel.figure else f"{panel.id}-table.children"


def drawn(client, dash_app, page: str, panel) -> object:
    """What the panel's callback sends: a figure's traces (its axis range is set per call, from
    the clock), or a table's children."""
    response = call_callback(client, dash_app, target(panel), {"tr-view": view(page)})
    output = callback_output(response, target(panel))
    return output["data"] if panel.figure else output


def panel(page: str, panel_id: str):
    return next(p for p in PAGE_PANELS[page] if p.id == panel_id)


def test_the_window_is_one_the_pages_accept():
    assert parse_query(view("tasks"), "tasks").problems == ()


@pytest.mark.parametrize("role", ["admin", "developer"])
def test_a_cached_panel_answers_what_an_uncached_one_does(
    dash_app, client_as, rows, panel_cache, role
):
    cache, _clock = panel_cache
    client = client_as(role)
    client.get("/")
    for page, panels in PAGE_PANELS.items():
        for each in panels:
            cache.ttl = 0
            uncached = drawn(client, dash_app, page, each)
            cache.ttl = 60
            first, again = (drawn(client, dash_app, page, each) for _ in range(2))
            assert first == uncached, (page, each.id)
            assert again == uncached, (page, each.id)


def backlog_total(traces) -> int:
    """Open tasks at the end of the backlog chart (pending + in progress)."""
    return sum(t["y"][-1] for t in traces if t["name"] in ("pending", "in_progress"))


def test_callers_who_see_the_same_rows_share_an_answer_and_others_never_get_it(
    dash_app, client_as, owner_engine, rows, panel_cache
):
    cache, clock = panel_cache
    backlog = panel("tasks", "tasks-backlog")
    admin, developer = client_as("admin"), client_as("developer")
    _, other_admin_name = new_user("admin", "admin")
    other_admin = signed_in_client(dash_app, other_admin_name, ROLE_PASSWORD)
    for client in (admin, developer, other_admin):
        client.get("/")

    # An admin sees 12 open tasks; the developer only their own 3 and the 2 unassigned.
    assert backlog_total(drawn(admin, dash_app, "tasks", backlog)) == 12
    assert backlog_total(drawn(developer, dash_app, "tasks", backlog)) == 5
    # ...and the other way round: the developer's answer first, then the admin's.
    cache.clear()
    assert backlog_total(drawn(developer, dash_app, "tasks", backlog)) == 5
    assert backlog_total(drawn(admin, dash_app, "tasks", backlog)) == 12

    # New rows (after the rollups' end: counted from the raw rows): another admin still gets
    # the answer the first one's call computed (shared); the developer's own cached answer is
    # theirs alone, and an uncached call sees the rows.
    with owner_engine.begin() as conn:
        add_tasks(conn, 10, None, hours_ago=0)
    assert backlog_total(drawn(other_admin, dash_app, "tasks", backlog)) == 12
    assert backlog_total(drawn(developer, dash_app, "tasks", backlog)) == 5
    # Whether raw rows of the current hour are counted depends on where an earlier test left
    # the rollups; a refresh makes the uncached answers below independent of test order.
    refresh_rollups(3)
    cache.ttl = 0
    assert backlog_total(drawn(admin, dash_app, "tasks", backlog)) == 22
    assert backlog_total(drawn(developer, dash_app, "tasks", backlog)) == 15
    cache.ttl = 60

    # Another developer shares nothing with the first: their own answer, computed now.
    _, name = new_user("developer", "dev")
    second = signed_in_client(dash_app, name, ROLE_PASSWORD)
    second.get("/")
    assert backlog_total(drawn(second, dash_app, "tasks", backlog)) == 12  # the unassigned

    # The answers end after their lifetime, and with a rollup refresh.
    clock[0] += 61
    assert backlog_total(drawn(other_admin, dash_app, "tasks", backlog)) == 22
    with owner_engine.begin() as conn:
        add_tasks(conn, 1, "bob", hours_ago=0)
    assert backlog_total(drawn(other_admin, dash_app, "tasks", backlog)) == 22
    refresh_rollups(3)
    assert backlog_total(drawn(other_admin, dash_app, "tasks", backlog)) == 23


def test_the_permission_is_checked_before_the_cache(dash_app, client_as, rows, panel_cache):
    rate = panel("overview", "ov-error-rate")
    admin, api_client = client_as("admin"), client_as("api_client")  # no errors:read
    admin.get("/")
    drawn(admin, dash_app, "overview", rate)
    response = call_callback(api_client, dash_app, target(rate), {"tr-view": view("overview")})
    assert response.status_code == 403
    assert api_client.get("/api/v1/analytics/errors?range=24h").status_code == 403


@pytest.mark.parametrize("role", ["admin", "developer", "viewer", "api_client", "on_call"])
def test_the_roles_told_apart_by_user_are_the_ones_rls_filters(database, users, role):
    actor: Actor = users.actor(role)
    with database.transaction(PoolName.READ, actor) as conn:
        sees_all = conn.scalar(text("SELECT current_user_sees_all_tasks()"))
    assert sees_all == (role not in USER_FILTERED_ROLES)
