"""The analytics pages as a user meets them: URL state, the bucket rule, CSV downloads,
click-through, permissions on every callback, a failing panel, and the browser."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from taskmaster_dash.data.analytics import BUCKETS, MAX_POINTS, bucket_for
from taskmaster_dash.data.vocabulary import RESOLUTION_STATUSES
from taskmaster_dash.pages._timerange import RANGES, ViewState, parse_query
from tests import test_analytics
from tests.support.auth import browser_sign_in
from tests.support.callbacks import (
    call_callback,
    callback_values,
    find_all,
    find_component,
    render_page,
)

known_data = test_analytics.known_data  # the same seeded rows


# --- the bucket rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(hours=1), timedelta(minutes=1)),
        (timedelta(hours=6), timedelta(minutes=1)),
        (timedelta(hours=24), timedelta(minutes=5)),
        (timedelta(days=7), timedelta(hours=1)),
        (timedelta(days=30), timedelta(hours=3)),
        (timedelta(days=400), timedelta(days=1)),
    ],
)
def test_the_bucket_follows_the_range(span, bucket):
    assert bucket_for(span) == bucket


@pytest.mark.parametrize(
    ("span", "step", "bucket"),
    [
        (timedelta(hours=1), timedelta(hours=1), timedelta(minutes=1)),  # 1 point: too few
        (timedelta(hours=24), timedelta(hours=1), timedelta(hours=1)),  # 24 points from rollup
        (timedelta(hours=6), timedelta(minutes=5), timedelta(minutes=5)),
        (timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=1)),
        (timedelta(days=30), timedelta(hours=1), timedelta(hours=3)),  # coarser already
    ],
)
def test_the_bucket_is_not_finer_than_the_rollup_when_that_still_draws_enough(span, step, bucket):
    assert bucket_for(span, step) == bucket


def test_no_chart_draws_more_than_max_points():
    for minutes in (1, 59, 61, 500, 1441, 10_000, 43_200, 200_000, 576_000):
        span = timedelta(minutes=minutes)
        assert span / bucket_for(span) <= MAX_POINTS
    assert bucket_for(timedelta(days=10_000)) == BUCKETS[-1]


def test_a_range_change_changes_the_bucket_size():
    sizes = [parse_query({"range": r}, "tasks").window().bucket for r in RANGES]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    custom = parse_query(
        {"range": "custom", "from": "2026-01-01T00:00", "to": "2026-01-01T02:00"}, "errors"
    ).window()
    assert custom.bucket == timedelta(minutes=1)
    assert custom.start == datetime(2026, 1, 1, tzinfo=UTC)


# --- URL state ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "query"),
    [
        ("errors", {"range": "24h", "refresh": "1m", "severity": "high", "service": "task-api"}),
        ("errors", {"range": "1h", "refresh": "off", "severity": "critical,high", "status": "any"}),
        ("errors", {"range": "7d", "refresh": "off", "code": "E1,E2", "q": "dead, lock"}),
        ("tasks", {"range": "7d", "refresh": "off", "status": "pending", "assignee": "bob"}),
        ("tasks", {"range": "7d", "refresh": "off", "priority": "3", "age": "1-3 days"}),
        ("validations", {"range": "1h", "refresh": "30s", "type": "security"}),
        (
            "errors",
            {
                "range": "custom",
                "from": "2026-03-01T10:00:00Z",
                "to": "2026-03-02T10:00:00Z",
                "refresh": "5m",
                "category": "network",
            },
        ),
    ],
)
def test_the_url_round_trips(page, query):
    view = parse_query(query, page)
    assert view.query() == query
    assert parse_query(parse_qs(urlsplit(view.href("/x")).query), page) == view


@pytest.mark.parametrize(
    "query",
    [
        {"range": "2y", "refresh": "1s"},
        {"range": "custom", "from": "yesterday", "to": "now"},
        {"range": "custom", "from": "2026-03-02T00:00", "to": "2026-03-01T00:00"},
        {"range": "custom", "from": "1900-01-01", "to": "2026-01-01"},
        {"range": ["7d", "1h"], "severity": "'; DROP TABLE error_logs; --"},
        {"severity": "x" * 100_000, "service": "<script>", "offset": "-5", "page": 3},
        {"range": {"a": 1}, "refresh": None, "category": 12},
    ],
)
def test_bad_query_values_fall_back_to_defaults(query):
    view = parse_query(query, "errors")
    assert view.range in RANGES and view.refresh in ("off",)
    assert view.filters.severity == () and view.filters.service == ()
    assert view.filters.category == () and view.offset == 0
    assert view.filters.status == ("unresolved", "investigating")  # the list's default


def test_a_value_that_is_dropped_is_said():
    view = parse_query({"range": "2y", "severity": "critical,nope"}, "errors")
    assert view.filters.severity == ("critical",)
    assert view.problems == ("Ignored an unknown time range.", "Ignored an unknown severity.")
    custom = parse_query({"range": "custom", "from": "2026-11-30 09:00"}, "errors")
    assert custom.range == "24h" and "From and To must be UTC times" in custom.problems[0]


def test_the_triage_list_reads_the_same_view_as_the_charts():
    """range=custom with from/to, a multi-valued severity and the list's own keys: one model."""
    view = parse_query(
        {
            "range": "custom",
            "from": "2026-11-30 09:00",
            "to": "2026-11-30T10:00:00Z",
            "severity": "critical,high",
            "status": "any",
            "environment": "production",
            "q": "dead,lock",
        },
        "errors",
    )
    flt = view.error_filter()
    assert flt.since == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert flt.until == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert flt.severities == ("critical", "high") == view.filters.severity
    assert flt.statuses == () and flt.environments == ("production",)
    assert flt.search == "dead,lock" and view.problems == ()
    assert view.filters.params()["f_severity"] == ["critical", "high"]  # the charts' filter


