"""`taskmaster-dash simulate`: a bounded workload through every pool, counted in the database."""

from __future__ import annotations

from taskmaster_dash.data.db import PoolName
from taskmaster_dash.data.metrics import QUERIES_FAILED
from taskmaster_dash.data.simulate import run_workload
from tests.support.sql import count_rows, one_row, scalar
from tests.test_cli import run_cli


def test_simulate_has_help_and_refuses_bad_durations():
    result = run_cli(["simulate", "--help"])
    assert result.returncode == 0 and "--duration" in result.stdout
    for bad in ("0", "abc", "100000"):
        result = run_cli(["simulate", "--duration", bad])
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_workload_writes_what_it_reports_through_all_four_pools(database, owner_engine, clean_data):
    before = {pool: database.stats[pool].total for pool in PoolName}
    failed_before = QUERIES_FAILED.labels("write")._value.get()
    counts = run_workload(duration=2.0, interval=0.2, seed=7)
    assert counts.rounds >= 2
    tasks = count_rows(owner_engine, "tasks", "metadata->>'simulated' = 'true'")
    validations = count_rows(owner_engine, "validation_results")
    errors = scalar(
        owner_engine,
        "SELECT sum(occurrence_count) FROM error_logs WHERE service_name = 'simulator'",
    )
    storm = one_row(
        owner_engine,
        "SELECT occurrence_count, escalating_since FROM error_logs"
        " WHERE error_code = 'QUEUE_BACKLOG'",
    )
    audited = count_rows(
        owner_engine, "audit_logs", "entity_type = 'tasks' AND username = 'system'"
    )
    assert tasks == counts.tasks_created > 0
    assert validations == counts.validations > 0
    assert errors == counts.errors_logged
    assert storm["occurrence_count"] >= 60 and storm["escalating_since"] is not None  # one group
    assert audited >= tasks  # written as the system user, through the audit trigger
    assert QUERIES_FAILED.labels("write")._value.get() - failed_before == counts.failed_statements
    for pool in PoolName:
        assert database.stats[pool].total > before[pool], pool


def test_simulate_command_runs_for_the_given_duration(pg_server, database):
    result = run_cli(["simulate", "--duration", "2", "--interval", "0.5"], pg_server)
    assert result.returncode == 0, result.stderr
    assert "Done:" in result.stdout and "tasks created" in result.stdout
