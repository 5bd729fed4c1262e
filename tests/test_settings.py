"""One settings model: every variable checked at start-up, one boolean rule, the README's table
generated from it, and DB_POOL_MIN connections opened at start."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from dash.testing.wait import until
from sqlalchemy import text
from sqlalchemy.engine import make_url

from taskmaster_dash.data.config import (
    FALSE_WORDS,
    TRUE_WORDS,
    Settings,
    SettingsError,
    libpq_url,
    load_settings,
    readme_with_table,
)
from taskmaster_dash.data.db import PoolName
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This environment without any of the model's variables, plus `settings`."""
    ours = {field.alias for field in Settings.model_fields.values()}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    return {
        **env,
        "TASKMASTER_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "settings-test-" + uuid.uuid4().hex,
        "TASKMASTER_ENV": "testing",
        "ALERTS_EVALUATOR": "off",
        **settings,
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    # A start that was not stopped would serve until the timeout: the test then fails.
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=90
    )


# A boolean, a whole number out of range, a URL and a file through the real command; the rest
# through the same check in-process (each `serve` costs a few seconds of imports).
SERVE_CASES = [
    ("SESSION_COOKIE_SECURE", "maybe", "expected one of 1/true/yes/on or 0/false/no/off"),
    ("DB_PORT", "70000", "should be less than or equal to 65535"),
    ("PROMETHEUS_URL", "localhost:9090", "expected a URL starting with http:// or https://"),
    ("PROMQL_CONFIG", "/no/such/promql.yaml", "no such file: /no/such/promql.yaml"),
]
MORE_CASES = [
    ("ALERTS_EVALUATOR", "sometimes", "expected one of 1/true/yes/on or 0/false/no/off"),
    ("LOGIN_MAX_ATTEMPTS", "11", "should be less than or equal to 10"),
    ("SESSION_IDLE_HOURS", "a week", "should be a valid integer"),
    ("ALERTS_INTERVAL_SECONDS", "0.5", "should be greater than or equal to 1"),
    ("ALERT_WEBHOOK_URL", "ftp://hooks.example", "expected a URL starting with http://"),
    ("CF_ACCESS_CERTS_URL", "certs.example", "expected a URL starting with http://"),
    ("REDIS_URL", "localhost:6379", "expected a URL starting with redis://"),
    ("DB_SSL_MODE", "sure", "should be 'disable', 'allow', 'prefer'"),
    ("TASKMASTER_ENV", "staging", "should be 'production', 'development' or 'testing'"),
    ("PROMETHEUS_MULTIPROC_DIR", "/no/such/dir", "no such directory: /no/such/dir"),
]


@pytest.mark.parametrize(("name", "value", "problem"), MORE_CASES, ids=[c[0] for c in MORE_CASES])
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"{name}: {problem}")
    assert str(refused.value).endswith(f", got {value!r}")


@pytest.mark.parametrize(("name", "value", "problem"), SERVE_CASES, ids=[c[0] for c in SERVE_CASES])
def test_a_bad_value_stops_serve_with_one_line_naming_it(tmp_path, name, value, problem):
    result = _run(
        ["-m", "taskmaster_dash.cli", "serve", "--port", str(free_port())],
        _environment(tmp_path, **{name: value}),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"taskmaster-dash serve: error: {name}: {problem}")
    assert line.endswith(f", got {value!r}")
    assert not (tmp_path / "data").exists()  # stopped before starting any database


def test_a_bad_database_url_is_named_without_its_password(tmp_path):
    env = _environment(tmp_path, DATABASE_URL="mysql://app:s3cret-pw@db.example/taskmaster")
    result = _run(["-m", "taskmaster_dash.cli", "serve"], env)
    assert result.returncode == 1
    assert result.stderr == (
        "taskmaster-dash serve: error: DATABASE_URL: expected a URL starting with postgresql:// "
        "or postgres:// or postgresql+psycopg://, got 'mysql://app:***@db.example/taskmaster'\n"
    )


def test_several_bad_values_are_all_named_on_one_line(tmp_path):
    env = _environment(tmp_path, DB_POOL_MAX="lots", TRUSTED_PROXY_COUNT="-1")
    result = _run(["-m", "taskmaster_dash.cli", "serve"], env)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "DB_POOL_MAX: should be a valid integer" in line
    assert "; TRUSTED_PROXY_COUNT: should be greater than or equal to 0, got '-1'" in line


def test_a_pool_minimum_above_the_maximum_is_refused(tmp_path):
    result = _run(
        ["-m", "taskmaster_dash.cli", "serve"],
        _environment(tmp_path, DB_POOL_MAX="4", DB_POOL_MIN="5"),
    )
    assert result.stderr == (
        "taskmaster-dash serve: error: DB_POOL_MIN: must be at most DB_POOL_MAX (4), got 5\n"
    )


