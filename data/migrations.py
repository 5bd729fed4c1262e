"""Numbered SQL migrations in sql/migrations, applied in order and recorded in schema_migrations.

Each file runs in its own transaction under an advisory lock, so two processes migrating at once
do not collide, and running `migrate` twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
_FILE_PATTERN = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_310_001  # advisory lock id for migrations


@dataclass(frozen=True)
class Migration:
    version: str
    description: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append(Migration(match[1], match[2].replace("_", " "), path))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"two migrations share a version number in {directory}")
    return found


def applied_versions(owner_engine: Engine) -> set[str]:
    with owner_engine.connect() as conn:
        exists = conn.scalar(text("SELECT to_regclass('public.schema_migrations') IS NOT NULL"))
        if not exists:
            return set()
        return set(conn.scalars(text("SELECT version FROM schema_migrations")))


def apply_migrations(owner_engine: Engine) -> list[str]:
    """Apply every pending migration; return the versions applied now."""
    applied_now: list[str] = []
    with owner_engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
        try:
            conn.commit()
            with conn.begin():
                conn.execute(
                    text(
                        """CREATE TABLE IF NOT EXISTS schema_migrations (
                               version VARCHAR(20) PRIMARY KEY,
                               description TEXT NOT NULL,
                               applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                               checksum VARCHAR(64) NOT NULL)"""
                    )
                )
            done = set(conn.scalars(text("SELECT version FROM schema_migrations")))
            conn.commit()
            for migration in available_migrations():
                if migration.version in done:
                    continue
                with conn.begin():
                    # The raw cursor sends the file as-is: several statements, $$ bodies, and
                    # no parameter parsing of the % signs in format() strings.
                    conn.connection.cursor().execute(migration.sql)
                    conn.execute(
                        text(
                            "INSERT INTO schema_migrations (version, description, checksum) "
                            "VALUES (:v, :d, :c)"
                        ),
                        {
                            "v": migration.version,
                            "d": migration.description,
                            "c": migration.checksum,
                        },
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
            conn.commit()
    return applied_now
