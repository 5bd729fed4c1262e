"""The Pools page: permissions, PostgreSQL panels against independent SQL, and the Prometheus
panels against a real Prometheus scraping the app over HTTP (stopped and restarted mid-test)."""

from __future__ import annotations

import base64
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import requests
from dash.testing.wait import until
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import make_server

from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName
from taskmaster_dash.data.local_prometheus import LocalPrometheus
from taskmaster_dash.data.metrics import QUERIES_FAILED
from taskmaster_dash.data.prometheus import (
    PrometheusReader,
    load_promql,
    promql,
)
from taskmaster_dash.services import current
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_values
from tests.support.processes import free_port

TOKEN = "pools-test-token-9876543210"
PROM_OUTPUTS = "pools-utilisation.figure"
PG_OUTPUTS = "pools-tables.children"


def ids_in(component) -> dict[str, dict]:
    """Every component with an id in a callback's JSON output, by id."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props", {})
            if "id" in props:
                found[props["id"]] = props
            for child in props.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(component)
    return found


def text_of(node) -> str:
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list):
        return " ".join(text_of(n) for n in node)
    if isinstance(node, dict):
        return text_of(node.get("props", {}).get("children", ""))
    return ""


def table_rows(table: dict) -> list[list[str]]:
    """Header + body rows of an html.Table (the component or its props) from callback JSON."""
    head, body = table.get("props", table)["children"]
    rows = [[text_of(c) for c in head["props"]["children"]["props"]["children"]]]
    for tr in body["props"]["children"]:
        rows.append([text_of(td) for td in tr["props"]["children"]])
    return rows


def as_records(table: dict) -> list[dict[str, str]]:
    header, *rows = table_rows(table)
    return [dict(zip(header, row, strict=True)) for row in rows]


def plotly_values(data) -> list:
    """A figure's x or y as plain values (plotly sends numeric arrays base64-encoded)."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def pg_panels(client, dash_app) -> dict:
    return callback_values(call_callback(client, dash_app, PG_OUTPUTS, [1]))


def prom_panels(client, dash_app, range_key: str = "15m") -> dict:
    return callback_values(call_callback(client, dash_app, PROM_OUTPUTS, [1, range_key]))


# --- permissions -----------------------------------------------------------------------------


def test_a_role_without_pools_read_is_refused_by_both_callbacks(dash_app, client_as):
    for role in ("viewer", "developer", "api_client", "on_call"):
        client = client_as(role)
        assert call_callback(client, dash_app, PG_OUTPUTS, [1]).status_code == 403
        assert call_callback(client, dash_app, PROM_OUTPUTS, [1, "15m"]).status_code == 403
    anonymous = dash_app.server.test_client()
    assert call_callback(anonymous, dash_app, PG_OUTPUTS, [1]).status_code == 401


def test_admin_may_read_pools(dash_app, client_as):
    values = pg_panels(client_as("admin"), dash_app)
    assert ids_in(values["pools-own"]["children"])["pools-own-table"]


# --- PostgreSQL panels -------------------------------------------------------------------------


def test_postgres_panels_match_independent_sql(dash_app, client_as, owner_engine, database):
    values = pg_panels(client_as("admin"), dash_app)
    with owner_engine.connect() as conn:
        max_connections = conn.scalar(text("SELECT current_setting('max_connections')::int"))
        tasks_dead = conn.scalar(
            text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'tasks'")
        )
    cards = ids_in(values["pools-pg-summary"]["children"])
    used, limit = cards["pools-connections-used"]["children"].split(" / ")
    assert int(limit) == max_connections
    assert int(used) >= 2  # at least the owner's connection and the page's own
    assert cards["pools-cache-hit"]["children"].endswith("%")
    tables = {r["table"]: r for r in as_records(values["pools-tables"]["children"])}
    assert "tasks" in tables and "error_logs" in tables
    assert int(tables["tasks"]["dead rows"].replace(",", "")) == tasks_dead
    apps = as_records(values["pools-connections"]["children"])
    assert any(r["application"] == "taskmaster_background_pool" for r in apps)
    # The page reads everyone's sessions (pg_read_all_stats from migration 040): no hint shown.
    assert values["pools-pg-message"]["children"] is None
    # The embedded test server does not preload pg_stat_statements: the page says so plainly.
    slow = ids_in(values["pools-slow"]["children"])
    assert "pools-slow-note" in slow
    assert "shared_preload_libraries" in text_of(values["pools-slow"]["children"])


