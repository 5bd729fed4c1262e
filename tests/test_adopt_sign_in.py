"""The original's people sign in as they are, on an adopted database: a bcrypt password (then
stored as argon2), an original API key, and a Bearer JWT from the original API when JWT_SECRET
is set (HS256 only)."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import jwt
import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from taskmaster_dash.data.db import Database
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.services import current
from tests.original_taskmaster import (
    ADMIN_ID,
    API_KEY,
    BCRYPT_PASSWORD,
    BCRYPT_USER,
    EXPECTED_FAILURES,
    build_original,
    fill_original,
)
from tests.support.auth import sign_in
from tests.support.sql import column, scalar, tuples

SECRET = "original-api-secret-" + "x" * 16


@pytest.fixture(scope="module")
def adopted_server(pg_server):
    """An original TaskMaster database, migrated."""
    server = pg_server.create_database(f"signin_{uuid.uuid4().hex[:8]}")
    assert build_original(server.owner_url) == EXPECTED_FAILURES
    fill_original(server.owner_url)
    migrate(server.owner_url, server.app_url, adopt=True)
    return server


@pytest.fixture(scope="module")
def adopted(adopted_server, database):
    """The adopted database, read by the app for these tests; yields an owner's engine."""
    server = adopted_server
    adopted_db = Database(server.app_url)
    engine = create_engine(server.owner_url)
    with current().using(database=adopted_db):
        yield engine
    adopted_db.dispose()
    engine.dispose()


def original_token(secret: str = SECRET, algorithm: str = "HS256", **changes) -> str:
    claims = {
        "userId": str(ADMIN_ID),
        "username": BCRYPT_USER,
        "email": "alice@example.com",
        "role": "admin",
        "permissions": ["*"],
        "iss": "taskmaster-api",
        "aud": "taskmaster-client",
        "iat": int(time.time()),
        "exp": int(time.time()) + 24 * 3600,
        **changes,
    }
    return jwt.encode(claims, secret, algorithm=algorithm)


def me(dash_app, **headers):
    return dash_app.server.test_client().get("/api/v1/me", headers=headers)


