"""The spec's pools: sizes, statement timeouts, application names visible in pg_stat_activity."""

from __future__ import annotations

from sqlalchemy import text

from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName, pool_specs


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