def test_a_copied_link_reopens_the_same_view(dash_app, client_as):
    page = render_page(
        client_as("viewer"),
        dash_app,
        "/errors",
        "?range=7d&refresh=1m&severity=critical,high&service=task-api&status=any&bogus=1",
    )
    store = find_component(page, "tr-view")["data"]
    assert store == {
        "range": "7d",
        "refresh": "1m",
        "severity": "critical,high",
        "service": "task-api",
        "status": "any",
        "page": "errors",
    }
    assert find_component(page, key("range"))["value"] == "7d"
    assert find_component(page, key("severity"))["value"] == ["critical", "high"]
    assert find_component(page, key("status"))["value"] == list(RESOLUTION_STATUSES)
    assert find_component(page, "tr-interval")["interval"] == 60_000
    assert find_component(page, "tr-interval")["disabled"] is False
    assert find_component(page, "error-triage") is not None  # the triage list sits below
    # every chart: the mode bar on hover only, from the one chart config
    graphs = find_all(page, "Graph")
    assert len(graphs) == 6
    assert all(g["config"] == {"displaylogo": False, "displayModeBar": "hover"} for g in graphs)


def key(name: str) -> dict:
    return {"type": "tr-key", "key": name}


def write_view(client, app, controls: dict, current):
    """The controls' callback, as the browser calls it: values and ids in layout order."""
    ids = [key(name) for name in controls]
    return call_callback(client, app, "tr-view.data", [list(controls.values())], [ids, current])


def test_changing_a_control_writes_the_url(dash_app, client_as):
    values = callback_values(
        write_view(
            client_as("viewer"),
            dash_app,
            {
                "range": "custom",
                "from": "2026-11-30 09:00",
                "to": "2026-11-30 21:00",
                "refresh": "5m",
                "severity": ["critical", "high"],
                "category": [],
                "service": "task-api, <bad>",
                "status": [],
            },
            {"range": "24h", "page": "errors"},
        )
    )
    search = (
        "?range=custom&from=2026-11-30T09%3A00%3A00Z&to=2026-11-30T21%3A00%3A00Z&refresh=5m"
        "&severity=critical%2Chigh&service=task-api&status=any"
    )
    assert values["tr-url"]["data"] == search
    assert values["tr-view"]["data"]["severity"] == "critical,high"
    assert values["tr-custom"]["style"] is None  # From/To shown for a custom range
    assert "Ignored an unknown service." in str(values["tr-problems"]["children"])


