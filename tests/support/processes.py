"""Ports and subprocesses the tests start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Reachable(Protocol):
    """A database the app reaches (the suite's servers, runtime.OpenedDatabase)."""

    app_url: str
    owner_url: str


def server_environment(
    database: Reachable,
    settings: Mapping[str, str] | None = None,
    *,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a `serve`/gunicorn process against `database`: `base` (this
    process's by default), a fresh secret key, no alert evaluator (a test starts its own),
    then `settings`."""
    return {
        **(os.environ if base is None else base),
        "DATABASE_URL": database.app_url,
        "OWNER_DATABASE_URL": database.owner_url,
        "SECRET_KEY": "test-" + uuid.uuid4().hex,
        "ALERTS_EVALUATOR": "off",
        **(settings or {}),
    }


def start_demo(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`taskmaster-dash demo ARGS` in a subprocess, and what it printed up to the line saying it
    serves (read line by line: the demo keeps running). The caller stops it."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "taskmaster_dash.cli", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    output = []
    assert demo.stdout is not None
    for line in demo.stdout:
        output.append(line)
        if "TaskMaster Dash on" in line:
            break
    return demo, "".join(output)
