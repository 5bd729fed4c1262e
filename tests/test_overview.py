"""Overview figures equal independent SQL counts, in the callback and in the browser."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_values
from tests.support.figures import x_values
from tests.support.sql import execute


@pytest.fixture
def known_data(owner_engine, clean_data, database):
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO tasks (title, status, completed_at) VALUES
                   ('a', 'pending', NULL), ('b', 'pending', NULL), ('c', 'in_progress', NULL),
                   ('d', 'completed', now() - interval '1 day'),
                   ('e', 'completed', now() - interval '2 days'),
                   ('f', 'completed', now() - interval '20 days')"""
            )
        )
        task = conn.scalar(text("SELECT id FROM tasks WHERE title = 'd'"))
        conn.execute(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status,
                       validation_score) VALUES (:t, 'syntax', 'passed', 90),
                       (:t, 'security', 'failed', 40)"""
            ),
            {"t": task},
        )
        conn.execute(
            text(
                """INSERT INTO error_logs (error_code, error_category, error_severity,
                       error_message, resolution_status, created_at) VALUES
                   ('E1', 'network', 'high', 'm', 'unresolved', now()),
                   ('E2', 'network', 'low', 'm', 'resolved', now() - interval '10 minutes'),
                   ('E3', 'system', 'low', 'm', 'investigating', now() - interval '3 hours')"""
            )
        )
    # the Overview reads the analytics rollups, which the app refreshes every minute
    from taskmaster_dash.data.analytics import refresh_rollups

    refresh_rollups(None)


CLEAR_ALERTS = "TRUNCATE alert_states, alert_silences, alert_acknowledgements"


def test_overview_numbers_match_sql(dash_app, client_as, known_data, owner_engine):
    with owner_engine.connect() as conn:
        backlog = conn.scalar(
            text("SELECT count(*) FROM tasks WHERE status IN ('pending','in_progress')")
        )
        week = conn.scalar(
            text("SELECT count(*) FROM tasks WHERE completed_at >= now() - interval '7 days'")
        )
        score = conn.scalar(text("SELECT avg(validation_score) FROM validation_results"))
    values = callback_values(
        call_callback(client_as("admin"), dash_app, "ov-open-backlog.children", [1])
    )
    assert values["ov-open-backlog"]["children"] == str(backlog) == "3"
    assert values["ov-completed-per-day"]["children"] == f"{week / 7:.1f}"
    assert values["ov-mean-score"]["children"] == f"{score:.1f}" == "65.0"
    assert values["ov-errors-hour"]["children"] == "2"
    assert values["ov-unresolved"]["children"] == "2"

    # The completed-per-day panel (30 days whatever the range) against a count per UTC day.
    with owner_engine.connect() as conn:
        per_day = dict(
            conn.execute(
                text(
                    """SELECT to_char(completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*)
                       FROM tasks WHERE completed_at >= date_trunc('day', now() AT TIME ZONE 'UTC')
                                        AT TIME ZONE 'UTC' - interval '29 days'
                       GROUP BY 1"""
                )
            ).all()
        )
    figure = callback_values(
        call_callback(client_as("admin"), dash_app, "ov-completed-graph.figure", [{}, None])
    )["ov-completed-graph"]["figure"]
    (trace,) = figure["data"]
    days = x_values(trace)
    assert len(days) == 30
    drawn = {day: count for day, count in zip(days, trace["y"], strict=True) if count}
    assert drawn == per_day and sum(per_day.values()) >= 2


def test_overview_counts_firing_alerts_and_says_how_many_are_silenced_or_acknowledged(
    dash_app, client_as, owner_engine
):
    execute(
        owner_engine,
        CLEAR_ALERTS,
        """INSERT INTO alert_states (rule_name, title, severity, state) VALUES
           ('A', 'a', 'critical', 'firing'), ('B', 'b', 'warning', 'firing'),
           ('C', 'c', 'warning', 'pending'), ('D', 'd', 'warning', 'error')""",
        "INSERT INTO alert_silences (rule_name, until, username)"
        " VALUES ('B', now() + interval '1 hour', 'test-admin')",
        "INSERT INTO alert_acknowledgements (rule_name, note, username)"
        " VALUES ('A', 'on it', 'test-on-call'), ('C', 'not firing', 'test-on-call')",
    )
    try:
        values = callback_values(
            call_callback(client_as("viewer"), dash_app, "ov-open-backlog.children", [1])
        )
    finally:
        execute(owner_engine, CLEAR_ALERTS)
    count, note = values["ov-firing-alerts"]["children"]
    assert count == "2" and note["props"]["children"] == "1 silenced, 1 acknowledged"


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "developer"])  # the developer sees unassigned tasks
def test_overview_in_the_browser_shows_the_figures(dash_duo, dash_app, users, known_data, role):
    browser_sign_in(dash_duo, dash_app, users.username(role))
    dash_duo.wait_for_text_to_equal("#ov-open-backlog", "3", timeout=10)
    dash_duo.wait_for_text_to_equal("#ov-unresolved", "2")
    assert dash_duo.find_element("#nav-overview").text == "Overview"
    assert dash_duo.get_logs() == []
