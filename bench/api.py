"""REST API benchmark (not a test; prints figures): `GET /api/v1/tasks` pages at size.

    .venv/bin/python bench/api.py                         # throwaway embedded PG, 1M tasks
    .venv/bin/python bench/api.py --tasks 200000 --reps 50
    .venv/bin/python bench/api.py --pgdata /tmp/bench-api-pg  # keep (and reuse) the data
    BENCH_DATABASE_URL=postgresql://owner@host/db .venv/bin/python bench/api.py

Steps: migrate; top the tasks table up to --tasks rows if it has fewer (generate_series, in
batches of 100k, as the owner: spread over 90 days, five statuses, ten types, a few assignees
including the bench developer; then VACUUM ANALYZE); then each request below --reps times,
through the app in this process (Flask test client: the app's own cost) and over HTTP to
waitress on a free port (what a client sees), as an admin key and a developer key (RLS: their
own and unassigned tasks).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import bench_user, timed
from taskmaster_dash.data.config import APP_DB_ROLE, sqlalchemy_url
from taskmaster_dash.data.db import SYSTEM_ACTOR, Database
from taskmaster_dash.data.embedded import EmbeddedDatabase, start_embedded
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.users import issue_api_key

BATCH = 100_000
# (label, query string): the pages an agent or a dashboard asks for
TASK_PAGES: list[tuple[str, dict[str, object]]] = [
    ("first page (50)", {}),
    ("first page (500)", {"limit": 500}),
    ("offset 10,000", {"offset": 10_000}),
    ("status=in_progress", {"status": "in_progress"}),
    ("type=bug,priority_min=8", {"type": "bug", "priority_min": 8}),
    ("created in one week", {"created_from": "-10d", "created_to": "-3d"}),
    ("assigned_to=alice", {"assigned_to": "alice"}),
]


def timed_ok(call: Callable[[], int], reps: int) -> tuple[float, float]:
    status = call()  # warm the cache and the pool, and check the call answers
    assert status == 200, status
    return timed(call, reps, warm=False)


def open_target(args: argparse.Namespace) -> tuple[str, str, EmbeddedDatabase | None]:
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        owner = sqlalchemy_url(url)
        app = make_url(owner).set(username=APP_DB_ROLE, password=None)
        return owner, app.render_as_string(hide_password=False), None
    pgdata = Path(args.pgdata) if args.pgdata else Path(tempfile.mkdtemp()) / "pgdata"
    embedded = start_embedded(pgdata, delete_on_stop=not args.pgdata)
    return embedded.owner_url, embedded.app_url, embedded


def seed_tasks(owner_url: str, wanted: int) -> int:
    """Add tasks until there are `wanted`; the count now."""
    engine = create_engine(owner_url)
    with engine.connect() as conn:
        have = int(conn.scalar(text("SELECT count(*) FROM tasks")) or 0)
    started = time.perf_counter()
    while have < wanted:
        n = min(BATCH, wanted - have)
        with engine.begin() as conn:
            conn.execute(
                text(
                    """INSERT INTO tasks (title, type, status, priority, complexity_score,
                                          assigned_to, tags, created_at, updated_at)
                       SELECT 'bench task ' || (:base + g),
                              (ARRAY['feature','bug','docs','refactor','test','infra','ops',
                                     'research','security','general'])[1 + g % 10],
                              (ARRAY['pending','in_progress','completed','failed',
                                     'cancelled'])[1 + g % 5],
                              g % 11, 1 + g % 10,
                              (ARRAY[NULL,'alice','bob','carol','bench-developer','dave',
                                     NULL])[1 + g % 7],
                              '["bench"]'::jsonb,
                              now() - make_interval(secs => (g * 7919) % (90 * 86400)),
                              now()
                       FROM generate_series(1, :n) AS g"""
                ),
                {"n": n, "base": have},
            )
        have += n
        print(f"  tasks: {have:,}", flush=True)
    if time.perf_counter() - started > 1:
        # what autovacuum would soon do: statistics, and the visibility map for index-only counts
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE tasks"))
        print(f"Seeded in {time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()
    return have


def bench_key(role: str, name: str) -> str:
    return issue_api_key(SYSTEM_ACTOR, bench_user(role, name).user_id, 1)[0]


def _resolve(params: dict[str, object]) -> dict[str, object]:
    """'-10d' -> an ISO time that many days ago (so the ranges hit the seeded spread)."""
    from datetime import UTC, datetime, timedelta

    out = {}
    for key, value in params.items():
        if isinstance(value, str) and value.startswith("-") and value.endswith("d"):
            value = (datetime.now(UTC) - timedelta(days=int(value[1:-1]))).isoformat()
        out[key] = value
    return out


def serve_in_thread(server) -> str:
    from waitress.server import create_server

    wsgi = create_server(server, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=wsgi.run, daemon=True).start()
    return f"http://127.0.0.1:{wsgi.effective_port}"  # type: ignore[union-attr]


def bench_task_pages(app, keys: dict[str, str], reps: int) -> None:
    client = app.server.test_client()
    base = serve_in_thread(app.server)
    session = requests.Session()
    print(f"\nGET /api/v1/tasks ({reps} requests each; p50 / p95 in ms):")
    print(f"  {'page':<28} {'as':<10} {'in-process':>22} {'over HTTP':>22}  total")
    for label, params in TASK_PAGES:
        query = _resolve(params)
        for role, key in keys.items():
            headers = {"X-API-Key": key}

            def local(query: dict = query, headers: dict = headers) -> int:
                return client.get("/api/v1/tasks", query_string=query, headers=headers).status_code

            def remote(query: dict = query, headers: dict = headers) -> int:
                url = f"{base}/api/v1/tasks"
                return session.get(url, params=query, headers=headers).status_code

            total = client.get("/api/v1/tasks", query_string=query, headers=headers).get_json()[
                "pagination"
            ]["total"]
            lp50, lp95 = timed_ok(local, reps)
            rp50, rp95 = timed_ok(remote, reps)
            print(
                f"  {label:<28} {role:<10} {lp50:9.1f} / {lp95:9.1f}  {rp50:9.1f} / {rp95:9.1f}"
                f"  {total:,}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks to have (default 1M)")
    parser.add_argument("--pgdata", help="embedded data directory to keep and reuse")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    # the per-key throttle (600 a minute by default) would answer 429 part-way through
    os.environ.setdefault("THROTTLE_API_REQUESTS_PER_MINUTE", "1000000")

    owner_url, app_url, embedded = open_target(args)
    try:
        migrate(owner_url, app_url)
        count = seed_tasks(owner_url, args.tasks)
        print(f"Rows: tasks {count:,}", flush=True)
        database = Database(app_url, pool_max=20)
        from taskmaster_dash.app import create_app

        # "testing": no rollup refresher in the background, whose work would skew the figures
        app = create_app(database, secret_key="bench-" + os.urandom(8).hex(), environment="testing")
        keys = {
            "admin": bench_key("admin", "bench-admin"),
            "developer": bench_key("developer", "bench-developer"),
        }
        bench_task_pages(app, keys, args.reps)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
