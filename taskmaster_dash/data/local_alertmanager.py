"""An Alertmanager of our own (Debian's `prometheus-alertmanager` binary): used by the demo and
by the integration tests. Its own config and storage directory, loopback only, a free port, no
cluster (so it never binds the gossip port)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from taskmaster_dash.data.local_prometheus import _free_port, stop_process, wait_until_ready

BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name

# The demo's config: the example's routing and inhibition, receivers that deliver nowhere (the
# demo has no pager); /alerts and Alertmanager's own UI show what it would send.
DEMO_CONFIG = """\
# Written by taskmaster-dash demo; rewritten on every start.
route:
  receiver: team-chat
  group_by: [alertname, service]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
  routes:
    - matchers: ['heartbeat="true"']
      receiver: heartbeat
    - matchers: ['severity="critical"']
      receiver: pager
    - matchers: ['severity="warning"']
      receiver: team-chat
inhibit_rules:
  - source_matchers: ['alertname="DatabaseConnectionFailures"']
    target_matchers: ['alertname=~"SlowQueries|HighPoolUtilisation"']
    equal: [service]
receivers:
  - name: heartbeat
  - name: pager
  - name: team-chat
"""


def alertmanager_binary() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


class LocalAlertmanager:
    def __init__(self, directory: Path, config: str = DEMO_CONFIG, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.directory / "alertmanager.yml"
        self.config.write_text(config, encoding="utf-8")
        self.log = self.directory / "alertmanager.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        binary = alertmanager_binary()
        if binary is None:
            raise FileNotFoundError("no prometheus-alertmanager binary on PATH")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config}",
                    f"--storage.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",  # one instance: no gossip port
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_until_ready(self.process, "alertmanager", self.url, self.log, timeout)

    def stop(self) -> None:
        stop_process(self.process)
