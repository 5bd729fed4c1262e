"""Benchmark: the original TaskMaster's views (sql/repeatable/original_views.sql) on a seeded
database: each read whole and filtered the way scripts use them (by a task id, by a status, a
LIMIT), as the owner and as an admin through the app role (RLS applies: security_invoker).

    .venv/bin/python bench/views.py [--scale small|medium|large] [--pgdata DIR]
    git show main:sql/repeatable/original_views.sql > /tmp/views-main.sql
    .venv/bin/python bench/views.py --pgdata DIR --views /tmp/views-main.sql   # "before"

Starts an embedded PostgreSQL (kept and reused with --pgdata), migrates, seeds `seed-demo
--scale S` if it has no tasks, ANALYZEs, applies the views file (the repository's unless
--views names another, so two definitions can be compared on the same rows; a kept --pgdata
keeps the last one applied) and prints the median time of each read: fetched into SQLAlchemy
rows as the owner, and streamed as COPY (the server's share) as the owner and as an admin.
Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, Engine, create_engine, text

from bench.common import add_database_arguments, app_services, bench_user, row_counts, seeded, timed
from taskmaster_dash.data.db import Database, PoolName
from taskmaster_dash.data.migrations import REPEATABLE_DIR, run_statements

# Each view's reads: a label and the query ({task_id}: an existing task's id, quoted).
READS = {
    "active_tasks": [
        ("whole", "SELECT * FROM active_tasks"),
        ("id = one task", "SELECT * FROM active_tasks WHERE id = {task_id}"),
        ("status = in_progress", "SELECT * FROM active_tasks WHERE status = 'in_progress'"),
        ("LIMIT 50", "SELECT * FROM active_tasks LIMIT 50"),
    ],
    "task_validation_status": [
        ("whole", "SELECT * FROM task_validation_status"),
        ("task_id = one task", "SELECT * FROM task_validation_status WHERE task_id = {task_id}"),
        (
            "task_status = failed",
            "SELECT * FROM task_validation_status WHERE task_status = 'failed'",
        ),
        ("LIMIT 50", "SELECT * FROM task_validation_status LIMIT 50"),
    ],
    "task_summary": [
        ("whole", "SELECT * FROM task_summary"),
        ("status = pending", "SELECT * FROM task_summary WHERE status = 'pending'"),
    ],
    "validation_summary": [
        ("whole", "SELECT * FROM validation_summary"),
        (
            "type = testing",
            "SELECT * FROM validation_summary WHERE validation_type = 'testing'",
        ),
    ],
    "error_summary": [
        ("whole", "SELECT * FROM error_summary"),
        ("severity = critical", "SELECT * FROM error_summary WHERE error_severity = 'critical'"),
    ],
    "recent_activity": [("whole", "SELECT * FROM recent_activity")],
    "recent_errors": [("whole", "SELECT * FROM recent_errors")],
}


def fetch_all(conn: Connection, sql: str) -> list:
    """The query's rows, fetched into SQLAlchemy rows."""
    return list(conn.execute(text(sql)).all())


def copy_out(conn: Connection, sql: str) -> None:
    """Stream the query's rows as COPY text and drop them: what the query costs the server,
    without the client building a Python object per value (which a 1M-row read is mostly)."""
    driver = conn.connection.driver_connection
    assert driver is not None  # a checked-out connection always has one
    cursor = driver.cursor()
    with cursor, cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
        for _ in copy:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser, "medium")
    parser.add_argument(
        "--views",
        type=Path,
        default=REPEATABLE_DIR / "original_views.sql",
        help="views file to apply before timing (default: the repository's)",
    )
    parser.add_argument("--reps", type=int, default=3, help="timed runs per read (median)")
    parser.add_argument("--only", help="comma-separated view names: time only these")
    args = parser.parse_args()

    with seeded(args) as (owner_url, app_url):
        owner = create_engine(owner_url)
        with owner.begin() as conn:
            conn.execute(text("ANALYZE"))
            run_statements(conn, args.views.name, args.views.read_text(encoding="utf-8"))
            sizes = row_counts(conn, ("tasks", "task_contexts", "validation_results", "error_logs"))
            task_id = conn.scalar(
                text("SELECT id FROM tasks WHERE status = 'in_progress' ORDER BY id LIMIT 1")
            )
        print(f"Views from {args.views}; rows: {sizes}")

        with app_services(app_url, pool_max=2) as database:
            time_reads(owner, database, args, task_id)
        owner.dispose()


def time_reads(owner: Engine, database: Database, args: argparse.Namespace, task_id: str) -> None:
    """Each wanted view's reads: fetched and as COPY as the owner, as COPY as an admin."""
    admin = bench_user("admin", "bench-views-admin")
    wanted = set(args.only.split(",")) if args.only else set(READS)
    print(
        f"{'view':<24}{'read':<22}{'rows':>9}{'owner, rows':>15}{'owner, COPY':>15}"
        f"{'admin, COPY':>15}  (median ms; admin: app role, RLS)"
    )
    with owner.connect() as conn:
        for view, reads in READS.items():
            if view not in wanted:
                continue
            for label, template in reads:
                sql = template.format(task_id=f"'{task_id}'")
                rows = len(fetch_all(conn, sql))
                fetch, _ = timed(partial(fetch_all, conn, sql), args.reps)
                copy, _ = timed(partial(copy_out, conn, sql), args.reps)
                with database.transaction(PoolName.READ, admin) as as_admin:
                    rls, _ = timed(partial(copy_out, as_admin, sql), args.reps)
                print(
                    f"{view:<24}{label:<22}{rows:>9,}{fetch:>15.1f}{copy:>15.1f}{rls:>15.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
