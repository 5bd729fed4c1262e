"""The demo starts its own Prometheus scraping the app, and stops it on exit; without the
binary it says how to add one; `make demo` installs the package as root and takes PORT."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest
import requests
from dash.testing.wait import until

from taskmaster_dash.data.config import load_settings
from tests.support.processes import free_port, start_demo

ROOT = Path(__file__).resolve().parent.parent


def test_without_a_prometheus_binary_the_demo_says_how_to_add_one(monkeypatch, tmp_path, capsys):
    from taskmaster_dash.cli import _demo_prometheus

    monkeypatch.setenv("PATH", str(tmp_path))  # nothing called prometheus here
    monkeypatch.setenv("TASKMASTER_DATA_DIR", str(tmp_path))
    args = argparse.Namespace(host="127.0.0.1", port=8050)
    assert _demo_prometheus(load_settings(), args, "token") is None
    out = capsys.readouterr().out
    assert "No `prometheus` binary on PATH" in out and "apt-get install prometheus" in out
    assert not (tmp_path / "prometheus").exists()


@pytest.mark.prometheus
def test_demo_runs_a_prometheus_that_scrapes_it_and_stops_with_it(tmp_path):
    port = free_port()
    env = {**os.environ, "TASKMASTER_DATA_DIR": str(tmp_path)}
    env.pop("PROMETHEUS_ENABLED", None)
    demo, text_out = start_demo(["--port", str(port)], env)
    try:
        match = re.search(r"Prometheus on (http://127\.0\.0\.1:(\d+))", text_out)
        assert match, text_out
        url, prom_port = match[1], int(match[2])
        assert (tmp_path / "prometheus" / "prometheus.yml").exists()
        config = (tmp_path / "prometheus" / "prometheus.yml").read_text()
        assert f"127.0.0.1:{port}" in config and "Bearer" in config

        def scraped() -> bool:  # Prometheus reaches the demo's /api/v1/metrics with the token
            targets = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]
            return [t["health"] for t in targets["activeTargets"]] == ["up"]

        until(scraped, 60, poll=0.5, msg="Prometheus never scraped the demo")
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


# --- make demo brings its own Prometheus ----------------------------------------------------


def path_without_prometheus() -> str:
    """A PATH holding only the commands scripts/ensure-tools.sh calls, so `prometheus` (and
    the browser) look missing while apt-get is the machine's real one. Outside pytest's
    tmp_path, which other users cannot enter."""
    hidden = Path(tempfile.mkdtemp(prefix="tmdash-path-"))
    hidden.chmod(0o755)
    for command in ("id", "apt-get", "dpkg", "systemctl"):
        found = shutil.which(command)
        if found:
            (hidden / command).symlink_to(found)
    return str(hidden)


def ensure_tools(target: str, path: str, as_user: str | None = None):
    command = [
        "env",
        f"PATH={path}",
        "/bin/bash",
        str(ROOT / "scripts" / "ensure-tools.sh"),
        target,
    ]
    if as_user:
        command = ["runuser", "-u", as_user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_make_demo_runs_the_tools_step_and_passes_the_port():
    plan = subprocess.run(
        ["make", "-n", "demo", "PORT=8061"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.splitlines()
    tools = plan.index("bash scripts/ensure-tools.sh demo")
    demo = next(i for i, line in enumerate(plan) if "taskmaster-dash demo" in line)
    assert tools < demo and plan[demo].endswith("taskmaster-dash demo --port 8061")
    default = subprocess.run(["make", "-n", "demo"], capture_output=True, text=True, cwd=ROOT)
    assert "taskmaster-dash demo --port 8050" in default.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_without_root_make_demo_says_how_to_add_prometheus_and_carries_on():
    path = path_without_prometheus()
    demo = ensure_tools("demo", path, as_user="nobody")
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr.splitlines() == [
        "make demo: no prometheus prometheus-alertmanager here, so the Pools page will show no "
        "pool history (prometheus) and alerts stay in the app (prometheus-alertmanager).",
        "To add them: sudo apt-get install prometheus prometheus-alertmanager "
        "(or run make demo as root).",
    ]
    test = ensure_tools("test", path, as_user="nobody")  # the suite cannot do without them
    assert test.returncode == 1
    assert "sudo apt-get install chromium chromium-driver prometheus" in test.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("apt-get"), reason="needs root + apt")
def test_as_root_make_demo_installs_the_prometheus_package_and_says_so():
    result = ensure_tools("demo", path_without_prometheus())
    assert result.returncode == 0, result.stderr
    both = "prometheus prometheus-alertmanager"
    assert f"make demo: installing {both} from Debian packages..." in result.stdout
    assert f"make demo: installed {both}." in result.stdout
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "prometheus"], capture_output=True)
    assert status.stdout == b"install ok installed"
    assert shutil.which("prometheus")


def test_with_prometheus_present_make_demo_installs_nothing():
    if not shutil.which("prometheus"):
        pytest.skip("prometheus is not installed here")
    result = ensure_tools("demo", os.environ["PATH"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
