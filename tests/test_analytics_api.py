"""GET /api/v1/analytics/<page>: the rows behind a page's panels as JSON, for scripts and API
clients (the spec's analytics endpoints, which the original routed but never wrote)."""

from __future__ import annotations

from sqlalchemy import text

from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.data.users import issue_api_key
from tests import test_analytics
from tests.test_analytics import sql_df

known_data = test_analytics.known_data  # 60 tasks, 90 validation runs, 80 errors over 10 days


def test_an_api_key_reads_task_analytics_that_match_sql(dash_app, known_data, users, owner_engine):
    key, _ = issue_api_key(SYSTEM_ACTOR, users.ids["api_client"], 1)
    client = dash_app.server.test_client()
    response = client.get("/api/v1/analytics/tasks?range=30d", headers={"X-API-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["meta"]["requestId"].startswith("req_") and body["meta"]["timestamp"]
    assert body["data"]["view"]["range"] == "30d"
    panels = body["data"]["panels"]
    created = sum(row["created"] for row in panels["tasks-throughput"]["rows"])
    with owner_engine.connect() as conn:
        in_window = conn.scalar(
            text("SELECT count(*) FROM tasks WHERE created_at >= :start"),
            {"start": body["data"]["window"]["start"]},
        )
    assert created == in_window == 60
    by_status = {}
    for row in panels["tasks-by-priority"]["rows"]:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["tasks"]
    truth = sql_df(
        owner_engine,
        "SELECT status, count(*) AS n FROM tasks WHERE status IN ('pending', 'in_progress') "
        "GROUP BY 1",
    )
    assert by_status == dict(zip(truth["status"], truth["n"], strict=True))


def test_filters_apply_and_bad_values_fall_back(dash_app, known_data, client_as, owner_engine):
    viewer = client_as("viewer")
    response = viewer.get("/api/v1/analytics/errors?range=30d&service=task-api&bogus=1")
    body = response.get_json()
    assert response.status_code == 200 and body["data"]["view"]["service"] == "task-api"
    top = {r["error_code"]: r["occurrences"] for r in body["data"]["panels"]["errors-top"]["rows"]}
    truth = sql_df(
        owner_engine,
        "SELECT error_code, sum(occurrence_count) AS occ FROM error_logs "
        "WHERE service_name = 'task-api' GROUP BY 1",
    )
    assert top == dict(zip(truth["error_code"], truth["occ"], strict=True))
    odd = viewer.get("/api/v1/analytics/errors?range=1;DROP TABLE tasks&severity=<script>")
    assert odd.status_code == 200
    assert odd.get_json()["data"]["view"]["range"] == "24h"
    assert "severity" not in odd.get_json()["data"]["view"]
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 60


def test_refusals(dash_app, client_as, users):
    key, _ = issue_api_key(SYSTEM_ACTOR, users.ids["api_client"], 1)
    api = dash_app.server.test_client()
    # api_client has no errors:read: not one panel of the errors page is answered.
    refused = api.get("/api/v1/analytics/errors", headers={"X-API-Key": key})
    assert refused.status_code == 403 and "rows" not in refused.get_data(as_text=True)
    unknown = client_as("viewer").get("/api/v1/analytics/secrets")
    assert unknown.status_code == 404 and "tasks" in unknown.get_json()["error"]
    anonymous = dash_app.server.test_client().get("/api/v1/analytics/tasks")
    assert anonymous.status_code == 401
