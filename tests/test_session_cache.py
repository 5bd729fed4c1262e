"""SESSION_CACHE_SECONDS: a signed-in request finds its session in the worker's memory, answers
as it would from the database, and a session ended or changed through the app stops working (or
changes) on the very next request. A change made in SQL behind the app's back reaches it through
the database's notice (migration 098) as soon as that arrives; a process that does not hear the
notices reads every session from the database, and one without a listener at all (the first
tests here) learns of such a change only when the cache's lifetime has passed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from dash.testing import wait
from sqlalchemy import event, text

from taskmaster_dash.data.cache import Cache
from taskmaster_dash.data.config import libpq_url
from taskmaster_dash.data.revocation import CHANNEL, SigninListener
from taskmaster_dash.data.roles import create_role, set_role_permissions
from taskmaster_dash.data.users import admin_set_password, set_user_active, set_user_role
from tests.support.auth import ROLE_PASSWORD, csrf_token, new_user, signed_in_client
from tests.support.sql import terminate_backend


class Ticks:
    """The cache's clock: moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(services) -> Iterator[Ticks]:
    clock = Ticks()
    kept = services.caches.sessions
    services.caches.sessions = Cache(30, maxsize=100, timer=clock)
    yield clock
    services.caches.sessions = kept


@pytest.fixture
def session_reads(database) -> Iterator[list[str]]:
    """Statements that read user_sessions, from now on (every pool)."""
    seen: list[str] = []

    def record(conn, cursor, statement, *_args) -> None:
        if "FROM user_sessions" in statement:
            seen.append(statement)

    for engine in database.engines.values():
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in database.engines.values():
        event.remove(engine, "before_cursor_execute", record)


def me(client) -> tuple[int, dict | None]:
    response = client.get("/api/v1/me")
    return response.status_code, response.get_json(silent=True)


def fresh_client(dash_app, role: str = "viewer"):
    user_id, name = new_user(role, "cache")
    return user_id, signed_in_client(dash_app, name, ROLE_PASSWORD)


def test_a_cached_session_answers_as_the_database_does_without_reading_it(
    dash_app, services, ticks, session_reads
):
    _user_id, client = fresh_client(dash_app, "developer")
    cached = [me(client) for _ in range(3)]
    assert len(session_reads) == 1  # the first request read it; the others found it kept
    services.caches.sessions = Cache(0)  # off: every request reads the database
    uncached = me(client)
    assert len(session_reads) == 2
    assert cached == [uncached] * 3
    assert uncached[0] == 200 and uncached[1]["role"] == "developer"


def test_signing_out_ends_the_session_at_once(dash_app, ticks):
    _user_id, client = fresh_client(dash_app)
    assert me(client)[0] == 200
    cookie = client.get_cookie("session").value
    signed_out = client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")})
    assert signed_out.status_code == 302
    replay = dash_app.server.test_client()  # the old cookie, sent again
    replay.set_cookie("session", cookie)
    assert me(replay)[0] == 401


@pytest.mark.parametrize(
    "change",
    [
        lambda admin, user_id: set_user_active(admin, user_id, False),
        lambda admin, user_id: admin_set_password(admin, user_id, "Another-Horse-43"),
    ],
    ids=["deactivated", "password set by an admin"],
)
def test_a_deactivated_user_or_a_new_password_ends_the_session_at_once(
    dash_app, users, ticks, change
):
    user_id, client = fresh_client(dash_app)
    assert me(client)[0] == 200
    change(users.actor("admin"), user_id)
    assert me(client)[0] == 401


def test_a_new_role_or_new_permissions_apply_on_the_next_request(dash_app, users, ticks):
    admin = users.actor("admin")
    role = "cache_" + "".join(chr(97 + int(c, 16)) for c in uuid.uuid4().hex[:8])
    create_role(admin, role, None, ["tasks:read"])
    user_id, client = fresh_client(dash_app)
    set_user_role(admin, user_id, role)
    assert me(client)[1]["permissions"] == ["tasks:read"]
    set_role_permissions(admin, role, ["tasks:read", "errors:read"])
    assert me(client)[1]["permissions"] == ["errors:read", "tasks:read"]
    set_user_role(admin, user_id, "viewer")
    assert me(client)[1]["role"] == "viewer"


def test_a_change_in_sql_behind_the_apps_back_waits_out_the_cache(dash_app, owner_engine, ticks):
    user_id, client = fresh_client(dash_app)
    assert me(client)[0] == 200
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": user_id})
    assert me(client)[0] == 200  # not yet: nothing told the app
    ticks.now += 31
    assert me(client)[0] == 401


