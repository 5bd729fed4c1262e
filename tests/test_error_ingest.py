"""Grouping errors in the database: repeats, concurrency, regression, ignored and duplicate
groups, and escalation with an injected clock."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.data.db import Database, PoolName
from taskmaster_dash.data.error_ingest import (
    ErrorEvent,
    Outcome,
    ingest_error,
    refresh_escalation,
    spike_limit,
)
from tests.support.events import DB_TIMEOUT
from tests.support.sql import count_rows, tuples

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
EVENT = replace(DB_TIMEOUT, context_data={"attempt": 1})


def post(database: Database, actor, event: ErrorEvent, at: datetime = NOW):
    with database.transaction(PoolName.WRITE, actor) as conn:
        return ingest_error(conn, replace(event, occurred_at=at))


def row(owner_engine, error_id: str):
    with owner_engine.connect() as conn:
        return conn.execute(text("SELECT * FROM error_logs WHERE id = :id"), {"id": error_id}).one()


def error_rows(owner_engine) -> int:
    with owner_engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM error_logs"))


@pytest.fixture
def on_call(database, users, clean_data):
    return users.actor("on_call")


def test_the_same_error_twice_is_one_row_with_the_newest_context(
    database, owner_engine, on_call
) -> None:
    first = post(database, on_call, EVENT)
    later = replace(
        EVENT,
        error_message="task 01234567-89ab-4cde-8f01-23456789abcd timed out after 31 s",
        stack_trace='File "app/store.py", line 19, in save_task',
        context_data={"attempt": 2},
        service_version="1.5.0",
    )
    second = post(database, on_call, later, NOW + timedelta(minutes=5))
    assert (first.outcome, second.outcome) == (Outcome.CREATED, Outcome.GROUPED)
    assert second.error_id == first.error_id and second.occurrence_count == 2
    assert error_rows(owner_engine) == 1
    group = row(owner_engine, first.error_id)
    assert group.occurrence_count == 2 and group.fingerprint == first.fingerprint
    assert group.first_occurred_at == NOW and group.last_occurred_at == NOW + timedelta(minutes=5)
    assert group.context_data == {"attempt": 2} and group.service_version == "1.5.0"
    # An older occurrence arriving late counts but does not replace the newest context.
    post(database, on_call, replace(EVENT, context_data={"attempt": 0}), NOW - timedelta(hours=2))
    group = row(owner_engine, first.error_id)
    assert group.occurrence_count == 3 and group.context_data == {"attempt": 2}
    assert group.first_occurred_at == NOW - timedelta(hours=2)
    hours = tuples(
        owner_engine, "SELECT bucket, occurrences FROM error_occurrence_hourly ORDER BY bucket"
    )
    versions = tuples(
        owner_engine,
        "SELECT service_version, occurrences FROM error_group_versions ORDER BY service_version",
    )
    audited = count_rows(owner_engine, "audit_logs", "entity_id = :id", id=first.error_id)
    assert hours == [
        (datetime(2026, 11, 20, 10, tzinfo=UTC), 1),
        (datetime(2026, 11, 20, 12, tzinfo=UTC), 2),
    ]
    assert versions == [("1.4.0", 2), ("1.5.0", 1)]
    assert audited == 1  # the creation; occurrences are not audit events


def test_fifty_concurrent_posts_of_a_new_error_make_one_row(pg_server, owner_engine, on_call):
    # Our own pool, large enough that all 50 transactions are open at once.
    database = Database(pg_server.app_url, pool_max=170, pool_min=0)
    barrier = threading.Barrier(50, timeout=60)
    results, failures = [], []

    def one() -> None:
        try:
            with database.transaction(PoolName.WRITE, on_call) as conn:
                barrier.wait()  # every connection is open and in its transaction
                results.append(ingest_error(conn, replace(EVENT, occurred_at=NOW)))
        except Exception as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.dispose()
    assert failures == []
    assert sorted(r.outcome for r in results).count(Outcome.CREATED) == 1
    assert len({r.error_id for r in results}) == 1
    assert error_rows(owner_engine) == 1
    assert row(owner_engine, results[0].error_id).occurrence_count == 50
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT sum(occurrences) FROM error_occurrence_hourly")) == 50


def set_status(owner_engine, error_id: str, status: str, **metadata: str) -> None:
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE error_logs SET resolution_status = :s, resolved_at = now(),"
                " metadata = metadata || CAST(:m AS jsonb) WHERE id = :id"
            ),
            {"s": status, "id": error_id, "m": __import__("json").dumps(metadata)},
        )


def test_a_resolved_error_that_comes_back_is_regressed_with_an_audit_entry(
    database, owner_engine, on_call
) -> None:
    first = post(database, on_call, EVENT)
    set_status(owner_engine, first.error_id, "resolved")
    again = post(database, on_call, EVENT, NOW + timedelta(hours=1))
    assert again.outcome == Outcome.REGRESSED and again.error_id == first.error_id
    group = row(owner_engine, first.error_id)
    assert group.resolution_status == "unresolved" and group.resolved_at is None
    assert group.regressed_at == NOW + timedelta(hours=1) and group.occurrence_count == 2
    with owner_engine.connect() as conn:
        entry = conn.execute(
            text(
                "SELECT action, username FROM audit_logs WHERE entity_id = :id"
                " AND action = 'regressed'"
            ),
            {"id": first.error_id},
        ).one()
    assert entry.username == "test-on-call"
    # It is open again: the next occurrence groups.
    assert post(database, on_call, EVENT, NOW + timedelta(hours=2)).outcome == Outcome.GROUPED
    assert error_rows(owner_engine) == 1


def test_wont_fix_keeps_counting_and_duplicate_counts_on_its_original(
    database, owner_engine, on_call
) -> None:
    ignored = post(database, on_call, EVENT)
    set_status(owner_engine, ignored.error_id, "wont_fix")
    again = post(database, on_call, EVENT)
    assert again.outcome == Outcome.GROUPED and again.resolution_status == "wont_fix"
    assert row(owner_engine, ignored.error_id).occurrence_count == 2

    other = replace(EVENT, error_code="DB_LOCK")
    original = post(database, on_call, other)
    copy = post(database, on_call, replace(other, error_code="DB_LOCK_WAIT"))
    set_status(owner_engine, copy.error_id, "duplicate", duplicate_of=original.error_id)
    counted = post(database, on_call, replace(other, error_code="DB_LOCK_WAIT"))
    assert counted.error_id == original.error_id and counted.occurrence_count == 2
    assert row(owner_engine, copy.error_id).occurrence_count == 1
    assert error_rows(owner_engine) == 3


def test_posting_needs_errors_write(database, users, clean_data) -> None:
    from sqlalchemy.exc import ProgrammingError

    with pytest.raises(ProgrammingError, match="row-level security"):
        post(database, users.actor("viewer"), EVENT)


def feed(database, actor, per_hour: list[int], start: datetime):
    """per_hour[i] occurrences in hour i after start; returns the last result."""
    last = None
    with database.transaction(PoolName.WRITE, actor) as conn:
        for i, n in enumerate(per_hour):
            for k in range(n):
                at = start + timedelta(hours=i, seconds=k)
                last = ingest_error(conn, replace(EVENT, occurred_at=at))
    return last


def test_a_spike_marks_escalating_and_a_flat_rate_does_not(database, owner_engine, on_call) -> None:
    start = NOW - timedelta(days=3)
    flat = feed(database, on_call, [12] * 72 + [12], start)
    assert flat is not None and not flat.escalating
    spike = feed(database, on_call, [60], start + timedelta(hours=73))
    assert spike is not None and spike.escalating
    assert row(owner_engine, spike.error_id).escalating_since is not None
    # Two quiet hours later it is judged again and stops escalating.
    with database.transaction(PoolName.WRITE, on_call) as conn:
        assert refresh_escalation(conn, start + timedelta(hours=75, minutes=5)) == 0
    assert row(owner_engine, spike.error_id).escalating_since is None


def test_spike_limit_rule() -> None:
    assert spike_limit([], 0) == 50  # a brand-new error: the young floor
    assert spike_limit([12] * 72, 72) == 24  # flat: twice the mean
    assert spike_limit([1] * 10, 168) == 10  # quiet: the floor
    noisy = spike_limit([10, 30] * 50, 100)
    assert noisy == pytest.approx(20 + 5 * 10)
