"""One read transaction per request: the reads of a request share it (and its session lookup),
each caller's RLS still applies, a failed read does not poison the rest, writes keep their own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName, request_scope
from tests.support.sql import scalar

TX = "SELECT transaction_timestamp()::text AS started, pg_backend_pid() AS pid"
TITLES = "SELECT title FROM tasks ORDER BY title"


@pytest.fixture
def three_tasks(owner_engine, clean_data) -> None:
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (title, assigned_to) VALUES ('mine', 'test-developer'),"
                " ('free', NULL), ('theirs', 'someone-else')"
            )
        )


def titles(database, actor) -> list[str]:
    return [row["title"] for row in database.fetch_rows(PoolName.READ, actor, TITLES)]


def test_reads_in_a_request_share_one_transaction_and_outside_do_not(database, users):
    admin = users.actor("admin")
    with request_scope():
        first = database.fetch_rows(PoolName.READ, admin, TX)
        second = database.fetch_rows(PoolName.READ, SYSTEM_ACTOR, TX)  # another actor too
        with database.transaction(PoolName.READ, admin) as conn:
            third = [dict(r) for r in conn.execute(text(TX)).mappings()]
    assert first == second == third
    outside = [database.fetch_rows(PoolName.READ, admin, TX)[0]["started"] for _ in range(2)]
    assert outside[0] != outside[1]


def test_each_caller_in_one_transaction_sees_only_their_rows(database, users, three_tasks):
    developer, viewer = users.actor("developer"), users.actor("viewer")
    alone = {"developer": titles(database, developer), "viewer": titles(database, viewer)}
    assert alone == {"developer": ["free", "mine"], "viewer": ["free", "mine", "theirs"]}
    with request_scope():
        seen = [titles(database, a) for a in (developer, viewer, developer, SYSTEM_ACTOR)]
        who = database.fetch_rows(
            PoolName.READ, developer, "SELECT current_setting('app.current_user_id') AS id"
        )
    assert seen[:3] == [alone["developer"], alone["viewer"], alone["developer"]]
    assert who == [{"id": users.ids["developer"]}]


def test_an_enclosing_block_keeps_its_actor_while_another_reads_inside(
    database, users, three_tasks
):
    developer, viewer = users.actor("developer"), users.actor("viewer")
    with request_scope(), database.transaction(PoolName.READ, developer) as conn:
        inner = titles(database, viewer)  # its own transaction: the outer one is in use
        outer = list(conn.scalars(text(TITLES)))
    assert inner == ["free", "mine", "theirs"]
    assert outer == ["free", "mine"]


def test_a_failed_read_starts_a_fresh_transaction(database, users):
    admin = users.actor("admin")
    with request_scope():
        before = database.fetch_rows(PoolName.READ, admin, TX)
        with pytest.raises(DBAPIError):
            database.fetch_rows(PoolName.READ, admin, "SELECT 1/0")
        after = database.fetch_rows(PoolName.READ, admin, TX)
    assert after != before  # a new transaction, and it works


def test_writes_commit_on_their_own_inside_a_request(database, users, owner_engine, clean_data):
    with request_scope():
        database.fetch_rows(PoolName.READ, users.actor("admin"), "SELECT 1")
        with database.transaction(PoolName.WRITE, users.actor("admin")) as conn:
            conn.execute(text("INSERT INTO tasks (title) VALUES ('written')"))
        # committed before the request ends: another connection sees it now
        assert scalar(owner_engine, "SELECT count(*) FROM tasks WHERE title = 'written'") == 1
        # and the read pool stays read only
        with pytest.raises(DBAPIError):
            database.fetch_rows(
                PoolName.READ, SYSTEM_ACTOR, "INSERT INTO tasks (title) VALUES ('no') RETURNING 1"
            )


def api_titles(client) -> list[str]:
    response = client.get("/api/v1/tasks?limit=100")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return sorted(task["title"] for task in response.get_json()["data"])


def test_two_users_requests_in_one_worker_never_see_each_others_rows(client_as, three_tasks):
    """Developer and viewer requests alternate and run at once in one process (the test
    client's threads): each always gets exactly the rows RLS gives them."""
    clients = {"developer": client_as("developer"), "viewer": client_as("viewer")}
    expected = {"developer": ["free", "mine"], "viewer": ["free", "mine", "theirs"]}
    for role in ["developer", "viewer"] * 3:
        assert api_titles(clients[role]) == expected[role]

    def run(role: str) -> list[list[str]]:
        return [api_titles(clients[role]) for _ in range(8)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        seen = dict(zip(expected, pool.map(run, expected), strict=True))
    assert seen == {role: [rows] * 8 for role, rows in expected.items()}
