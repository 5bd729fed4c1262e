"""/api/v1/metrics: who may read it, the spec's names, and counts that match known queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dash.testing.wait import until
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName

TOKEN = "test-metrics-token-0123456789"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def metrics_token(dash_app):
    previous = dash_app.server.config.get("METRICS_TOKEN")
    dash_app.server.config["METRICS_TOKEN"] = TOKEN
    yield TOKEN
    dash_app.server.config["METRICS_TOKEN"] = previous


def parse(body: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}"""
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(dash_app) -> dict[tuple[str, tuple], float]:
    client = dash_app.server.test_client()
    response = client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_need_the_token_or_a_session_with_pools_read(dash_app, client_as, metrics_token):
    anonymous = dash_app.server.test_client()
    assert anonymous.get("/api/v1/metrics").status_code == 401
    wrong = anonymous.get("/api/v1/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert (
        anonymous.get("/api/v1/metrics", headers={"Authorization": metrics_token}).status_code
        == 401
    )
    assert client_as("viewer").get("/api/v1/metrics").status_code == 403
    assert client_as("admin").get("/api/v1/metrics").status_code == 200
    assert client_as("on_call").get("/api/v1/metrics").status_code == 403


def test_without_a_configured_token_no_bearer_is_accepted(dash_app):
    assert dash_app.server.config.get("METRICS_TOKEN") is None
    response = dash_app.server.test_client().get(
        "/api/v1/metrics", headers={"Authorization": "Bearer "}
    )
    assert response.status_code == 401


def test_query_counters_count_known_queries_per_pool(dash_app, database, metrics_token):
    before = scrape(dash_app)
    stats_before = {p: (database.stats[p].successful, database.stats[p].failed) for p in PoolName}
    for _ in range(3):  # each: set_config (the actor, read only), the query = 2 statements
        database.fetch_rows(PoolName.READ, SYSTEM_ACTOR, "SELECT 1 AS one")
    for _ in range(2):  # each: set_config succeeds, then the query fails
        with pytest.raises(SQLAlchemyError):
            database.fetch_rows(PoolName.WRITE, SYSTEM_ACTOR, "SELECT 1 / 0")
    after = scrape(dash_app)

    def delta(name, pool):
        return value(after, name, pool=pool) - value(before, name, pool=pool)

    assert delta("taskmaster_db_queries_successful", "read") == 6
    assert delta("taskmaster_db_queries_failed", "read") == 0
    assert delta("taskmaster_db_queries_total", "read") == 6
    assert delta("taskmaster_db_queries_successful", "write") == 2
    assert delta("taskmaster_db_queries_failed", "write") == 2
    assert delta("taskmaster_db_queries_total", "write") == 4
    # The same counts as the pool statistics data/db.py keeps by itself.
    assert database.stats[PoolName.READ].successful - stats_before[PoolName.READ][0] == 6
    assert database.stats[PoolName.WRITE].failed - stats_before[PoolName.WRITE][1] == 2
    # One duration observation per query.
    count = "taskmaster_db_query_duration_seconds_count"
    assert value(after, count, pool="read") - value(before, count, pool="read") == 6
    for pool in ("read", "write", "analytics", "background"):
        assert ("taskmaster_db_queries_failed", (("pool", pool),)) in after


