"""Benchmark: what a signed-in request pays to find its session, and the Overview cards callback
(its time, statements and transactions), in this process through the Flask test client.

    .venv/bin/python bench/session.py [--scale small|medium] [--pgdata DIR] [--reps 40]

Starts an embedded PostgreSQL (kept and reused with --pgdata), migrates, seeds `seed-demo
--scale S` if it has no tasks, signs an admin in and times, `--reps` times each (after one
warm-up): the session lookup as the sign-in gate runs it (flask-login's user loader), a whole
signed-in request (GET /api/v1/me), and the Overview cards callback (POST
/_dash-update-component), with the session cache off and on for 5 s.
Prints median and p95 in ms, and the statements and transactions one Overview callback runs.
Not a test: run it on demand.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text

from bench.common import PASSWORD, bench_parser, bench_user, seeded, timed
from taskmaster_dash.data.cache import Cache
from taskmaster_dash.data.db import Database
from taskmaster_dash.services import current
from tests.support.auth import signed_in_client
from tests.support.callbacks import call_callback


def count_one(database: Database, work: Callable[[], object]) -> str:
    """The statements and transactions `work` runs, per pool."""
    counts: dict[str, list[int]] = {}
    listeners = []
    for pool, engine in database.engines.items():
        counted = counts.setdefault(pool.value, [0, 0])

        def statement(*_args: object, c: list[int] = counted) -> None:
            c[0] += 1

        def begin(*_args: object, c: list[int] = counted) -> None:
            c[1] += 1

        for name, listener in (("before_cursor_execute", statement), ("begin", begin)):
            event.listen(engine, name, listener)
            listeners.append((engine, name, listener))
    work()
    for engine, name, listener in listeners:
        event.remove(engine, name, listener)
    return ", ".join(
        f"{pool} pool {n} statements in {t} transactions" for pool, (n, t) in counts.items() if n
    )


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], "small", reps=40)
    args = parser.parse_args()

    with seeded(args) as (owner_url, app_url):
        owner = create_engine(owner_url)
        with owner.begin() as conn:
            conn.execute(text("ANALYZE"))
            tasks = conn.scalar(text("SELECT count(*) FROM tasks"))
        owner.dispose()

        from taskmaster_dash.app import create_app

        database = Database(app_url)
        app = create_app(database, secret_key=uuid.uuid4().hex, environment="testing")
        name = "bench-session-admin"
        bench_user("admin", name)
        client = signed_in_client(app, name, PASSWORD)
        cookie = client.get_cookie("session")
        assert cookie is not None
        server = app.server
        loader = server.login_manager._user_callback  # what the gate calls for a session cookie
        with client.session_transaction() as flask_session:
            token = flask_session["_user_id"]

        def lookup() -> None:
            with server.test_request_context("/"):
                assert loader(token) is not None

        def me() -> None:
            assert client.get("/api/v1/me").status_code == 200

        client.get("/")  # Dash registers its callbacks on the first request

        def overview() -> None:
            response = call_callback(client, app, "ov-open-backlog.children", [None])
            assert response.status_code == 200, response.get_data(as_text=True)[:300]

        print(f"scale {args.scale} ({tasks:,} tasks), {args.reps} repetitions, ms")
        print(f"{'':<44}{'median':>8}{'p95':>8}")
        caches = current().caches
        for cache_seconds in (0, 5):
            caches.sessions = Cache(cache_seconds, maxsize=10_000)
            print(f"session cache {'off' if not cache_seconds else f'{cache_seconds} s'}:")
            for label, work in (
                ("  session lookup (the gate's user loader)", lookup),
                ("  signed-in request GET /api/v1/me", me),
                ("  Overview cards callback", overview),
            ):
                median, p95 = timed(work, args.reps)
                print(f"{label:<44}{median:>8.2f}{p95:>8.2f}", flush=True)
            print(
                "  one Overview cards request, session included: " + count_one(database, overview)
            )
        database.dispose()


if __name__ == "__main__":
    main()