def test_a_bcrypt_user_signs_in_and_gets_an_argon2_hash(adopted, dash_app):
    with adopted.connect() as conn:
        before = conn.scalar(
            text("SELECT password_hash FROM users WHERE username = :u"), {"u": BCRYPT_USER}
        )
    assert before.startswith("$2b$")
    client = dash_app.server.test_client()
    assert sign_in(client, BCRYPT_USER, "wrong-Password-1").status_code != 302
    response = sign_in(client, BCRYPT_USER, BCRYPT_PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert client.get("/api/v1/me").get_json()["username"] == BCRYPT_USER
    with adopted.connect() as conn:
        after = conn.scalar(
            text("SELECT password_hash FROM users WHERE username = :u"), {"u": BCRYPT_USER}
        )
    assert after.startswith("$argon2id$")
    # The new hash works, the old one is gone.
    assert sign_in(dash_app.server.test_client(), BCRYPT_USER, BCRYPT_PASSWORD).status_code == 302


def test_an_original_api_key_without_expiry_still_works(adopted, dash_app):
    response = me(dash_app, **{"X-API-Key": API_KEY})
    assert response.status_code == 200
    assert response.get_json()["username"] == BCRYPT_USER
    assert me(dash_app, **{"X-API-Key": API_KEY + "x"}).status_code == 401


def test_an_original_jwt_is_accepted_only_as_hs256_with_our_secret(adopted, dash_app, monkeypatch):
    token = original_token()
    assert me(dash_app, Authorization=f"Bearer {token}").status_code == 401  # JWT_SECRET unset
    monkeypatch.setenv("JWT_SECRET", SECRET)
    response = me(dash_app, Authorization=f"Bearer {token}")
    assert response.status_code == 200
    assert response.get_json()["username"] == BCRYPT_USER
    refused = {
        "another secret": original_token(secret="someone-elses-secret-0123456789"),
        "alg none": original_token(secret="", algorithm="none"),
        "HS512": original_token(algorithm="HS512"),
        "expired": original_token(exp=int(time.time()) - 60),
        "other issuer": original_token(iss="someone-else"),
        "other audience": original_token(aud="another-client"),
        "unknown user": original_token(userId=str(uuid.uuid4())),
        "not a uuid": original_token(userId="alice' OR 1=1 --"),
    }
    for why, bad in refused.items():
        assert me(dash_app, Authorization=f"Bearer {bad}").status_code == 401, why
    assert me(dash_app, Authorization="Bearer " + "a" * 5000).status_code == 401
    # A locked user's token stops working at once.
    with adopted.begin() as conn:
        conn.execute(
            text("UPDATE users SET locked_until = now() + interval '1 hour' WHERE id = :id"),
            {"id": ADMIN_ID},
        )
    assert me(dash_app, Authorization=f"Bearer {token}").status_code == 401
    with adopted.begin() as conn:
        conn.execute(text("UPDATE users SET locked_until = NULL WHERE id = :id"), {"id": ADMIN_ID})


def test_the_dashboard_shows_the_adopted_rows(adopted, dash_app):
    response = me(dash_app, **{"X-API-Key": API_KEY})
    assert response.status_code == 200
    client = dash_app.server.test_client()
    body = client.get("/api/v1/analytics/errors?range=30d", headers={"X-API-Key": API_KEY})
    assert body.status_code == 200, body.get_data(as_text=True)[:300]
    top = {
        r["error_code"]: r["occurrences"]
        for r in body.get_json()["data"]["panels"]["errors-top"]["rows"]
    }
    with adopted.connect() as conn:
        truth = dict(
            conn.execute(
                text("SELECT error_code, sum(occurrence_count) FROM error_logs GROUP BY 1")
            ).all()
        )
    assert top and top == {code: truth[code] for code in top}


def test_the_original_services_writes_pass_our_rules_and_are_audited(adopted):
    """Its services write as the table owner, with the original's columns only."""
    assignee = f"owner-{uuid.uuid4().hex[:8]}"
    with adopted.begin() as conn:
        task_id = conn.scalar(
            text(
                "INSERT INTO tasks (title, type, status, priority, assigned_to, created_at) "
                "VALUES ('From the original API', 'feature', 'pending', 3, :a, "
                "now() - interval '2 hours') RETURNING id"
            ),
            {"a": assignee},
        )
        conn.execute(
            text(
                "INSERT INTO workflow_states (workflow_id, task_id, step, status) "
                "VALUES ('wf-new', :t, 'build', 'running')"
            ),
            {"t": task_id},
        )
        conn.execute(text("UPDATE tasks SET status = 'completed' WHERE id = :t"), {"t": task_id})
    assert audited(adopted, "tasks", task_id) == ["create", "status_change"]
    started = scalar(
        adopted, "SELECT started_at IS NOT NULL FROM workflow_states WHERE workflow_id = 'wf-new'"
    )
    assert started  # the default the original services rely on is kept
    with pytest.raises(Exception, match="tasks_status_check"), adopted.begin() as conn:
        conn.execute(text("INSERT INTO tasks (title, status) VALUES ('bad', 'blocked')"))
    assert tasks_rolled_up(adopted, assignee) == {("completed", "feature")}


def audited(owner, table: str, row_id) -> list[str]:
    """The audit log's actions on one row, oldest first."""
    return column(
        owner,
        "SELECT action FROM audit_logs WHERE entity_type = :table AND entity_id = :id "
        'ORDER BY "timestamp"',
        table=table,
        id=row_id,
    )


def rolled_up(owner, sql: str, **params) -> list[tuple]:
    """The rows `sql` reads from the rollups after the refresh the app runs every minute. They
    hold complete hours (the dashboard reads the current one from the tables themselves), so
    the tests' rows are created two hours ago."""
    with owner.begin() as conn:
        conn.execute(text("SELECT * FROM analytics_refresh(3)"))
    return tuples(owner, sql, **params)


def tasks_rolled_up(owner, assignee: str) -> set[tuple[str, str]]:
    """(status, type) of the tasks created for assignee, as the rollups hold them."""
    return set(
        rolled_up(
            owner,
            "SELECT status, type FROM analytics_task_hourly "
            "WHERE level = 0 AND assignee = :a AND created_n > 0",
            a=assignee,
        )
    )


@pytest.fixture
def service_login(adopted):
    """A PostgreSQL login of an original service, a member of taskmaster_api_client as the
    original deployment made them; yields an engine connected as it."""
    name, password = f"svc_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with adopted.begin() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
        conn.execute(text(f"GRANT taskmaster_api_client TO {name}"))
    url = adopted.url.set(username=name, password=password)
    engine = create_engine(url)
    yield engine
    engine.dispose()
    with adopted.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {name}"))
        conn.execute(text(f"DROP ROLE {name}"))


@contextmanager
def as_role(service_login: Engine, role: str) -> Iterator[Connection]:
    """A transaction of the service's login after SET ROLE `role`, as the original's services
    switched to the role they run as."""
    with service_login.begin() as conn:
        conn.execute(text(f"SET ROLE {role}"))
        yield conn


def test_an_original_service_with_set_role_writes_as_its_role_allows(adopted, service_login):
    """taskmaster_api_client keeps the original's access: our api_client's permissions."""
    assignee = f"svc-{uuid.uuid4().hex[:8]}"
    with as_role(service_login, "taskmaster_api_client") as conn:
        task_id = conn.scalar(
            text(
                "INSERT INTO tasks (title, type, status, priority, assigned_to, created_at) "
                "VALUES ('From a service', 'bug', 'pending', 2, :a, "
                "now() - interval '2 hours') RETURNING id"
            ),
            {"a": assignee},
        )
        updated = conn.execute(
            text("UPDATE tasks SET status = 'in_progress' WHERE id = :t"), {"t": task_id}
        ).rowcount
        seen = conn.scalar(text("SELECT count(*) FROM tasks WHERE id = :t"), {"t": task_id})
    assert (updated, seen) == (1, 1)
    trail = tuples(
        adopted,
        "SELECT action, user_id FROM audit_logs WHERE entity_type = 'tasks' "
        'AND entity_id = :t ORDER BY "timestamp"',
        t=task_id,
    )
    assert trail == [("create", None), ("status_change", None)]
    assert tasks_rolled_up(adopted, assignee) == {("in_progress", "bug")}
    # Our constraints hold for it as for anyone.
    with (
        pytest.raises(Exception, match="tasks_status_check"),
        as_role(service_login, "taskmaster_api_client") as conn,
    ):
        conn.execute(text("INSERT INTO tasks (title, status) VALUES ('bad', 'blocked')"))
    # api_client has no errors:write, in the original's policies as in ours: refused.
    with (
        pytest.raises(Exception, match="row-level security"),
        as_role(service_login, "taskmaster_api_client") as conn,
    ):
        conn.execute(
            text(
                "INSERT INTO error_logs (task_id, error_code, error_category, error_severity, "
                "error_message, service_name) VALUES (:t, 'SVC-1', 'system', 'high', "
                "'from a service', 'original-api')"
            ),
            {"t": task_id},
        )


def test_only_the_original_roles_get_their_access_without_a_current_user(
    adopted, adopted_server, service_login
):
    """The login itself (no SET ROLE), a user setting app.current_user_id, and taskmaster_app
    without one: each decided by our rules, not by the original's roles."""
    with service_login.begin() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 0
    # The original's set_user_context() never could switch roles: it is SECURITY DEFINER.
    with pytest.raises(Exception, match="security-definer"), service_login.begin() as conn:
        conn.execute(text("SELECT set_user_context('taskmaster_api_client')"))
    with (
        pytest.raises(Exception, match="row-level security"),
        as_role(service_login, "taskmaster_api_client") as conn,
    ):
        unknown = {"u": str(uuid.uuid4())}
        conn.execute(text("SELECT set_config('app.current_user_id', :u, true)"), unknown)
        conn.execute(text("INSERT INTO tasks (title) VALUES ('as an unknown user')"))
    with adopted.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) > 0
    app = create_engine(adopted_server.app_url)  # taskmaster_app's login, as the app connects
    try:
        with app.begin() as conn:
            assert conn.scalar(text("SELECT count(*) FROM tasks")) == 0
            assert conn.scalar(text("SELECT count(*) FROM error_logs")) == 0
            with pytest.raises(Exception, match="row-level security"):
                conn.execute(text("INSERT INTO tasks (title) VALUES ('no user')"))
    finally:
        app.dispose()


