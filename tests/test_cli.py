"""The `taskmaster-dash` command: help, one-line errors, create-user, migrate, the demo."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import requests
from dash.testing.wait import until
from sqlalchemy import text

from taskmaster_dash.data.seed import DEMO_ROLES
from tests.support.auth import csrf_token_in
from tests.support.processes import free_port, start_demo
from tests.support.sql import one_tuple

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = ["serve", "demo", "migrate", "seed-demo", "create-user"]


def run_cli(args: list[str], pg_server=None, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pg_server is not None:
        env["DATABASE_URL"] = pg_server.app_url
        env["OWNER_DATABASE_URL"] = pg_server.owner_url
    return subprocess.run(
        [sys.executable, "-m", "taskmaster_dash.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run_cli([command, "--help"])
    assert result.returncode == 0
    assert f"usage: taskmaster-dash {command}" in result.stdout


HEAVY_MODULES = {"pandas", "sqlalchemy", "dash", "plotly", "flask", "psycopg", "pydantic"}


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["serve", "--port", "http"]])
def test_help_and_argument_errors_import_no_heavy_module(args):
    # -X importtime names every module the interpreter imports, on stderr: the command line
    # answers without loading the data stack (which takes seconds on a loaded machine).
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "taskmaster_dash.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "taskmaster-dash" in result.stdout + result.stderr.splitlines()[-1]  # it answered
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert {"argparse", "signal"} <= imported  # the listing is complete enough to judge by
    assert imported & HEAVY_MODULES == set()


@pytest.mark.parametrize(
    "args",
    [
        ["seed-demo", "--scale", "huge"],
        ["serve", "--port", "http"],
        ["serve", "--port", "70000"],
        ["serve", "--workers", "0"],
        ["create-user", "--username", "x"],
        ["no-such-command"],
    ],
)
def test_bad_arguments_get_one_line_and_a_non_zero_exit(args):
    result = run_cli(args)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_create_user_reads_the_password_from_stdin(pg_server, database, owner_engine):
    result = run_cli(
        [
            "create-user",
            "--username",
            "cli-user",
            "--email",
            "cli@example.com",
            "--role",
            "on_call",
            "--password-stdin",
        ],
        pg_server,
        stdin="Sturdy-Password-9\n",
    )
    assert result.returncode == 0, result.stderr
    row = one_tuple(
        owner_engine,
        "SELECT r.role_name, u.password_hash LIKE '$argon2id$%' FROM users u"
        " JOIN user_roles r ON r.id = u.role_id WHERE u.username = 'cli-user'",
    )
    assert row == ("on_call", True)


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short", "at least 10"),
        ("alllowercaseletters", "three of"),
        ("Cli-Weak-User-1", "username"),
    ],
)
def test_create_user_refuses_weak_passwords(pg_server, database, owner_engine, password, says):
    result = run_cli(
        [
            "create-user",
            "--username",
            "cli-weak-user",
            "--email",
            "weak@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        pg_server,
        stdin=password + "\n",
    )
    assert result.returncode == 1
    assert says in result.stderr and "Traceback" not in result.stderr
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM users WHERE username = 'cli-weak-user'")) == 0


def test_create_user_with_an_unknown_role_says_so(pg_server, database):
    result = run_cli(
        [
            "create-user",
            "--username",
            "cli-role",
            "--email",
            "r@example.com",
            "--role",
            "'; DROP TABLE users; --",
            "--password-stdin",
        ],
        pg_server,
        stdin="Sturdy-Password-9\n",
    )
    assert result.returncode == 1
    assert "no active role" in result.stderr


def test_migrate_twice_is_fine(pg_server, database):
    for _ in range(2):
        result = run_cli(["migrate"], pg_server)
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


# --- the demo ---------------------------------------------------------------------------------


def data_dir() -> Path:
    """A demo data directory outside pytest's tmp_path, whose parent pytest keeps at 0700 (the
    embedded server runs as its own system user and must reach its data directory)."""
    return Path(tempfile.mkdtemp(prefix="tmdash-demo-"))


def test_stopping_the_database_stops_its_background_threads_first(monkeypatch, caplog):
    """The alert evaluator and the rollup refresher end before the embedded server does, so
    stopping the demo logs no failed save."""
    from taskmaster_dash.data.config import load_settings
    from taskmaster_dash.data.runtime import open_database
    from taskmaster_dash.services import Services, current, install

    for name in ("DATABASE_URL", "DB_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKMASTER_DATA_DIR", str(data_dir()))
    monkeypatch.setenv("ALERTS_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("ANALYTICS_REFRESH_SECONDS", "1")
    monkeypatch.setenv("ALERTS_EVALUATOR", "on")
    settings = load_settings()
    opened = open_database(settings)
    try:
        previous = current()
    except RuntimeError:
        previous = None
    services = Services.build(settings, opened.database)
    install(services)
    try:
        services.start_workers()
        names = {"alert-evaluator", "analytics-refresh"}
        assert names <= {t.name for t in threading.enumerate()}
        with caplog.at_level(logging.WARNING):
            opened.close()
            assert not names & {t.name for t in threading.enumerate() if t.is_alive()}
        logged = [r.getMessage() for r in caplog.records if r.name.startswith(("alerts", "data"))]
        assert logged == []
        opened.close()  # a second close (the exit hook) is harmless
    finally:
        install(previous)


def sign_in_over_http(base: str, username: str, password: str) -> requests.Response:
    session = requests.Session()
    form = session.get(f"{base}/login", timeout=10).text
    token = csrf_token_in(form)
    return session.post(
        f"{base}/login",
        data={"csrf_token": token, "username": username, "password": password, "next": "/"},
        allow_redirects=False,
        timeout=10,
    )


def wait_until_serving(base: str, seconds: float = 60) -> None:
    def answers() -> bool:
        try:
            requests.get(f"{base}/api/v1/health", timeout=5)
        except requests.ConnectionError:
            return False
        return True

    until(answers, seconds, msg=f"nothing answers at {base}")


def test_the_demo_prints_logins_that_sign_in_and_stops_cleanly():
    tmp_path = data_dir()
    port = free_port()
    env = {
        **os.environ,
        "TASKMASTER_DATA_DIR": str(tmp_path),
        "ALERTS_INTERVAL_SECONDS": "1",  # evaluating right up to the stop
    }
    demo, printed = start_demo(["--port", str(port), "--no-prometheus"], env)
    try:
        table = printed.split("Demo logins (one per role; demo mode only):\n", 1)[1]
        header, *rows = [line.split() for line in table.split("\n\n", 1)[0].splitlines()]
        assert header == ["role", "username", "password"]
        logins = {username: password for _role, username, password in rows}
        assert [role for role, _, _ in rows] == list(DEMO_ROLES)
        # The file beside the database holds the same names, and each one signs in.
        assert json.loads((tmp_path / "demo-logins.json").read_text()) == logins
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base)
        for username, password in logins.items():
            response = sign_in_over_http(base, username, password)
            assert response.status_code == 302, (username, response.text[:300])
            assert "/login" not in response.headers["Location"], username
        assert sign_in_over_http(base, "on_call", logins["on-call"]).status_code != 302
    finally:
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0
    assert [line for line in rest.splitlines() if "ERROR" in line or "Traceback" in line] == []
