"""Ports and subprocesses the tests start."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