def test_waiting_locks_and_long_running_queries_show_the_blocked_statement(
    dash_app, client_as, owner_engine, database, clean_data
):
    client = client_as("admin")
    with owner_engine.connect() as holder:
        holder.execute(text("LOCK TABLE error_logs IN ACCESS EXCLUSIVE MODE"))
        holder_pid = holder.scalar(text("SELECT pg_backend_pid()"))
        blocked = threading.Thread(target=_blocked_update, args=(database,))
        blocked.start()
        try:

            def lock_table() -> tuple[dict, dict] | None:
                values = pg_panels(client, dash_app)
                table = ids_in(values["pools-locks"]["children"]).get("pools-locks-table")
                if table and isinstance(table.get("children"), list):
                    return values, table
                return None

            values, locks = until(lock_table, 15, msg="the waiting lock never showed")
            records = as_records(locks)
            assert any(
                r["relation"] == "error_logs" and str(holder_pid) in r["blocked by"]
                for r in records
            )
            running = as_records(
                ids_in(values["pools-long-running"]["children"])["pools-long-running-table"]
            )
            assert any("UPDATE error_logs" in r["query"] for r in running)
        finally:
            holder.rollback()
            blocked.join(15)


def _blocked_update(database):
    try:
        with database.transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
            conn.execute(text("UPDATE error_logs SET occurrence_count = occurrence_count"))
    except SQLAlchemyError:
        pass


def test_the_pools_page_says_when_prometheus_is_disabled(dash_app, client_as):
    current().prometheus = None
    values = prom_panels(client_as("admin"), dash_app)
    status = text_of(values["pools-prom-status"]["children"])
    assert "Prometheus is disabled" in status and "PROMETHEUS_ENABLED" in status
    assert "apt-get install prometheus" in status
    assert values["pools-prom-charts"]["hidden"] is True  # the notice, not empty chart frames


@pytest.mark.browser
def test_without_prometheus_the_page_shows_one_compact_notice(dash_duo, dash_app, users):
    current().prometheus = None
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/pools")
    notice = dash_duo.wait_for_element("#pools-prom-down", timeout=20)
    dash_duo.wait_for_element("#pools-tables-table", timeout=20)  # PostgreSQL panels stay
    assert "Prometheus is disabled" in notice.text
    for chart in ("pools-utilisation", "pools-success-rate", "pools-failure-rate"):
        assert not dash_duo.find_element(f"#{chart}").is_displayed()
    # The whole Prometheus section is about as tall as the notice, far less than one chart.
    section = dash_duo.driver.execute_script(
        "return document.getElementById('pools-prom-status').closest('section')"
        ".getBoundingClientRect().height"
    )
    assert section < 250, section
    assert dash_duo.find_element("#pools-own-table").is_displayed()
    assert dash_duo.get_logs() == []


def test_detailed_health_reports_database_each_pool_and_prometheus(client_as):
    current().prometheus = None
    body = client_as("admin").get("/api/v1/health/detailed").get_json()
    assert body["checks"]["database"]["status"] == "connected"
    assert set(body["checks"]["pools"]) == {"read", "write", "analytics", "background"}
    assert body["checks"]["pools"]["read"]["max"] == 6
    assert body["checks"]["prometheus"] == {"status": "disabled", "url": None}


# --- a real Prometheus scraping the app over HTTP ----------------------------------------------


class PrometheusServer(LocalPrometheus):
    """The demo's Prometheus runner, scraping every second, plus query helpers for the tests."""

    def __init__(self, target: str) -> None:
        directory = Path(tempfile.mkdtemp(prefix="tmdash-prom-"))
        super().__init__(directory, target, token=TOKEN, scrape_interval="1s")
        self.first_started_at = time.time()

    def query(self, promql_text: str, **params: str | float) -> list[dict]:
        response = requests.get(
            f"{self.url}/api/v1/query", params={"query": promql_text, **params}, timeout=5
        )
        return response.json()["data"]["result"]

    def query_range(self, promql_text: str, start: float, end: float, step: int) -> list[dict]:
        params: dict[str, str | float] = {
            "query": promql_text,
            "start": start,
            "end": end,
            "step": step,
        }
        response = requests.get(f"{self.url}/api/v1/query_range", params=params, timeout=5)
        return response.json()["data"]["result"]

    def wait_for(self, promql_text: str, predicate, timeout: float = 30) -> list[dict]:
        found: list[list[dict]] = []

        def satisfied() -> bool:
            found.append(self.query(promql_text))
            return bool(predicate(found[-1]))

        until(satisfied, timeout, poll=0.25, msg=f"Prometheus never satisfied: {promql_text}")
        return found[-1]