# --- panels over HTTP -----------------------------------------------------------------------


def draw_panel(client, app, target: str, view: dict):
    return call_callback(client, app, target, [view, None])


def test_a_panel_callback_draws_the_numbers(dash_app, client_as, known_data, owner_engine):
    values = callback_values(
        draw_panel(
            client_as("admin"),
            dash_app,
            "errors-by-severity-graph.figure",
            {"range": "7d", "page": "errors", "severity": "high"},
        )
    )
    figure = values["errors-by-severity-graph"]["figure"]
    drawn = sum(sum(trace["y"]) for trace in figure["data"])
    with owner_engine.connect() as conn:
        expected = conn.scalar(
            text(
                """SELECT count(*) FROM error_logs WHERE error_severity = 'high'
                   AND created_at >= date_bin('1 hour', now() - interval '7 days',
                                              '2000-01-01 00:00+00')"""
            )
        )
    assert drawn == expected > 0
    assert [trace["name"] for trace in figure["data"]] == ["high"]


def test_a_dense_rate_chart_draws_its_buckets_as_steps_and_a_sparse_one_as_bars(
    dash_app, client_as, known_data
):
    """Over 100 buckets, one path per series (Chromium draws thousands of bars slowly): every
    bucket of the window zero-filled, a closing 0 at the window's end, no value changed."""
    client = client_as("admin")
    dense = callback_values(
        draw_panel(
            client, dash_app, "errors-by-severity-graph.figure", {"range": "7d", "page": "errors"}
        )
    )["errors-by-severity-graph"]["figure"]
    sparse = callback_values(
        draw_panel(
            client, dash_app, "errors-by-severity-graph.figure", {"range": "6h", "page": "errors"}
        )
    )["errors-by-severity-graph"]["figure"]
    assert {t["type"] for t in sparse["data"]} == {"bar"} and sparse["layout"]["barmode"] == "stack"
    assert dense["layout"]["barmode"] is None
    for trace in dense["data"]:
        assert trace["type"] == "scatter" and trace["stackgroup"] == "one"
        assert trace["line"]["shape"] == "hv"
        # every hour of the range, one apart: sent as x0 and dx (_figures.x_on_grid)
        assert "x" not in trace and trace["dx"] == 3_600_000
        assert len(trace["y"]) == len(trace["customdata"]) >= 169
        assert trace["y"][-1] == 0 and trace["customdata"][-1] is None
        assert trace["customdata"][0] == trace["name"]
    assert len({t["x0"] for t in dense["data"]}) == 1  # stacked on the same buckets


def test_an_empty_range_says_no_data(dash_app, client_as, known_data):
    values = callback_values(
        draw_panel(
            client_as("admin"),
            dash_app,
            "tasks-throughput-graph.figure",
            {
                "range": "custom",
                "from": "2020-01-01T00:00",
                "to": "2020-01-02T00:00",
                "page": "tasks",
            },
        )
    )
    assert "no data in this range" in str(values["tasks-throughput-msg"])


def test_the_placeholders_say_loading_without_a_theme(dash_app, client_as):
    """Every chart starts as a small "loading…" figure: a go.Figure's 7 KB theme, sent for
    each of a page's ten charts, made the layout 83 KB and was drawn once for nothing."""
    page = render_page(client_as("viewer"), dash_app, "/tasks", "?range=24h")
    for panel in ("tasks-backlog", "tasks-age", "tasks-links"):
        figure = find_component(page, f"{panel}-graph")["figure"]
        assert figure["data"] == []
        assert [a["text"] for a in figure["layout"]["annotations"]] == ["loading…"]
        assert "template" not in figure["layout"]


