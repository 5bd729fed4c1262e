"""The session cache under a real gunicorn with 2 workers: a session signed out through one
worker, or a user deactivated by another process, is refused by both workers on the next
request; a change made in SQL reaches both through the database's notice; with REDIS_URL, a
process that shares no file with them (another host) reaches them through Redis as well."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from dash.testing import wait
from sqlalchemy import text

from taskmaster_dash.data.db import Database
from taskmaster_dash.data.revocation import Generation, LocalGeneration
from taskmaster_dash.data.users import set_user_active
from taskmaster_dash.services import current
from tests.support.auth import ROLE_PASSWORD, new_user
from tests.support.processes import free_port
from tests.test_gunicorn import start_gunicorn  # noqa: F401  (the fixture)

REQUESTS = 20  # per check: sync workers take turns at random, so both answer some of them


def signed_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    response = session.post(
        f"{base}/login",
        data={"csrf_token": token[1], "username": username, "password": ROLE_PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:300]
    return session


def statuses(base: str, cookies) -> set[int]:
    return {
        requests.get(f"{base}/api/v1/me", cookies=cookies, timeout=10).status_code
        for _ in range(REQUESTS)
    }


def worker_pids(master: subprocess.Popen) -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process(master.pid).children()}


@pytest.fixture
def cached_gunicorn(start_gunicorn):  # noqa: F811
    def start(extra: dict[str, str] | None = None):
        base, _metrics, master = start_gunicorn(2, {"SESSION_CACHE_SECONDS": "60", **(extra or {})})
        assert len(worker_pids(master)) == 2
        return base

    return start


def test_signing_out_through_one_worker_is_refused_by_both_at_once(cached_gunicorn, users):
    base = cached_gunicorn()
    _user_id, name = new_user("viewer", "workers")
    browser = signed_in(base, name)
    cookies = dict(browser.cookies)
    assert statuses(base, cookies) == {200}  # both workers have it cached now
    form = browser.get(f"{base}/logout", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    out = browser.post(
        f"{base}/logout", data={"csrf_token": token[1]}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 302
    assert statuses(base, cookies) == {401}


def test_deactivating_a_user_from_another_process_is_refused_by_both_at_once(
    cached_gunicorn, users
):
    base = cached_gunicorn()
    user_id, name = new_user("viewer", "workers")
    cookies = dict(signed_in(base, name).cookies)
    assert statuses(base, cookies) == {200}
    set_user_active(users.actor("admin"), user_id, False)  # this process: same host and file
    assert statuses(base, cookies) == {401}


def test_a_deactivation_in_sql_behind_the_apps_back_is_refused_by_both_workers(
    cached_gunicorn, owner_engine
):
    """No Redis, no shared file, not even the app: the database's own notice reaches both
    workers (migration 098), on this host or any other."""
    base = cached_gunicorn()
    user_id, name = new_user("viewer", "workers")
    cookies = dict(signed_in(base, name).cookies)
    assert statuses(base, cookies) == {200}
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": user_id})
    wait.until(lambda: statuses(base, cookies) == {401}, 10, msg="a worker kept the session")


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of the test's own on loopback."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (apt install redis-server)"
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port)
    wait.until(lambda: _pings(client), 30, msg="redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=30)


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_with_redis_a_revocation_from_another_host_is_refused_at_once(
    cached_gunicorn, users, pg_server, redis_url, tmp_path
):
    base = cached_gunicorn({"REDIS_URL": redis_url})
    user_id, name = new_user("viewer", "workers")
    cookies = dict(signed_in(base, name).cookies)
    assert statuses(base, cookies) == {200}
    # "Another host": the same database and Redis, but no file shared with the workers.
    other = Database(pg_server.app_url, pool_max=2, pool_min=0)
    other.share_revocations(redis_url)
    assert isinstance(other.revocations, Generation)
    other.revocations.local = LocalGeneration(Path(tmp_path) / "another-host")
    try:
        with current().using(database=other):
            set_user_active(users.actor("admin"), user_id, False)
    finally:
        other.dispose()
    assert statuses(base, cookies) == {401}
