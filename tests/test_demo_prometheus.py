"""The demo starts its own Prometheus scraping the app, and stops it on exit; without the
binary it says how to add one."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from data.config import load_settings
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_without_a_prometheus_binary_the_demo_says_how_to_add_one(monkeypatch, tmp_path, capsys):
    from cli import _demo_prometheus

    monkeypatch.setenv("PATH", str(tmp_path))  # nothing called prometheus here
    monkeypatch.setenv("TASKMASTER_DATA_DIR", str(tmp_path))
    args = argparse.Namespace(host="127.0.0.1", port=8050)
    assert _demo_prometheus(load_settings(demo_mode=True), args, "token") is None
    out = capsys.readouterr().out
    assert "No `prometheus` binary on PATH" in out and "apt-get install prometheus" in out
    assert not (tmp_path / "prometheus").exists()


@pytest.mark.prometheus
def test_demo_runs_a_prometheus_that_scrapes_it_and_stops_with_it(tmp_path):
    port = free_port()
    env = {**os.environ, "TASKMASTER_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_ENABLED", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    output = []
    try:
        for line in demo.stdout:
            output.append(line)
            if "TaskMaster Dash on" in line:
                break
        text_out = "".join(output)
        match = re.search(r"Prometheus on (http://127\.0\.0\.1:(\d+))", text_out)
        assert match, text_out
        url, prom_port = match[1], int(match[2])
        assert (tmp_path / "prometheus" / "prometheus.yml").exists()
        config = (tmp_path / "prometheus" / "prometheus.yml").read_text()
        assert f"127.0.0.1:{port}" in config and "Bearer" in config
        deadline = time.monotonic() + 60
        while True:  # Prometheus reaches the demo's /api/v1/metrics with the token
            targets = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]
            health = [t["health"] for t in targets["activeTargets"]]
            if health == ["up"]:
                break
            assert time.monotonic() < deadline, targets
            time.sleep(0.5)
        servers = [
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "prometheus"
            and f"--web.listen-address=127.0.0.1:{prom_port}" in (p.info["cmdline"] or [])
        ]
        assert len(servers) == 1
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(60)
    assert not servers[0].is_running() or servers[0].status() == psutil.STATUS_ZOMBIE
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/-/ready", timeout=2)
