"""`taskmaster-dash serve`: gunicorn run from Python with the production settings
(gunicorn_conf.py's hooks, the app from the environment), so `serve` and the README's gunicorn
command are one server."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from taskmaster_dash import gunicorn_conf


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from taskmaster_dash.app import server

        return server


def run_gunicorn(bind: str, workers: int, threads: int) -> None:
    """Serve until SIGTERM or Ctrl-C. Several workers share their metrics through a
    PROMETHEUS_MULTIPROC_DIR: a fresh one of our own unless one is set."""
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tmdash-metrics-")
    _Gunicorn(
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "proc_name": "taskmaster-dash",
            "forwarded_allow_ips": gunicorn_conf.forwarded_allow_ips,
            "on_starting": gunicorn_conf.on_starting,
            "child_exit": gunicorn_conf.child_exit,
            "worker_exit": gunicorn_conf.worker_exit,
        }
    ).run()