def test_pools_charts_the_performance_metrics_for_who_may_see_pools(adopted, dash_app):
    from taskmaster_dash.auth.passwords import hash_password
    from tests.support.auth import signed_in_client
    from tests.support.callbacks import call_callback, callback_values

    admin = signed_in_client(dash_app, BCRYPT_USER, BCRYPT_PASSWORD)
    response = call_callback(admin, dash_app, "pools-perf-metrics.figure", [1, "24h"])
    assert response.status_code == 200
    figure = callback_values(response)["pools-perf-metrics"]["figure"]
    charted = {trace["name"] for trace in figure["data"]}
    with adopted.connect() as conn:
        series = set(
            conn.scalars(
                text(
                    "SELECT DISTINCT metric_type || ' · ' || metric_name FROM performance_metrics "
                    "WHERE \"timestamp\" >= now() - interval '24 hours'"
                )
            )
        )
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE username = 'bob'"),
            {"h": hash_password(BCRYPT_PASSWORD)},
        )
        conn.commit()
    assert charted == series and len(series) == 4
    # bob's developer role has no pools:read: refused before any query; garbage input too.
    developer = signed_in_client(dash_app, "bob", BCRYPT_PASSWORD)
    assert (
        call_callback(developer, dash_app, "pools-perf-metrics.figure", [1, "24h"]).status_code
        == 403
    )
    odd = call_callback(admin, dash_app, "pools-perf-metrics.figure", [1, {"x": "1; DROP"}])
    assert odd.status_code == 200


