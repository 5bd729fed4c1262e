"""Alerts on the charts: each time-series chart draws a band for every firing period of the
rules linked to its page (and only those), as every role that may see the chart, and the
browser draws them with a clean console."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.alerts.rules import load_rules
from taskmaster_dash.data.alert_overlays import Band, Bands, firing_bands
from taskmaster_dash.data.analytics import Window
from taskmaster_dash.data.analytics_errors import STEP as ERROR_STEP
from taskmaster_dash.data.analytics_tasks import STEP as TASK_STEP
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.pages._figures import ALERT_TRACE, alert_overlay, chart
from tests import test_analytics, test_panel_cache
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_output

known_data = test_analytics.known_data  # tasks and errors over the last ten days
panel_cache = test_panel_cache.panel_cache  # the panel cache on, on a clock the test moves
TITLES = {rule.name: rule.title for rule in load_rules()}  # the shipped rules the app uses
ALICE = "assigned_to=alice"
# (rule, instance, state, minutes ago): TaskBacklog links to /tasks, HighErrorRate to /errors.
HISTORY = [
    ("TaskBacklog", "", "normal", 30 * 60),
    ("TaskBacklog", "", "firing", 26 * 60),  # opens the 24 h range firing
    ("TaskBacklog", "", "normal", 22 * 60),
    ("TaskBacklog", "", "pending", 10 * 60 + 5),
    ("TaskBacklog", "", "firing", 10 * 60),
    ("TaskBacklog", "", "normal", 9 * 60),
    ("TaskBacklog", "", "firing", 8 * 60 + 30),  # 30 min after the last: one band on 1 h buckets
    ("TaskBacklog", "", "normal", 7 * 60),
    ("TaskBacklog", "", "firing", 45),  # still firing
    ("TaskBacklog", ALICE, "firing", 3 * 60),
    ("TaskBacklog", ALICE, "error", 2 * 60),
    ("HighErrorRate", "", "firing", 5 * 60),
    ("HighErrorRate", "", "normal", 4 * 60),
]


@pytest.fixture
def history(owner_engine, services) -> Iterator[datetime]:
    """HISTORY in alert_history, at times relative to the database's now (returned)."""
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_states, alert_history, alert_rule_overrides"))
        now = conn.execute(text("SELECT now()")).scalar_one()
        for rule, instance, state, ago in HISTORY:
            conn.execute(
                text(
                    """INSERT INTO alert_history (rule_name, instance, labels, to_state, value,
                           created_at)
                       VALUES (:rule, :instance, '{}', :state, :value, :at)"""
                ),
                {
                    "rule": rule,
                    "instance": instance,
                    "state": state,
                    "value": 100 + ago,
                    "at": now - timedelta(minutes=ago),
                },
            )
    yield now
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_history"))


