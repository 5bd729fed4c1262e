"""What bench/load.py and bench/browser.py share (not a benchmark itself): a seeded database
with the bench logins, and the app under `taskmaster-dash serve` or gunicorn on a free port,
stopped cleanly, with the process ids whose CPU the benchmarks count.

The database is an embedded PostgreSQL (a throwaway one, or `--pgdata DIR` kept and reused,
since seeding `--scale large` takes many minutes) or BENCH_DATABASE_URL (an owner login).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import PASSWORD, add_database_arguments, bench_user, open_target  # noqa: E402
from taskmaster_dash.data.config import load_settings  # noqa: E402
from taskmaster_dash.data.db import Actor, Database  # noqa: E402
from taskmaster_dash.data.embedded import EmbeddedDatabase  # noqa: E402
from taskmaster_dash.data.runtime import migrate  # noqa: E402
from taskmaster_dash.data.seed import SCALES, database_has_tasks, seed_demo_data  # noqa: E402
from taskmaster_dash.services import Services, install  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

__all__ = [
    "PASSWORD",
    "SERVER_KINDS",
    "AppServer",
    "Target",
    "add_database_arguments",
    "cpu_seconds",
    "cpu_used",
    "prepare",
    "running",
    "stop_on_sigterm",
]

# The production commands (README "Production"); "floor" is gunicorn serving bench/floor.py,
# the shipped app plus one bench-only callback that returns a constant.
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2"]
SERVER_KINDS = ("serve", "gunicorn", "floor")


@dataclass
class Target:
    owner_url: str
    app_url: str
    embedded: EmbeddedDatabase | None
    database: Database
    admin: Actor
    developer: Actor

    def postgres_processes(self) -> list[psutil.Process]:
        """The embedded server and its backends (empty for BENCH_DATABASE_URL: not ours)."""
        if self.embedded is None:
            return []
        try:
            pid = int((self.embedded.pgdata / "postmaster.pid").read_text().split()[0])
            postmaster = psutil.Process(pid)
            return [postmaster, *postmaster.children(recursive=True)]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    @property
    def server_log(self) -> Path | None:
        """Where the embedded server writes its log (pg_ctl -l)."""
        return self.embedded.pgdata / "log" if self.embedded else None

    def close(self) -> None:
        self.database.dispose()
        if self.embedded is not None:
            self.embedded.stop()


def _first_load(owner_url: str, scale: str) -> None:
    """Seed as `seed-demo` does, then what a running install has: the rollups built and the
    visibility map set (index-only counts). The errors stay one row per burst, as in
    bench/analytics.py (500k at medium), not folded into the few dozen groups `demo` makes."""
    from taskmaster_dash.data.analytics import refresh_rollups

    print(f"Seeding --scale {scale} (once; keep it with --pgdata DIR) ...", flush=True)
    started = time.perf_counter()
    seed_demo_data(owner_url, SCALES[scale])
    refresh_rollups(None)
    engine = create_engine(owner_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    print(f"Seeded and rolled up in {time.perf_counter() - started:.0f} s", flush=True)


def prepare(args: argparse.Namespace) -> Target:
    """Open (and on first use seed) the database; the bench admin and developer logins."""
    owner_url, app_url, embedded = open_target(args)
    try:
        migrate(owner_url, app_url)
        database = Database(app_url, pool_max=4)
        install(Services.build(load_settings(), database))
        if not database_has_tasks(owner_url):
            _first_load(owner_url, args.scale)
        with create_engine(owner_url).connect() as conn:
            counts = conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM tasks),"
                    " (SELECT count(*) FROM validation_results),"
                    " (SELECT count(*) FROM error_logs)"
                )
            ).one()
        print(
            f"Database: {counts[0]:,} tasks, {counts[1]:,} validation runs, {counts[2]:,} errors",
            flush=True,
        )
        return Target(
            owner_url, app_url, embedded, database, bench_user("admin"), bench_user("developer")
        )
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise


@dataclass
class AppServer:
    """One app server process (and its workers) on its own loopback port."""

    kind: str
    target: Target
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: Path | None = None
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        bind = f"127.0.0.1:{self.port}"
        if self.kind == "serve":
            return [sys.executable, "-m", "taskmaster_dash.cli", "serve", "--host", "127.0.0.1",
                    "--port", str(self.port)]  # fmt: skip
        module = "taskmaster_dash.app:server" if self.kind == "gunicorn" else "bench.floor:server"
        return [*GUNICORN, "-b", bind, module]

    def start(self, timeout: float = 120) -> None:
        assert self.kind in SERVER_KINDS, self.kind
        self._scratch = tempfile.TemporaryDirectory(prefix=f"bench-{self.kind}-")
        scratch = Path(self._scratch.name)
        metrics = scratch / "prometheus-multiproc"
        metrics.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": self.target.app_url,
            "OWNER_DATABASE_URL": self.target.owner_url,
            "SECRET_KEY": secrets.token_hex(32),
            "TASKMASTER_DATA_DIR": str(scratch),
            # what README's "Several gunicorn workers" asks for (one directory per server)
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }
        self._log = scratch / "server.log"
        with self._log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one, never ours
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/api/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)  # polling the server's start, not timing anything
        raise RuntimeError(f"{self.kind} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")[-chars:]

    def processes(self) -> list[psutil.Process]:
        """The server and its workers."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            main = psutil.Process(self.process.pid)
            return [main, *main.children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self) -> None:
        """SIGTERM (gunicorn stops its workers, `serve` its threads), then SIGKILL to the
        group after 30 s."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # a worker left behind by a crash
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


@contextlib.contextmanager
def running(kind: str, target: Target) -> Iterator[AppServer]:
    server = AppServer(kind, target)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def stop_on_sigterm() -> None:
    """SIGTERM (a `kill`, a CI timeout) unwinds like Ctrl-C, so every server is stopped."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def cpu_seconds(processes: Sequence[psutil.Process]) -> dict[tuple[int, float], float]:
    """User + system CPU of each process, keyed by (pid, start time) so a reused pid is not
    mistaken for the same process."""
    out = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            out[(process.pid, process.create_time())] = times.user + times.system
    return out


CpuReading = dict[tuple[int, float], float]


def cpu_used(before: CpuReading, after: CpuReading) -> float:
    """CPU seconds spent between two `cpu_seconds` readings (a process that started in between
    counts from zero; one that ended in between is lost, which pooled servers rarely do)."""
    return sum(value - before.get(key, 0.0) for key, value in after.items())
