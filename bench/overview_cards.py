"""Benchmark (not a test): the Overview's cards callback and its panels, as admin and developer.

    .venv/bin/python bench/overview_cards.py [--scale medium|large] [--pgdata DIR] [--reps N]

Starts an embedded PostgreSQL (kept and reused with --pgdata), migrates, seeds `seed-demo
--scale S` if it has no tasks, refreshes the rollups and ANALYZEs; then, through signed-in Flask
clients (POST /_dash-update-component, as the browser calls them), prints p50/p95 of:
the cards callback as an admin and as the developer `alice` (a seeded assignee: RLS shows her
only her own and the unassigned tasks), each data function behind the cards, and each Overview
panel callback with the panel cache on (warm: what every caller after the first gets) and off.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

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
from taskmaster_dash.data.analytics import refresh_rollups
from taskmaster_dash.data.db import Actor, Database
from taskmaster_dash.services import current

CARDS = "ov-open-backlog.children"


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], "medium", reps=40)
    parser.add_argument(
        "--writes", action="store_true", help="also time writes with the count triggers on/off"
    )
    args = parser.parse_args()

    with seeded(args) as (owner_url, app_url), app_services(app_url) as database:
        owner = create_engine(owner_url)
        with owner.connect() as conn:
            sizes = row_counts(conn)
            first = conn.scalar(
                text("SELECT refreshed_at IS NULL FROM analytics_rollup_state LIMIT 1")
            )
        print("Rows: " + sizes, flush=True)
        refresh_rollups(None if first else 3)
        with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        if args.writes:
            bench_writes(owner)
        owner.dispose()
        run(database, args.reps)


HEADLINE_TRIGGERS = ("insert", "update", "delete", "truncate")


def bench_writes(owner) -> None:
    """What the count triggers (migration 095) cost writers: single-row inserts (as the ingest
    writes errors) and one bulk update, with the triggers on and off; rolled back."""
    print("\nWrites to error_logs, count triggers on / off (rolled back):")
    single = text(
        "INSERT INTO error_logs (error_code, error_category, error_severity, error_message)"
        " VALUES ('BENCH', 'system', 'high', 'bench')"
    )
    bulk = text(
        "UPDATE error_logs SET resolution_status = 'investigating' WHERE id IN"
        " (SELECT id FROM error_logs WHERE resolution_status = 'unresolved' LIMIT 10000)"
    )
    for state in ("on", "off"):
        with owner.connect() as conn, conn.begin():
            if state == "off":
                for event in HEADLINE_TRIGGERS:
                    trigger = f"trg_error_logs_headline_{event}"
                    conn.execute(text(f"ALTER TABLE error_logs DISABLE TRIGGER {trigger}"))
            started = time.perf_counter()
            for _ in range(200):
                conn.execute(single)
            each = (time.perf_counter() - started) * 1000 / 200
            started = time.perf_counter()
            updated = conn.execute(bulk).rowcount
            whole = (time.perf_counter() - started) * 1000
            print(
                f"  triggers {state:<3}  one-row INSERT {each:6.3f} ms each   "
                f"UPDATE of {updated:,} rows {whole:8.1f} ms",
                flush=True,
            )
            conn.rollback()


def run(database: Database, reps: int) -> None:
    from taskmaster_dash.app import create_app
    from taskmaster_dash.pages._panels import PAGE_PANELS
    from tests.support.auth import sign_in
    from tests.support.callbacks import call_callback

    users = {"admin": bench_user("admin", "bench-admin"), "alice": bench_user("developer", "alice")}
    app = create_app(database, secret_key="bench-" + os.urandom(8).hex(), environment="bench")
    clients = {}
    for name in users:
        clients[name] = app.server.test_client()
        assert sign_in(clients[name], users[name].username, PASSWORD).status_code == 302

    def call(name: str, output: str, inputs: list) -> None:
        response = call_callback(clients[name], app, output, inputs)
        assert response.status_code == 200, response.get_data(as_text=True)[:200]

    # (a checkout without the panel cache, for "before" figures, times everything uncached)
    cache = getattr(current().caches, "panels", None)
    states = (("off", 0.0), ("on", cache.ttl)) if cache else (("none", 0.0),)
    print("\nOverview cards callback (POST /_dash-update-component), panel cache off / on:")
    for name in users:
        for state, seconds in states:
            if cache:
                cache.ttl = seconds
            row(f"cards as {name}, cache {state}", *timed(partial(call, name, CARDS, [1]), reps))

    print("\nThe data functions behind the cards, as admin:")
    for label, func in card_functions(users["admin"]).items():
        row(label, *timed(func, reps))

    print("\nOverview panel callbacks, range 24h, panel cache off / on (warm):")
    for panel in PAGE_PANELS["overview"]:
        for name in users:
            view = {"range": "24h", "page": "overview"}
            draw = partial(call, name, f"{panel.id}-graph.figure", [view, None])
            for state, seconds in states:
                if cache:
                    cache.ttl = seconds
                row(f"{panel.id} as {name}, cache {state}", *timed(draw, reps))


def card_functions(actor: Actor) -> dict[str, Callable[[], object]]:
    """The data functions behind the cards (those this checkout has: "before" had others)."""
    from taskmaster_dash.data import overview
    from taskmaster_dash.data.alerts import firing_summary
    from taskmaster_dash.data.errors.filters import ErrorFilter
    from taskmaster_dash.data.errors.listing import count_errors
    from taskmaster_dash.pages.overview import backlog_change_24h

    found: dict[str, Callable[[], object]] = {
        "firing_summary": partial(firing_summary, actor),
        "backlog_change_24h": partial(backlog_change_24h, actor),
        "count_errors(regressed) (before: the card's)": partial(
            count_errors, actor, ErrorFilter(regressed=True)
        ),
    }
    for name in (
        "task_headline",
        "open_backlog",
        "completed_per_day_of_week",
        "mean_validation_score",
        "error_headline",
    ):
        if hasattr(overview, name):
            found[name] = partial(getattr(overview, name), actor)
    return found


if __name__ == "__main__":
    main()
