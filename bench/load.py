"""Load benchmark (not a test; prints figures): the app under `taskmaster-dash serve` and under
gunicorn with 2 workers, beside the floor, with N closed-loop signed-in clients.

    .venv/bin/python bench/load.py                                 # medium, throwaway database
    .venv/bin/python bench/load.py --scale large --pgdata /tmp/bench-large   # keep, reuse
    .venv/bin/python bench/load.py --clients 1,50 --seconds 20 --servers floor,gunicorn

Each client is its own session, signed in through the login form, and cycles the mix the
browser sends when it opens the Overview and /errors: the Overview cards callback, the triage
grid's first page and the Overview's 24 h backlog chart (POST /_dash-update-component with the
bodies Chromium sends, captured with `bench/browser.py --payloads`). The floor is the same
app under the same gunicorn command plus one bench-only callback that returns a constant
(bench/floor.py): what every callback pays before its own work.

Per server and client count: requests per second, latency p50/p95/p99, CPU per request of the
server's processes and of PostgreSQL's (psutil), and the ratio to the floor's throughput. Then,
per callback, its p50 at 1 client (in the mix, and by itself for --alone seconds, as the floor
is measured) beside the time its statements took inside PostgreSQL (every
statement the request ran, session lookup included, from the server log with
log_min_duration_statement = 0, in this process with no background workers), and the issue's
goal: its p50 by itself within 1.5x of (its SQL beyond the floor's + the floor's p50).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import requests
from sqlalchemy import create_engine, text

from bench.floor import FLOOR_OUTPUT, add_floor
from bench.servers import (
    PASSWORD,
    SERVER_KINDS,
    AppServer,
    Target,
    add_database_arguments,
    cpu_seconds,
    cpu_used,
    prepare,
    running,
    stop_on_sigterm,
)
from tests.support.auth import csrf_token_in

DISPATCH = "/_dash-update-component"
OVERVIEW_CARDS = (
    "ov-open-backlog",
    "ov-backlog-trend",
    "ov-completed-per-day",
    "ov-mean-score",
    "ov-errors-hour",
    "ov-unresolved",
    "ov-firing-alerts",
    "ov-message",
)
VIEW = {"range": "24h", "refresh": "off"}


def dispatch_body(
    outputs: Sequence[tuple[str, str]],
    inputs: list[dict],
    changed: Sequence[str] = (),
    state: list[dict] | None = None,
) -> dict:
    """The body Chromium posts to /_dash-update-component for a callback of several outputs
    (id, property): Dash spells them again as one "..id.prop...id.prop.." string."""
    body: dict = {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": inputs,
        "changedPropIds": list(changed),
        "parsedChangedPropsIds": list(changed),
    }
    if state is not None:
        body["state"] = state
    return body


# The bodies Chromium posts on first load (captured with bench/browser.py --payloads): keys
# and values as it sends them, an input without a value (a fresh Interval) without "value".
MIX: dict[str, dict] = {
    "overview cards": dispatch_body(
        [(card, "children") for card in OVERVIEW_CARDS],
        [{"id": "overview-refresh", "property": "n_intervals"}],
    ),
    "triage grid page 1": dispatch_body(
        [("triage-grid", "getRowsResponse"), ("triage-grid-message", "children")],
        [
            {
                "id": "triage-grid",
                "property": "getRowsRequest",
                "value": {
                    "startRow": 0,
                    "endRow": 100,
                    "sortModel": [{"sort": "desc", "type": "default", "colId": "last_occurred_at"}],
                    "filterModel": {},
                    "api": {},
                },
            }
        ],
        changed=["triage-grid.getRowsRequest"],
        state=[{"id": "tr-view", "property": "data", "value": {**VIEW, "page": "errors"}}],
    ),
    # /tasks draws its whole chart section in one callback (pages/_panels.py); the Overview
    # draws this same chart (open tasks over time, 24 h) by itself
    "backlog chart 24h": dispatch_body(
        [("ov-backlog-graph", "figure"), ("ov-backlog-msg", "children")],
        [
            {"id": "tr-view", "property": "data", "value": {**VIEW, "page": "overview"}},
            {"id": "tr-interval", "property": "n_intervals"},
        ],
    ),
}
FLOOR_MIX: dict[str, dict] = {
    "floor (constant)": {
        "output": FLOOR_OUTPUT,
        "outputs": {"id": "bench-floor", "property": "children"},
        "inputs": [{"id": "bench-floor-ping", "property": "n_clicks", "value": 1}],
        "changedPropIds": ["bench-floor-ping.n_clicks"],
        "parsedChangedPropsIds": ["bench-floor-ping.n_clicks"],
    }
}
REQUEST_POOLS = ("taskmaster_read_pool", "taskmaster_write_pool", "taskmaster_analytics_pool")


def mix_for(kind: str) -> dict[str, dict]:
    return FLOOR_MIX if kind == "floor" else MIX


# --- clients ------------------------------------------------------------------------------


def signed_in_session(base: str, username: str) -> requests.Session:
    """A new session through the real form, as a browser signs in."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=60)
    response = session.post(
        f"{base}/login",
        data={
            "csrf_token": csrf_token_in(page.text),
            "username": username,
            "password": PASSWORD,
            "next": "/",
        },
        allow_redirects=False,
        timeout=60,
    )
    if response.status_code != 302:
        raise RuntimeError(f"sign-in as {username} answered {response.status_code}")
    return session


