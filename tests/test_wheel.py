"""The wheel as a user gets it: built from the checkout, installed into a fresh venv, it holds one
package with every SQL, rule, PromQL and asset file, migrates a database and serves the app from
a directory outside the checkout."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from dash.testing.wait import until

from tests.support.processes import ROOT, free_port, server_environment

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(240)]

# the venv's uv (make setup installs it), else one on PATH
UV = shutil.which("uv", path=Path(sys.executable).parent) or shutil.which("uv") or "uv"
PACKAGE = ROOT / "taskmaster_dash"
# Top-level names the wheel once installed into site-packages besides the package.
GENERIC_NAMES = ("data", "app", "cli", "pages", "auth", "alerts", "sql", "assets")


@dataclass(frozen=True)
class Installed:
    venv: Path
    site_packages: Path
    elsewhere: Path  # a working directory outside the checkout
    env: dict[str, str]  # no PYTHONPATH: the venv must not see the checkout


def run(args: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=180, **kwargs
    )
    assert result.returncode == 0, f"{args}: {result.stdout[-1500:]}{result.stderr[-1500:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # sdist, then the wheel from the unpacked sdist: what a package index would get
    run([UV, "build", "--quiet", "--out-dir", tmp / "dist", ROOT], env=env)
    (wheel,) = (tmp / "dist").glob("taskmaster_dash-*.whl")
    venv = tmp / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, venv], env=env)
    # The dependencies at the versions in uv.lock (from uv's cache, so this takes seconds).
    constraints = tmp / "constraints.txt"
    run(
        [UV, "export", "--quiet", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
         "--output-file", constraints],
        env=env, cwd=ROOT,
    )  # fmt: skip
    python = venv / "bin" / "python"
    run([UV, "pip", "install", "--quiet", "--python", python, "-c", constraints, wheel], env=env)
    site_packages = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    )
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, site_packages, elsewhere, env)


def shipped_files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_the_wheel_installs_one_package_with_all_its_files(installed):
    site = installed.site_packages
    assert (site / "taskmaster_dash" / "__init__.py").is_file()
    for name in GENERIC_NAMES:
        assert not (site / name).exists() and not (site / f"{name}.py").exists(), name
    # every file of the checkout's package: code, sql/, rules, PromQL, assets
    checkout = shipped_files(PACKAGE)
    assert {"sql/migrations/001_schema.sql", "alerts/rules.yaml", "data/promql.yaml"} <= checkout
    assert any(f.startswith("assets/") for f in checkout)
    assert shipped_files(site / "taskmaster_dash") == checkout
    # and the code finds them in site-packages, not in the checkout
    where = run(
        [installed.venv / "bin" / "python", "-c",
         "from taskmaster_dash.data.migrations import MIGRATIONS_DIR; print(MIGRATIONS_DIR)"],
        env=installed.env, cwd=installed.elsewhere,
    )  # fmt: skip
    assert Path(where.stdout.strip()) == site / "taskmaster_dash" / "sql" / "migrations"


@pytest.fixture(scope="module")
def migrated(installed, pg_server) -> tuple[dict[str, str], list[str]]:
    """A database of its own, migrated twice by the wheel's `taskmaster-dash migrate`: the
    environment that reaches it and what each run printed."""
    server = pg_server.create_database(f"wheel_{uuid.uuid4().hex[:8]}")
    env = server_environment(
        server,
        {"TASKMASTER_ENV": "testing", "DATA_DIR": str(installed.elsewhere / "data")},
        base=installed.env,
    )
    command = installed.venv / "bin" / "taskmaster-dash"
    outputs = [run([command, "migrate"], env=env, cwd=installed.elsewhere).stdout for _ in "12"]
    return env, outputs


def test_migrate_from_the_wheel_applies_every_shipped_migration(migrated):
    _env, (first, again) = migrated
    versioned = sorted(p.name for p in (PACKAGE / "sql" / "migrations").glob("*.sql"))
    assert first.startswith(f"Applied {len(versioned) + 1}: migrations/{versioned[0]}, ")
    assert "repeatable/original_views.sql" in first
    assert again.splitlines()[0] == "Nothing to do."


@contextlib.contextmanager
def answering(
    command: list[str | Path], env: dict[str, str], cwd: Path, port: int
) -> Iterator[str]:
    """`command` started, once /api/v1/health answers 200 on `port`; stopped afterwards."""
    process = subprocess.Popen(
        [str(c) for c in command], env=env, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            assert process.stderr is not None
            raise AssertionError(f"{command[0]} exited: {process.stderr.read()[-2000:]}")
        try:
            return requests.get(f"{base}/api/v1/health", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or the worker still booting
            return False

    try:
        until(answers, timeout=120, poll=0.2)  # a loaded machine takes its time to import Dash
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_from_the_wheel_answers_with_its_assets(installed, migrated):
    env, _outputs = migrated
    port = free_port()
    serve = [installed.venv / "bin" / "taskmaster-dash", "serve", "--port", str(port)]
    with answering(serve, env, installed.elsewhere, port) as base:
        assert requests.get(f"{base}/api/v1/health", timeout=10).json()["status"] == "healthy"
        assert requests.get(f"{base}/login", timeout=10).status_code == 200
        # the assets come from site-packages (the checkout is out of the venv's sight)
        for asset in sorted((PACKAGE / "assets").rglob("*.*")):
            response = requests.get(f"{base}/assets/{asset.relative_to(PACKAGE / 'assets')}")
            assert response.status_code == 200 and response.content == asset.read_bytes(), asset


def test_the_production_command_runs_from_the_wheel(installed, migrated):
    # the README's gunicorn command, with the settings module shipped in the package
    env, _outputs = migrated
    port = free_port()
    gunicorn = [
        installed.venv / "bin" / "gunicorn", "-c", "python:taskmaster_dash.gunicorn_conf",
        "-w", "1", "-b", f"127.0.0.1:{port}", "taskmaster_dash.app:server",
    ]  # fmt: skip
    with answering(gunicorn, env, installed.elsewhere, port) as base:
        assert requests.get(f"{base}/api/v1/health", timeout=10).json()["status"] == "healthy"
