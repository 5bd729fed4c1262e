"""The spec's pools: sizes, statement timeouts, application names visible in pg_stat_activity."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from taskmaster_dash.data import db
from taskmaster_dash.data.db import (
    DATABASE_UNREACHABLE,
    SYSTEM_ACTOR,
    Database,
    PoolName,
    pool_specs,
    user_message,
)
from tests.support.sql import terminate_backend


def test_pool_sizes_follow_the_spec_split():
    specs = pool_specs(pool_max=10, pool_min=2)
    assert {name: spec.max_size for name, spec in specs.items()} == {
        PoolName.READ: 6,
        PoolName.WRITE: 3,
        PoolName.ANALYTICS: 1,
        PoolName.BACKGROUND: 2,
    }
    assert specs[PoolName.ANALYTICS].statement_timeout_ms == 300_000


def test_each_pool_names_itself_and_has_its_statement_timeout(database):
    expected = {
        PoolName.READ: "30s",
        PoolName.WRITE: "1min",
        PoolName.ANALYTICS: "5min",
        PoolName.BACKGROUND: "10min",
    }
    for pool, timeout in expected.items():
        with database.transaction(pool, SYSTEM_ACTOR) as conn:
            name = conn.scalar(text("SHOW application_name"))
            current = conn.scalar(text("SHOW statement_timeout"))
            in_activity = conn.scalar(
                text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            )
        assert name == in_activity == f"taskmaster_{pool}_pool"
        assert current == timeout


def test_query_counts_are_kept_per_pool(database):
    before = database.stats[PoolName.ANALYTICS].successful
    database.fetch_rows(PoolName.ANALYTICS, SYSTEM_ACTOR, "SELECT 1 AS one")
    assert database.stats[PoolName.ANALYTICS].successful > before


def _backend_pid(database: Database) -> int:
    rows = database.fetch_rows(PoolName.READ, SYSTEM_ACTOR, "SELECT pg_backend_pid() AS pid")
    return rows[0]["pid"]


@pytest.fixture
def own_database(pg_server, database):
    own = Database(pg_server.app_url, pool_max=2, pool_min=0)
    yield own
    own.dispose()


def test_a_connection_closed_while_idle_is_replaced_before_use(
    own_database, owner_engine, monkeypatch
):
    first = _backend_pid(own_database)
    terminate_backend(owner_engine, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle long enough
    assert _backend_pid(own_database) != first  # pinged, found closed, replaced: no error


def test_a_connection_used_a_moment_ago_is_not_pinged_and_a_failure_discards_the_pool(
    own_database, owner_engine, monkeypatch
):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # "a moment ago", however slow
    # Two connections in the pool, both used just now.
    with (
        own_database.transaction(PoolName.READ, SYSTEM_ACTOR) as one,
        own_database.transaction(PoolName.READ, SYSTEM_ACTOR) as two,
    ):
        pids = {c.scalar(text("SELECT pg_backend_pid()")) for c in (one, two)}
    assert len(pids) == 2
    for pid in pids:
        terminate_backend(owner_engine, pid)
    # Not pinged (no round trip): the first read fails and says the database is unreachable ...
    with pytest.raises(OperationalError) as failed:
        _backend_pid(own_database)
    assert user_message(failed.value) == DATABASE_UNREACHABLE
    # ... and the whole pool is discarded: the next read connects again, whichever it takes.
    assert _backend_pid(own_database) not in pids