def test_an_original_admin_sees_the_metrics_on_pools_in_the_browser(adopted, dash_app, dash_duo):
    from tests.support.auth import browser_sign_in

    browser_sign_in(dash_duo, dash_app, BCRYPT_USER, BCRYPT_PASSWORD, path="/pools")
    dash_duo.wait_for_element("#pools-perf-metrics .main-svg", timeout=20)
    # The page opens on the last 15 minutes: the series the API wrote in them are drawn.
    dash_duo.wait_for_contains_text("#pools-perf-metrics", "type · name", timeout=20)
    dash_duo.wait_for_element("#pools-tables-table", timeout=20)
    assert dash_duo.get_logs() == []


def test_an_original_admin_service_logs_errors_that_reach_the_rollups(adopted, service_login):
    """taskmaster_admin has our admin's '*': its error log passes, is audited and rolled up."""
    service = f"svc-{uuid.uuid4().hex[:8]}"
    login = service_login.url.username
    with adopted.begin() as conn:
        conn.execute(text(f"GRANT taskmaster_admin TO {login}"))
    with as_role(service_login, "taskmaster_admin") as conn:
        error_id = conn.scalar(
            text(
                "INSERT INTO error_logs (error_code, error_category, error_severity, "
                "error_message, service_name, created_at) VALUES ('SVC-2', 'system', 'high', "
                "'from a service', :s, now() - interval '2 hours') RETURNING id"
            ),
            {"s": service},
        )
        conn.execute(
            text("UPDATE error_logs SET occurrence_count = 3 WHERE id = :e"), {"e": error_id}
        )
    assert audited(adopted, "error_logs", error_id) == ["create", "update"]
    rolled = rolled_up(
        adopted,
        "SELECT error_code, sum(created_n), sum(occurrences) FROM analytics_error_5m "
        "WHERE service_name = :s GROUP BY 1",
        s=service,
    )
    assert rolled == [("SVC-2", 1, 3)]
