"""Demo data: realistic shape, consistent foreign keys, generated in SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.seed import SCALES, seed_demo_data
from tests.support.sql import scalar


@pytest.fixture(scope="module")
def seeded(pg_server):
    server = pg_server.create_database("seed_test")
    migrate(server.owner_url, server.app_url)
    steps = []
    seed_demo_data(server.owner_url, SCALES["small"], progress=lambda *step: steps.append(step))
    engine = create_engine(server.owner_url)
    yield engine, steps
    engine.dispose()


def test_small_scale_has_the_promised_sizes(seeded):
    engine, steps = seeded
    assert scalar(engine, "SELECT count(*) FROM tasks") == SCALES["small"].tasks
    assert scalar(engine, "SELECT count(*) FROM validation_results") == SCALES["small"].validations
    assert scalar(engine, "SELECT count(*) FROM error_logs") == SCALES["small"].errors
    assert scalar(engine, "SELECT count(*) FROM task_contexts") > 0
    assert scalar(engine, "SELECT count(*) FROM task_dependencies") > 0
    assert steps[-1] == ("errors", SCALES["small"].errors, SCALES["small"].errors)


@pytest.mark.parametrize(
    "orphans",
    [
        "SELECT count(*) FROM tasks c LEFT JOIN tasks p ON p.id = c.parent_task_id"
        " WHERE c.parent_task_id IS NOT NULL AND p.id IS NULL",
        "SELECT count(*) FROM validation_results v LEFT JOIN tasks t ON t.id = v.task_id"
        " WHERE t.id IS NULL",
        "SELECT count(*) FROM error_logs e LEFT JOIN tasks t ON t.id = e.task_id"
        " WHERE e.task_id IS NOT NULL AND t.id IS NULL",
        "SELECT count(*) FROM error_logs e"
        " LEFT JOIN workflow_states w ON w.id = e.workflow_state_id"
        " WHERE e.workflow_state_id IS NOT NULL AND w.id IS NULL",
        "SELECT count(*) FROM task_dependencies d LEFT JOIN tasks t ON t.id = d.parent_task_id"
        " WHERE t.id IS NULL",
    ],
)
def test_foreign_keys_are_consistent(seeded, orphans):
    assert scalar(seeded[0], orphans) == 0


def test_the_data_looks_like_a_month_of_a_real_system(seeded):
    engine, _ = seeded
    assert scalar(engine, "SELECT count(*) FROM tasks WHERE status = 'pending'") > 100
    assert scalar(engine, "SELECT count(DISTINCT status) FROM tasks") == 5
    assert scalar(engine, "SELECT count(DISTINCT validation_type) FROM validation_results") == 9
    assert scalar(engine, "SELECT count(DISTINCT resolution_status) FROM error_logs") == 5
    assert scalar(engine, "SELECT max(occurrence_count) FROM error_logs") > 10
    assert scalar(engine, "SELECT min(created_at) > now() - interval '31 days' FROM tasks")
    # nothing happens after now: no run or error is dated in the future
    for table, column in (
        ("tasks", "created_at"),
        ("tasks", "completed_at"),
        ("validation_results", "created_at"),
        ("error_logs", "created_at"),
        ("error_logs", "last_occurred_at"),
    ):
        assert scalar(engine, f"SELECT count(*) FROM {table} WHERE {column} > now()") == 0, column
    # bursts: some minute holds far more new errors than the average minute
    busiest_minute = scalar(
        engine,
        "SELECT max(n) FROM (SELECT count(*) AS n FROM error_logs"
        " GROUP BY date_trunc('minute', created_at)) m",
    )
    assert busiest_minute >= 5
    # completed tasks have completion times, open ones do not
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM tasks WHERE (status = 'completed') <> (completed_at IS NOT NULL)"
            " AND status IN ('completed', 'pending', 'in_progress')",
        )
        == 0
    )
