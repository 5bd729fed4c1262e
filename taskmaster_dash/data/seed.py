"""Demo data generated inside PostgreSQL (sql/seed/*.sql), chunk by chunk with a progress bar.

Runs as the owner with triggers off (session_replication_role = replica): a bulk load is not a
change made through the app, so it is not audited row by row. The generators only refer to rows
they have already created, and a test checks the foreign keys afterwards.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import TextClause, create_engine, text

from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.users import create_user, login_record, set_password
from taskmaster_dash.resources import shipped

SEED_DIR = shipped("sql", "seed")
CHUNK_ROWS = 100_000
DEMO_ROLES = ("admin", "developer", "viewer", "api_client", "on_call")


@dataclass(frozen=True)
class Scale:
    tasks: int
    validations: int
    errors: int
    days: int = 30


SCALES = {
    "small": Scale(tasks=3_000, validations=9_000, errors=12_000),
    "medium": Scale(tasks=100_000, validations=300_000, errors=500_000),
    "large": Scale(tasks=1_000_000, validations=3_000_000, errors=5_000_000),
}

Progress = Callable[[str, int, int], None]


def text_progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(
        f"\r  {label:<22} [{'#' * filled}{'.' * (width - filled)}] {done:>10,}/{total:,}"
    )
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def database_has_tasks(owner_url: str) -> bool:
    engine = create_engine(owner_url)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(text("SELECT EXISTS (SELECT 1 FROM tasks)")))
    finally:
        engine.dispose()


def _statements(path: Path) -> list[TextClause]:
    """The file's statements (each ends with ';' at the end of a line): one per execute."""
    parts = re.split(r";[ \t]*\n", path.read_text(encoding="utf-8"))
    return [text(part) for part in parts if part.strip()]


def seed_demo_data(owner_url: str, scale: Scale, progress: Progress = text_progress) -> None:
    """Generate `scale` rows; the tables must be empty of demo data (see `clear_demo_data`)."""
    steps = [
        ("tasks", "01_tasks.sql", scale.tasks),
        ("contexts and workflow", "02_links.sql", scale.tasks),
        ("validation results", "03_validations.sql", scale.validations),
        ("errors", "04_errors.sql", scale.errors),
    ]
    engine = create_engine(owner_url)
    try:
        for label, filename, total in steps:
            statements = _statements(SEED_DIR / filename)
            progress(label, 0, total)
            for lo in range(1, total + 1, CHUNK_ROWS):
                hi = min(lo + CHUNK_ROWS - 1, total)
                with engine.begin() as conn:
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                    for statement in statements:
                        conn.execute(
                            statement,
                            {"lo": lo, "hi": hi, "n_tasks": scale.tasks, "days": scale.days},
                        )
                progress(label, hi, total)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def clear_demo_data(owner_url: str) -> None:
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "TRUNCATE error_logs, validation_results, workflow_states, task_dependencies,"
                    " task_contexts, tasks"
                )
            )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class DemoLogin:
    role: str
    username: str
    password: str


def demo_username(role: str) -> str:
    """The demo account of a role: the role's name with '-' for '_' (`on_call` -> `on-call`)."""
    return role.replace("_", "-")


def ensure_demo_logins(data_dir: Path) -> list[DemoLogin]:
    """One account per role, with random passwords kept (0600) beside the embedded database.

    demo-logins.json maps each username to its password, exactly the names that sign in.
    Demo mode only: these credentials never exist outside a demo data directory.
    """
    path = data_dir / "demo-logins.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    # Files written before names and keys agreed were keyed by role (`on_call`).
    passwords = {demo_username(name): password for name, password in kept.items()}
    logins = []
    for role in DEMO_ROLES:
        username = demo_username(role)
        record = login_record(username)
        if record is None:
            passwords[username] = passwords.get(username) or f"Demo-{secrets.token_urlsafe(9)}"
            email = f"{username}@demo.taskmaster.invalid"
            create_user(SYSTEM_ACTOR, username, email, role, passwords[username])
        elif username not in passwords:
            passwords[username] = f"Demo-{secrets.token_urlsafe(9)}"
            set_password(SYSTEM_ACTOR, record.id, passwords[username])
        logins.append(DemoLogin(role, username, passwords[username]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps({login.username: login.password for login in logins}, indent=2))
    return logins
