"""Who may call the REST API: keys, original-API JWTs, Cloudflare service tokens, sessions;
403 per missing permission for every route; the throttle; the OpenAPI document and docs page;
`taskmaster-dash api-key`."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from openapi_spec_validator import validate
from selenium.webdriver.common.by import By
from sqlalchemy import text

from taskmaster_dash.api.framework import PREFIX, ROUTES
from taskmaster_dash.api.openapi import openapi_path
from taskmaster_dash.auth.jwt_bearer import AUDIENCE as JWT_AUDIENCE
from taskmaster_dash.auth.jwt_bearer import ISSUER as JWT_ISSUER
from taskmaster_dash.auth.throttle import ThrottlePolicy
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.users import create_user, issue_api_key
from tests.api_support import Api, api, api_keys, assert_error
from tests.support.auth import ROLE_PASSWORD, ROLE_PERMISSIONS, browser_sign_in
from tests.test_api_keys_and_access import cloudflare_access, signing_keys, token
from tests.test_api_tasks import seed_tasks
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def no_api_permission_key(users, owner_engine) -> str:
    """A key for a user whose role has none of the API's permissions."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO user_roles (role_name, role_description, permissions)
                   VALUES ('auditor_only', 'reads the audit log', '["audit:read"]')
                   ON CONFLICT (role_name) DO NOTHING"""
            )
        )
    name = f"aud-{uuid.uuid4().hex[:8]}"
    user_id = create_user(SYSTEM_ACTOR, name, f"{name}@example.com", "auditor_only", ROLE_PASSWORD)
    return issue_api_key(SYSTEM_ACTOR, user_id, 5)[0]


def call(client: Api, route, ids: dict[str, str]):
    path = route.rule
    for name, value in ids.items():
        path = path.replace(f"<{name}>", value)
    body = {"title": "x"} if route.body is not None else None
    return {
        "GET": lambda: client.get(path),
        "POST": lambda: client.post(path, body),
        "PUT": lambda: client.put(path, body),
        "DELETE": lambda: client.delete(path),
    }[route.method]()


def test_every_route_refuses_a_caller_without_its_permission_and_writes_nothing(
    api, dash_app, owner_engine, clean_data, no_api_permission_key
):
    (task,) = seed_tasks(owner_engine, [{"title": "guarded"}])
    with owner_engine.begin() as conn:
        validation = conn.scalar(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status)
                   VALUES (:t, 'syntax', 'passed') RETURNING id::text"""
            ),
            {"t": task},
        )
    ids = {"task_id": task, "validation_id": validation}
    routes = [r for r in ROUTES if r.permission]
    assert len(routes) >= 14
    nobody = Api(dash_app, no_api_permission_key)
    checked = 0
    for route in routes:
        assert_error(call(nobody, route, ids), 403, "forbidden")
        for role, permissions in ROLE_PERMISSIONS.items():
            if not ({"*", route.permission} & permissions):
                refused = call(api(role), route, ids)
                error = assert_error(refused, 403, "forbidden")
                assert error["fields"] == {"permission": route.permission}
                checked += 1
    assert checked >= 15
    with owner_engine.connect() as conn:
        counts = conn.execute(
            text(
                """SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM task_contexts),
                          (SELECT count(*) FROM task_dependencies),
                          (SELECT count(*) FROM validation_results),
                          (SELECT count(*) FROM workflow_states),
                          (SELECT validation_status FROM validation_results)"""
            )
        ).one()
    assert tuple(counts) == (1, 0, 0, 1, 0, "passed")


def test_without_credentials_or_with_a_wrong_key_the_api_answers_401(api):
    assert_error(api(None).get("/tasks"), 401, "unauthorized")
    wrong = api(None).get("/tasks", headers={"X-API-Key": "tmk_wrong"})
    assert_error(wrong, 401, "unauthorized")
    assert_error(api(None).post("/tasks", {"title": "x"}), 401)


def test_a_session_signs_in_on_the_api(client_as):
    client = client_as("viewer")
    listed = client.get(PREFIX + "/tasks")
    assert listed.status_code == 200 and "pagination" in listed.get_json()
    assert client.post(PREFIX + "/tasks", json={"title": "x"}).status_code == 403


