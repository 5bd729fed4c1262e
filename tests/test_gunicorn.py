"""The app under a real gunicorn: metrics add up across workers, and N workers run one of each
background job."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
from dash.testing import wait
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from taskmaster_dash.alerts.rules import load_rules
from tests.support.processes import free_port, server_environment

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "gunicorn-test-token"


def read_queries(base: str) -> float:
    response = requests.get(
        f"{base}/api/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text[:200]
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "taskmaster_db_queries_total" and sample.labels["pool"] == "read":
                return sample.value
    raise AssertionError("no taskmaster_db_queries_total{pool=read} in the scrape")


@pytest.fixture
def start_gunicorn(pg_server, database, tmp_path):
    """start_gunicorn(workers, env) -> (base URL, metrics directory, process); stopped after."""
    started: list[subprocess.Popen] = []

    def start(workers: int, extra_env: dict[str, str]):
        port = free_port()
        metrics_dir = tmp_path / f"prometheus-multiproc-{port}"
        metrics_dir.mkdir()
        env = server_environment(
            pg_server,
            {
                "METRICS_TOKEN": TOKEN,
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                "TASKMASTER_ENV": "testing",
                **extra_env,  # may override any of these
            },
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", str(workers),
             "-b", f"127.0.0.1:{port}", "taskmaster_dash.app:server"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if process.poll() is not None:
                stderr = process.stderr.read() if process.stderr else ""
                pytest.fail(f"gunicorn exited: {stderr[-2000:]}")
            try:
                return requests.get(f"{base}/api/v1/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait.until(answers, 90, poll=0.5, msg="gunicorn did not answer within 90 s")
        return base, metrics_dir, process

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def gunicorn(start_gunicorn):
    base, metrics_dir, _process = start_gunicorn(2, {})
    return base, metrics_dir


def test_every_scrape_reports_the_queries_of_both_workers(gunicorn):
    base, metrics_dir = gunicorn
    before = read_queries(base)
    # Concurrent requests spread over both (sync) workers; each health check runs SELECT 1 on
    # the read pool of the worker that answers it.
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(
            pool.map(lambda _: requests.get(f"{base}/api/v1/health").status_code, range(60))
        )
    assert codes == [200] * 60
    writers = {
        match[1]
        for path in metrics_dir.iterdir()
        if (match := re.match(r"counter_(\d+)\.db$", path.name))
    }
    assert len(writers) >= 2, f"only {writers} wrote metrics: the load did not reach both workers"
    scrapes = [read_queries(base) for _ in range(10)]  # answered by either worker
    assert min(scrapes) >= before + 60
    assert scrapes == sorted(scrapes)  # sums over all workers never go backwards


# --- one refresher and one evaluator across the workers ---------------------------------------

SESSIONS = """
    SELECT a.application_name, bool_or(l.granted IS TRUE) AS leads
    FROM pg_stat_activity a
    LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.objid = :key
    WHERE a.application_name LIKE :name
    GROUP BY a.pid, a.application_name"""
PID = re.compile(r"\(pid (\d+)\)$")


def elected(owner_engine, key: int, name: str) -> tuple[list[int], list[int]]:
    """(worker pids holding the lock, worker pids standing by) for one background job."""
    with owner_engine.connect() as conn:
        rows = conn.execute(text(SESSIONS), {"key": key, "name": f"taskmaster_{name} (pid %"})
        sessions = [(int(PID.findall(app)[0]), leads) for app, leads in rows]
    return (
        sorted(pid for pid, leads in sessions if leads),
        sorted(pid for pid, leads in sessions if not leads),
    )


def test_three_workers_run_one_refresher_and_one_evaluator_and_a_survivor_takes_over(
    start_gunicorn, owner_engine
):
    """Every worker starts both background jobs; each job's advisory lock lets one work and the
    others stand by; when the leading worker is killed, one of the others takes over."""
    from taskmaster_dash.data.leader import EVALUATOR_LOCK_KEY, ROLLUP_REFRESHER_LOCK_KEY

    jobs = {EVALUATOR_LOCK_KEY: "alert_evaluator", ROLLUP_REFRESHER_LOCK_KEY: "rollup_refresher"}
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_states, alert_history"))
        conn.execute(text("UPDATE analytics_rollup_state SET refreshed_at = NULL"))
    _base, _metrics, master = start_gunicorn(
        3,
        {
            "TASKMASTER_ENV": "development",
            "ALERTS_EVALUATOR": "on",
            "ALERTS_INTERVAL_SECONDS": "1",
            "ANALYTICS_REFRESH_SECONDS": "1",
        },
    )
    workers = {child.pid for child in psutil.Process(master.pid).children()}
    assert len(workers) == 3

    def one_leader_each(among: set[int]) -> dict[int, int] | None:
        leaders = {}
        for key, name in jobs.items():
            leading, standing_by = elected(owner_engine, key, name)
            if len(leading) != 1 or len(standing_by) != 2 or {*leading, *standing_by} != among:
                return None
            leaders[key] = leading[0]
        return leaders

    leaders = wait.until(lambda: one_leader_each(workers), 60, msg="not one leader per job")
    # The leaders work: every rule evaluated, every rollup refreshed.
    with owner_engine.connect() as conn:

        def worked() -> bool:
            evaluated = conn.execute(text("SELECT count(*) FROM alert_states")).scalar()
            unrefreshed = conn.execute(
                text("SELECT count(*) FROM analytics_rollup_state WHERE refreshed_at IS NULL")
            ).scalar()
            conn.rollback()
            return evaluated == len(load_rules()) and unrefreshed == 0

        wait.until(worked, 60, msg="the leaders did not evaluate and refresh")

    # Kill the evaluator's leader without warning: its sessions end, a survivor takes the lock,
    # and gunicorn's replacement worker stands by.
    killed = leaders[EVALUATOR_LOCK_KEY]
    os.kill(killed, signal.SIGKILL)

    def replaced() -> dict[int, int] | None:
        now = {child.pid for child in psutil.Process(master.pid).children()}
        return one_leader_each(now) if killed not in now and len(now) == 3 else None

    after = wait.until(replaced, 60, msg="no worker took over from the killed leader")
    assert killed not in after.values()
