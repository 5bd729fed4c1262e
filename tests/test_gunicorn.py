"""The app under a real gunicorn with two workers: metrics add up across workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import free_port

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
def gunicorn(pg_server, database, tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": pg_server.app_url,
        "OWNER_DATABASE_URL": pg_server.owner_url,
        "SECRET_KEY": "gunicorn-test-secret",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "ALERTS_EVALUATOR": "off",
        "TASKMASTER_ENV": "testing",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2",
         "-b", f"127.0.0.1:{port}", "taskmaster_dash.app:server"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {process.stderr.read()[-2000:]}")
        time.sleep(0.5)
    else:
        process.terminate()
        pytest.fail("gunicorn did not answer within 90 s")
    yield base, metrics_dir
    process.terminate()
    process.wait(timeout=30)


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
