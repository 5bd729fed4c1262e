"""Drill-down: every chart's click, sent as Plotly sends it, lands on a list (on its own page
or the page that lists it) whose rows equal an SQL query for exactly the clicked dimension(s);
and in the browser, a click on a bar narrows the list, scrolls to it and keeps the console
clean."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains

from taskmaster_dash.pages._panels import NO_DATA
from taskmaster_dash.pages._timerange import parse_query
from tests import test_analytics
from tests.support.auth import browser_sign_in
from tests.support.callbacks import callback_values, find_component
from tests.support.figures import x_values
from tests.support.grid import grid_page
from tests.support.sql import column
from tests.test_analytics_pages import click_callback, draw_panel

SEVERITIES = ("critical", "high", "medium", "low", "info")  # known_data's
known_data = test_analytics.known_data  # 60 tasks, 90 validation runs, 80 errors over 10 days
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def figure_of(client, app, panel_id: str, view: dict) -> dict:
    values = callback_values(draw_panel(client, app, f"{panel_id}-graph.figure", view))
    return values[f"{panel_id}-graph"]["figure"]


def plotly_clicks(figure: dict, trace_name: str | None = None):
    """The clickData Plotly sends for each non-zero point of a trace (the first trace when no
    name is given), in order."""
    traces = [t for t in figure["data"] if trace_name in (None, t.get("name"))][:1]
    assert traces, f"no trace {trace_name}"
    trace = traces[0]
    horizontal = trace.get("orientation") == "h"
    xs = x_values(trace)
    values, positions = (xs, trace["y"]) if horizontal else (trace["y"], xs)
    for i, value in enumerate(values):
        if not value:
            continue
        point = {"curveNumber": 0, "pointNumber": i, "x": xs[i], "y": trace["y"][i]}
        if trace.get("type") == "bar":
            point.update(label=positions[i], value=value)
        if "customdata" in trace:
            point["customdata"] = trace["customdata"][i]
        yield {"points": [point]}


def plotly_click(figure: dict, trace_name: str | None = None) -> dict:
    return next(plotly_clicks(figure, trace_name))


def land(client, app, panel_id: str, click: dict, view: dict) -> tuple[str, dict[str, str], str]:
    """(path, query, fragment) the click navigates to."""
    response = click_callback(client, app, panel_id, click, view)
    href = callback_values(response)["tr-location"]["href"]
    parts = urlsplit(href)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return parts.path, query, parts.fragment


def listed_tasks(client, app, query: dict) -> list[str]:
    values = callback_values(draw_panel(client, app, "tasks-list-table.children", {**query}))
    return _listed(values["tasks-list-table"]["children"], "task-list-rows")


def listed_runs(client, app, query: dict) -> list[str]:
    values = callback_values(draw_panel(client, app, "val-lowest-table.children", {**query}))
    return _listed(values["val-lowest-table"]["children"], "validation-runs-rows")


def listed_errors(client, app, query: dict) -> list[str]:
    values = grid_page(client, app, "triage-grid", {"tr-view": query}, end=500)
    return [row["id"] for row in values["triage-grid"]["getRowsResponse"]["rowData"]]


def _listed(panel: Any, grid_id: str) -> list[str]:
    """The ids of the rows a list panel shows, in order (none: the panel says so)."""
    grid = find_component(panel, grid_id)
    if grid is None:
        assert panel["props"]["children"] == NO_DATA, panel
        return []
    return [row["id"] for row in grid["rowData"]]


def window_of(query: dict) -> tuple[datetime, datetime]:
    assert query["range"] == "custom"
    parse = lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))  # noqa: E731
    return parse(query["from"]), parse(query["to"])


TASKS = "SELECT id::text FROM tasks t WHERE {where} ORDER BY {order}, t.id LIMIT 25"
RUNS = """SELECT v.id::text FROM validation_results v
          WHERE v.validation_score IS NOT NULL AND {where}
          ORDER BY v.validation_score, v.created_at DESC LIMIT 20"""
ERRORS = """SELECT e.id::text FROM error_logs e
            WHERE e.resolution_status IN ('unresolved', 'investigating') AND {where}
            ORDER BY e.last_occurred_at DESC, e.id DESC LIMIT 500"""


@dataclass(frozen=True)
class Case:
    panel: str
    view: dict  # the chart's page view
    trace: str | None  # which series to click (None: the first)
    lands: str  # path of the list
    # (clicked point, landing query) -> (SQL template, where, order, params) for the expected rows
    expect: Callable[[dict, dict], tuple[str, str, str, dict]]


def _bucket(point: dict, size: timedelta) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(str(point["x"])).replace(tzinfo=UTC)
    return start, start + size


def _errors_in_hour(column: str) -> Callable[[dict, dict], tuple[str, str, str, dict]]:
    """The expected rows of an error chart by `column`: the clicked value, the clicked hour."""

    def expect(point: dict, _query: dict) -> tuple[str, str, str, dict]:
        where = f"{column} = :v AND e.last_occurred_at >= :a AND e.first_occurred_at <= :b"
        bucket = dict(zip("ab", _bucket(point, HOUR), strict=True))
        return ERRORS, where, "", {"v": point["customdata"], **bucket}

    return expect


def _category(point: dict) -> str:
    return point["label"]


def _in_bucket(size: timedelta) -> Callable[[dict, dict], dict]:
    return lambda p, q: dict(zip("ab", _bucket(p, size), strict=True))


def _category_is(cast: Callable[[str], Any] = str) -> Callable[[dict, dict], dict]:
    return lambda p, q: {"v": cast(_category(p))}


def _since_start(key: Callable[[dict], str]) -> Callable[[dict, dict], dict]:
    """The clicked value, from the landing window's start."""
    return lambda p, q: {"v": key(p), "a": datetime.fromisoformat(q["_start"])}