def check_answer(name: str, response: requests.Response) -> str:
    """What the callback answered, in a few words; a clear stop when it did not answer."""
    if response.status_code != 200:
        raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
    outputs = response.json()["response"]
    if "triage-grid" in outputs:
        rows = outputs["triage-grid"]["getRowsResponse"]
        total = rows["rowCount"]  # None while the grid has more pages than it counted
        return f"{len(rows['rowData'])} rows of {'more' if total is None else f'{total:,}'}"
    if "ov-backlog-graph" in outputs:
        figure = outputs["ov-backlog-graph"]["figure"]
        return f"{len(figure['data'])} traces"
    if "ov-open-backlog" in outputs:
        return f"open backlog {json.dumps(outputs['ov-open-backlog']['children'])[:40]}"
    return json.dumps(outputs)[:60]


@dataclass
class Sample:
    name: str
    started: float
    ms: float
    ok: bool


@dataclass
class Step:
    kind: str
    clients: int
    seconds: float
    samples: list[Sample]
    app_cpu: float
    pg_cpu: float | None
    client_cpu: float

    @property
    def done(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def rate(self) -> float:
        return len(self.done) / self.seconds

    def latency(self, name: str | None = None) -> list[float]:
        return sorted(s.ms for s in self.done if name is None or s.name == name)


def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_step(
    server: AppServer,
    target: Target,
    sessions: list[requests.Session],
    seconds: float,
    warmup: float,
    only: str | None = None,
) -> Step:
    """Every session posts the mix (or only the callback `only`), one request after another,
    for warmup + seconds; the requests answered inside the measured window count (throughput,
    latency, CPU per request)."""
    bodies = [
        (name, json.dumps(body).encode())
        for name, body in mix_for(server.kind).items()
        if only in (None, name)
    ]
    url = server.base + DISPATCH
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    samples: list[Sample] = []
    lock = threading.Lock()
    stop = threading.Event()
    window: dict[str, float] = {}

    def client(index: int, session: requests.Session) -> None:
        turn = index  # clients start at different places in the mix
        mine: list[Sample] = []
        while not stop.is_set():
            name, body = bodies[turn % len(bodies)]
            turn += 1
            started = time.perf_counter()
            try:
                ok = session.post(url, data=body, headers=headers, timeout=60).status_code == 200
            except requests.RequestException:
                ok = False
            mine.append(Sample(name, started, (time.perf_counter() - started) * 1000, ok))
        with lock:
            samples.extend(mine)

    threads = [
        threading.Thread(target=client, args=(i, s), daemon=True) for i, s in enumerate(sessions)
    ]
    for thread in threads:
        thread.start()
    me = psutil.Process()
    stop.wait(warmup)
    app_before = cpu_seconds(server.processes())
    pg_before = cpu_seconds(target.postgres_processes())
    me_before = me.cpu_times()
    window["start"] = time.perf_counter()
    stop.wait(seconds)
    window["end"] = time.perf_counter()
    app_cpu = cpu_used(app_before, cpu_seconds(server.processes()))
    pg_processes = target.postgres_processes()
    pg_cpu = cpu_used(pg_before, cpu_seconds(pg_processes)) if pg_processes else None
    me_after = me.cpu_times()
    stop.set()
    for thread in threads:
        thread.join(timeout=70)
    start, end = window["start"], window["end"]
    kept = [s for s in samples if start <= s.started + s.ms / 1000 <= end]
    client_cpu = (me_after.user + me_after.system) - (me_before.user + me_before.system)
    return Step(server.kind, len(sessions), end - start, kept, app_cpu, pg_cpu, client_cpu)


def step_line(step: Step, floor_rate: float | None) -> str:
    ordered = step.latency()
    n = max(len(step.done), 1)
    failed = len(step.samples) - len(step.done)
    pg = f"{step.pg_cpu * 1000 / n:7.2f}" if step.pg_cpu is not None else "      —"
    ratio = f"{step.rate / floor_rate:6.2f}" if floor_rate else "     —"
    return (
        f"{step.kind:<9} {step.clients:>7} {step.rate:8.1f} {percentile(ordered, 0.5):8.1f}"
        f" {percentile(ordered, 0.95):8.1f} {percentile(ordered, 0.99):8.1f} {failed:>6}"
        f" {step.app_cpu * 1000 / n:9.2f} {pg} {100 * step.client_cpu / step.seconds:7.0f}%"
        f" {ratio}"
    )


HEADER = (
    f"{'server':<9} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    f" {'failed':>6} {'app CPU':>9} {'PG CPU':>7} {'client':>8} {'/floor':>6}\n"
    f"{'':<9} {'':>7} {'':>8} {'':>8} {'':>8} {'':>8} {'':>6} {'ms/req':>9} {'ms/req':>7}"
    f" {'CPU':>8} {'req/s':>6}"
)


# --- SQL time inside PostgreSQL -------------------------------------------------------------

DURATION = re.compile(
    r"\[\d+\] (?P<app>[\w ()-]*): LOG:  duration: (?P<ms>[\d.]+) ms  (?P<kind>\w+)"
)


def sql_per_call(target: Target, reps: int) -> dict[str, tuple[float, float]]:
    """(ms inside PostgreSQL, statements) per call of each callback of the mix and the floor,
    through the app in this process (no background workers, so every logged statement of the
    request pools is a callback's). Statement logging is on only meanwhile."""
    log = target.server_log
    if log is None:
        return {}
    from taskmaster_dash.app import create_app

    app = create_app(target.database, secret_key="bench-sql", environment="bench")
    add_floor(app)
    client = app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    signed_in = client.post(
        "/login",
        data={"csrf_token": csrf_token_in(page), "username": "bench-admin", "password": PASSWORD},
    )
    assert signed_in.status_code == 302, signed_in.status_code
    owner = create_engine(target.owner_url, isolation_level="AUTOCOMMIT")
    settings = {"log_min_duration_statement": "0", "log_line_prefix": "'%m [%p] %a: '"}

    def configure(on: bool) -> None:
        with owner.connect() as conn:
            for name, value in settings.items():
                change = f"SET {name} = {value}" if on else f"RESET {name}"
                conn.execute(text(f"ALTER SYSTEM {change}"))
            conn.execute(text("SELECT pg_reload_conf()"))
        wanted = "0" if on else "-1"
        deadline = time.monotonic() + 10
        while True:  # each new backend reads the configuration as the server has it now
            with owner.connect() as conn:
                if conn.scalar(text("SHOW log_min_duration_statement")) == wanted:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not take log_min_duration_statement")
            time.sleep(0.05)

    out: dict[str, tuple[float, float]] = {}

    def call(name: str) -> None:
        response = client.post(DISPATCH, json={**MIX, **FLOOR_MIX}[name])
        assert response.status_code == 200, (name, response.status_code)

    try:
        configure(True)
        target.database.dispose()  # new connections: every statement is logged from the first
        for name in {**MIX, **FLOOR_MIX}:
            for _ in range(3):  # plans, prepared statements, the app's TTL caches
                call(name)
            offset = log.stat().st_size
            for _ in range(reps):
                call(name)
            with log.open("rb") as handle:
                handle.seek(offset)
                lines = handle.read().decode(errors="replace").splitlines()
            total = statements = 0.0
            for line in lines:
                match = DURATION.search(line)
                if match and match["app"] in REQUEST_POOLS:
                    total += float(match["ms"])
                    statements += match["kind"] in {"statement", "execute"}
            out[name] = (total / reps, statements / reps)
    finally:
        configure(False)
        owner.dispose()
    return out


# --- the run --------------------------------------------------------------------------------


@dataclass
class Results:
    steps: list[Step] = field(default_factory=list)
    alone: list[Step] = field(default_factory=list)  # one callback each, 1 client (goal 1)

    def floor_rate(self, clients: int) -> float | None:
        for step in self.steps:
            if step.kind == "floor" and step.clients == clients:
                return step.rate
        return None


def bench_server(
    kind: str, target: Target, clients: list[int], args: argparse.Namespace, results: Results
) -> None:
    clients_range = range(max(clients))
    with running(kind, target) as server:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:  # argon2 is slow on purpose
            sessions = list(
                pool.map(lambda _: signed_in_session(server.base, "bench-admin"), clients_range)
            )
        print(
            f"\n{kind}: {server.command()[2:]} on {server.base}; {len(sessions)} sessions signed"
            f" in ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        for name, body in mix_for(kind).items():
            answer = check_answer(name, sessions[0].post(server.base + DISPATCH, json=body))
            print(f"  {name}: {answer}", flush=True)
        for count in clients:
            step = run_step(server, target, sessions[:count], args.seconds, args.warmup)
            results.steps.append(step)
            print("  " + step_line(step, results.floor_rate(count)), flush=True)
        if kind != "floor" and args.alone > 0:
            for name in MIX:  # each by itself, as the floor is measured
                step = run_step(server, target, sessions[:1], args.alone, args.warmup, name)
                results.alone.append(step)


def print_tables(results: Results, sql: dict[str, tuple[float, float]]) -> None:
    print(f"\nClosed-loop clients, the mix of {len(MIX)} callbacks (floor: its constant):")
    print(HEADER)
    for step in results.steps:
        print(step_line(step, results.floor_rate(step.clients)))
    floor = next((s for s in results.steps if s.kind == "floor" and s.clients == 1), None)
    floor_p50 = statistics.median(floor.latency()) if floor and floor.done else None
    floor_sql = sql.get("floor (constant)", (0.0, 0.0))[0]
    print(
        "\nPer callback at 1 client: p50 in the mix and by itself (the floor too is measured by"
        " itself) beside its statements' time in PostgreSQL (per call, session lookup"
        " included); goal 1: p50 by itself within 1.5x (SQL - floor's SQL + floor p50)"
    )
    print(
        f"{'server':<9} {'callback':<20} {'mix p50':>8} {'p50 ms':>8} {'SQL ms':>8} {'stmts':>6}"
        f" {'goal ms':>8}"
    )
    for step in results.steps:
        if step.clients != 1:
            continue
        for name in mix_for(step.kind):
            in_mix = percentile(step.latency(name), 0.5)
            alone = next(
                (a for a in results.alone if a.kind == step.kind and a.latency(name)), step
            )
            p50 = percentile(alone.latency(name), 0.5)
            spent, statements = sql.get(name, (float("nan"), float("nan")))
            goal = (
                1.5 * (spent - floor_sql + floor_p50)
                if floor_p50 is not None and name in sql and step.kind != "floor"
                else None
            )
            shown = "—" if goal is None else f"{goal:.1f}"
            verdict = "" if goal is None else ("  met" if p50 <= goal else "  over")
            print(
                f"{step.kind:<9} {name:<20} {in_mix:8.1f} {p50:8.1f} {spent:8.2f}"
                f" {statements:6.1f} {shown:>8}{verdict}"
            )
    if not sql:
        print("  (SQL time needs the embedded server's log: not measured on BENCH_DATABASE_URL)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser, default_scale="medium")
    parser.add_argument("--clients", default="1,10,20,50", help="client counts, in order")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds per step")
    parser.add_argument(
        "--servers", default="floor,serve,gunicorn", help=f"of {','.join(SERVER_KINDS)}"
    )
    parser.add_argument("--sql-reps", type=int, default=20, help="0: skip the SQL time")
    parser.add_argument(
        "--alone",
        type=float,
        default=5,
        help="measured seconds of each callback by itself; 0: none",
    )
    args = parser.parse_args()
    try:
        clients = [int(c) for c in args.clients.split(",")]
        assert clients and min(clients) >= 1
    except (ValueError, AssertionError):
        parser.error("--clients: whole numbers from 1, comma-separated, e.g. 1,10,20,50")
    kinds = args.servers.split(",")
    if unknown := set(kinds) - set(SERVER_KINDS):
        parser.error(f"--servers: unknown {sorted(unknown)}; choose from {SERVER_KINDS}")

    stop_on_sigterm()
    target = prepare(args)
    results = Results()
    try:
        print(
            f"{psutil.cpu_count()} CPUs; each step {args.warmup:g} s warm-up + {args.seconds:g} s"
            " measured; CPU per request = CPU seconds of those processes / requests answered",
            flush=True,
        )
        for kind in kinds:
            bench_server(kind, target, clients, args, results)
        sql = sql_per_call(target, args.sql_reps) if args.sql_reps else {}
        print_tables(results, sql)
    finally:
        target.close()


if __name__ == "__main__":
    main()
