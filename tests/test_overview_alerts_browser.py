"""The Overview's firing-alerts card and the banner's buttons, in Chromium, for every role."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.auth import browser_sign_in


@pytest.fixture
def silenced_and_firing(owner_engine, services):
    """Two firing alerts, one of them silenced (so it is not in the banner)."""
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_states, alert_silences, alert_acknowledgements"))
        conn.execute(
            text(
                """INSERT INTO alert_states (rule_name, title, severity, link, state, value)
                   VALUES ('HighErrorRate', 'More than 10 errors per minute', 'critical',
                           '/errors', 'firing', 42),
                          ('TaskBacklog', 'Task backlog over 100 pending', 'warning', '/tasks',
                           'firing', 150)"""
            )
        )
        conn.execute(
            text(
                "INSERT INTO alert_silences (rule_name, until, username)"
                " VALUES ('TaskBacklog', now() + interval '1 hour', 'test-on-call')"
            )
        )
    yield
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_states, alert_silences, alert_acknowledgements"))


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "developer", "viewer", "api_client", "on_call"])
def test_the_overview_counts_a_silenced_firing_alert_and_says_so(
    dash_duo, dash_app, users, silenced_and_firing, role
):
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/")
    dash_duo.wait_for_contains_text("#ov-firing-alerts", "1 silenced", timeout=15)
    assert dash_duo.find_element("#ov-firing-alerts").text.splitlines() == ["2", "1 silenced"]
    # The banner shows only the one that is not silenced; buttons only for alerts:ack.
    dash_duo.wait_for_contains_text("#alert-banner", "More than 10 errors per minute", timeout=15)
    assert "Task backlog" not in dash_duo.find_element("#alert-banner").text
    buttons = dash_duo.driver.execute_script(
        """return document.querySelectorAll('#alert-banner button[id*="alert-act"]').length"""
    )
    assert buttons == (2 if role in ("admin", "on_call") else 0)
    assert dash_duo.get_logs() == []
