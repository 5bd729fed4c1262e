"""Slow queries from pg_stat_statements, on a server that preloads it (the session's test
server does not; tests/test_pools_page.py checks the note shown then)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from taskmaster_dash.data.db import SYSTEM_ACTOR, Database, PoolName
from taskmaster_dash.data.embedded import preload_pg_stat_statements, start_embedded
from taskmaster_dash.data.pool_health import slow_queries
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.services import current


@pytest.fixture(scope="module")
def statements_database(database):
    pgdata = Path(tempfile.mkdtemp(prefix="tmdash-pgss-")) / "pgdata"
    first = start_embedded(pgdata)
    assert preload_pg_stat_statements(first) is True
    first.stop()
    server = start_embedded(pgdata, delete_on_stop=True)
    assert preload_pg_stat_statements(server) is False  # already loaded after the restart
    migrate(server.owner_url, server.app_url)
    other = Database(server.app_url)
    with current().using(database=other):
        yield other
    other.dispose()
    server.stop()


def test_slow_queries_list_statements_by_mean_time_and_highlight_over_1s(
    dash_app, statements_database
):
    from taskmaster_dash.pages.pools import (
        slow_queries_view,
    )  # the page module Dash loaded for dash_app

    with statements_database.transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        conn.execute(text("SELECT pg_sleep(1.05)"))
    slow = slow_queries(SYSTEM_ACTOR)
    assert slow.note is None
    rows = slow.frame.to_dict("records")
    sleep = next(r for r in rows if "pg_sleep" in r["query"])
    assert sleep["calls"] == 1 and sleep["mean_ms"] > 1000
    assert [r["mean_ms"] for r in rows] == sorted((r["mean_ms"] for r in rows), reverse=True)
    assert any(r["mean_ms"] <= 1000 for r in rows)

    table = slow_queries_view(slow)
    highlighted = [
        row.children[0].children
        for row in table.children[1].children
        if row.className == "row-warning"
    ]
    assert highlighted == [r["query"] for r in rows if r["mean_ms"] > 1000]
    assert any("pg_sleep" in query for query in highlighted)