def _case(
    panel: str,
    view: dict,
    trace: str | None,
    template: str,
    where: str,
    order: str,
    params: Callable[[dict, dict], dict],
) -> Case:
    lands = {TASKS: "/tasks", RUNS: "/validations", ERRORS: "/errors"}[template]
    return Case(panel, view, trace, lands, lambda p, q: (template, where, order, params(p, q)))


TASKS_7D = {"page": "tasks", "range": "7d"}
RUNS_7D = {"page": "validations", "range": "7d"}
TASK_AGE = """CASE WHEN now() - t.created_at < interval '1 day' THEN '< 1 day'
                   WHEN now() - t.created_at < interval '3 days' THEN '1-3 days'
                   WHEN now() - t.created_at < interval '7 days' THEN '3-7 days'
                   WHEN now() - t.created_at < interval '14 days' THEN '7-14 days'
                   WHEN now() - t.created_at < interval '30 days' THEN '14-30 days'
                   ELSE '> 30 days' END"""
COMPLETED_IN = "t.status = 'completed' AND t.completed_at >= :a AND t.completed_at < :b"
RUN_SINCE = "v.validation_type = :v AND v.created_at >= :a AND v.created_at < now()"

CASES = [
    *[
        _case(panel, TASKS_7D, trace, TASKS, where, order, params)
        for panel, trace, where, order, params in (
            (
                "tasks-by-priority",
                "pending",
                "t.status = 'pending' AND t.priority = :v",
                "t.created_at",
                _category_is(int),
            ),
            (
                "tasks-by-type",
                "in_progress",
                "t.status = 'in_progress' AND t.type = :v",
                "t.created_at",
                _category_is(),
            ),
            (
                "tasks-by-assignee",
                "pending",
                "t.status = 'pending' AND COALESCE(t.assigned_to, '(unassigned)') = :v",
                "t.created_at",
                _category_is(),
            ),
            (
                "tasks-by-tag",
                "pending",
                "t.status = 'pending' AND t.tags ? :v",
                "t.created_at",
                lambda p, q: {"v": p["label"]},
            ),
            (
                "tasks-by-complexity",
                "in_progress",
                "t.status = 'in_progress' AND t.complexity_score = :v",
                "t.created_at",
                _category_is(int),
            ),
            (
                "tasks-age",
                "pending",
                f"t.status = 'pending' AND {TASK_AGE} = :v",
                "t.created_at",
                _category_is(),
            ),
            ("tasks-throughput", "completed", COMPLETED_IN, "t.completed_at", _in_bucket(HOUR)),
            (
                "tasks-throughput",
                "created",
                "t.created_at >= :a AND t.created_at < :b",
                "t.created_at",
                _in_bucket(HOUR),
            ),
            (
                "tasks-hours",
                "estimated h",
                "t.status = 'completed' AND t.type = :v",
                "t.completed_at",
                _category_is(),
            ),
        )
    ],
    _case(
        "ov-completed",
        {"page": "overview", "range": "24h"},
        None,
        TASKS,
        COMPLETED_IN,
        "t.completed_at",
        _in_bucket(DAY),
    ),
    *[
        _case(panel, RUNS_7D, trace, RUNS, where, "", params)
        for panel, trace, where, params in (
            (
                "val-score",
                "security",
                "v.validation_type = 'security' AND v.created_at >= :a AND v.created_at < :b",
                _in_bucket(HOUR),
            ),
            (
                "val-share",
                "failed",
                "v.validation_status = 'failed' AND v.created_at >= :a AND v.created_at < :b",
                _in_bucket(HOUR),
            ),
            ("val-exec", "p95", RUN_SINCE, _since_start(_category)),
            ("val-retries", None, RUN_SINCE, _since_start(_category)),
        )
    ],
    *[
        Case(
            f"errors-by-{by}",
            {"page": "errors", "range": "7d"},
            trace,
            "/errors",
            _errors_in_hour(column),
        )
        for by, column, trace in (
            ("severity", "e.error_severity", None),
            ("category", "e.error_category", None),
            ("service", "e.service_name", "validator"),
        )
    ],
    Case(
        "ov-error-rate",
        {"page": "overview", "range": "7d"},
        None,
        "/errors",
        _errors_in_hour("e.error_severity"),
    ),
    _case(
        "errors-top",
        {"page": "errors", "range": "7d"},
        None,
        ERRORS,
        "e.error_code = :v AND e.last_occurred_at >= :a",
        "",
        _since_start(lambda p: p["label"]),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.panel}-{c.trace}" for c in CASES])
def test_each_charts_click_lists_the_rows_sql_finds(
    dash_app, client_as, known_data, owner_engine, case
):
    client = client_as("admin")
    figure = figure_of(client, dash_app, case.panel, case.view)
    listed = None
    for click in plotly_clicks(figure, case.trace):  # until a point with rows in its list
        path, query, fragment = land(client, dash_app, case.panel, click, case.view)
        assert path == case.lands
        lists = {"/tasks": "tasks-list-panel", "/validations": "val-lowest-panel"}
        assert fragment == lists.get(path, "error-triage")
        page = path.strip("/") or "overview"
        landing = {**query, "page": page}
        point = click["points"][0]
        if "from" in query:  # a time bucket: the window is that bucket, snapped to it
            start, end = window_of(query)
            assert start == datetime.fromisoformat(str(point["x"])).replace(tzinfo=UTC)
            assert end - start in (HOUR, DAY)
        window_start = parse_query(landing, page).window().start.isoformat()
        template, where, order, params = case.expect(point, {**query, "_start": window_start})
        expected = column(owner_engine, template.format(where=where, order=order or "1"), **params)
        listed = {"/tasks": listed_tasks, "/validations": listed_runs, "/errors": listed_errors}
        assert listed[path](client, dash_app, landing) == expected
        if expected:
            break
    else:
        raise AssertionError("no clicked point had rows behind it")


def test_the_backlog_click_keeps_the_state_the_series_stands_for(
    dash_app, client_as, known_data, owner_engine
):
    client = client_as("admin")
    view = {"page": "tasks", "range": "7d"}
    figure = figure_of(client, dash_app, "tasks-backlog", view)
    click = plotly_click(figure, "closed since")
    _, query, _ = land(client, dash_app, "tasks-backlog", click, view)
    assert query["status"] == "completed,failed,cancelled"
    start, end = window_of(query)
    expected = column(
        owner_engine,
        TASKS.format(
            where="t.status IN ('completed', 'failed', 'cancelled')"
            " AND t.completed_at >= :a AND t.completed_at < :b",
            order="t.completed_at",
        ),
        a=start,
        b=end,
    )
    assert listed_tasks(client, dash_app, {**query, "page": "tasks"}) == expected


# --- the browser ----------------------------------------------------------------------------


@pytest.mark.browser
def test_a_chart_click_narrows_the_list_scrolls_to_it_and_ticks_read_well(
    dash_duo, dash_app, users, known_data, owner_engine
):
    browser_sign_in(dash_duo, dash_app, "test-viewer", path="/errors?range=7d")
    # 7 days of hourly buckets: the rate is drawn as stacked steps (pages/_figures.py)
    dash_duo.wait_for_element("#errors-by-severity-graph .scatterlayer .trace", timeout=20)
    dash_duo.wait_for_contains_text("#triage-count", "match", timeout=15)
    # Plotly listens on the plot area: click just right of the start of an hour with errors
    # (the hover picks the nearest bucket; the click names the series with errors there)
    x, y = dash_duo.driver.execute_script(
        """const gd = document.querySelector('#errors-by-severity-graph .js-plotly-plot');
           const stack = gd.data.filter(t => t.stackgroup);
           const i = stack[0].y.findIndex((_, i) => stack.some(t => t.y[i] > 0));
           // the x Plotly drew (sent as x0 and dx: _figures.x_on_grid), in ms
           const drawn = gd.calcdata[gd.data.indexOf(stack[0])][i].x;
           const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
           const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
           return [box.left + xa.c2p(drawn) + 2, box.top + ya._length / 2];"""
    )
    ActionChains(dash_duo.driver).move_to_location(x, y).click().perform()
    dash_duo.wait_for_contains_text("#tr-summary", "one point per 1 min", timeout=15)
    url = urlsplit(dash_duo.driver.current_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["range"] == "custom" and query["severity"] in SEVERITIES
    # the page scrolled down to the list
    until(
        lambda: (
            dash_duo.driver.execute_script(
                "return document.getElementById('error-triage').getBoundingClientRect().top"
            )
            < 200
        ),
        timeout=10,
    )
    assert dash_duo.driver.execute_script("return window.scrollY") > 500
    # the From/To fields show the whole UTC time, 24-hour, ISO order
    start, end = window_of(query)
    shown = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('input.tr-time, .tr-time input'))"
        ".map(e => e.value)"
    )
    assert shown == [f"{start:%Y-%m-%d %H:%M}", f"{end:%Y-%m-%d %H:%M}"]
    # a one-hour window draws with whole-minute ticks, never "14:01:59.9996"
    dash_duo.wait_for_element("#errors-by-category-graph .xtick text", timeout=15)
    ticks = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#errors-by-category-graph .xtick text'))"
        ".map(e => e.textContent)"
    )
    assert ticks and all("." not in t and ":" in t for t in ticks), ticks
    assert dash_duo.get_logs() == []


def test_a_click_on_a_series_no_list_can_filter_by_changes_nothing(dash_app, client_as, known_data):
    client = client_as("viewer")
    view = {"page": "errors", "range": "7d"}
    figure = figure_of(client, dash_app, "errors-by-service", view)
    click = plotly_click(figure, "(unknown)")  # errors without a service name
    response = click_callback(client, dash_app, "errors-by-service", click, view)
    assert response.status_code == 200 and response.get_json()["response"] == {}
