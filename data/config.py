"""Settings read from the environment, with the spec's variable names.

Nothing set means "embedded": the app starts its own PostgreSQL under the user's data directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import overload
from urllib.parse import quote

import platformdirs

APP_NAME = "taskmaster-dash"
APP_DB_ROLE = "taskmaster_app"  # the non-owner, non-superuser role RLS applies to


@overload
def _env(name: str) -> str | None: ...
@overload
def _env(name: str, default: str) -> str: ...
def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from exc


def sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+psycopg:// and return the psycopg 3 form."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def _url_from_parts(user: str, password: str | None, host: str, port: str, name: str) -> str:
    auth = quote(user, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"postgresql+psycopg://{auth}@{host}:{port}/{quote(name, safe='')}"


def default_data_dir() -> Path:
    return Path(_env("TASKMASTER_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))


@dataclass(frozen=True)
class Settings:
    # The app's own login (RLS applies to it). None means: use the embedded server.
    database_url: str | None
    # The owner's login, used only by `migrate` and `seed-demo`. Defaults to database_url.
    owner_database_url: str | None
    read_replica_url: str | None
    analytics_url: str | None
    ssl_mode: str | None
    pool_min: int
    pool_max: int
    slow_query_ms: int
    data_dir: Path
    prometheus_enabled: bool
    prometheus_url: str
    secret_key: str | None
    demo_mode: bool = False
    metrics_token: str | None = None  # bearer token Prometheus sends to /api/v1/metrics

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"


def load_settings(*, demo_mode: bool = False) -> Settings:
    database_url = _env("DATABASE_URL")
    db_host = _env("DB_HOST")
    if database_url is None and db_host:
        database_url = _url_from_parts(
            _env("DB_USER", APP_DB_ROLE),
            _env("DB_PASSWORD"),
            db_host,
            _env("DB_PORT", "5432"),
            _env("DB_NAME", "taskmaster"),
        )
    replica = _env("DB_READ_REPLICA_URL")
    replica_host = _env("DB_READ_REPLICA_HOST")
    if replica is None and replica_host and database_url:
        replica = _swap_host(database_url, replica_host)
    analytics = _env("DB_ANALYTICS_URL")
    analytics_host = _env("DB_ANALYTICS_HOST")
    if analytics is None and analytics_host and database_url:
        analytics = _swap_host(database_url, analytics_host)
    owner_url = _env("OWNER_DATABASE_URL")
    return Settings(
        database_url=sqlalchemy_url(database_url) if database_url else None,
        owner_database_url=sqlalchemy_url(owner_url) if owner_url else None,
        read_replica_url=sqlalchemy_url(replica) if replica else None,
        analytics_url=sqlalchemy_url(analytics) if analytics else None,
        ssl_mode=_env("DB_SSL_MODE"),
        pool_min=_env_int("DB_POOL_MIN", 2),
        pool_max=_env_int("DB_POOL_MAX", 10),
        slow_query_ms=_env_int("DB_SLOW_QUERY_MS", 1000),
        data_dir=default_data_dir(),
        prometheus_enabled=_env_bool("PROMETHEUS_ENABLED", False),
        prometheus_url=_env("PROMETHEUS_URL", "http://127.0.0.1:9090"),
        secret_key=_env("SECRET_KEY"),
        demo_mode=demo_mode,
        metrics_token=_env("METRICS_TOKEN"),
    )


def _swap_host(url: str, host: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url(url)).set(host=host).render_as_string(hide_password=False)
