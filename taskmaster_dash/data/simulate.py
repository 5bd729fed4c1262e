"""A steady, realistic workload through the four pools, so the dashboard's charts move.

Each round (about every `interval` seconds) the system user: creates a few tasks and moves
others along (write pool), records validation runs (write), logs the occasional error (write,
through the grouping ingest: repeats group, a "fixed" group regresses, a storm escalates),
reads the backlog (read), aggregates scores (analytics) and counts tasks (background). A few
statements fail on purpose (a value the schema refuses), so the failure rates are not flat;
about once a minute a burst of parallel reads fills the read pool for a moment.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.data.db import SYSTEM_ACTOR, Counters, Database, PoolName, get_database
from taskmaster_dash.data.error_ingest import ErrorEvent, ingest_error, refresh_escalation

VALIDATION_TYPES = ("syntax", "security", "performance", "style", "testing", "integration")
# (code, category, severity, message with {n} for a varying id, the function that raises it)
ERRORS = (
    ("DB_TIMEOUT", "database", "high", "query {n} timed out after 30 s", "run_query"),
    ("NET_RESET", "network", "medium", "connection {n} reset by peer", "fetch"),
    ("AUTH_DENIED", "authentication", "low", "invalid API key for client {n}", "check_key"),
    ("VAL_CRASH", "validation", "critical", "validator {n} exited with code 137", "run_validator"),
    ("CFG_MISSING", "configuration", "info", "optional setting not set, using default", "load"),
)
# The one that storms: a burst of occurrences in one round, far above its usual rate.
STORM = ("QUEUE_BACKLOG", "system", "high", "job queue {n} is backed up", "enqueue")
STORM_SIZE = 60  # above the young floor (error_ingest.YOUNG_FLOOR): it escalates
STORM_FIRST_ROUND = 5  # the demo shows an escalating error soon after it starts
REGRESS_EVERY = 40  # rounds between "fixing" an error, which then comes back (regressed)


@dataclass
class WorkloadCounts(Counters):
    rounds: int = 0
    tasks_created: int = 0
    validations: int = 0
    errors_logged: int = 0
    failed_statements: int = 0
    bursts: int = 0


def _write_round(database: Database, rng: random.Random, counts: WorkloadCounts) -> None:
    with database.transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
        created = rng.randint(1, 3)
        for _ in range(created):
            conn.execute(
                text(
                    "INSERT INTO tasks (title, type, priority, complexity_score, metadata) "
                    "VALUES (:title, :type, :priority, :complexity, '{\"simulated\": true}')"
                ),
                {
                    "title": f"Simulated task {rng.randint(1000, 99999)}",
                    "type": rng.choice(["feature", "bug", "refactor", "general"]),
                    "priority": rng.randint(0, 10),
                    "complexity": rng.randint(1, 10),
                },
            )
        conn.execute(
            text(
                "UPDATE tasks SET status = 'in_progress' WHERE id IN (SELECT id FROM tasks "
                "WHERE status = 'pending' ORDER BY created_at LIMIT :n)"
            ),
            {"n": rng.randint(0, 2)},
        )
        conn.execute(
            text(
                "UPDATE tasks SET status = CASE WHEN random() < 0.9 THEN 'completed' "
                "ELSE 'failed' END, completed_at = now() WHERE id IN (SELECT id FROM tasks "
                "WHERE status = 'in_progress' ORDER BY updated_at LIMIT :n)"
            ),
            {"n": rng.randint(0, 3)},
        )
        runs = rng.randint(1, 4)
        for _ in range(runs):
            status = rng.choices(["passed", "failed", "warning"], weights=[7, 2, 1])[0]
            conn.execute(
                text(
                    "INSERT INTO validation_results (task_id, validation_type, "
                    "validation_status, validation_score, execution_time_ms, completed_at) "
                    "SELECT id, :type, :status, :score, :ms, now() FROM tasks "
                    "ORDER BY created_at DESC LIMIT 1"
                ),
                {
                    "type": rng.choice(VALIDATION_TYPES),
                    "status": status,
                    "score": rng.uniform(70, 100) if status == "passed" else rng.uniform(10, 70),
                    "ms": rng.randint(50, 20_000),
                },
            )
        logged = _error_round(conn, rng, counts)
    counts.add(tasks_created=created, validations=runs, errors_logged=logged)


def _event(rng: random.Random, spec: tuple[str, str, str, str, str]) -> ErrorEvent:
    code, category, severity, message, function = spec
    # Line numbers and ids vary between occurrences; the group does not.
    trace = (
        "Traceback (most recent call last):\n"
        f'  File "/srv/simulator/worker.py", line {rng.randint(10, 400)}, in handle\n'
        f'  File "/srv/simulator/steps.py", line {rng.randint(10, 400)}, in {function}\n'
        f"{code.title().replace('_', '')}Error"
    )
    return ErrorEvent(
        error_code=code,
        error_category=category,
        error_severity=severity,
        error_message=message.format(n=rng.randint(1000, 99999)),
        service_name="simulator",
        service_version=f"1.{rng.randint(0, 2)}.0",
        environment="production",
        stack_trace=trace,
        context_data={"round_id": rng.randint(1, 1_000_000)},
    )


def _error_round(conn: Connection, rng: random.Random, counts: WorkloadCounts) -> int:
    """Errors through the ingest (grouped by fingerprint, as the API posts them): usually one
    occasional error; now and then a fix (a group resolved) that later regresses; and rarely a
    storm of one error, which marks it escalating. Returns the occurrences posted."""
    posted = 0
    if rng.random() < 0.4:
        ingest_error(conn, _event(rng, rng.choice(ERRORS)))
        posted += 1
    if counts.rounds % REGRESS_EVERY == REGRESS_EVERY - 1:
        code = rng.choice(ERRORS)[0]
        conn.execute(
            text(
                "UPDATE error_logs SET resolution_status = 'resolved', resolved_at = now(),"
                " resolved_by = 'system', resolution_notes = 'Fixed (simulated)'"
                " WHERE service_name = 'simulator' AND error_code = :code"
                " AND resolution_status IN ('unresolved', 'investigating')"
            ),
            {"code": code},
        )
    if counts.rounds == STORM_FIRST_ROUND or rng.random() < 0.01:
        for _ in range(STORM_SIZE):
            ingest_error(conn, _event(rng, STORM))
        posted += STORM_SIZE
    return posted


def _failing_statement(database: Database, counts: WorkloadCounts) -> None:
    """A statement the schema refuses (as a buggy client would send): a failed query."""
    try:
        with database.transaction(PoolName.WRITE, SYSTEM_ACTOR) as conn:
            conn.execute(text("INSERT INTO tasks (title, status) VALUES ('bad', 'unknown')"))
    except SQLAlchemyError:
        counts.add(failed_statements=1)


def _read_round(database: Database, hold_seconds: float = 0.0) -> None:
    with database.transaction(PoolName.READ, SYSTEM_ACTOR) as conn:
        conn.execute(
            text(
                "SELECT status, count(*) FROM tasks WHERE status IN ('pending', 'in_progress') "
                "GROUP BY status"
            )
        ).all()
        if hold_seconds:
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": hold_seconds})


def _analytics_round(database: Database) -> None:
    database.fetch_rows(
        PoolName.ANALYTICS,
        SYSTEM_ACTOR,
        """SELECT validation_type, avg(validation_score) AS score, count(*) AS runs
           FROM validation_results WHERE created_at >= now() - interval '1 day'
           GROUP BY validation_type""",
    )


def _background_round(database: Database) -> None:
    database.fetch_rows(
        PoolName.BACKGROUND,
        SYSTEM_ACTOR,
        "SELECT count(*) AS unresolved FROM error_logs WHERE resolution_status = 'unresolved'",
    )
    with database.transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as conn:
        refresh_escalation(conn, datetime.now(UTC))  # a storm that ended stops escalating


def run_workload(
    *,
    duration: float | None = None,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    seed: int | None = None,
    report: Callable[[WorkloadCounts], None] | None = None,
) -> WorkloadCounts:
    """Run rounds until `duration` seconds have passed (None: until `stop` is set), on the
    current services' database."""
    database = get_database()
    rng = random.Random(seed)
    stop = stop or threading.Event()
    counts = WorkloadCounts()
    deadline = None if duration is None else time.monotonic() + duration
    next_burst = time.monotonic() + rng.uniform(20, 60)
    read_size = database.specs[PoolName.READ].max_size
    with ThreadPoolExecutor(max_workers=read_size, thread_name_prefix="simulate") as burst_pool:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            started = time.monotonic()
            try:
                _write_round(database, rng, counts)
                for _ in range(rng.randint(2, 6)):
                    _read_round(database)
                _analytics_round(database)
                _background_round(database)
                if rng.random() < 0.25:
                    _failing_statement(database, counts)
                if started >= next_burst:
                    # Most of the read pool busy for a couple of seconds: utilisation jumps.
                    for _ in range(max(1, read_size - 1)):
                        burst_pool.submit(_read_round, database, rng.uniform(1.0, 3.0))
                    counts.add(bursts=1)
                    next_burst = started + rng.uniform(30, 90)
            except SQLAlchemyError:
                counts.add(failed_statements=1)  # e.g. the database restarting: keep going
            counts.add(rounds=1)
            if report:
                report(counts)
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return counts