def test_tasks_total_counts_every_task_by_status(
    dash_app, owner_engine, clean_data, metrics_token, services
):
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO tasks (title, status, created_at) VALUES
                   ('a', 'pending', now()), ('b', 'pending', now() - interval '10 days'),
                   ('c', 'completed', now() - interval '40 days'), ('d', 'failed', now())"""
            )
        )
        expected = dict(conn.execute(text("SELECT status, count(*) FROM tasks GROUP BY 1")).all())
    services.clear_caches()
    samples = scrape(dash_app)
    for status in ("pending", "in_progress", "completed", "failed", "cancelled"):
        assert value(samples, "taskmaster_tasks_total", status=status) == expected.get(status, 0)
    assert value(samples, "taskmaster_tasks_total", status="pending") == 2
    assert value(samples, "taskmaster_uptime_seconds") > 0
    assert value(samples, "taskmaster_memory_usage_bytes", type="rss") > 10_000_000


def test_memory_and_disk_of_the_host_feed_the_spec_s_95_percent_rules(dash_app, metrics_token):
    import psutil

    from taskmaster_dash.data.config import default_data_dir

    samples = scrape(dash_app)
    total = value(samples, "taskmaster_memory_usage_bytes", type="system_total")
    used = value(samples, "taskmaster_memory_usage_bytes", type="system_used")
    assert total == psutil.virtual_memory().total
    assert 0 < used < total
    path = default_data_dir()
    while not path.exists():
        path = path.parent
    disk = psutil.disk_usage(str(path))
    assert value(samples, "taskmaster_disk_usage_bytes", type="total") == disk.total
    assert abs(value(samples, "taskmaster_disk_usage_bytes", type="used") - disk.used) < 10**9
    assert abs(value(samples, "taskmaster_disk_usage_bytes", type="free") - disk.free) < 10**9


def test_pool_gauges_show_connections_in_use_and_waiters(dash_app, database, metrics_token):
    assert value(scrape(dash_app), "taskmaster_db_pool_max", pool="read") == 6
    assert value(scrape(dash_app), "taskmaster_db_pool_max", pool="analytics") == 1
    holding = threading.Event()
    release = threading.Event()
    waited = []

    def hold():  # takes the analytics pool's only connection
        started = time.perf_counter()
        with database.transaction(PoolName.ANALYTICS, SYSTEM_ACTOR) as conn:
            waited.append(time.perf_counter() - started)
            conn.execute(text("SELECT 1"))
            holding.set()
            release.wait(10)

    def wait_for_connection():
        started = time.perf_counter()
        database.fetch_rows(PoolName.ANALYTICS, SYSTEM_ACTOR, "SELECT 1 AS one")
        waited.append(time.perf_counter() - started)

    wait_count = "taskmaster_db_connection_wait_seconds_count"
    before = scrape(dash_app)
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    waiter = threading.Thread(target=wait_for_connection)
    waiter.start()
    try:
        samples = until(
            lambda: (
                s
                if value(s := scrape(dash_app), "taskmaster_db_pool_waiting", pool="analytics") == 1
                else None
            ),
            10,
            poll=0.05,
            msg="the waiter never showed up",
        )
        assert value(samples, "taskmaster_db_pool_in_use", pool="analytics") == 1
        assert value(samples, "taskmaster_db_pool_idle", pool="analytics") == 0
        assert value(samples, "taskmaster_db_pool_size", pool="analytics") == 1
    finally:
        release.set()
        holder.join(10)
        waiter.join(10)
    after = scrape(dash_app)
    assert value(after, "taskmaster_db_pool_waiting", pool="analytics") == 0
    assert value(after, "taskmaster_db_pool_in_use", pool="analytics") == 0
    assert (
        value(after, wait_count, pool="analytics") - value(before, wait_count, pool="analytics")
        == 2
    )
    # The waiter's wait landed in the histogram's sum: more than nothing (it was seen waiting),
    # at most what the holder and the waiter each measured around taking a connection.
    wait_sum = "taskmaster_db_connection_wait_seconds_sum"
    added = value(after, wait_sum, pool="analytics") - value(before, wait_sum, pool="analytics")
    assert 0 < added <= sum(waited)


WORKER = """
import json, sys
from taskmaster_dash.data.db import SYSTEM_ACTOR, Database, PoolName
db = Database(sys.argv[1])
for _ in range(int(sys.argv[2])):
    db.fetch_rows(PoolName.READ, SYSTEM_ACTOR, "SELECT 1 AS one")
try:
    db.fetch_rows(PoolName.WRITE, SYSTEM_ACTOR, "SELECT 1 / 0")
except Exception:
    pass
print(json.dumps({p.value: [db.stats[p].successful, db.stats[p].failed] for p in PoolName}),
      flush=True)
sys.stdin.readline()  # stay alive (like a gunicorn worker) until told to stop
"""

RENDER = """
import sys
from taskmaster_dash.data.metrics import render_metrics, mark_process_dead
for pid in sys.argv[1:]:
    mark_process_dead(int(pid))
sys.stdout.write(render_metrics()[0].decode())
"""


def test_multiprocess_mode_adds_up_two_worker_processes(pg_server, database, tmp_path):
    """Two processes (as two gunicorn workers would) write to one PROMETHEUS_MULTIPROC_DIR;
    a third renders the metrics: counters are the sum of both, pool gauges the sum of the live
    workers, and a worker marked dead (gunicorn's child_exit) leaves its counts but no gauges."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, pg_server.app_url, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for n in (4, 7)
    ]
    try:
        stats = [json.loads(w.stdout.readline()) for w in workers]

        def render(*dead: int):
            out = subprocess.run(
                [sys.executable, "-c", RENDER, *map(str, dead)],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=True,
            )
            return parse(out.stdout)

        live = render()
        for pool in ("read", "write"):
            ok = sum(s[pool][0] for s in stats)
            failed = sum(s[pool][1] for s in stats)
            assert value(live, "taskmaster_db_queries_successful", pool=pool) == ok
            assert value(live, "taskmaster_db_queries_failed", pool=pool) == failed
            assert value(live, "taskmaster_db_queries_total", pool=pool) == ok + failed
        # each read: the actor and read-only set in one statement (data/db.py), then the query
        assert value(live, "taskmaster_db_queries_successful", pool="read") == 2 * (4 + 7)
        assert value(live, "taskmaster_db_queries_failed", pool="write") == 2
        assert value(live, "taskmaster_db_pool_max", pool="read") == 12  # 6 per worker
    finally:
        for w in workers:
            w.stdin.write("\n")
            w.stdin.flush()
            w.wait(20)
    after_exit = render(*(w.pid for w in workers))
    assert value(after_exit, "taskmaster_db_queries_successful", pool="read") == 2 * (4 + 7)
    assert ("taskmaster_db_pool_max", (("pool", "read"),)) not in after_exit
