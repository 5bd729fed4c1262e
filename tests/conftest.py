"""Test fixtures: a throwaway PostgreSQL (embedded, or TEST_DATABASE_URL), the app, users per
role, and helpers to sign in through the browser or call a callback endpoint directly."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from taskmaster_dash.data.config import APP_DB_ROLE, load_settings, sqlalchemy_url
from taskmaster_dash.data.db import SYSTEM_ACTOR, Database
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.services import Services, current, install
from tests.support.auth import ROLE_PASSWORD, TestUsers

# The suite's apps (and the servers it starts, which inherit this) read every session from the
# database: many tests change users in SQL and check the very next request, which a session
# cache learns of only when the database's notice arrives a moment later. The cache and its
# notices have their own tests (test_session_cache*.py), which turn it on.
os.environ.setdefault("SESSION_CACHE_SECONDS", "0")

DATA_TABLES = (
    "error_logs, validation_results, workflow_states, task_dependencies, task_contexts, tasks"
)


def pytest_setup_options():
    """Chromium flags for dash_duo: no sandbox as root, and no calls to the closed network."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for flag in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    return options


class TestServer:
    """Owner and app URLs of a database that lives only for this test session."""

    def __init__(self, owner_url: str, app_url: str, stop=None) -> None:
        self.owner_url = owner_url
        self.app_url = app_url
        self._stop = stop

    def create_database(self, name: str) -> TestServer:
        """Another empty database on the same server (for tests that need their own)."""
        admin = create_engine(self.owner_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        owner = make_url(self.owner_url).set(database=name).render_as_string(hide_password=False)
        app = make_url(self.app_url).set(database=name).render_as_string(hide_password=False)
        return TestServer(owner, app)

    def stop(self) -> None:
        if self._stop:
            self._stop()


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    """Every test starts with the per-client throttle's counts empty: all tests share one client
    address, so failed sign-ins of earlier tests would otherwise count against later ones."""
    from taskmaster_dash.auth.throttle import reset_throttle

    reset_throttle()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestServer]:
    external = load_settings().test_database_url
    if external:
        base = sqlalchemy_url(external)
        name = f"tmdash_test_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        owner = make_url(base).set(database=name)
        app = owner.set(username=APP_DB_ROLE, password=None)
        yield TestServer(owner.render_as_string(hide_password=False), app.render_as_string())
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        return
    from taskmaster_dash.data.embedded import start_embedded

    tmp = Path(tempfile.mkdtemp(prefix="tmdash-pg-"))
    embedded = start_embedded(tmp / "pgdata", delete_on_stop=True)
    server = TestServer(embedded.owner_url, embedded.app_url, embedded.stop)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database(pg_server: TestServer) -> Iterator[Database]:
    migrate(pg_server.owner_url, pg_server.app_url)
    db = Database(pg_server.app_url)
    install(Services.build(load_settings(), db))  # create_app (dash_app) builds its own later
    yield db
    install(None)
    db.dispose()


@pytest.fixture
def services(database: Database) -> Iterator[Services]:
    """The process's services (the app's, once dash_app is built: a session fixture, so built
    before this one), with every cache empty before and after the test."""
    built = current()
    built.clear_caches()
    yield built
    built.clear_caches()


@pytest.fixture(scope="session")
def owner_engine(pg_server: TestServer, database: Database):
    engine = create_engine(pg_server.owner_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_data(owner_engine) -> None:
    """Empty task, validation and error tables (users and roles stay) before the test, and no
    answer computed from the rows before it in the caches."""
    with owner_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {DATA_TABLES}, audit_logs"))
    current().clear_caches()


@pytest.fixture(scope="session")
def users(database: Database) -> TestUsers:
    """One user per default role, named after the role, with the same known password."""
    from taskmaster_dash.data.users import create_user, login_record

    ids = {}
    for role in ("admin", "developer", "viewer", "api_client", "on_call"):
        username = f"test-{role.replace('_', '-')}"
        record = login_record(username)
        ids[role] = (
            record.id
            if record
            else create_user(SYSTEM_ACTOR, username, f"{username}@example.com", role, ROLE_PASSWORD)
        )
    return TestUsers(ids)


@pytest.fixture(scope="session")
def dash_app(database: Database):
    from taskmaster_dash.app import create_app

    return create_app(database, secret_key="test-secret-" + uuid.uuid4().hex, environment="testing")


@pytest.fixture
def client_as(dash_app, users):
    """client_as(role) -> a Flask test client signed in with that role's session."""
    from tests.support.auth import signed_in_client

    def make(role: str):
        return signed_in_client(dash_app, users.username(role), ROLE_PASSWORD)

    return make
