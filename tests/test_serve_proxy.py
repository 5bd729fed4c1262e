"""`taskmaster-dash serve` itself: gunicorn with the workers asked for, leaving proxy headers to
the app; behind a TLS-terminating proxy (TRUSTED_PROXY_COUNT=1) the session cookie is Secure,
HSTS is sent, the audit log records the client's address; and two serve processes with
REDIS_URL share one throttle."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
import requests
from dash.testing.errors import TestingTimeoutError
from dash.testing.wait import until

from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.users import create_user
from tests.support.auth import ROLE_PASSWORD, csrf_token_in
from tests.support.processes import free_port, server_environment
from tests.support.sql import column, scalar

STARTUP_SECONDS = 90


def _wait_until(ready, process: subprocess.Popen, what: str, log: Path) -> None:
    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited early:\n{log.read_text()[-3000:]}")
        return bool(ready())

    try:
        until(up, STARTUP_SECONDS)
    except TestingTimeoutError:
        raise AssertionError(f"{what} did not become ready:\n{log.read_text()[-3000:]}") from None


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

    def pong() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        _wait_until(pong, process, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _serve(pg_server, log: Path, *options: str, **env: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    script = Path(sys.executable).with_name("taskmaster-dash")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "taskmaster_dash.cli"]
    environment = server_environment(pg_server, {"TASKMASTER_ENV": "testing", **env})
    process = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    base = f"http://127.0.0.1:{port}"
    _wait_until(lambda: _answers(base + "/api/v1/health"), process, "serve", log)
    return base, process


@pytest.fixture(scope="module")
def servers(pg_server, database, redis_url, tmp_path_factory):
    """Two `serve` processes behind one trusted proxy hop, sharing a Redis throttle."""
    logs = tmp_path_factory.mktemp("serve")
    started = []
    try:
        for name in ("a", "b"):
            started.append(
                _serve(
                    pg_server, logs / f"{name}.log", TRUSTED_PROXY_COUNT="1", REDIS_URL=redis_url
                )
            )
        yield [base for base, _ in started]
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            process.wait(20)


def _via_proxy(client_address: str) -> dict[str, str]:
    return {"X-Forwarded-Proto": "https", "X-Forwarded-For": client_address}


def _sign_in(base: str, username: str, password: str, client_address: str):
    """The sign-in form as a browser sends it through the proxy (it keeps the Secure cookie
    although the proxy talks plain HTTP to the app)."""
    headers = _via_proxy(client_address)
    form = requests.get(base + "/login", headers=headers, timeout=10)
    token = csrf_token_in(form.text)
    host = base.removeprefix("http://")
    return form, requests.post(
        base + "/login",
        data={"csrf_token": token, "username": username, "password": password},
        headers={**headers, "Referer": f"https://{host}/login"},
        cookies={"session": form.cookies["session"]},
        allow_redirects=False,
        timeout=10,
    )


def test_behind_a_tls_proxy_the_cookie_is_secure_and_the_audit_has_the_client(
    servers, owner_engine
):
    name = f"p-{uuid.uuid4().hex[:8]}"
    user_id = create_user(SYSTEM_ACTOR, name, f"{name}@example.com", "viewer", ROLE_PASSWORD)
    form, signed_in = _sign_in(servers[0], name, ROLE_PASSWORD, "203.0.113.77")
    assert signed_in.status_code == 302, signed_in.text[:300]
    cookie = signed_in.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert "max-age=31536000" in form.headers["Strict-Transport-Security"]
    assert form.headers["X-Frame-Options"] == "DENY"
    audited = column(
        owner_engine,
        "SELECT host(ip_address) FROM audit_logs WHERE entity_type = 'user_sessions' "
        "AND user_id = CAST(:id AS uuid)",
        id=user_id,
    )
    session_ip = scalar(
        owner_engine,
        "SELECT host(ip_address) FROM user_sessions WHERE user_id = CAST(:id AS uuid)",
        id=user_id,
    )
    assert audited == ["203.0.113.77"] and session_ip == "203.0.113.77"


def test_without_https_from_the_proxy_there_is_no_hsts(servers):
    plain = requests.get(
        servers[0] + "/login", headers={"X-Forwarded-For": "203.0.113.78"}, timeout=10
    )
    assert "Strict-Transport-Security" not in plain.headers
    assert "Secure" not in plain.headers["Set-Cookie"]


def test_two_serve_processes_share_the_throttle_through_redis(servers):
    address = f"203.0.113.{100 + uuid.uuid4().int % 100}"
    for attempt in range(10):  # five failures on each process
        _, response = _sign_in(servers[attempt % 2], "nobody-here", "Wrong-guess-1", address)
        assert response.status_code == 401
    for base in servers:
        _, refused = _sign_in(base, "nobody-here", "Wrong-guess-1", address)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60


def test_serve_runs_the_workers_asked_for_and_leaves_proxy_headers_to_the_app(
    pg_server, database, tmp_path
):
    base, process = _serve(pg_server, tmp_path / "serve.log", "--workers", "3")
    try:
        workers = psutil.Process(process.pid).children()
        assert len(workers) == 3, [w.cmdline() for w in workers]
        # TRUSTED_PROXY_COUNT=0: a forwarded https from loopback is not believed, by gunicorn
        # either (it would otherwise mark the request secure itself).
        page = requests.get(base + "/login", headers=_via_proxy("203.0.113.9"), timeout=10)
        assert page.status_code == 200
        assert "Secure" not in page.headers["Set-Cookie"]
        assert "Strict-Transport-Security" not in page.headers
    finally:
        process.terminate()
        assert process.wait(20) == 0
