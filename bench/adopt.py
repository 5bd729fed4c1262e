"""Benchmark: adopting an original TaskMaster database (`taskmaster-dash migrate` on the shape
its three migrations build) at demo scale: how long --plan and the migration take, how long
the tables stay locked (the adoption is one transaction, so that is its whole duration), and
how long the original's views take afterwards (as the owner, all rows).

    .venv/bin/python bench/adopt.py [--scale small|medium|large]

Starts a throwaway embedded PostgreSQL, builds the original schema, fills it in SQL (tasks,
validation runs, errors, audit rows naming users), then migrates. Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from taskmaster_dash.data.embedded import start_embedded
from taskmaster_dash.data.migrations import plan_migrations
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.seed import SCALES
from tests.original_taskmaster import build_original, fill_original

BULK = """
INSERT INTO tasks (title, status, priority, complexity_score, assigned_to, estimated_hours,
                   created_at)
SELECT 'Bulk task ' || i,
       (ARRAY['pending', 'in_progress', 'completed', 'failed', 'cancelled'])[i % 5 + 1],
       i % 11, i % 10 + 1, (ARRAY['alice', 'bob', NULL])[i % 3 + 1], (i % 9) * 0.5,
       now() - make_interval(mins => i % 40000)
FROM generate_series(1, :tasks) i;
INSERT INTO validation_results (task_id, validation_type, validation_status, validation_score,
                                execution_time_ms, completed_at)
SELECT id, 'testing', (ARRAY['passed', 'failed', 'warning'])[n], 50 + n, 100 * n, created_at
FROM tasks, generate_series(1, 3) n;
INSERT INTO error_logs (task_id, error_code, error_category, error_severity, error_message,
                        first_occurred_at, last_occurred_at, service_name)
SELECT t.id, 'E' || n, 'system', (ARRAY['critical', 'high', 'medium', 'low', 'info'])[n],
       'bulk error', t.created_at, t.created_at, 'api'
FROM tasks t, generate_series(1, :errors_per_task) n;
INSERT INTO audit_logs (entity_type, entity_id, action, user_id)
SELECT 'task', id, 'update', (ARRAY['alice', 'bob'])[(random() * 1)::int + 1]
FROM tasks TABLESAMPLE SYSTEM (20);
"""


VIEWS = (
    "active_tasks",
    "task_summary",
    "recent_activity",
    "validation_summary",
    "error_summary",
    "task_validation_status",
    "recent_errors",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    tasks = scale.tasks
    errors_per_task = max(1, scale.errors // scale.tasks)
    with tempfile.TemporaryDirectory(prefix="tmdash-bench-adopt-") as tmp:
        embedded = start_embedded(Path(tmp) / "pgdata", delete_on_stop=True)
        try:
            build_original(embedded.owner_url)
            fill_original(embedded.owner_url, relax="trigger")  # bulk rows without audit rows
            engine = create_engine(embedded.owner_url)
            started = time.perf_counter()
            with engine.begin() as conn:
                for statement in BULK.split(";\n"):
                    if statement.strip():
                        conn.execute(
                            text(statement),
                            {"tasks": tasks, "errors_per_task": errors_per_task},
                        )
                conn.execute(text("ANALYZE"))
                sizes = {
                    t: conn.scalar(text(f"SELECT count(*) FROM {t}"))
                    for t in ("tasks", "validation_results", "error_logs", "audit_logs")
                }
            print(f"Original database filled in {time.perf_counter() - started:.1f} s: {sizes}")
            started = time.perf_counter()
            plan = plan_migrations(engine)
            print(
                f"migrate --plan: {time.perf_counter() - started:.2f} s "
                f"({len(plan.steps)} steps, {len(plan.problems)} refusals)"
            )
            started = time.perf_counter()
            applied = migrate(embedded.owner_url, embedded.app_url, adopt=True)
            took = time.perf_counter() - started
            print(
                f"migrate (adoption, one transaction): {took:.1f} s, {len(applied)} files; "
                f"every table locked for those {took:.1f} s"
            )
            started = time.perf_counter()
            migrate(embedded.owner_url, embedded.app_url, adopt=True)
            print(f"second migrate (no-op): {time.perf_counter() - started:.2f} s")
            with engine.connect() as conn:
                for view in VIEWS:
                    started = time.perf_counter()
                    conn.execute(text(f"SELECT * FROM {view}")).all()
                    print(
                        f"  SELECT * FROM {view}: {(time.perf_counter() - started) * 1000:.0f} ms"
                    )
            engine.dispose()
        finally:
            embedded.stop()


if __name__ == "__main__":
    main()
