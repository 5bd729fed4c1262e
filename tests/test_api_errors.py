"""The REST API's errors: posting groups, regresses and refuses; lists filter and page."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.api_support import api, api_keys, assert_error, assert_fields_refused

BODY = {
    "error_code": "DB_TIMEOUT",
    "error_category": "database",
    "error_severity": "high",
    "error_message": "task 42 timed out after 30 s",
    "service_name": "task-api",
    "service_version": "1.2.0",
    "stack_trace": 'File "app/store.py", line 12, in save_task',
    "context_data": {"attempt": 1},
}


def count(owner_engine, sql: str = "SELECT count(*) FROM error_logs") -> int:
    with owner_engine.connect() as conn:
        return conn.scalar(text(sql))


def test_posting_the_same_error_groups_and_a_resolved_one_regresses(api, owner_engine, clean_data):
    client = api("on_call")
    first = client.post("/errors", BODY)
    assert first.status_code == 201, first.get_json()
    created = first.get_json()["data"]
    assert created["outcome"] == "created" and created["occurrence_count"] == 1
    again = client.post("/errors", BODY | {"error_message": "task 43 timed out after 31 s"})
    grouped = again.get_json()["data"]
    assert grouped["outcome"] == "grouped" and grouped["id"] == created["id"]
    assert grouped["occurrence_count"] == 2
    assert count(owner_engine) == 1

    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE error_logs SET resolution_status = 'resolved'"))
    back = client.post("/errors", BODY).get_json()["data"]
    assert back["outcome"] == "regressed" and back["resolution_status"] == "unresolved"
    assert back["regressed_at"] is not None

    detail = client.get(f"/errors/{created['id']}").get_json()["data"]
    assert detail["occurrence_count"] == 3 and sum(h["occurrences"] for h in detail["hourly"]) == 3
    assert detail["seen_in"][0]["service_version"] == "1.2.0"
    assert detail["folded_ids"] == [] and detail["folded_count"] == 0
    regressed = client.get("/errors", regressed="true").get_json()
    assert [e["id"] for e in regressed["data"]] == [created["id"]]


def test_a_bad_body_names_each_wrong_field_and_writes_nothing(api, owner_engine, clean_data):
    refused = api("on_call").post(
        "/errors",
        {
            "error_code": "",
            "error_category": "weather",
            "error_severity": "high",
            "error_message": "x",
            "ip_address": "not-an-ip",
            "task_id": "42",
            "occurred_at": "2099-01-01T00:00:00Z",
            "colour": "red",
        },
    )
    assert_fields_refused(
        refused,
        {
            "error_code",
            "error_category",
            "ip_address",
            "task_id",
            "occurred_at",
            "colour",
        },
    )
    missing_task = api("on_call").post(
        "/errors", BODY | {"task_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}
    )
    assert_error(missing_task, 400, "validation_failed")
    assert count(owner_engine) == 0


@pytest.mark.parametrize("role", ["viewer", "developer", "api_client"])
def test_posting_needs_errors_write(api, owner_engine, clean_data, role):
    error = assert_error(api(role).post("/errors", BODY), 403, "forbidden")
    assert error["fields"] == {"permission": "errors:write"}
    assert count(owner_engine) == 0


def test_reading_needs_errors_read(api, clean_data):
    assert_error(api("api_client").get("/errors"), 403, "forbidden")
    assert_error(api(None).get("/errors"), 401, "unauthorized")
    assert_error(api("viewer").get("/errors/not-a-uuid"), 404, "not_found")
    assert_error(api("viewer").get("/errors/" + "1" * 8 + "-1111-4111-8111-" + "1" * 12), 404)


def test_filters_and_pagination_match_sql(api, owner_engine, clean_data):
    client = api("on_call")
    for i in range(7):
        body = BODY | {
            "error_code": f"CODE_{i}",
            "error_severity": "critical" if i % 2 else "low",
            "service_name": "worker" if i < 3 else "task-api",
        }
        assert client.post("/errors", body).status_code == 201
    reader = api("viewer")
    page = reader.get("/errors", limit=2, offset=2, severity="critical").get_json()
    expected = count(
        owner_engine, "SELECT count(*) FROM error_logs WHERE error_severity = 'critical'"
    )
    assert page["pagination"] == {"total": expected, "limit": 2, "offset": 2, "hasMore": False}
    assert len(page["data"]) == expected - 2
    both = reader.get("/errors", service="worker", category="database", status="unresolved")
    assert both.get_json()["pagination"]["total"] == 3
    assert_error(reader.get("/errors", severity="loud"), 400, "bad_request")
    assert_error(reader.get("/errors", limit=501), 400, "bad_request")


def test_the_openapi_document_lists_the_error_routes(api):
    document = api("viewer").get("/openapi.json").get_json()
    assert {"get", "post"} <= set(document["paths"]["/errors"])
    assert "get" in document["paths"]["/errors/{error_id}"]
