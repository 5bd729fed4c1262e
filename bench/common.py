"""What the benchmarks share (not a benchmark itself): timing, the database they run on, the
app's services on it, and their sign-in users.

The database is an embedded PostgreSQL (a throwaway one, or `--pgdata DIR` kept and reused,
since seeding `--scale large` takes many minutes) or BENCH_DATABASE_URL (an owner login).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from taskmaster_dash.data.config import APP_DB_ROLE, load_settings, sqlalchemy_url  # noqa: E402
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, Database  # noqa: E402
from taskmaster_dash.data.embedded import EmbeddedDatabase, start_embedded  # noqa: E402
from taskmaster_dash.data.runtime import migrate  # noqa: E402
from taskmaster_dash.data.seed import SCALES, database_has_tasks, seed_demo_data  # noqa: E402
from taskmaster_dash.data.users import create_user, login_record  # noqa: E402
from taskmaster_dash.services import Services, install  # noqa: E402

PASSWORD = "Bench-Password-42"
# The tables whose sizes a benchmark's heading gives: what its figures scale with.
SIZED_TABLES = ("tasks", "validation_results", "error_logs")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and p95 of `samples`."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def timed(func: Callable[[], object], reps: int, warm: bool = True) -> tuple[float, float]:
    """Median and p95 in ms of `reps` calls, after one warm-up call (plans, pools, caches)."""
    if warm:
        func()
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def row(label: str, p50: float, p95: float, extra: str = "", budget: float = 100) -> None:
    flag = "" if p95 < budget else f"  over {budget:.0f} ms"
    print(f"  {label:<44} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms{extra}{flag}", flush=True)


def add_database_arguments(parser: argparse.ArgumentParser, default_scale: str) -> None:
    parser.add_argument("--scale", choices=list(SCALES), default=default_scale)
    parser.add_argument(
        "--pgdata",
        help="embedded data directory to keep and reuse (seeded only when it has no tasks)",
    )


def bench_parser(description: str, default_scale: str, **repeats: int) -> argparse.ArgumentParser:
    """A benchmark's parser: the database options (`add_database_arguments`) and how many times
    to repeat its timings, e.g. `rounds=20` adds `--rounds` (an int, default 20)."""
    parser = argparse.ArgumentParser(description=description)
    add_database_arguments(parser, default_scale)
    for name, default in repeats.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    return parser


def open_target(args: argparse.Namespace) -> tuple[str, str, EmbeddedDatabase | None]:
    """Owner URL, app URL and the embedded server (None for BENCH_DATABASE_URL: not ours)."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        owner = sqlalchemy_url(url)
        return (
            owner,
            make_url(owner)
            .set(username=APP_DB_ROLE, password=None)
            .render_as_string(hide_password=False),
            None,
        )
    kept = getattr(args, "pgdata", None)
    pgdata = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="tmdash-bench-")) / "pgdata"
    embedded = start_embedded(pgdata, delete_on_stop=not kept)
    return embedded.owner_url, embedded.app_url, embedded


def open_seeded(args: argparse.Namespace) -> tuple[str, str, EmbeddedDatabase | None]:
    """`open_target`, migrated, and seeded like `seed-demo --scale S` when it has no tasks."""
    owner_url, app_url, embedded = open_target(args)
    try:
        migrate(owner_url, app_url)
        if not database_has_tasks(owner_url):
            print(f"Seeding {args.scale} ...", flush=True)
            started = time.perf_counter()
            seed_demo_data(owner_url, SCALES[args.scale])
            print(f"Seeded in {time.perf_counter() - started:.0f} s", flush=True)
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return owner_url, app_url, embedded


@contextmanager
def seeded(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """`open_seeded`'s owner and app URLs, for a `with`: its embedded server stops at the end."""
    owner_url, app_url, embedded = open_seeded(args)
    try:
        yield owner_url, app_url
    finally:
        if embedded is not None:
            embedded.stop()


@contextmanager
def app_services(app_url: str, pool_max: int = 10) -> Iterator[Database]:
    """A Database on `app_url` with the app's services installed on it (what the data functions
    reach through `services.current()`), uninstalled and disposed on the way out."""
    database = Database(app_url, pool_max=pool_max)
    install(Services.build(load_settings(), database))
    try:
        yield database
    finally:
        install(None)
        database.dispose()


def row_counts(conn: Connection, tables: Sequence[str] = SIZED_TABLES) -> str:
    """Each table's rows, as "tasks 1,234, error_logs 567", for a benchmark's heading."""
    return ", ".join(
        f"{table} {conn.scalar(text(f'SELECT count(*) FROM {table}')):,}" for table in tables
    )


def bench_user(role: str, name: str | None = None) -> Actor:
    """The bench's user of `role` (made on first use, password PASSWORD)."""
    name = name or f"bench-{role}"
    record = login_record(name)
    user_id = (
        record.id
        if record
        else create_user(SYSTEM_ACTOR, name, f"{name}@example.com", role, PASSWORD)
    )
    return Actor(user_id, name)
