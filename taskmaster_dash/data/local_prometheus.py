"""A Prometheus of our own (the `prometheus` binary on PATH) scraping the app: used by the demo
and by the integration tests. Its own config and data directory, loopback only, a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(
    process: subprocess.Popen, name: str, url: str, log: Path, timeout: float
) -> None:
    """Wait for a local Prometheus or Alertmanager to answer `/-/ready`; stop it and say where
    its log is if it exits or does not become ready in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited; see {log}")
        try:
            if requests.get(f"{url}/-/ready", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"{name} did not become ready in {timeout:.0f} s; see {log}")


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a server we started, killing it if it does not stop in 20 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class LocalServer:
    """A Prometheus or Alertmanager of our own: its directory (config, log, data), a loopback
    port, the process once started."""

    name = ""  # the log's name and what errors call it
    program = ""  # the binary's name, for the error when PATH has none

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.directory / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def binary() -> str | None:
        raise NotImplementedError

    def arguments(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30) -> None:
        binary = self.binary()
        if binary is None:
            raise FileNotFoundError(f"no {self.program} binary on PATH")
        with open(self.log, "ab") as log:
            # The binary itself, no shell: self.process.pid is the server's own PID.
            self.process = subprocess.Popen(
                [binary, *self.arguments()], stdout=subprocess.DEVNULL, stderr=log
            )
        wait_until_ready(self.process, self.name, self.url, self.log, timeout)

    def stop(self) -> None:
        stop_process(self.process)


class LocalPrometheus(LocalServer):
    name = program = "prometheus"
    binary = staticmethod(prometheus_binary)

    def __init__(
        self,
        directory: Path,
        target: str,
        *,
        token: str | None,
        scrape_interval: str = "5s",
        retention: str = "7d",
    ) -> None:
        """`target` is host:port of the app; `token` the bearer token it expects."""
        super().__init__(directory)
        self.retention = retention
        self.config = self.directory / "prometheus.yml"
        auth = (
            f"    authorization:\n      type: Bearer\n      credentials: {token}\n" if token else ""
        )
        self.config.write_text(
            "# Written by taskmaster-dash; rewritten on every start.\n"
            f"global:\n  scrape_interval: {scrape_interval}\n"
            f"  evaluation_interval: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: taskmaster\n"
            "    metrics_path: /api/v1/metrics\n"
            f"{auth}"
            f'    static_configs:\n      - targets: ["{target}"]\n'
        )
        self.config.chmod(0o600)  # holds the token

    def arguments(self) -> list[str]:
        return [
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
