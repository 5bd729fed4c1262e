"""group-errors on seeded rows: one group per fingerprint, nothing lost, and an interrupted run
finished later gives the same result as one run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.data.db import PoolName
from taskmaster_dash.data.error_grouping import group_batch, group_errors
from taskmaster_dash.data.error_ingest import ErrorEvent, ingest_error
from taskmaster_dash.data.seed import SEED_DIR, _statements
from tests.support.sql import tuples
from tests.test_adopt import original_db  # noqa: F401 (fixture)

SEEDED = 700
OLD = datetime(2026, 1, 5, 8, tzinfo=UTC)


def seed_rows(owner_engine, database, actor) -> None:
    with owner_engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in _statements(SEED_DIR / "04_errors.sql"):
            conn.execute(statement, {"lo": 1, "hi": SEEDED, "n_tasks": 100, "days": 3})
    # A group made by ingest (resolved long ago) and a legacy row naming the same client
    # fingerprint, open and newer: the legacy row becomes the group, the ingested one folds in.
    event = ErrorEvent("PAY_DECLINED", "integration", "medium", "card declined", fingerprint="pay")
    with database.transaction(PoolName.WRITE, actor) as conn:
        for minutes in (0, 1, 2):
            ingest_error(conn, replace(event, occurred_at=OLD + timedelta(minutes=minutes)))
        conn.execute(text("UPDATE error_logs SET resolution_status = 'resolved'"))
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO error_logs (error_code, error_category, error_severity, error_message,"
                " occurrence_count, first_occurred_at, last_occurred_at, metadata)"
                " VALUES ('PAY_DECLINED', 'integration', 'medium', 'declined 4', 4,"
                " now() - interval '1 hour', now(), '{\"fingerprint\": \"pay\"}')"
            )
        )


def totals(conn) -> tuple:
    return conn.execute(
        text(
            "SELECT count(*), sum(occurrence_count), min(first_occurred_at), max(last_occurred_at),"
            " count(DISTINCT (error_code, environment)) FROM error_logs"
        )
    ).one()


def state(owner_engine) -> tuple:
    groups = tuples(
        owner_engine,
        "SELECT id, fingerprint, resolution_status, occurrence_count, first_occurred_at,"
        " last_occurred_at, context_data FROM error_logs ORDER BY id",
    )
    folds = tuples(
        owner_engine, "SELECT folded_id, error_id, folded_row FROM error_group_folds ORDER BY 1"
    )
    hours = tuples(owner_engine, "SELECT * FROM error_occurrence_hourly ORDER BY error_id, bucket")
    versions = tuples(
        owner_engine,
        "SELECT error_id, service_name, service_version, occurrences FROM"
        " error_group_versions ORDER BY 1, 2, 3",
    )
    return groups, folds, hours, versions


@pytest.fixture
def seeded(database, owner_engine, users, clean_data):
    seed_rows(owner_engine, database, users.actor("on_call"))
    with owner_engine.connect() as conn:
        before = totals(conn)
    return before


def test_folding_keeps_every_count_and_row(owner_engine, seeded) -> None:
    rows_before, count_before, first_before, last_before, kinds = seeded
    report = group_errors(owner_engine, batch=97)
    with owner_engine.connect() as conn:
        rows_after, count_after, first_after, last_after, _ = totals(conn)
        assert (count_after, first_after, last_after) == (count_before, first_before, last_before)
        assert conn.scalar(text("SELECT count(*) FROM error_logs WHERE fingerprint IS NULL")) == 0
        # One group per fingerprint: per code and environment (the seed's line numbers and
        # versions vary, its messages and functions do not).
        assert conn.scalar(text("SELECT count(DISTINCT fingerprint) FROM error_logs")) == rows_after
        assert rows_after == kinds < rows_before
        folded = conn.scalar(text("SELECT count(*) FROM error_group_folds"))
        assert folded == rows_before - rows_after == report.rows_folded
        assert (
            conn.scalar(text("SELECT sum(occurrences) FROM error_occurrence_hourly")) == count_after
        )
        assert conn.scalar(text("SELECT sum(occurrences) FROM error_group_versions")) == count_after
        pay = conn.execute(text("SELECT * FROM error_logs WHERE error_code = 'PAY_DECLINED'")).one()
        assert pay.occurrence_count == 7 and pay.resolution_status == "unresolved"
        assert pay.first_occurred_at == OLD
        # The folded rows are kept whole in the group's history.
        kept = conn.execute(
            text(
                "SELECT folded_row->>'resolution_status' AS status, folded_row->>'occurrence_count'"
                " AS n FROM error_group_folds WHERE error_id = :id"
            ),
            {"id": pay.id},
        ).one()
        assert (kept.status, kept.n) == ("resolved", "3")
    assert group_errors(owner_engine).rows_seen == 0  # nothing left: a rerun changes nothing


def test_an_interrupted_run_finished_later_equals_one_run(owner_engine, seeded) -> None:
    with owner_engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS grouping_snapshot"))
        conn.execute(text("CREATE TABLE grouping_snapshot AS SELECT * FROM error_logs"))
        conn.execute(text("CREATE TABLE grouping_hours AS SELECT * FROM error_occurrence_hourly"))
        conn.execute(text("CREATE TABLE grouping_versions AS SELECT * FROM error_group_versions"))
    try:
        group_errors(owner_engine, batch=101, max_batches=2)
        with pytest.raises(KeyboardInterrupt), owner_engine.begin() as conn:  # killed mid-batch
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            group_batch(conn, 101)
            raise KeyboardInterrupt
        group_errors(owner_engine, batch=101)
        interrupted = state(owner_engine)

        with owner_engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                text(
                    "TRUNCATE error_logs, error_group_folds, error_occurrence_hourly,"
                    " error_group_versions"
                )
            )
            conn.execute(text("INSERT INTO error_logs SELECT * FROM grouping_snapshot"))
            conn.execute(text("INSERT INTO error_occurrence_hourly SELECT * FROM grouping_hours"))
            conn.execute(text("INSERT INTO error_group_versions SELECT * FROM grouping_versions"))
        group_errors(owner_engine, batch=101)
        once = state(owner_engine)
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("DROP TABLE grouping_snapshot, grouping_hours, grouping_versions"))
    assert interrupted[0] == once[0]
    assert [f[:2] for f in interrupted[1]] == [f[:2] for f in once[1]]
    assert interrupted[2:] == once[2:]


def test_an_adopted_original_database_groups_its_errors(original_db) -> None:  # noqa: F811
    from sqlalchemy import create_engine

    from taskmaster_dash.data.runtime import migrate

    server = original_db()
    migrate(server.owner_url, server.app_url, adopt=True)
    engine = create_engine(server.owner_url)
    try:
        with engine.connect() as conn:
            rows, count_before, first, last, _ = totals(conn)
        assert rows > 0
        group_errors(engine, batch=3)
        with engine.connect() as conn:
            after, count_after, first_after, last_after, _ = totals(conn)
            folded = conn.scalar(text("SELECT count(*) FROM error_group_folds"))
            ungrouped = conn.scalar(
                text("SELECT count(*) FROM error_logs WHERE fingerprint IS NULL")
            )
    finally:
        engine.dispose()
    assert (count_after, first_after, last_after) == (count_before, first, last)
    assert ungrouped == 0 and after + folded == rows
