"""Analytics benchmark: how fast each panel is at real size (not a test; prints figures).

    .venv/bin/python bench/analytics.py                      # throwaway embedded PG, large seed
    .venv/bin/python bench/analytics.py --scale medium
    .venv/bin/python bench/analytics.py --pgdata /tmp/bench-pg  # keep (and reuse) the data
    BENCH_DATABASE_URL=postgresql://owner@host/db .venv/bin/python bench/analytics.py

Steps: migrate, seed `seed-demo --scale S` if the database has no tasks, ANALYZE, rebuild the
rollups (timed), then for every panel: the data function as an admin (rollup path) and, for
comparison, the same figure from the raw rows (what a hand-written Grafana GROUP BY reads),
the task panels as two developers (one with no tasks of their own, and `alice`, a seeded
assignee: the rollup rows of their own and unassigned tasks), every page's panel callbacks over
HTTP through a signed-in Flask client, and the whole Overview (all its callbacks, one after
another).
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, Row, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

import taskmaster_dash.data.analytics as analytics
from bench.common import (
    PASSWORD,
    app_services,
    bench_parser,
    bench_user,
    row,
    row_counts,
    seeded,
    timed,
)
from taskmaster_dash.data.db import Actor, Database

RANGES = ("1h", "24h", "7d", "30d")
ROLLUP_TABLES = (
    "analytics_task_hourly",
    "analytics_open_tasks",
    "analytics_error_5m",
    "analytics_error_hourly",
    "analytics_validation_hourly",
    "analytics_validation_hist_hourly",
    "analytics_validation_daily",
    "analytics_validation_hist_daily",
)


def _all_rows(conn: Connection, sql: str) -> list[Row]:
    return list(conn.execute(text(sql)).all())


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], "large", reps=20)
    parser.add_argument("--raw-reps", type=int, default=1, help="0: skip the raw-rows figures")
    parser.add_argument(
        "--panels", help="comma-separated panel ids: time only these data functions"
    )
    parser.add_argument("--overview-only", action="store_true", help="time only the Overview")
    parser.add_argument(
        "--no-rebuild", action="store_true", help="refresh the rollups instead of rebuilding"
    )
    args = parser.parse_args()

    with seeded(args) as (owner_url, app_url), app_services(app_url, pool_max=20) as database:
        owner = create_engine(owner_url)
        with owner.connect() as conn:
            print("Rows: " + row_counts(conn), flush=True)
        if not args.no_rebuild:
            started = time.perf_counter()
            analytics.refresh_rollups(None)
            print(f"Full rollup rebuild: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        analytics.refresh_rollups(3)
        print(f"Incremental refresh (last 3 h): {time.perf_counter() - started:.2f} s")
        with owner.connect() as conn:
            for table in ROLLUP_TABLES:
                print(f"  {table}: {conn.scalar(text(f'SELECT count(*) FROM {table}')):,} rows")
            conn.execute(text("ANALYZE"))
            conn.commit()

        app_for(database)
        admin = bench_user("admin")
        # no tasks of their own (only the unassigned ones), and a seeded assignee
        developers = [bench_user("developer"), bench_user("developer", "alice")]
        if not args.overview_only:
            bench_functions(admin, developers, args)
        if not args.panels:
            bench_http(database, args)
        if args.raw_reps and not (args.overview_only or args.panels):
            bench_grafana(owner, args)


def all_panels() -> dict:
    """The panels of each page (the app imported the page modules when it was built)."""
    from taskmaster_dash.pages._panels import PAGE_PANELS

    return PAGE_PANELS


_APP = None


def app_for(database: Database):
    global _APP
    if _APP is None:
        from taskmaster_dash.app import create_app

        _APP = create_app(database, secret_key="bench-" + os.urandom(8).hex(), environment="bench")
    return _APP


def bench_functions(admin: Actor, developers: list[Actor], args) -> None:
    from taskmaster_dash.pages._timerange import parse_query

    panels = all_panels()
    print("\nPanel data functions, admin (rollups + raw rows after them) vs raw rows only:")
    wanted = set(args.panels.split(",")) if args.panels else None
    for page in ("tasks", "validations", "errors"):
        for panel in panels[page]:
            if wanted and panel.id not in wanted:
                continue
            for range_ in RANGES:
                view = parse_query({"range": range_}, page)
                analytics.USE_ROLLUPS = True
                p50, p95 = timed(partial(panel.fetch, admin, view), args.reps)
                if not args.raw_reps:
                    row(f"{panel.id} [{range_}]", p50, p95)
                    continue
                analytics.USE_ROLLUPS = False
                try:
                    raw = timed(partial(panel.fetch, admin, view), args.raw_reps, False)
                    raw_text = f"   raw p50 {raw[0]:9.1f} ms"
                except SQLAlchemyError:
                    raw_text = "   raw: cancelled at the 30 s statement timeout"
                analytics.USE_ROLLUPS = True
                row(f"{panel.id} [{range_}]", p50, p95, raw_text)
    for developer in developers:
        print(
            f"\nTask panels as developer {developer.username!r} (rollup rows of their own and"
            " unassigned tasks):"
        )
        for panel in panels["tasks"]:
            for range_ in ("24h", "7d", "30d"):
                view = parse_query({"range": range_}, "tasks")
                p50, p95 = timed(partial(panel.fetch, developer, view), args.reps)
                row(f"{panel.id} [{range_}]", p50, p95)


def section_of(app, output: str) -> str:
    """The panels a draw callback answers for, named by its first panel (and how many)."""
    key = next(key for key in app.callback_map if output in key.strip(".").split("..."))
    figures = [part.split(".")[0] for part in key.strip(".").split("...") if "-msg." not in part]
    first = figures[0].removesuffix("-graph").removesuffix("-table")
    return first if len(figures) == 1 else f"{first} and {len(figures) - 1} more"


def bench_http(database: Database, args) -> None:
    from tests.support.auth import sign_in
    from tests.support.callbacks import call_callback

    app = app_for(database)
    client = app.server.test_client()
    assert sign_in(client, "bench-admin", PASSWORD).status_code == 302
    panels = all_panels()

    def call(target: str, inputs: list, state=None):
        response = call_callback(client, app, target, inputs, state)
        assert response.status_code == 200, response.get_data(as_text=True)[:200]

    def target(panel) -> str:
        return f"{panel.id}-graph.figure" if panel.figure else f"{panel.id}-table.children"

    print("\nPanel callbacks over HTTP (signed-in admin, range 24h and 7d):")
    for page, page_panels in panels.items():
        if args.overview_only and page != "overview":
            continue
        for range_ in ("24h", "7d"):
            view = {"range": range_, "page": page}
            # one callback draws a whole page section (pages/_panels.py): time each once
            callbacks = {section_of(app, target(panel)): panel for panel in page_panels}
            for section, panel in callbacks.items():
                p50, p95 = timed(partial(call, target(panel), [view, None]), args.reps)
                row(f"{page}: {section} [{range_}]", p50, p95)

    print("\nWhole Overview, server time (cards callback + its panels, one after another):")
    for range_ in ("24h", "7d", "30d"):
        view = {"range": range_, "page": "overview"}

        def overview(v=view):
            call("ov-open-backlog.children", [1])
            for panel in panels["overview"]:
                call(target(panel), [v, None])

        row(f"overview [{range_}]", *timed(overview, args.reps), budget=300)
    row(
        "overview cards callback alone",
        *timed(lambda: call("ov-open-backlog.children", [1]), args.reps),
    )

    print("\nAnalytics API, a whole page as JSON (GET /api/v1/analytics/<page>, signed-in admin):")
    for page in ("tasks", "validations", "errors"):
        for range_ in ("24h", "7d"):

            def get(url=f"/api/v1/analytics/{page}?range={range_}"):
                response = client.get(url)
                assert response.status_code == 200, response.get_data(as_text=True)[:200]

            row(f"api {page} [{range_}]", *timed(get, args.reps), budget=1000)


GRAFANA = {
    "errors per hour by severity, 7 d": """
        SELECT date_trunc('hour', created_at) AS t, error_severity, count(*) FROM error_logs
        WHERE created_at >= now() - interval '7 days' GROUP BY 1, 2""",
    "errors per 3 h by severity, 30 d": """
        SELECT date_bin('3 hours', created_at, '2000-01-01') AS t, error_severity, count(*)
        FROM error_logs WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2""",
    "tasks created per hour, 7 d": """
        SELECT date_trunc('hour', created_at), count(*) FROM tasks
        WHERE created_at >= now() - interval '7 days' GROUP BY 1""",
    "mean score per hour by type, 7 d": """
        SELECT date_trunc('hour', created_at), validation_type, avg(validation_score)
        FROM validation_results WHERE created_at >= now() - interval '7 days' GROUP BY 1, 2""",
    "exec time p95 by type, 30 d": """
        SELECT validation_type,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms)
        FROM validation_results WHERE created_at >= now() - interval '30 days' GROUP BY 1""",
    "top error codes by occurrences, 30 d": """
        SELECT error_code, sum(occurrence_count) FROM error_logs
        WHERE created_at >= now() - interval '30 days' GROUP BY 1 ORDER BY 2 DESC LIMIT 10""",
}


def bench_grafana(owner, args) -> None:
    print("\nPlain GROUP BY over the raw tables (a hand-written Grafana panel), as the owner:")
    with owner.connect() as conn:
        conn.execute(text("SET statement_timeout = '30s'"))
        for label, sql in GRAFANA.items():
            try:
                row(label, *timed(partial(_all_rows, conn, sql), args.raw_reps, False))
            except SQLAlchemyError:
                conn.rollback()
                conn.execute(text("SET statement_timeout = '30s'"))
                print(f"  {label:<44} cancelled at the 30 s statement timeout", flush=True)


if __name__ == "__main__":
    main()