def test_csv_download_holds_the_data_behind_the_chart(
    dash_app,
    client_as,
    known_data,
    users,
    owner_engine,
):
    view = {"range": "7d", "page": "tasks", "type": "bugfix"}
    values = callback_values(
        call_callback(client_as("viewer"), dash_app, "tasks-throughput-download.data", [1], [view])
    )
    download = values["tasks-throughput-download"]["data"]
    assert download["filename"] == "tasks-throughput-7d.csv"
    rows = list(csv.DictReader(io.StringIO(download["content"])))
    from taskmaster_dash.data import analytics_tasks
    from taskmaster_dash.data.analytics import Filters

    expected = analytics_tasks.created_vs_completed(
        users.actor("viewer"), parse_query(view, "tasks").window(), Filters(type=("bugfix",))
    )
    assert [int(r["created"]) for r in rows] == list(expected["created"])
    with owner_engine.connect() as conn:
        created = conn.scalar(
            text("SELECT count(*) FROM tasks WHERE type = 'bugfix' AND created_at >= :s"),
            {"s": parse_query(view, "tasks").window().start},
        )
    assert sum(int(r["created"]) for r in rows) == created > 0


def test_a_failing_panel_says_what_failed_and_the_others_still_draw(
    dash_app,
    client_as,
    known_data,
    owner_engine,
):
    """One callback draws the whole /tasks section: the panels reading the open-backlog
    snapshot fail, each saying so in its own panel, and the others in the same answer draw."""
    client = client_as("admin")
    with owner_engine.begin() as conn:
        conn.execute(text("ALTER TABLE analytics_open_tasks RENAME TO analytics_open_tasks_away"))
    try:
        answer = callback_values(
            draw_panel(
                client, dash_app, "tasks-backlog-graph.figure", {"range": "7d", "page": "tasks"}
            )
        )
    finally:
        with owner_engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE analytics_open_tasks_away RENAME TO analytics_open_tasks")
            )
    failed = {"tasks-age": "Age of open tasks", "tasks-by-type": "Open tasks by type"}
    for panel, title in failed.items():
        assert f"{title}: The database refused the request" in str(answer[f"{panel}-msg"])
        assert answer[f"{panel}-graph"]["figure"]["layout"]["annotations"][0]["text"] == (
            "could not load"
        )
    for panel in ("tasks-backlog", "tasks-throughput"):
        assert answer[f"{panel}-msg"]["children"] is None
        assert answer[f"{panel}-graph"]["figure"]["data"]
    assert "Tasks (oldest first" not in str(answer["tasks-list-msg"])
    assert answer["tasks-list-table"]["children"]


@pytest.mark.parametrize(
    ("target", "inputs"),
    [
        ("errors-by-severity-graph.figure", [{"range": "7d"}, None]),
        ("val-score-graph.figure", [{"range": "7d"}, None]),
        ("val-lowest-table.children", [{"range": "7d"}, None]),
        ("ov-error-rate-graph.figure", [{"range": "7d"}, None]),
        ("val-score-download.data", [1]),
    ],
)
def test_a_role_without_the_permission_is_refused(
    dash_app,
    client_as,
    known_data,
    owner_engine,
    target,
    inputs,
):
    """api_client holds tasks:read only: error and validation callbacks refuse it (403)."""
    client = client_as("api_client")  # signing in is audited: count after it
    with owner_engine.connect() as conn:
        before = conn.scalar(text("SELECT count(*) FROM audit_logs"))
    state = [{"range": "7d"}] if len(inputs) == 1 else None
    response = call_callback(client, dash_app, target, inputs, state)
    assert response.status_code == 403
    assert "E0" not in response.get_data(as_text=True)
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_logs")) == before


