"""Every setting the app reads from the environment, declared once (pydantic-settings).

Nothing set means "embedded": the app starts its own PostgreSQL under the user's data directory.
`load_settings()` reads and checks them all; a bad value raises `SettingsError`, one line naming
the variable and what is wrong, which `serve`, `demo` and gunicorn print before starting.
The README's configuration table is generated from this model:
`python -m taskmaster_dash.data.config --readme`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import quote, urlsplit

import platformdirs
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "taskmaster-dash"
APP_DB_ROLE = "taskmaster_app"  # the non-owner, non-superuser role RLS applies to

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def between(default: Any, low: Any, high: Any, description: str, **options: Any) -> Any:
    """A number setting with its bounds (inclusive)."""
    return Field(default, ge=low, le=high, description=description, **options)


class SettingsError(ValueError):
    """A setting with a bad value; the message is one line naming the variable."""


def _flag(value: Any) -> Any:
    """The one boolean rule: 1/true/yes/on or 0/false/no/off, in any case."""
    if isinstance(value, str):
        word = value.lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError("expected one of 1/true/yes/on or 0/false/no/off")
    return value


def sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+psycopg:// and return the psycopg 3 form."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def libpq_url(url: str, sslmode: str | None = None) -> str:
    """The psycopg 3 SQLAlchemy URL as libpq (psycopg.connect) takes it, with `sslmode`."""
    libpq = "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]
    if not sslmode:
        return libpq
    return f"{libpq}{'&' if '?' in libpq else '?'}sslmode={sslmode}"


def _url_with_scheme(url: str, *schemes: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return url


def _postgres_url(url: str) -> str:
    return _url_with_scheme(url, "postgresql", "postgres", "postgresql+psycopg")


def _http_url(url: str) -> str:
    return _url_with_scheme(url, "http", "https")


def _http_urls(value: str) -> str:
    """One http(s) URL or several, comma-separated (an Alertmanager HA pair)."""
    for url in value.split(","):
        _http_url(url.strip())
    return ",".join(url.strip().rstrip("/") for url in value.split(","))


def _redis_url(url: str) -> str:
    return _url_with_scheme(url, "redis", "rediss", "redis+unix", "redis+sentinel")


def _file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _directory(path: Path) -> Path:
    if not path.is_dir():
        raise ValueError(f"no such directory: {path}")
    return path


Flag = Annotated[bool, BeforeValidator(_flag)]
PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HttpUrls = Annotated[str, AfterValidator(_http_urls)]
RedisUrl = Annotated[str, AfterValidator(_redis_url)]
ExistingFile = Annotated[Path, AfterValidator(_file)]
ExistingDirectory = Annotated[Path, AfterValidator(_directory)]
Hours = Annotated[int, Field(ge=1, le=8760)]


def _service_tokens(value: Any) -> Any:
    """`cn1=user1,cn2=user2` -> {"cn1": "user1", "cn2": "user2"}."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        common_name, sep, username = (s.strip() for s in item.partition("="))
        if not sep or not common_name or not username:
            raise ValueError(f"expected common_name=username pairs, got {item!r}")
        pairs[common_name] = username
    return pairs


ServiceTokens = Annotated[dict[str, str], NoDecode, BeforeValidator(_service_tokens)]
# How the README's table names each checked type.
KINDS: dict[object, str] = {
    _flag: "yes/no",
    _postgres_url: "PostgreSQL URL",
    _http_url: "http(s) URL",
    _http_urls: "http(s) URLs, comma-separated",
    _redis_url: "Redis URL",
    _file: "file",
    _directory: "directory",
    _service_tokens: "`name=user,...`",
}