def original_token(secret: str, user_id: str, **overrides) -> str:
    claims = {
        "userId": user_id,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "exp": int(time.time()) + 300,
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


def test_original_api_bearer_tokens_are_accepted_and_run_as_their_user(
    dash_app, users, owner_engine, clean_data, monkeypatch
):
    secret = "s" * 40
    monkeypatch.setenv("JWT_SECRET", secret)
    mine, _, _ = seed_tasks(
        owner_engine,
        [
            {"title": "mine", "assigned_to": "test-developer"},
            {"title": "free"},
            {"title": "theirs", "assigned_to": "someone-else"},
        ],
    )
    client = Api(dash_app, None)
    good = original_token(secret, users.ids["developer"])
    listed = client.get("/tasks", headers={"Authorization": f"Bearer {good}"})
    assert listed.status_code == 200
    assert listed.get_json()["pagination"]["total"] == 2  # RLS as the developer
    created = client.post(
        "/tasks", {"title": "by jwt"}, headers={"Authorization": f"Bearer {good}"}
    )
    assert created.status_code == 201
    with owner_engine.connect() as conn:
        assert (
            conn.scalar(
                text("SELECT username FROM audit_logs WHERE entity_id = :id AND action = 'create'"),
                {"id": created.get_json()["data"]["id"]},
            )
            == "test-developer"
        )
    refused = {
        "wrong secret": original_token("t" * 40, users.ids["developer"]),
        "expired": original_token(secret, users.ids["developer"], exp=int(time.time()) - 10),
        "wrong audience": original_token(secret, users.ids["developer"], aud="someone"),
        "wrong issuer": original_token(secret, users.ids["developer"], iss="evil"),
        "unknown user": original_token(secret, str(uuid.uuid4())),
        "alg none": jwt.encode(
            {
                "userId": users.ids["admin"],
                "iss": JWT_ISSUER,
                "aud": JWT_AUDIENCE,
                "exp": int(time.time()) + 300,
            },
            None,
            algorithm="none",
        ),
        "garbage": "not.a.token",
    }
    for case, value in refused.items():
        answer = client.get("/tasks", headers={"Authorization": f"Bearer {value}"})
        assert answer.status_code == 401, case
        assert_error(answer, 401, "unauthorized")
    monkeypatch.delenv("JWT_SECRET")
    assert client.get("/tasks", headers={"Authorization": f"Bearer {good}"}).status_code == 401


@pytest.fixture
def service_tokens(dash_app, signing_keys, monkeypatch):
    _, _, certs_url = signing_keys
    return cloudflare_access(
        dash_app,
        certs_url,
        monkeypatch,
        CF_ACCESS_SERVICE_TOKENS="ci-bot.access=test-api-client, idle.access=gone",
    )


def service_token(private_key, common_name: str, **overrides) -> str:
    # Cloudflare's service tokens carry common_name (the client id) and no e-mail.
    return token(private_key, "", common_name=common_name, sub="", **overrides)


def test_cloudflare_service_tokens_sign_in_as_their_configured_user(
    dash_app, service_tokens, signing_keys, owner_engine, clean_data
):
    team_key, other_key, _ = signing_keys
    assert service_tokens.service_tokens == {
        "ci-bot.access": "test-api-client",
        "idle.access": "gone",
    }
    client = Api(dash_app, None)
    header = "Cf-Access-Jwt-Assertion"
    good = {header: service_token(team_key, "ci-bot.access")}
    created = client.post("/tasks", {"title": "from CI"}, headers=good)
    assert created.status_code == 201, created.get_json()
    me = dash_app.server.test_client().get(PREFIX + "/me", headers=good)
    assert me.get_json()["username"] == "test-api-client"
    for case, value in {
        "unmapped common name": service_token(team_key, "stranger.access"),
        "mapped to no user": service_token(team_key, "idle.access"),
        "wrong key": service_token(other_key, "ci-bot.access"),
        "expired": service_token(team_key, "ci-bot.access", exp=int(time.time()) - 60),
        "wrong audience": service_token(team_key, "ci-bot.access", aud=["other"]),
    }.items():
        assert client.get("/tasks", headers={header: value}).status_code == 401, case
    # machines only: a service token does not open the pages
    page = dash_app.server.test_client().get("/", headers=good)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 1


def test_api_requests_over_the_per_key_limit_get_429(api, dash_app, monkeypatch):
    monkeypatch.setitem(dash_app.server.config, "THROTTLE_POLICY", ThrottlePolicy(10, 3))
    client = api("viewer")
    for _ in range(3):
        assert client.get("/tasks", limit=1).status_code == 200
    refused = client.get("/tasks", limit=1)
    error = assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) >= 1 and "try again" in error["message"]


def test_the_openapi_document_is_valid_and_lists_every_route(api, dash_app):
    answer = api("viewer").get("/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    listed = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for rule in dash_app.server.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or "<path:" in rule.rule:
            continue
        path = openapi_path(rule.rule.removeprefix(PREFIX))
        if path in ("/openapi.json", "/docs") or path.startswith("/docs/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in listed, (path, method)
    for route in ROUTES:
        operation = document["paths"][openapi_path(route.rule)][route.method.lower()]
        assert operation["security"] and str(route.status) in operation["responses"]
        if route.body is not None:
            assert "requestBody" in operation


def test_the_docs_page_is_served_from_this_server(api, dash_app):
    client = api("viewer")
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("/docs/docs.js", "/docs/docs.css"):
        assert client.get(asset).status_code == 200
    assert_error(api(None).get("/docs"), 401)


@pytest.mark.browser
def test_the_docs_page_renders_every_operation_in_the_browser(dash_duo, dash_app, users):
    browser_sign_in(dash_duo, dash_app, "test-viewer")
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + PREFIX + "/docs")
    dash_duo.wait_for_element("#tasks_list_tasks", timeout=15)
    sections = dash_duo.driver.find_elements(By.CSS_SELECTOR, "section.op")
    assert len(sections) >= len(ROUTES)
    assert dash_duo.get_logs() == []


def test_the_cli_prints_a_key_for_a_service_account_and_revokes_the_previous_one(
    pg_server, dash_app
):
    name = f"svc-{uuid.uuid4().hex[:8]}"
    create_user(SYSTEM_ACTOR, name, f"{name}@example.com", "api_client", ROLE_PASSWORD)
    first = run_cli(["api-key", "--username", name, "--days", "7"], pg_server)
    assert first.returncode == 0, first.stderr
    first_key = first.stdout.strip()
    assert first_key.startswith("tmk_") and "valid until" in first.stderr
    assert Api(dash_app, first_key).get("/tasks").status_code == 200
    second = run_cli(["api-key", "--username", name], pg_server)
    second_key = second.stdout.strip()
    assert Api(dash_app, second_key).get("/tasks").status_code == 200
    assert Api(dash_app, first_key).get("/tasks").status_code == 401
    unknown = run_cli(["api-key", "--username", "nobody-at-all"], pg_server)
    assert unknown.returncode == 1 and "no such user" in unknown.stderr
    bad_days = run_cli(["api-key", "--username", name, "--days", "400"], pg_server)
    assert bad_days.returncode == 1 and "1 to 365 days" in bad_days.stderr
