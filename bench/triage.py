"""Benchmark of the error triage list: p50/p95 of its page and count queries, the detail and
the service list, on whatever data the configured (or embedded) database holds.

    TASKMASTER_DATA_DIR=/tmp/bench .venv/bin/python bench/triage.py [--seed medium] [--repeat 30]

With --seed, an empty database is first loaded with `seed-demo` data of that scale
(medium = 500k errors, large = 5M). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, PoolName
from taskmaster_dash.data.errors.detail import error_detail
from taskmaster_dash.data.errors.filters import ErrorFilter
from taskmaster_dash.data.errors.listing import count_errors, error_page, service_names
from taskmaster_dash.data.runtime import open_database
from taskmaster_dash.data.seed import SCALES, database_has_tasks, seed_demo_data
from taskmaster_dash.data.tasks import task_detail
from taskmaster_dash.pages._timerange import parse_query
from taskmaster_dash.services import Services, install


def timed(repeat: int, work: Callable[[], object]) -> tuple[float, float, object]:
    result = work()  # warm-up (plans, caches), not counted
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, result


def triage_filter(**query: str) -> ErrorFilter:
    """The list's filter for /errors?<query>, as the page builds it."""
    return parse_query(query, "errors").error_filter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", choices=sorted(SCALES), help="load demo data if empty")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    opened = open_database(load_settings())
    try:
        if args.seed and not database_has_tasks(opened.owner_url):
            print(f"Loading demo data ({args.seed})...", flush=True)
            seed_demo_data(opened.owner_url, SCALES[args.seed])
        db = opened.database
        install(Services.build(load_settings(), db))
        with db.transaction(PoolName.READ, SYSTEM_ACTOR) as conn:
            total = conn.scalar(text("SELECT count(*) FROM error_logs"))
            some_id = conn.scalar(
                text("SELECT id::text FROM error_logs ORDER BY last_occurred_at DESC LIMIT 1")
            )
            some_task = conn.scalar(
                text(
                    "SELECT task_id::text FROM error_logs WHERE task_id IS NOT NULL "
                    "ORDER BY last_occurred_at DESC LIMIT 1"
                )
            )
        print(f"error_logs rows: {total:,}; {args.repeat} runs each after one warm-up\n")
        open_default = ErrorFilter()  # every open error, any time
        narrow = triage_filter(severity="critical,high", environment="production", range="24h")
        search = triage_filter(status="any", q="deadlock", range="30d")
        rare = triage_filter(status="any", q="req_4242", range="30d")  # nowhere in the data
        resolved_week = triage_filter(status="resolved", range="7d")
        by_count = [{"colId": "occurrence_count", "sort": "desc"}]
        by_severity = [{"colId": "error_severity", "sort": "desc"}]
        regressed = triage_filter(regressed="yes", range="30d")
        escalating_first = [{"colId": "escalating_since", "sort": "desc"}]
        cases: list[tuple[str, Callable[[], object]]] = [
            (
                "page 1, open, newest first",
                lambda: error_page(SYSTEM_ACTOR, open_default, [], 0, 100),
            ),
            (
                "page 101 (offset 10,000), open",
                lambda: error_page(SYSTEM_ACTOR, open_default, [], 10_000, 10_100),
            ),
            ("count, open (capped at 10,000)", lambda: count_errors(SYSTEM_ACTOR, open_default)),
            (
                "page 1, open, most occurrences first",
                lambda: error_page(SYSTEM_ACTOR, open_default, by_count, 0, 100),
            ),
            (
                "page 1, critical+high, production, 24h",
                lambda: error_page(SYSTEM_ACTOR, narrow, [], 0, 100),
            ),
            ("count, critical+high, production, 24h", lambda: count_errors(SYSTEM_ACTOR, narrow)),
            (
                "page 1, search 'deadlock', any status",
                lambda: error_page(SYSTEM_ACTOR, search, [], 0, 100),
            ),
            ("count, search 'deadlock', any status", lambda: count_errors(SYSTEM_ACTOR, search)),
            ("page 1, search with no match", lambda: error_page(SYSTEM_ACTOR, rare, [], 0, 100)),
            ("count, search with no match", lambda: count_errors(SYSTEM_ACTOR, rare)),
            (
                "page 1, resolved in 7d, by severity",
                lambda: error_page(SYSTEM_ACTOR, resolved_week, by_severity, 0, 100),
            ),
            ("count, resolved in 7d", lambda: count_errors(SYSTEM_ACTOR, resolved_week)),
            (
                "page 1, open, 7-day sparklines",
                lambda: error_page(SYSTEM_ACTOR, open_default, [], 0, 100, 7 * 24),
            ),
            ("page 1, regressed, 30d", lambda: error_page(SYSTEM_ACTOR, regressed, [], 0, 100)),
            (
                "count, regressed (the Overview's note)",
                lambda: count_errors(SYSTEM_ACTOR, ErrorFilter(regressed=True)),
            ),
            (
                "page 1, open, escalating first",
                lambda: error_page(SYSTEM_ACTOR, open_default, escalating_first, 0, 100),
            ),
            ("detail of one error", lambda: error_detail(SYSTEM_ACTOR, some_id)),
            ("its task's page (/tasks/<id>)", lambda: task_detail(SYSTEM_ACTOR, some_task or "")),
            ("service names (filter options)", lambda: service_names(SYSTEM_ACTOR)),
        ]
        print(f"{'query':<42} {'p50 ms':>9} {'p95 ms':>9}  result")
        for label, work in cases:
            p50, p95, result = timed(args.repeat, work)
            shown = (
                f"{len(result)} rows"
                if isinstance(result, list)
                else f"{result[0]:,}{'+' if result[1] else ''}"
                if isinstance(result, tuple)
                else type(result).__name__
            )
            print(f"{label:<42} {p50:>9.1f} {p95:>9.1f}  {shown}", flush=True)
    finally:
        opened.close()


if __name__ == "__main__":
    main()