def expected_bands(
    rule: str, now: datetime, start: datetime, end: datetime, gap: timedelta
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per instance, the firing periods of `rule` in HISTORY that overlap [start, end], merged
    when one starts within `gap` of the last one's end, clipped: computed here, not by the
    app."""
    found: dict[str, list[tuple[datetime, datetime]]] = {}
    instances = {i for r, i, _, _ in HISTORY if r == rule}
    for instance in instances:
        changes = sorted(
            (now - timedelta(minutes=ago), state)
            for r, i, state, ago in HISTORY
            if r == rule and i == instance
        )
        periods: list[list[datetime]] = []
        for (at, state), (stopped, _) in zip(changes, [*changes[1:], (end, "")], strict=True):
            if state != "firing" or stopped <= start or at >= end:
                continue
            if periods and at - periods[-1][1] <= gap:
                periods[-1][1] = stopped
            else:
                periods.append([at, stopped])
        clipped = [(max(a, start), min(b, end)) for a, b in periods]
        if clipped:
            found[instance] = clipped
    return found


def parse(x: str) -> datetime:
    return datetime.fromisoformat(x).replace(tzinfo=UTC)


def draw(client, app, panel: str, page: str, **view: str) -> dict:
    target = f"{panel}-graph.figure"
    response = call_callback(
        client, app, target, {"tr-view": {"page": page, **view}, "tr-interval": 0}
    )
    return callback_output(response, target)


def drawn_bands(figure: dict) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per rule name: the alert bands as drawn (the shapes in the rule's legend group)."""
    bands: dict[str, list[tuple[datetime, datetime]]] = {}
    for shape in figure["layout"].get("shapes", []):
        group = shape.get("legendgroup", "")
        if group.startswith("alert-"):
            bands.setdefault(group.removeprefix("alert-"), []).append(
                (parse(shape["x0"]), parse(shape["x1"]))
            )
    return {rule: sorted(found) for rule, found in bands.items()}


def close(drawn: list, expected: list) -> bool:
    second = timedelta(seconds=1.5)  # shapes are written to the second
    return len(drawn) == len(expected) and all(
        abs(a - c) < second and abs(b - d) < second
        for (a, b), (c, d) in zip(drawn, expected, strict=True)
    )


def alert_traces(figure: dict) -> list[dict]:
    return [trace for trace in figure["data"] if trace.get("meta") == ALERT_TRACE]


@pytest.mark.parametrize("role", ["admin", "developer", "viewer"])
def test_the_backlog_chart_draws_the_tasks_rule_firing_periods_and_no_other(
    dash_app, client_as, known_data, history, role
):
    figure = draw(client_as(role), dash_app, "tasks-backlog", "tasks", range="24h")
    start, end = (parse(x) for x in figure["layout"]["xaxis"]["range"])
    window = Window.last(timedelta(hours=24), history, TASK_STEP)
    assert window.bucket == timedelta(hours=1)  # so the two periods 30 min apart are one band
    expected = expected_bands("TaskBacklog", history, start, end, window.bucket)
    assert set(expected) == {"", ALICE} and len(expected[""]) == 3
    drawn = drawn_bands(figure)
    assert set(drawn) == {"TaskBacklog"}  # HighErrorRate links to /errors
    assert close(drawn["TaskBacklog"], sorted(expected[""] + expected[ALICE])), drawn
    # One hover trace for the rule, a marker where each band starts and where one ends.
    (trace,) = alert_traces(figure)
    assert trace["name"] == f"⚠ {TITLES['TaskBacklog']}"
    assert len(trace["x"]) == 4 + 3  # 4 bands; 3 of them end inside the range
    hover = "\n".join(trace["text"])
    assert ALICE in hover and "fired 2 times" in hover and "still firing" in hover
    assert f"value {100 + 45}" in hover  # the value it fired with


def test_a_custom_range_clips_the_bands_and_hover_says_when_it_really_ended(
    dash_app, client_as, known_data, history
):
    view = {
        "range": "custom",
        "from": f"{history - timedelta(hours=12):%Y-%m-%dT%H:%M}",
        "to": f"{history - timedelta(minutes=9 * 60 + 30):%Y-%m-%dT%H:%M}",
    }
    figure = draw(client_as("admin"), dash_app, "tasks-backlog", "tasks", **view)
    start, end = (parse(x) for x in figure["layout"]["xaxis"]["range"])
    gap = Window.between(start, end, TASK_STEP).bucket
    expected = expected_bands("TaskBacklog", history, start, end, gap)
    assert close(drawn_bands(figure)["TaskBacklog"], expected[""])
    (trace,) = alert_traces(figure)
    ended = history - timedelta(minutes=9 * 60)  # after the range's end
    assert f"→ {ended:%b %-d %H:%M} UTC" in trace["text"][0]


def test_the_error_charts_draw_the_errors_rule_and_not_the_tasks_rule(
    dash_app, client_as, known_data, history
):
    client = client_as("developer")
    for panel in ("errors-by-severity", "errors-unresolved"):
        figure = draw(client, dash_app, panel, "errors", range="24h")
        start, end = (parse(x) for x in figure["layout"]["xaxis"]["range"])
        gap = Window.last(timedelta(hours=24), history, ERROR_STEP).bucket
        expected = expected_bands("HighErrorRate", history, start, end, gap)
        drawn = drawn_bands(figure)
        assert set(drawn) == {"HighErrorRate"}, panel
        assert close(drawn["HighErrorRate"], expected[""]), panel
    # A chart that is not a time series draws no alerts.
    top = draw(client, dash_app, "errors-top", "errors", range="24h")
    assert drawn_bands(top) == {} and alert_traces(top) == []


def test_shared_alert_bands_last_one_evaluation_interval(
    dash_app, client_as, owner_engine, services, known_data, history, panel_cache
):
    """With the panel cache on, the bands a chart draws are shared for one evaluation
    interval (by the cache's clock): a period that opens meanwhile shows once it has passed."""
    _cache, clock = panel_cache
    client = client_as("admin")
    before = drawn_bands(draw(client, dash_app, "tasks-backlog", "tasks", range="24h"))
    assert set(before) == {"TaskBacklog"}
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO alert_history (rule_name, instance, labels, to_state, value,
                       created_at)
                   VALUES ('TaskBacklog', 'assigned_to=carol', '{}', 'firing', 1,
                           now() - interval '90 minutes')"""
            )
        )
    again = draw(client, dash_app, "tasks-backlog", "tasks", range="24h")
    assert drawn_bands(again) == before
    # the chart itself is shared too (drawn once): the alerts are laid over a copy of it
    assert len(alert_traces(again)) == 1
    clock[0] += services.settings.alerts_interval_seconds
    after = drawn_bands(draw(client, dash_app, "tasks-backlog", "tasks", range="24h"))
    assert len(after["TaskBacklog"]) == len(before["TaskBacklog"]) + 1


def test_a_role_without_the_panels_permission_gets_no_alerts_either(
    dash_app, client_as, known_data, history
):
    response = call_callback(
        client_as("api_client"),
        dash_app,
        "errors-by-severity-graph.figure",
        {"tr-view": {"page": "errors", "range": "24h"}, "tr-interval": 0},
    )
    assert response.status_code == 403
    assert "HighErrorRate" not in response.get_data(as_text=True)


def test_a_page_without_linked_rules_draws_its_chart_unchanged(
    dash_app, client_as, known_data, history
):
    figure = draw(client_as("admin"), dash_app, "val-score", "validations", range="24h")
    assert drawn_bands(figure) == {} and alert_traces(figure) == []
    assert "yaxis2" not in figure["layout"]


def test_the_pools_charts_draw_the_database_rules(dash_app, client_as, owner_engine, history):
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE performance_metrics"))
        conn.execute(
            text(
                """INSERT INTO performance_metrics (metric_type, metric_name, metric_value,
                       "timestamp")
                   SELECT 'query', 'latency_ms', n, :now - make_interval(mins => n)
                   FROM generate_series(1, 14) n"""
            ),
            {"now": history},
        )
        conn.execute(
            text(
                """INSERT INTO alert_history (rule_name, to_state, value, created_at)
                   VALUES ('DatabaseConnectionFailures', 'firing', 2,
                           :now - interval '10 minutes'),
                          ('DatabaseConnectionFailures', 'normal', 0,
                           :now - interval '5 minutes')"""
            ),
            {"now": history},
        )
    try:
        response = call_callback(
            client_as("admin"), dash_app, "pools-perf-metrics.figure", [1, "15m"]
        )
        figure = callback_output(response, "pools-perf-metrics.figure")
        fired, stopped = history - timedelta(minutes=10), history - timedelta(minutes=5)
        assert close(drawn_bands(figure)["DatabaseConnectionFailures"], [(fired, stopped)])
        assert set(drawn_bands(figure)) == {"DatabaseConnectionFailures"}  # not TaskBacklog
        (trace,) = alert_traces(figure)
        assert "value 2" in trace["text"][0]
        # pools:read is the admin's alone: a developer is refused before any query.
        refused = call_callback(
            client_as("developer"), dash_app, "pools-perf-metrics.figure", [1, "15m"]
        )
        assert refused.status_code == 403
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("TRUNCATE performance_metrics"))


def test_the_longest_bands_are_kept_and_the_rest_counted(database, history):
    since, until = history - timedelta(hours=24), history
    every = firing_bands(SYSTEM_ACTOR, ["TaskBacklog"], since, until)
    assert len(every.bands) == 5 and every.hidden == 0  # no merging without a gap
    two = firing_bands(SYSTEM_ACTOR, ["TaskBacklog"], since, until, limit=2)
    assert two.hidden == 3
    longest = sorted(every.bands, key=lambda b: b.shown_to - b.shown_from, reverse=True)[:2]
    assert {(b.instance, b.started) for b in two.bands} == {
        (b.instance, b.started) for b in longest
    }
    assert firing_bands(SYSTEM_ACTOR, [], since, until).bands == []
    assert firing_bands(SYSTEM_ACTOR, ["NoSuchRule"], since, until).bands == []


def test_label_values_and_titles_are_shown_as_text_never_as_markup():
    rule = next(r for r in load_rules() if r.name == "HighErrorRate")
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    markup = "service_name=<a href='https://evil.example'>click</a>"
    band = Band(rule.name, markup, at, None, at, at + timedelta(hours=1), 12.5, 12.5, 1)
    plain = chart([])
    figure = alert_overlay(plain, Bands([band], 0), [rule])
    assert plain == chart([])  # a new figure: the one given (a cache may share it) unchanged
    (trace,) = alert_traces(figure)
    assert (
        "<a " not in trace["text"][0]
        and "&lt;a href='https://evil.example'&gt;" in trace["text"][0]
    )
    assert "value 12.5" in trace["text"][0] and "still firing" in trace["text"][0]
    # Nothing to draw: the figure is left as it was.
    assert alert_overlay(chart([]), Bands([], 0), [rule]) == chart([])


# --- the browser ----------------------------------------------------------------------------

ALERT_SHAPES = """
const plot = document.querySelector(arguments[0] + ' .js-plotly-plot');
if (!plot || !plot.layout) return null;
return [(plot.layout.shapes || []).filter(s => (s.legendgroup || '').startsWith('alert-')).length,
        (plot.data || []).filter(t => t.meta === arguments[1]).map(t => t.name)];
"""


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "developer"])
def test_the_tasks_and_errors_charts_show_the_alerts_in_the_browser(
    dash_duo, dash_app, users, known_data, history, role
):
    from dash.testing.wait import until

    browser_sign_in(dash_duo, dash_app, users.username(role), path="/tasks?range=24h")
    base = dash_duo.server.url.rstrip("/")
    charts = {
        "/tasks": ("#tasks-backlog-graph", 4, "TaskBacklog"),
        "/errors": ("#errors-by-severity-graph", 1, "HighErrorRate"),
    }
    for path, (graph, bands, rule) in charts.items():
        dash_duo.driver.get(f"{base}{path}?range=24h")
        until(
            lambda graph=graph, bands=bands, rule=rule: (
                dash_duo.driver.execute_script(ALERT_SHAPES, graph, ALERT_TRACE)
                == [bands, [f"⚠ {TITLES[rule]}"]]
            ),
            timeout=20,
        )
        dash_duo.wait_for_contains_text(f"{graph} .legend", TITLES[rule], timeout=10)
    assert dash_duo.get_logs() == []
