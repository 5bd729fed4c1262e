"""Benchmark of POST /api/v1/errors: throughput and p50/p95 latency with 1, 10 and 50
concurrent clients, for new errors (each a new group) and for repeats of existing groups, under
`taskmaster-dash serve` (waitress, 8 threads) and gunicorn (2 workers x 8 threads), on top of
`--rows` existing error rows.

    TASKMASTER_DATA_DIR=/tmp/bench .venv/bin/python bench/api_errors.py --rows 1000000

The existing rows are generated in SQL (each its own group, statuses mixed; `--groups` of them
open groups that the repeats hit, by client fingerprint). Clients are Python threads with
keep-alive sessions on the same machine, so the figures include the client's own cost. Not a
test: it prints figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.runtime import open_database
from taskmaster_dash.services import Services, install
from tests.support.processes import server_environment

ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = "bench-on-call"
CHUNK = 250_000
# Rows of generated errors: the first :groups are the open groups "bench-<g>" that repeats hit.
_SEED = """
INSERT INTO error_logs (error_code, error_category, error_severity, error_message, stack_trace,
    resolution_status, occurrence_count, first_occurred_at, last_occurred_at, environment,
    service_name, service_version, fingerprint, metadata)
SELECT 'BENCH_' || (g % 500), 'system', (ARRAY['critical','high','medium','low','info'])[1 + g % 5],
       'generated error ' || g, 'File "bench/gen.py", line 1, in f' || (g % 500),
       CASE WHEN g <= :groups THEN 'unresolved'
            ELSE (ARRAY['resolved','resolved','resolved','wont_fix','unresolved'])[1 + g % 5] END,
       1 + g % 7, now() - (g % 720) * interval '1 hour', now() - (g % 24) * interval '1 hour',
       'production', 'bench-service', '1.0.' || (g % 10),
       CASE WHEN g <= :groups
            THEN encode(sha256(convert_to('client' || chr(31) || 'bench-' || g, 'UTF8')), 'hex')
            ELSE md5('bench-row-' || g) END,
       '{"bench": true}'
FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
"""


def seed(owner_url: str, rows: int, groups: int) -> int:
    engine = create_engine(owner_url)
    try:
        with engine.connect() as conn:
            have = conn.scalar(text("SELECT count(*) FROM error_logs WHERE metadata ? 'bench'"))
        for lo in range(have + 1, rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, rows)
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text(_SEED), {"lo": lo, "hi": hi, "groups": groups})
            print(
                f"  seeded rows {lo:,}-{hi:,} in {time.perf_counter() - started:.0f} s", flush=True
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if have < rows:
                conn.execute(text("ANALYZE error_logs"))
            return int(conn.scalar(text("SELECT count(*) FROM error_logs")) or 0)
    finally:
        engine.dispose()


def api_key(database) -> str:
    from taskmaster_dash.data.users import create_user, issue_api_key, login_record

    record = login_record(BENCH_USER)
    user_id = (
        record.id
        if record
        else create_user(
            SYSTEM_ACTOR, BENCH_USER, "bench@example.com", "on_call", uuid.uuid4().hex + "Aa1!"
        )
    )
    return issue_api_key(SYSTEM_ACTOR, user_id, 1)[0]


def start_server(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    if kind == "serve":
        command = [sys.executable, "-m", "taskmaster_dash.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(port)]  # fmt: skip
    else:
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2",
                   "--threads", "8", "-b", f"127.0.0.1:{port}",
                   "taskmaster_dash.app:server"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).ok:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise SystemExit(f"{kind} exited: {process.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
        time.sleep(0.5)
    process.terminate()
    raise SystemExit(f"{kind} did not answer within 120 s")


def body(kind: str, rng: random.Random, groups: int) -> dict:
    fingerprint = uuid.uuid4().hex if kind == "new" else f"bench-{rng.randint(1, groups)}"
    return {
        "error_code": "BENCH_POST",
        "error_category": "system",
        "error_severity": "medium",
        "error_message": f"benchmark occurrence {rng.randint(1, 10**9)}",
        "service_name": "bench-service",
        "service_version": "1.0.0",
        "context_data": {"n": rng.randint(1, 1000)},
        "fingerprint": fingerprint,
    }


def run(url: str, key: str, kind: str, clients: int, seconds: float, groups: int):
    samples: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at: list[float] = []
    expected = "created" if kind == "new" else "grouped"

    def client(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        session.headers["X-API-Key"] = key
        mine: list[float] = []
        start.wait()
        while time.perf_counter() < stop_at[0]:
            payload = body(kind, rng, groups)
            began = time.perf_counter()
            response = session.post(url, json=payload, timeout=30)
            mine.append((time.perf_counter() - began) * 1000)
            if response.status_code != 201 or response.json()["data"]["outcome"] != expected:
                with lock:
                    failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at.append(time.perf_counter() + seconds)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return len(samples) / elapsed, statistics.median(samples), p95, len(samples), failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="existing error rows")
    parser.add_argument("--groups", type=int, default=1_000, help="open groups to repeat")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--servers", default="serve,gunicorn")
    parser.add_argument("--port", type=int, default=18_650)
    args = parser.parse_args()

    settings = load_settings()
    opened = open_database(settings)
    try:
        install(Services.build(settings, opened.database))
        print(f"Seeding up to {args.rows:,} error rows...", flush=True)
        total = seed(opened.owner_url, args.rows, args.groups)
        key = api_key(opened.database)
        env = server_environment(opened, {"THROTTLE_API_REQUESTS_PER_MINUTE": "1000000"})
        print(f"\nerror_logs rows: {total:,}; {args.seconds:g} s per measurement\n")
        print(f"{'server':<9} {'kind':<7} {'clients':>7} {'req/s':>8} {'p50 ms':>8} "
              f"{'p95 ms':>8} {'requests':>9} {'failed':>7}")  # fmt: skip
        for server in args.servers.split(","):
            process = start_server(server, args.port, env)
            try:
                url = f"http://127.0.0.1:{args.port}/api/v1/errors"
                for kind in ("new", "repeat"):
                    for clients in (int(c) for c in args.clients.split(",")):
                        rate, p50, p95, n, failures = run(
                            url, key, kind, clients, args.seconds, args.groups
                        )
                        print(
                            f"{server:<9} {kind:<7} {clients:>7} {rate:>8.0f} {p50:>8.1f} "
                            f"{p95:>8.1f} {n:>9} {len(failures):>7}",
                            flush=True,
                        )
                        if failures:
                            print(f"    first failure: {failures[0]}")
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        opened.close()


if __name__ == "__main__":
    main()