@pytest.fixture(scope="session")
def app_http(dash_app):
    """The app served by a real HTTP server thread on a free port (what Prometheus scrapes)."""
    dash_app.server.config["METRICS_TOKEN"] = TOKEN
    server = make_server("127.0.0.1", free_port(), dash_app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    dash_app.server.config["METRICS_TOKEN"] = None


@pytest.fixture(scope="session")
def prometheus_server(app_http):
    server = PrometheusServer(app_http)
    server.start()
    server.wait_for('up{job="taskmaster"}', lambda r: r and r[0]["value"][1] == "1")
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def prometheus(prometheus_server):
    """The dashboard reads this Prometheus (tiny cache, so a stop shows at once)."""
    reader = PrometheusReader(prometheus_server.url, timeout=2, cache_seconds=0.2)
    with current().using(prometheus=reader):
        yield prometheus_server


SPEC_NAMES = [
    "taskmaster_db_queries_total",
    "taskmaster_db_queries_successful",
    "taskmaster_db_queries_failed",
    "taskmaster_tasks_total",
    "taskmaster_uptime_seconds",
    "taskmaster_memory_usage_bytes",
    "taskmaster_db_pool_size",
    "taskmaster_db_pool_in_use",
    "taskmaster_db_pool_idle",
    "taskmaster_db_pool_waiting",
    "taskmaster_db_pool_max",
    "taskmaster_db_query_duration_seconds_bucket",
    "taskmaster_db_connection_wait_seconds_bucket",
]


@pytest.mark.prometheus
def test_prometheus_scrapes_the_spec_names_from_the_app(prometheus):
    for name in SPEC_NAMES:
        assert prometheus.query(name), f"Prometheus has no {name}"
    pools = {r["metric"]["pool"] for r in prometheus.query("taskmaster_db_queries_failed")}
    assert pools == {"read", "write", "analytics", "background"}
    maxima = {
        r["metric"]["pool"]: r["value"][1] for r in prometheus.query("taskmaster_db_pool_max")
    }
    assert maxima == {"read": "6", "write": "3", "analytics": "1", "background": "2"}


@pytest.mark.prometheus
def test_the_memory_and_disk_alert_rules_read_the_host_through_prometheus(prometheus):
    """The shipped rules' PromQL, run by the real Prometheus scraping the app, gives the host's
    memory and disk use in percent (so the spec's 95% rules are not stuck in no_data)."""
    import psutil

    from taskmaster_dash.alerts.rules import load_rules
    from taskmaster_dash.data.config import default_data_dir

    rules = {rule.name: rule for rule in load_rules()}
    reader = PrometheusReader(prometheus.url, timeout=2, cache_seconds=0)
    memory = reader.scalar(rules["HighMemoryUsage"].source)
    disk = reader.scalar(rules["HighDiskUsage"].source)
    path = default_data_dir()
    while not path.exists():
        path = path.parent
    assert memory == pytest.approx(psutil.virtual_memory().percent, abs=10)
    assert disk == pytest.approx(psutil.disk_usage(str(path)).percent, abs=2)


def _induce_failures(database, count: int) -> float:
    for _ in range(count):
        with pytest.raises(SQLAlchemyError):
            database.fetch_rows(PoolName.WRITE, SYSTEM_ACTOR, "SELECT 1 / 0")
    return QUERIES_FAILED.labels("write")._value.get()


@pytest.mark.prometheus
def test_pools_page_shows_what_prometheus_returns_for_the_same_queries(
    prometheus, dash_app, client_as, database
):
    failed_now = _induce_failures(database, 3)
    prometheus.wait_for(
        'taskmaster_db_queries_failed{pool="write"}',
        lambda r: r and float(r[0]["value"][1]) == failed_now,
    )
    # Range points sit on a 15 s grid (the step): wait until a grid point after the failures
    # is a few seconds old (fully scraped) and Prometheus charts the failures at it.
    queries = load_promql()
    next_point = (time.time() // 15 + 1) * 15

    def failures_charted() -> bool:
        if time.time() < next_point + 3.5:
            return False
        rate = promql("query_failure_rate", 15, queries)
        return any(
            r["metric"]["pool"] == "write" and float(r["values"][0][1]) > 0
            for r in prometheus.query_range(rate, next_point, next_point, 15)
        )

    until(failures_charted, 60, poll=0.5, msg="Prometheus never charted the failures")
    called_at = time.time()
    values = prom_panels(client_as("admin"), dash_app)
    assert "From Prometheus at" in text_of(values["pools-prom-status"]["children"])

    # The current table: values that do not move by themselves, so the page and a later query
    # must agree exactly (failures only happen when the test makes them).
    current = {
        r["pool"]: r
        for r in as_records(ids_in(values["pools-prom-current"]["children"])["pools-prom-table"])
    }
    failed = {
        r["metric"]["pool"]: float(r["value"][1])
        for r in prometheus.query(promql("queries_failed_total", queries=queries))
    }
    maxima = {
        r["metric"]["pool"]: float(r["value"][1])
        for r in prometheus.query(promql("pool_max", queries=queries))
    }
    assert set(current) == set(failed) == {"read", "write", "analytics", "background"}
    for pool, row in current.items():
        assert float(row["failed (total)"].replace(",", "")) == failed[pool]
        assert float(row["max"]) == maxima[pool]
    assert failed["write"] == failed_now >= 3

    # The charts: every point that was fully scraped when the page asked equals Prometheus's
    # answer to the same range query (same PromQL, start, end and step).
    for output, name in (
        ("pools-utilisation", "pool_utilisation"),
        ("pools-success-rate", "query_success_rate"),
        ("pools-failure-rate", "query_failure_rate"),
    ):
        figure = values[output]["figure"]
        meta = figure["layout"]["meta"]
        start = datetime.fromisoformat(meta["start"]).timestamp()
        end = datetime.fromisoformat(meta["end"]).timestamp()
        expected = {
            r["metric"]["pool"]: {float(t): float(v) for t, v in r["values"]}
            for r in prometheus.query_range(
                promql(name, meta["step"], queries), start, end, meta["step"]
            )
        }
        traces = {t["name"]: t for t in figure["data"] if t.get("meta") in expected}
        assert set(traces) == set(expected), name
        compared = 0
        for pool, trace in traces.items():
            for x, y in zip(plotly_values(trace["x"]), plotly_values(trace["y"]), strict=True):
                stamp = datetime.fromisoformat(x).timestamp()
                if stamp <= called_at - 3:
                    assert y == pytest.approx(expected[pool][stamp], rel=1e-9), (name, pool, x)
                    compared += 1
        assert compared > 0, name
    failure_trace = next(
        t for t in values["pools-failure-rate"]["figure"]["data"] if t["name"] == "write"
    )
    assert max(plotly_values(failure_trace["y"])) > 0  # the induced failures show as a rate


@pytest.mark.prometheus
def test_pools_page_degrades_when_prometheus_stops_and_recovers(prometheus, dash_app, client_as):
    client = client_as("admin")
    prometheus.stop()
    try:
        unreachable = f"Prometheus at {prometheus.url} is unreachable"
        current().clear_caches()  # the reader's brief cache
        values = prom_panels(client, dash_app)
        status = text_of(values["pools-prom-status"]["children"])
        assert unreachable in status
        assert "PostgreSQL below is live" in status
        assert values["pools-prom-charts"]["hidden"] is True
        # Everything from PostgreSQL still renders.
        pg = pg_panels(client, dash_app)
        assert "pools-tables-table" in ids_in(pg["pools-tables"]["children"])
        health = client.get("/api/v1/health/detailed")
        assert health.status_code == 200
        body = health.get_json()
        assert body["checks"]["prometheus"] == {"status": "unreachable", "url": prometheus.url}
        assert body["status"] == "degraded"
        # The rest of the site is unaffected.
        assert client.get("/pools").status_code == 200
    finally:
        prometheus.start()
    values = prom_panels(client, dash_app)
    assert "From Prometheus at" in text_of(values["pools-prom-status"]["children"])
    assert values["pools-prom-charts"]["hidden"] is False
    health = client.get("/api/v1/health/detailed").get_json()
    assert health["checks"]["prometheus"]["status"] == "up"


@pytest.mark.prometheus
@pytest.mark.browser
def test_pools_page_in_the_browser(dash_duo, dash_app, users, prometheus):
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/pools")
    dash_duo.wait_for_element("#pools-prom-ok", timeout=20)
    dash_duo.wait_for_element("#pools-own-table", timeout=20)
    dash_duo.wait_for_element("#pools-tables-table")
    dash_duo.wait_for_element("#pools-utilisation .main-svg")
    assert "80% warning" in dash_duo.find_element("#pools-utilisation").text
    assert dash_duo.find_element("#nav-pools").text == "Pools"
    own = dash_duo.find_element("#pools-own-table").text
    for pool in ("read", "write", "analytics", "background"):
        assert pool in own
    assert "shared_preload_libraries" in dash_duo.find_element("#pools-slow").text
    assert dash_duo.get_logs() == []