def test_a_cached_session_still_ends_when_idle_or_too_old(dash_app, monkeypatch, ticks):
    _user_id, client = fresh_client(dash_app)
    assert me(client)[0] == 200
    lifetime = dash_app.server.config["SESSION_LIFETIME"]
    later = datetime.now(UTC) + lifetime.maximum + timedelta(minutes=1)
    monkeypatch.setitem(dash_app.server.config, "CLOCK", lambda: later)
    assert me(client)[0] == 401


def test_revocations_reach_every_process_of_the_host(tmp_path):
    """Two processes' views of one database's generation (the same file): a bump in one is
    seen by the other at once."""
    from taskmaster_dash.data.revocation import LocalGeneration

    mine, theirs = LocalGeneration(tmp_path / "g"), LocalGeneration(tmp_path / "g")
    before = theirs.current()
    mine.bump()
    assert theirs.current() != before and theirs.current() == mine.current()
    (tmp_path / "g").unlink()  # a cleaner removed it: both map the new one
    mine.bump()
    assert theirs.current() == mine.current()


# -- the database's notices (migration 098): changes made anywhere reach the cache at once ------


@pytest.fixture
def hearing(database) -> Iterator[SigninListener]:
    """This process hears the database's sign-in notices, as with SESSION_CACHE_SECONDS set
    (a short heartbeat, so a lost connection is found again quickly)."""
    listener = database.hear_revocations(heartbeat=0.5)
    wait.until(listener.hearing, 15, msg="the listener never heard its own probe")
    yield listener
    database.revocations.stop_hearing()


def answered_from_memory(client, session_reads: list[str]) -> bool:
    """The next request is answered without reading its session (once earlier notices, such as
    the sign-in's own, have arrived and the session was kept again)."""
    me(client)
    before = len(session_reads)
    return me(client)[0] == 200 and len(session_reads) == before


def test_a_change_in_sql_is_heard_and_ends_the_cached_session(
    dash_app, owner_engine, ticks, hearing, session_reads
):
    user_id, client = fresh_client(dash_app)
    wait.until(lambda: answered_from_memory(client, session_reads), 15)
    with owner_engine.begin() as conn:  # behind the app's back: only the notice tells it
        conn.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": user_id})
    wait.until(lambda: me(client)[0] == 401, 10, msg="the cached session outlived its user")
    assert ticks.now == 0  # not the cache's lifetime: that never passed


def test_while_the_notices_are_not_heard_every_request_reads_its_session(
    dash_app, ticks, hearing, session_reads
):
    _user_id, client = fresh_client(dash_app)
    wait.until(lambda: answered_from_memory(client, session_reads), 15)
    hearing.stop()  # as when its connection is down: nothing would tell of a change
    before = len(session_reads)
    assert [me(client)[0] for _ in range(3)] == [200] * 3
    assert len(session_reads) == before + 3


def test_the_listener_hears_again_after_losing_its_connection(database, owner_engine, hearing):
    before, pid = database.revocations.current(), hearing.backend_pid
    assert before is not None and pid is not None
    terminate_backend(owner_engine, pid)
    wait.until(lambda: hearing.backend_pid != pid and hearing.hearing(), 15)
    # notices sent while it was away are lost: hearing again counts as a change
    assert database.revocations.current() not in (None, before)


def test_the_database_gives_notice_of_exactly_what_a_session_check_reads(pg_server, owner_engine):
    with psycopg.connect(libpq_url(pg_server.app_url), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        quiet = [  # written on every sign-in and once a minute per session
            "UPDATE users SET last_login_at = now(), login_attempts = 0",
            "UPDATE user_sessions SET last_seen_at = now()",
            "SELECT pg_notify('taskmaster_signin', 'mark')",
        ]
        telling = [
            "UPDATE users SET is_active = is_active",
            "UPDATE user_roles SET permissions = permissions",
            "UPDATE user_sessions SET ended_at = ended_at",
            "DELETE FROM user_sessions WHERE false",
        ]
        for statement in quiet + telling:
            with owner_engine.begin() as owner:
                owner.execute(text(statement))
        heard = [n.payload for n in conn.notifies(timeout=10, stop_after=1 + len(telling))]
    # in commit order: nothing before the mark, one notice for each telling statement after it
    assert heard == ["mark"] + [""] * len(telling)
