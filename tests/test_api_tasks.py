"""The REST API's tasks: round trips against the database, pagination, refusals, RLS."""

from __future__ import annotations

from sqlalchemy import text

from tests.api_support import api, api_keys, assert_error


def test_create_read_update_delete_round_trip(api, owner_engine, clean_data):
    client = api("api_client")
    created = client.post("/tasks", {"title": "Ship the API", "priority": 7, "tags": ["api"]})
    assert created.status_code == 201, created.get_json()
    task = created.get_json()["data"]
    assert task["status"] == "pending" and task["priority"] == 7 and task["tags"] == ["api"]
    with owner_engine.connect() as conn:
        row = conn.execute(
            text("SELECT title, priority, tags FROM tasks WHERE id = :id"), {"id": task["id"]}
        ).one()
    assert tuple(row) == ("Ship the API", 7, ["api"])

    got = client.get(f"/tasks/{task['id']}").get_json()["data"]
    assert got["context_count"] == 0 and got["contexts"] == []

    changed = client.put(
        f"/tasks/{task['id']}", {"status": "in_progress", "updated_at": got["updated_at"]}
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["data"]["status"] == "in_progress"
    stale = client.put(f"/tasks/{task['id']}", {"priority": 1, "updated_at": got["updated_at"]})
    assert_error(stale, 409, "conflict")

    assert client.delete(f"/tasks/{task['id']}").status_code == 204
    assert_error(client.get(f"/tasks/{task['id']}"), 404, "not_found")
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 0
        audited = conn.execute(
            text(
                "SELECT action, username FROM audit_logs WHERE entity_id = :id ORDER BY timestamp"
            ),
            {"id": task["id"]},
        ).all()
    assert [a for a, _ in audited] == ["create", "status_change", "delete"]
    assert {u for _, u in audited} == {"test-api-client"}


def test_a_bad_body_names_each_wrong_field_and_writes_nothing(api, owner_engine, clean_data):
    client = api("api_client")
    refused = client.post(
        "/tasks",
        {"title": "", "priority": "5", "status": "done", "colour": "red", "tags": "x"},
    )
    error = assert_error(refused, 400, "validation_failed")
    assert set(error["fields"]) == {"title", "priority", "status", "colour", "tags"}
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 0