def test_pages_refuse_roles_without_the_permission(dash_app, client_as):
    page = render_page(client_as("api_client"), dash_app, "/errors", "?range=7d")
    assert find_component(page, "not-permitted") is not None
    assert find_component(page, "tr-view") is None


# --- click-through (tests/test_drilldown.py checks each chart's list against SQL) -----------


def test_a_click_adds_exactly_the_clicked_dimensions():
    from taskmaster_dash.pages import _panels

    view = parse_query({"range": "24h", "refresh": "1m", "severity": "low"}, "errors")
    handler = _panels.click_to("errors", series_key="severity", step=timedelta(minutes=5))
    point = _panels.Point(x="2026-11-28 10:07:00", y="3", label=None, series="high")
    href = handler(point, view)
    parts = urlsplit(href)
    query = parse_qs(parts.query)
    assert parts.path == "/errors" and parts.fragment == "error-triage"
    assert query["severity"] == ["high"] and query["range"] == ["custom"]
    # snapped to the 5-minute bucket the point belongs to, one bucket wide
    assert query["from"] == ["2026-11-28T10:05:00Z"] and query["to"] == ["2026-11-28T10:10:00Z"]
    tasks = _panels.click_to("tasks", series_key="status", x_key="priority")
    bar = _panels.Point(x="3", y="2", label="3", series="pending")
    href = tasks(bar, parse_query({"range": "7d", "type": "bugfix"}, "tasks"))
    assert parse_qs(urlsplit(href).query) == {
        "range": ["7d"],
        "refresh": ["off"],
        "status": ["pending"],
        "type": ["bugfix"],
        "priority": ["3"],
    }
    hostile = _panels.Point(x="'; DROP TABLE", y=None, label=None, series="<x>")
    assert tasks(hostile, ViewState(page="tasks")) is None


@pytest.mark.parametrize(
    "click_data",
    [
        None,
        [],
        "x",
        {"points": []},
        {"points": [{"customdata": []}]},
        {"points": [None]},
        {"points": [{"x": float("inf"), "customdata": ["high"]}]},
        {"points": [{"x": {"$gt": 1}, "customdata": {"a": 1}}]},
        {"points": [{"x": "not a time", "customdata": ["high"]}]},
        {"points": [{"x": "2026-11-28 10:05:00", "customdata": [7]}]},
        {"points": [{"x": "2026-11-28 10:05:00", "customdata": "x" * 10_000}]},
    ],
)
def test_whatever_a_client_sends_as_a_click_gives_no_update(dash_app, client_as, click_data):
    response = click_callback(
        client_as("viewer"), dash_app, "errors-by-severity", click_data, {"page": "errors"}
    )
    assert changed_nothing(response)  # no update, never a 500


def changed_nothing(response) -> bool:
    if response.status_code == 204:
        return True
    return response.status_code == 200 and response.get_json()["response"] == {}


def click_callback(client, app, panel_id: str, click_data, view):
    """POST the chart's click callback (its output is shared, so it is found by its input)."""
    for output, spec in app.callback_map.items():
        first = spec["inputs"][0]
        if first["id"] == f"{panel_id}-graph" and first["property"] == "clickData":
            out_id, _, prop = output.rpartition(".")
            payload = {
                "output": output,
                "outputs": {"id": out_id, "property": prop.split("@")[0]},
                "inputs": [{**first, "value": click_data}],
                "state": [{**spec["state"][0], "value": view}],
                "changedPropIds": [f"{panel_id}-graph.clickData"],
            }
            return client.post("/_dash-update-component", json=payload)
    raise KeyError(panel_id)


# --- the browser ----------------------------------------------------------------------------