class Settings(BaseSettings):
    """Field descriptions are the README's "meaning" column."""

    # A variable is its field's name in capitals, unless the field names another (`alias`).
    model_config = SettingsConfigDict(
        alias_generator=str.upper, case_sensitive=False, env_ignore_empty=True, extra="ignore"
    )

    # --- PostgreSQL -------------------------------------------------------------------------
    database_url: PostgresUrl | None = Field(
        None,
        description="the app's login (a role that is neither superuser nor table owner, so RLS "
        "applies); unset (with `DB_HOST` unset too) means the embedded database",
    )
    db_host: str | None = Field(
        None, description="the same in parts, used when `DATABASE_URL` is unset"
    )
    db_port: int = between(5432, 1, 65535, "with `DB_HOST`")
    db_name: str = Field("taskmaster", description="with `DB_HOST`")
    db_user: str = Field(APP_DB_ROLE, description="with `DB_HOST`")
    db_password: str | None = Field(None, repr=False, description="with `DB_HOST`")
    ssl_mode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = Field(None, alias="DB_SSL_MODE", description="libpq `sslmode`")
    owner_database_url: PostgresUrl | None = Field(
        None,
        description="the schema owner's login, for `migrate` and `seed-demo` "
        "(default: the app's login)",
    )
    read_replica_url: PostgresUrl | None = Field(
        None, alias="DB_READ_REPLICA_URL", description="read pool on a replica"
    )
    read_replica_host: str | None = Field(
        None,
        alias="DB_READ_REPLICA_HOST",
        description="read pool on a replica: the app's login with this host",
    )
    analytics_url: PostgresUrl | None = Field(
        None, alias="DB_ANALYTICS_URL", description="analytics pool elsewhere"
    )
    analytics_host: str | None = Field(
        None,
        alias="DB_ANALYTICS_HOST",
        description="analytics pool elsewhere: the app's login with this host",
    )
    pool_max: int = between(
        10,
        1,
        1000,
        "connections per process, split as the spec says: read 60%, write 30%, "
        "analytics 10% (rounded up); background 2 more",
        alias="DB_POOL_MAX",
    )
    pool_min: int = between(
        2,
        0,
        1000,
        "connections opened at start and kept: read 40%, write 30% (rounded up), "
        "analytics and background 1 each; at most `DB_POOL_MAX`",
        alias="DB_POOL_MIN",
    )
    slow_query_ms: int = Field(
        1000, alias="DB_SLOW_QUERY_MS", ge=1, description="slow-query threshold in milliseconds"
    )
    test_database_url: PostgresUrl | None = Field(
        None,
        description="tests only: an owner login to use instead of the embedded server",
    )
    data_dir: Path = Field(
        Path(platformdirs.user_data_dir(APP_NAME)),
        alias="TASKMASTER_DATA_DIR",
        description="where the embedded database and demo logins live",
    )

    # --- sign-in and sessions ---------------------------------------------------------------
    secret_key: str | None = Field(
        None,
        repr=False,
        description="signs sessions, the same on every worker; required except in `demo`, "
        "which generates one and says so",
    )
    session_cookie_secure: Flag = Field(
        False,
        description="always mark the session cookie Secure (it is anyway over HTTPS)",
    )
    login_max_attempts: int = between(5, 1, 10, "failed sign-ins before a lockout")
    login_lock_minutes: int = between(15, 1, 1440, "how long a lockout lasts")
    session_idle_hours: Hours = Field(
        168,
        description="a session ends after this long without a request (7 days)",
    )
    session_max_hours: Hours = Field(
        720,
        description="a session ends this long after sign-in (30 days)",
    )
    session_cache_seconds: int = between(
        30,
        0,
        60,
        "keep each signed-in session in the worker's memory this long (0: read it from the "
        "database on every request); ending or changing it, in the app or in SQL, takes "
        "effect at once (the database tells every worker)",
    )
    throttle_failures_per_minute: int = between(
        10, 1, 100_000, "failed sign-ins and wrong API keys per client address"
    )
    throttle_api_requests_per_minute: int = between(600, 1, 1_000_000, "API requests per key")
    redis_url: RedisUrl | None = Field(
        None,
        description="keep the throttle's counts in Redis, shared by every worker and host "
        "(unset: in memory, per process)",
    )
    cf_access_team_domain: str | None = Field(
        None,
        description="Cloudflare Access sign-in: your team (`myteam` or "
        "`myteam.cloudflareaccess.com`); needs `CF_ACCESS_AUD` too",
    )
    cf_access_aud: str | None = Field(
        None, description="Cloudflare Access application audience tag"
    )
    cf_access_certs_url: HttpUrl | None = Field(
        None,
        description="Cloudflare Access signing keys (default: the team's `/cdn-cgi/access/certs`)",
    )
    cf_access_service_tokens: ServiceTokens = Field(
        {},
        description="Cloudflare Access service tokens allowed on the API: "
        "`common_name=username` pairs, comma-separated (the token's `common_name`, its client "
        "id, signs in as that user)",
    )
    api_max_body_bytes: int = between(
        1_048_576, 1024, 100_000_000, "largest request body the REST API accepts (413 above it)"
    )
    jwt_secret: str | None = Field(
        None,
        repr=False,
        description="accept Bearer tokens issued by the original TaskMaster API "
        "(see Using it on your TaskMaster database)",
    )
    trusted_proxy_count: int = between(
        0,
        0,
        10,
        "believe `X-Forwarded-For/-Proto/-Host` from that many proxies (Secure "
        "cookies, HSTS and the client's address behind TLS termination; see Security)",
    )

    # --- metrics and Prometheus -------------------------------------------------------------
    prometheus_enabled: Flag = Field(False, description="read metrics back from Prometheus")
    prometheus_url: HttpUrl = Field("http://127.0.0.1:9090", description="the Prometheus to read")
    promql_config: ExistingFile | None = Field(
        None,
        description="a YAML file overriding the PromQL behind the panels "
        "(see Pools, metrics and Prometheus)",
    )
    metrics_token: str | None = Field(
        None, repr=False, description="bearer token for `/api/v1/metrics`"
    )
    prometheus_multiproc_dir: ExistingDirectory | None = Field(
        None,
        description="an empty directory shared by the gunicorn workers' metrics",
    )

    # --- alerts -----------------------------------------------------------------------------
    alerts_evaluator: Flag = Field(
        True,
        description="`off` keeps the evaluator out of `serve`/`demo`/gunicorn "
        "(run `alerts run` elsewhere)",
    )
    alerts_interval_seconds: float = between(15, 1, 3600, "evaluation interval")
    alerts_rules_file: ExistingFile | None = Field(
        None,
        description="another rules file instead of `alerts/rules.yaml`",
    )
    alert_webhook_url: HttpUrl | None = Field(
        None,
        description="where to post notifications (Alertmanager webhook format)",
    )
    alertmanager_url: HttpUrls | None = Field(
        None,
        alias="ALERTMANAGER_URL",
        description="Alertmanager(s) the evaluator sends alerts to and silences go to "
        "(several, comma-separated, for an HA pair); unset: the webhook and in-app silences only",
    )
    alerts_external_url: HttpUrl | None = Field(
        None,
        description="the dashboard's public URL, for links in notifications",
    )
    analytics_refresh_seconds: float = between(
        60, 1, 3600, "how often the analytics rollups are brought up to date"
    )
    panel_cache_seconds: float = between(
        60,
        0,
        3600,
        "how long a chart's data is shared by callers who may see the same rows (never longer "
        "than one of its buckets; the rollup refresh ends it too); 0: off",
    )
    environment: Literal["production", "development", "testing"] = Field(
        "production",
        alias="TASKMASTER_ENV",
        description="reported by the health routes; `testing` also keeps the analytics "
        "refresher out (the tests refresh on demand)",
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        """Surrounding spaces are dropped and a blank value means "not set"."""
        if not isinstance(values, dict):
            return values
        stripped = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
        return {k: v for k, v in stripped.items() if v != ""}

    @model_validator(mode="after")
    def _pool_min_within_max(self) -> Settings:
        if self.pool_min > self.pool_max:
            raise ValueError(
                f"DB_POOL_MIN: must be at most DB_POOL_MAX ({self.pool_max}), got {self.pool_min}"
            )
        return self

    @model_validator(mode="after")
    def _resolve_urls(self) -> Settings:
        """DB_HOST and its parts build the app's URL; *_HOST swaps the host of that URL; every
        URL ends in the psycopg 3 form."""
        if self.database_url is None and self.db_host:
            self.database_url = _url_from_parts(
                self.db_user, self.db_password, self.db_host, self.db_port, self.db_name
            )
        for name in ("database_url", "owner_database_url", "read_replica_url", "analytics_url"):
            url = getattr(self, name)
            if url:
                setattr(self, name, sqlalchemy_url(url))
        if self.database_url and self.read_replica_url is None and self.read_replica_host:
            self.read_replica_url = _swap_host(self.database_url, self.read_replica_host)
        if self.database_url and self.analytics_url is None and self.analytics_host:
            self.analytics_url = _swap_host(self.database_url, self.analytics_host)
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"


def _url_from_parts(user: str, password: str | None, host: str, port: int, name: str) -> str:
    auth = quote(user, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"postgresql+psycopg://{auth}@{host}:{port}/{quote(name, safe='')}"


def _swap_host(url: str, host: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(host=host).render_as_string(hide_password=False)


def _problem(error: ErrorDetails) -> str:
    """ "DB_PORT: should be less than or equal to 65535, got '70000'" from a pydantic error."""
    message = error["msg"].removeprefix("Value error, ").replace("Input should", "should")
    if not error["loc"]:  # a rule over several variables names them itself
        return message
    name = str(error["loc"][0]).upper()
    return f"{name}: {message}, got {_without_password(error['input'])!r}"


def _without_password(value: Any) -> Any:
    """A URL as it may be printed: its password, if any, replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value) if isinstance(value, str) else value


def load_settings() -> Settings:
    """Every setting from the environment, checked; `SettingsError` names what is wrong."""
    try:
        return Settings()  # type: ignore[call-arg]  # every field has a default; mypy misses it
    except ValidationError as exc:
        raise SettingsError("; ".join(_problem(e) for e in exc.errors())) from None


def default_data_dir() -> Path:
    return load_settings().data_dir


def _default_shown(field: Any) -> str:
    default = field.default
    if default is None or default == {}:
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, Path):
        return "`~/.local/share/taskmaster-dash` (Linux)"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def _kind(field: Any) -> str:
    """'whole number 1–65535', 'yes/no', 'one of `a`, `b`', 'PostgreSQL URL', 'text'..."""
    base = field.annotation
    if get_origin(base) in (Union, UnionType):  # X | None: describe X
        base = next(a for a in get_args(base) if a is not type(None))
    for meta in [*field.metadata, *getattr(base, "__metadata__", ())]:
        kind = KINDS.get(getattr(meta, "func", None))
        if kind:
            return kind
    if get_origin(base) is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in get_args(base))
    low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in field.metadata if hasattr(m, "le")), None)
    bounds = f" {low}–{high}" if low is not None and high is not None else ""
    bounds = bounds or (f" ≥ {low}" if low is not None else "")
    names = {int: "whole number", float: "number", Path: "path", str: "text"}
    return names.get(base, "text") + bounds


def settings_table() -> str:
    """The README's configuration table: one row per variable, from the model."""
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for field in Settings.model_fields.values():
        rows.append(
            f"| `{field.alias}` | {_kind(field)} | {_default_shown(field)} | {field.description} |"
        )
    return "\n".join(rows) + "\n"


TABLE_START = (
    "<!-- settings table: generated by `python -m taskmaster_dash.data.config --readme` -->\n"
)
TABLE_END = "<!-- end of settings table -->\n"


def readme_with_table(readme: str) -> str:
    """The README with its generated block replaced by the current table."""
    head, start, rest = readme.partition(TABLE_START)
    _, end, tail = rest.partition(TABLE_END)
    if not start or not end:
        raise ValueError("the README has no generated settings table block")
    return head + start + settings_table() + end + tail


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        readme = Path(__file__).resolve().parents[2] / "README.md"
        readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    elif sys.argv[1:] == ["--markdown"]:
        print(settings_table(), end="")
    else:
        sys.exit("usage: python -m taskmaster_dash.data.config --markdown | --readme")
