"""The REST API's validation runs and workflow steps against the database."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.api_support import (
    api,
    api_keys,
    assert_error,
    assert_fields_refused,
    assert_filter_totals,
)
from tests.test_api_tasks import seed_tasks


def test_validation_runs_round_trip_with_stale_update_refused(api, owner_engine, clean_data):
    (task,) = seed_tasks(owner_engine, [{"title": "validated"}])
    developer = api("developer")
    created = developer.post(
        "/validations",
        {
            "task_id": task,
            "validation_type": "security",
            "validation_status": "running",
            "validation_data": {"checks": 3},
            "claude_code_version": "1.2.3",
        },
    )
    assert created.status_code == 201, created.get_json()
    run = created.get_json()["data"]
    assert run["started_at"] is not None  # the database's default
    with owner_engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT validation_status, validation_data FROM validation_results WHERE id = :id"
            ),
            {"id": run["id"]},
        ).one()
    assert tuple(stored) == ("running", {"checks": 3})

    done = developer.put(
        f"/validations/{run['id']}",
        {"validation_status": "passed", "validation_score": 97.5, "updated_at": run["updated_at"]},
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["data"]["validation_score"] == 97.5
    stale = developer.put(
        f"/validations/{run['id']}",
        {"validation_status": "failed", "updated_at": run["updated_at"]},
    )
    assert_error(stale, 409, "conflict")
    assert_error(developer.put(f"/validations/{uuid.uuid4()}", {"retry_count": 1}), 404)
    with owner_engine.connect() as conn:
        assert (
            conn.scalar(
                text("SELECT validation_status FROM validation_results WHERE id = :id"),
                {"id": run["id"]},
            )
            == "passed"
        )


def test_a_write_only_client_records_runs_it_cannot_read(api, owner_engine, clean_data):
    # api_client has validations:write but not validations:read: it records runs (and gets the
    # stored row back) but may not list them.
    (task,) = seed_tasks(owner_engine, [{"title": "ci"}])
    client = api("api_client")
    created = client.post(
        "/validations",
        {"task_id": task, "validation_type": "testing", "validation_status": "passed"},
    )
    assert created.status_code == 201, created.get_json()
    run = created.get_json()["data"]
    assert run["validation_status"] == "passed" and run["created_at"] is not None
    with owner_engine.connect() as conn:
        assert (
            conn.scalar(
                text("SELECT task_id::text FROM validation_results WHERE id = :id"),
                {"id": run["id"]},
            )
            == task
        )
    assert_error(client.get("/validations"), 403, "forbidden")
    missing = client.post(
        "/validations",
        {"task_id": str(uuid.uuid4()), "validation_type": "testing", "validation_status": "passed"},
    )
    assert_error(missing, 404)


def test_validation_filters_and_totals_match_sql(api, owner_engine, clean_data):
    tasks = seed_tasks(owner_engine, [{"title": f"v{i}"} for i in range(3)])
    with owner_engine.begin() as conn:
        for i in range(60):
            conn.execute(
                text(
                    """INSERT INTO validation_results (task_id, validation_type,
                                                       validation_status)
                       VALUES (:task, :type, :status)"""
                ),
                {
                    "task": tasks[i % 3],
                    "type": ["syntax", "security", "testing", "style"][i % 4],
                    "status": ["passed", "failed", "warning"][i % 3],
                },
            )
    viewer = api("viewer")
    cases = [
        ({}, "true"),
        ({"validation_type": "security"}, "validation_type = 'security'"),
        ({"validation_status": "failed,warning"}, "validation_status IN ('failed', 'warning')"),
        ({"task_id": tasks[1]}, f"task_id = '{tasks[1]}'"),
        (
            {"task_id": tasks[0], "validation_type": "syntax"},
            f"task_id = '{tasks[0]}' AND validation_type = 'syntax'",
        ),
    ]
    assert_filter_totals(viewer, "/validations", owner_engine, "validation_results", cases, 10)
    error = assert_error(viewer.get("/validations", validation_type="lint"), 400)
    assert "validation_type.0" in error["fields"]


def test_bad_validation_bodies_name_each_field_and_write_nothing(api, owner_engine, clean_data):
    (task,) = seed_tasks(owner_engine, [{"title": "t"}])
    refused = api("developer").post(
        "/validations",
        {
            "task_id": "nope",
            "validation_type": "lint",
            "validation_score": 101,
            "retry_count": 11,
            "execution_time_ms": -1,
        },
    )
    assert_fields_refused(
        refused,
        {
            "task_id",
            "validation_type",
            "validation_status",
            "validation_score",
            "retry_count",
            "execution_time_ms",
        },
    )
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM validation_results")) == 0


def test_workflow_steps_round_trip_and_filter(api, owner_engine, clean_data):
    (task,) = seed_tasks(owner_engine, [{"title": "wf"}])
    client = api("api_client")
    for step, status in (("build", "completed"), ("test", "running"), ("deploy", "pending")):
        created = client.post(
            "/workflows",
            {"workflow_id": "run-1", "task_id": task, "step": step, "status": status},
        )
        assert created.status_code == 201, created.get_json()
    assert client.post("/workflows", {"workflow_id": "run-2", "step": "lint"}).status_code == 201
    page = client.get("/workflows", workflow_id="run-1").get_json()
    assert page["pagination"]["total"] == 3
    assert {s["step"] for s in page["data"]} == {"build", "test", "deploy"}
    assert client.get("/workflows", status="running,pending").get_json()["pagination"]["total"] == 3
    assert client.get("/workflows", task_id=task).get_json()["pagination"]["total"] == 3
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM workflow_states")) == 4
    refused = client.post("/workflows", {"step": "", "status": "done"})
    assert_fields_refused(refused, {"workflow_id", "step", "status"})
    assert_error(
        client.post("/workflows", {"workflow_id": "x", "step": "s", "task_id": str(uuid.uuid4())}),
        404,
    )