@pytest.mark.browser
def test_each_page_redraws_when_the_range_changes(dash_duo, dash_app, users, known_data):
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/tasks?range=6h")
    checks = {
        "/tasks": "#tasks-throughput-graph .barlayer .point",
        "/validations": "#val-score-graph .scatterlayer .trace",
        # 6 h of 5-minute buckets: bars; 7 days of hours: stacked steps (_figures.DENSE_BARS)
        "/errors": "#errors-by-severity-graph .barlayer .point, #errors-by-severity-graph"
        " .scatterlayer .trace",
        "/": "#ov-error-rate-graph .barlayer .point, #ov-error-rate-graph .scatterlayer .trace",
    }
    base = dash_duo.server.url.rstrip("/")
    for path, drawn in checks.items():
        dash_duo.driver.get(f"{base}{path}?range=6h")
        dash_duo.wait_for_contains_text("#tr-summary", " min", timeout=15)
        dash_duo.wait_for_element(drawn, timeout=15)
        dash_duo.select_dcc_dropdown(KEY_SELECTOR.format("range"), value="Last 7 days")
        dash_duo.wait_for_contains_text("#tr-summary", "one point per 1 h", timeout=15)
        assert "range=7d" in dash_duo.driver.current_url
        dash_duo.wait_for_element(drawn, timeout=15)
    assert dash_duo.get_logs() == []


@pytest.mark.browser
@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_every_analytics_page_draws_for_a_read_only_role_with_a_clean_console(
    dash_duo, dash_app, users, known_data, role
):
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/")
    base = dash_duo.server.url.rstrip("/")
    drawn = {
        "/": "#ov-backlog-graph .scatterlayer .trace",
        "/tasks": "#tasks-throughput-graph .barlayer .point",
        "/validations": "#val-score-graph .scatterlayer .trace",
        "/errors": "#errors-by-severity-graph .scatterlayer .trace",  # 7 days: steps
    }
    for path, chart in drawn.items():
        dash_duo.driver.get(f"{base}{path}?range=7d&severity=critical,high")
        dash_duo.wait_for_element(f"{chart}, #not-permitted", timeout=20)
        if path == "/tasks":  # the list-only keys have their own controls
            dash_duo.wait_for_element(KEY_SELECTOR.format("priority"), timeout=10)
    assert dash_duo.get_logs() == []


# A control's element: Dash writes a dict id as JSON with its keys sorted.
KEY_SELECTOR = """[id='{{"key":"{}","type":"tr-key"}}']"""


def test_the_window_line_moves_with_each_refresh(dash_app, client_as):
    """Auto-refresh redraws the "window" line with the data, not the page-load time."""
    from taskmaster_dash.data.analytics import Window

    response = call_callback(
        client_as("viewer"),
        dash_app,
        "tr-summary.children",
        [{"range": "1h", "page": "errors"}, 7],
        [300],
    )
    line = callback_values(response)["tr-summary"]["children"]
    now = Window.last(timedelta(hours=1)).end
    assert f"{now:%Y-%m-%d %H:%M} UTC" in line or f"{now - timedelta(minutes=1):%H:%M} UTC" in line
    assert line.endswith("one point per 1 min")


def test_the_overview_shows_only_the_charts_a_role_may_see(dash_app, client_as):
    page = render_page(client_as("api_client"), dash_app, "/", "?range=7d")
    assert find_component(page, "ov-backlog-graph") is not None
    assert find_component(page, "ov-error-rate-graph") is None
    assert find_component(page, "tr-view")["data"] == {
        "range": "7d",
        "refresh": "off",
        "page": "overview",
    }


@pytest.mark.parametrize(
    "view", ["x" * 10_000, ["7d"], {"range": 5, "page": ["errors"]}, None, {"from": {"$gt": 1}}]
)
def test_garbage_from_the_client_draws_the_default_view(dash_app, client_as, view):
    response = draw_panel(client_as("viewer"), dash_app, "errors-top-graph.figure", view)
    assert response.status_code == 200
    response = call_callback(
        client_as("viewer"),
        dash_app,
        "tr-view.data",
        [[{"a": 1}, 3, None, "<script>", [None, 7, "x" * 500]]],
        [[key("range"), "bogus", None, {"key": 5}, key("severity")], "nonsense"],
    )
    values = callback_values(response)
    assert values["tr-url"]["data"] == "?range=24h&refresh=off"
