"""An Alertmanager of our own (Debian's `prometheus-alertmanager` binary): used by the demo and
by the integration tests. Its own config and storage directory, loopback only, a free port, no
cluster (so it never binds the gossip port)."""

from __future__ import annotations

import shutil
from pathlib import Path

from taskmaster_dash.data.local_prometheus import LocalServer

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


class LocalAlertmanager(LocalServer):
    name, program = "alertmanager", "prometheus-alertmanager"
    binary = staticmethod(alertmanager_binary)

    def __init__(self, directory: Path, config: str = DEMO_CONFIG, port: int | None = None) -> None:
        super().__init__(directory, port)
        self.config = self.directory / "alertmanager.yml"
        self.config.write_text(config, encoding="utf-8")

    def arguments(self) -> list[str]:
        return [
            f"--config.file={self.config}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.level=warn",
        ]