def test_a_bad_value_stops_demo_before_it_starts_a_database(tmp_path):
    result = _run(
        ["-m", "taskmaster_dash.cli", "demo", "--port", str(free_port())],
        _environment(tmp_path, PROMETHEUS_ENABLED="y"),
    )
    assert result.returncode == 1
    assert result.stderr == (
        "taskmaster-dash demo: error: PROMETHEUS_ENABLED: expected one of 1/true/yes/on or "
        "0/false/no/off, got 'y'\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()


# With the project's gunicorn.conf.py the master checks the settings before any worker starts;
# without it (`-c /dev/null`) the worker that builds the app does, and gunicorn stops instead of
# respawning it (one worker: when several fail at once gunicorn 27 prints its own traceback).
@pytest.mark.parametrize(("config", "workers"), [("gunicorn.conf.py", "2"), ("/dev/null", "1")])
def test_a_bad_value_stops_gunicorn_with_one_line_and_no_traceback(tmp_path, config, workers):
    env = _environment(tmp_path, SESSION_MAX_HOURS="0")
    bind = f"127.0.0.1:{free_port()}"
    command = [
        "-m",
        "gunicorn",
        "-c",
        config,
        "-w",
        workers,
        "-b",
        bind,
        "taskmaster_dash.app:server",
    ]
    result = _run(command, env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if "SESSION_MAX_HOURS" in x]
    assert lines[0] == (
        "taskmaster-dash: SESSION_MAX_HOURS: should be greater than or equal to 1, got '0'"
    )
    assert len(lines) == 1  # once, not once per respawned worker


def test_a_promql_file_that_does_not_parse_stops_serve(tmp_path, pg_server, database):
    broken = tmp_path / "promql.yaml"
    broken.write_text("pool_max: [not, a, query]\n")
    env = _environment(
        tmp_path,
        DATABASE_URL=pg_server.app_url,
        OWNER_DATABASE_URL=pg_server.owner_url,
        PROMQL_CONFIG=str(broken),
    )
    result = _run(["-m", "taskmaster_dash.cli", "serve", "--port", str(free_port())], env)
    assert result.returncode == 1
    assert result.stderr == (
        f"taskmaster-dash serve: error: PROMQL_CONFIG: {broken}: expected 'name: PromQL query' "
        "lines\n"
    )


# --- one boolean rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("word", sorted(TRUE_WORDS | {w.upper() for w in TRUE_WORDS} | {" Yes "}))
def test_every_true_word_turns_a_flag_on(monkeypatch, word):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", word)
    monkeypatch.setenv("PROMETHEUS_ENABLED", word)
    settings = load_settings()
    assert settings.session_cookie_secure is True
    assert settings.prometheus_enabled is True


@pytest.mark.parametrize("word", sorted(FALSE_WORDS | {"OFF", "No"}))
def test_every_false_word_turns_a_flag_off(monkeypatch, word):
    monkeypatch.setenv("ALERTS_EVALUATOR", word)
    assert load_settings().alerts_evaluator is False


def test_the_defaults_are_unchanged(monkeypatch, tmp_path):
    for field in Settings.model_fields.values():
        monkeypatch.delenv(field.alias, raising=False)
    monkeypatch.setenv("DB_PORT", "")  # empty means unset
    settings = load_settings()
    assert settings.embedded and settings.database_url is None
    assert (settings.pool_max, settings.pool_min, settings.slow_query_ms) == (10, 2, 1000)
    assert settings.session_cookie_secure is False
    assert (settings.login_max_attempts, settings.login_lock_minutes) == (5, 15)
    assert (settings.session_idle_hours, settings.session_max_hours) == (168, 720)
    assert (settings.throttle_failures_per_minute, settings.throttle_api_requests_per_minute) == (
        10,
        600,
    )
    assert settings.redis_url is None and settings.trusted_proxy_count == 0
    assert settings.prometheus_enabled is False
    assert settings.prometheus_url == "http://127.0.0.1:9090"
    assert settings.alerts_evaluator is True and settings.alerts_interval_seconds == 15
    assert settings.environment == "production"
    assert settings.data_dir.name == "taskmaster-dash"


def test_db_host_and_its_parts_build_the_url(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_PASSWORD", "p@ss word")
    monkeypatch.setenv("DB_READ_REPLICA_HOST", "replica.internal")
    settings = load_settings()
    app, replica = make_url(settings.database_url), make_url(settings.read_replica_url)
    assert (app.drivername, app.username, app.password) == (
        "postgresql+psycopg",
        "taskmaster_app",
        "p@ss word",
    )
    assert (app.host, app.port, app.database) == ("db.internal", 5432, "taskmaster")
    assert (replica.host, replica.password, replica.database) == (
        "replica.internal",
        "p@ss word",
        "taskmaster",
    )
    assert "p@ss" not in repr(settings)


def test_a_blank_value_is_unset_and_a_refusal_is_a_value_error(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "  ")
    assert load_settings().secret_key is None
    monkeypatch.setenv("DB_POOL_MAX", "0")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert isinstance(refused.value, ValueError)  # what every command already reports in a line
    assert str(refused.value) == "DB_POOL_MAX: should be greater than or equal to 1, got '0'"


# --- SESSION_COOKIE_SECURE=yes over plain HTTP, through a real `serve` ----------------------------


def _login_cookie(tmp_path, pg_server, **settings: str) -> str:
    port = free_port()
    env = _environment(
        tmp_path, DATABASE_URL=pg_server.app_url, OWNER_DATABASE_URL=pg_server.owner_url, **settings
    )
    log = (tmp_path / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "taskmaster_dash.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, (tmp_path / f"serve-{port}.log").read_text()
        try:
            return requests.get(base + "/api/v1/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        until(answers, timeout=90)
        return requests.get(base + "/login", timeout=10).headers["Set-Cookie"]
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def test_session_cookie_secure_yes_marks_the_cookie_secure(tmp_path, pg_server, database):
    # (without it the cookie over plain HTTP is not Secure: test_api_keys_and_access.py)
    assert "; Secure" in _login_cookie(tmp_path, pg_server, SESSION_COOKIE_SECURE="yes")


# --- DB_POOL_MIN --------------------------------------------------------------------------------


def test_db_pool_min_connections_are_open_after_start(
    monkeypatch, pg_server, database, owner_engine
):
    from taskmaster_dash.data.runtime import open_database

    monkeypatch.setenv("DATABASE_URL", pg_server.app_url)
    monkeypatch.setenv("OWNER_DATABASE_URL", pg_server.owner_url)
    monkeypatch.setenv("DB_POOL_MAX", "20")
    monkeypatch.setenv("DB_POOL_MIN", "6")
    opened = open_database(load_settings())
    try:
        idle = {name: opened.database.engines[name].pool.checkedin() for name in PoolName}
        # read ceil(6 x 0.4), write ceil(6 x 0.3), analytics and background one each
        assert idle == {
            PoolName.READ: 3,
            PoolName.WRITE: 2,
            PoolName.ANALYTICS: 1,
            PoolName.BACKGROUND: 1,
        }
        with owner_engine.connect() as conn:
            seen = conn.execute(
                text(
                    "SELECT application_name, count(*) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'taskmaster_%_pool'"
                    " AND datname = current_database() GROUP BY 1"
                )
            ).all()
        # the shared test database's own pools may hold connections too: at least ours
        counts = dict(seen)
        assert counts["taskmaster_read_pool"] >= 3 and counts["taskmaster_write_pool"] >= 2
    finally:
        opened.database.dispose()


# --- the README's table is the model's ----------------------------------------------------------


def test_the_readme_configuration_table_is_generated_from_the_model():
    readme = README.read_text(encoding="utf-8")
    assert readme_with_table(readme) == readme, (
        "run `python -m taskmaster_dash.data.config --readme`"
    )
    for field in Settings.model_fields.values():
        assert f"| `{field.alias}` |" in readme
        assert field.description, f"{field.alias} has no description"


def test_only_the_documented_names_are_read(monkeypatch):
    """POOL_MAX or ENVIRONMENT (the model's attribute names) mean nothing; DB_POOL_MAX does."""
    monkeypatch.setenv("POOL_MAX", "3")
    monkeypatch.setenv("ENVIRONMENT", "testing")
    monkeypatch.delenv("TASKMASTER_ENV", raising=False)
    monkeypatch.delenv("DB_POOL_MAX", raising=False)
    settings = load_settings()
    assert (settings.pool_max, settings.environment) == (10, "production")
    monkeypatch.setenv("db_pool_max", "12")  # names are matched in any case
    assert load_settings().pool_max == 12


def test_the_listener_connects_with_the_same_url_in_libpq_form():
    url = "postgresql+psycopg://app:s3cret@db.example:5433/taskmaster"
    assert libpq_url(url) == "postgresql://app:s3cret@db.example:5433/taskmaster"
    assert libpq_url(url, "require").endswith("/taskmaster?sslmode=require")
    socket = "postgres://app@/taskmaster?host=/run/postgresql"
    assert libpq_url(socket, "disable") == (
        "postgresql://app@/taskmaster?host=/run/postgresql&sslmode=disable"
    )
