"""The `taskmaster-dash` command: help, one-line errors, create-user, migrate."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

COMMANDS = ["serve", "demo", "migrate", "seed-demo", "create-user"]


def run_cli(args: list[str], pg_server=None, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pg_server is not None:
        env["DATABASE_URL"] = pg_server.app_url
        env["OWNER_DATABASE_URL"] = pg_server.owner_url
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run_cli([command, "--help"])
    assert result.returncode == 0
    assert f"usage: taskmaster-dash {command}" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["seed-demo", "--scale", "huge"],
        ["serve", "--port", "http"],
        ["serve", "--port", "70000"],
        ["create-user", "--username", "x"],
        ["no-such-command"],
    ],
)
def test_bad_arguments_get_one_line_and_a_non_zero_exit(args):
    result = run_cli(args)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_create_user_reads_the_password_from_stdin(pg_server, database, owner_engine):
    result = run_cli(
        [
            "create-user",
            "--username",
            "cli-user",
            "--email",
            "cli@example.com",
            "--role",
            "on_call",
            "--password-stdin",
        ],
        pg_server,
        stdin="Sturdy-Password-9\n",
    )
    assert result.returncode == 0, result.stderr
    with owner_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT r.role_name, u.password_hash LIKE '$argon2id$%' FROM users u"
                " JOIN user_roles r ON r.id = u.role_id WHERE u.username = 'cli-user'"
            )
        ).one()
    assert tuple(row) == ("on_call", True)


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short", "at least 10"),
        ("alllowercaseletters", "three of"),
        ("Cli-Weak-User-1", "username"),
    ],
)
def test_create_user_refuses_weak_passwords(pg_server, database, owner_engine, password, says):
    result = run_cli(
        [
            "create-user",
            "--username",
            "cli-weak-user",
            "--email",
            "weak@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        pg_server,
        stdin=password + "\n",
    )
    assert result.returncode == 1
    assert says in result.stderr and "Traceback" not in result.stderr
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM users WHERE username = 'cli-weak-user'")) == 0


def test_create_user_with_an_unknown_role_says_so(pg_server, database):
    result = run_cli(
        [
            "create-user",
            "--username",
            "cli-role",
            "--email",
            "r@example.com",
            "--role",
            "'; DROP TABLE users; --",
            "--password-stdin",
        ],
        pg_server,
        stdin="Sturdy-Password-9\n",
    )
    assert result.returncode == 1
    assert "no active role" in result.stderr


def test_migrate_twice_is_fine(pg_server, database):
    for _ in range(2):
        result = run_cli(["migrate"], pg_server)
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout
