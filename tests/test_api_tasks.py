"""The REST API's tasks: round trips against the database, pagination, refusals, RLS."""

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
    assert_fields_refused(refused, {"title", "priority", "status", "colour", "tags"})
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 0


def seed_tasks(owner_engine, rows: list[dict]) -> list[str]:
    """Insert tasks directly as the owner (no RLS); their ids in order."""
    ids = []
    with owner_engine.begin() as conn:
        for row in rows:
            values = {"type": "general", "status": "pending", "priority": 0, "assigned_to": None}
            values |= row
            ids.append(
                conn.scalar(
                    text(
                        """INSERT INTO tasks (title, type, status, priority, assigned_to,
                                              created_at)
                           VALUES (:title, :type, :status, :priority, :assigned_to,
                                   coalesce(CAST(:created_at AS timestamptz), now()))
                           RETURNING id::text"""
                    ),
                    {"created_at": None, **values},
                )
            )
    return ids


def test_pages_and_filters_match_sql_counts(api, owner_engine, clean_data):
    seed_tasks(
        owner_engine,
        [
            {
                "title": f"t{i}",
                "status": ["pending", "in_progress", "completed"][i % 3],
                "type": "bug" if i % 4 == 0 else "feature",
                "priority": i % 11,
                "created_at": f"2026-11-{1 + i % 28:02d}T10:00:00Z",
            }
            for i in range(130)
        ],
    )
    client = api("admin")
    seen: list[str] = []
    offset = 0
    while True:
        page = client.get("/tasks", limit=50, offset=offset).get_json()
        assert page["pagination"]["total"] == 130
        seen += [t["id"] for t in page["data"]]
        if not page["pagination"]["hasMore"]:
            break
        offset += 50
    assert len(seen) == len(set(seen)) == 130

    cases = [
        ({"status": "pending,in_progress"}, "status IN ('pending', 'in_progress')"),
        ({"type": "bug"}, "type = 'bug'"),
        ({"priority": 3}, "priority = 3"),
        ({"priority_min": 8}, "priority >= 8"),
        (
            {"created_from": "2026-11-10T00:00:00Z", "created_to": "2026-11-20T00:00:00Z"},
            "created_at >= '2026-11-10T00:00:00Z' AND created_at < '2026-11-20T00:00:00Z'",
        ),
        ({"status": "completed", "type": "feature"}, "status = 'completed' AND type = 'feature'"),
    ]
    assert_filter_totals(client, "/tasks", owner_engine, "tasks", cases, limit=7)


def test_limit_and_offset_are_bounded(api, clean_data):
    client = api("admin")
    assert client.get("/tasks", limit=500).status_code == 200
    for params, name in (
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status.0"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"colour": "red"}, "colour"),
        ({"parent_task_id": "not-a-uuid"}, "parent_task_id"),
    ):
        error = assert_error(client.get("/tasks", **params), 400, "bad_request")
        assert name in error["fields"], (params, error)


def test_a_task_shows_its_contexts_and_dependency_counts(api, owner_engine, clean_data):
    client = api("api_client")
    parent, child, other = seed_tasks(owner_engine, [{"title": n} for n in ("p", "c", "o")])
    added = client.post(
        f"/tasks/{parent}/contexts",
        {"context_type": "requirement", "context_data": {"text": "must page"}},
    )
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["data"]["context_data"] == {"text": "must page"}
    assert client.post(f"/tasks/{parent}/dependencies", {"child_task_id": child}).status_code == 201
    assert (
        client.post(
            f"/tasks/{other}/dependencies",
            {"child_task_id": parent, "dependency_type": "depends_on"},
        ).status_code
        == 201
    )
    detail = client.get(f"/tasks/{parent}").get_json()["data"]
    assert detail["context_count"] == 1 and detail["contexts"][0]["context_type"] == "requirement"
    assert detail["child_task_count"] == 1 and detail["dependency_count"] == 1

    contexts = client.get(f"/tasks/{parent}/contexts").get_json()
    assert contexts["pagination"]["total"] == 1
    deps = client.get(f"/tasks/{parent}/dependencies").get_json()
    assert deps["pagination"]["total"] == 2
    assert {(d["parent_task_id"], d["child_task_id"]) for d in deps["data"]} == {
        (parent, child),
        (other, parent),
    }
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM task_dependencies")) == 2
        assert conn.scalar(text("SELECT count(*) FROM task_contexts")) == 1


def test_a_dependency_that_closes_a_loop_is_refused_with_409(api, owner_engine, clean_data):
    client = api("api_client")
    a, b, c = seed_tasks(owner_engine, [{"title": n} for n in "abc"])
    assert client.post(f"/tasks/{a}/dependencies", {"child_task_id": b}).status_code == 201
    assert client.post(f"/tasks/{b}/dependencies", {"child_task_id": c}).status_code == 201
    cycle = client.post(f"/tasks/{c}/dependencies", {"child_task_id": a})
    assert assert_error(cycle, 409, "conflict")["fields"] == {"child_task_id": "would make a cycle"}
    # 'related' has no direction: never a cycle
    assert (
        client.post(
            f"/tasks/{c}/dependencies", {"child_task_id": a, "dependency_type": "related"}
        ).status_code
        == 201
    )
    assert_error(client.post(f"/tasks/{a}/dependencies", {"child_task_id": b}), 409, "conflict")
    assert_error(client.post(f"/tasks/{a}/dependencies", {"child_task_id": a}), 400)
    missing = str(uuid.uuid4())
    assert_error(client.post(f"/tasks/{a}/dependencies", {"child_task_id": missing}), 404)
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM task_dependencies")) == 3


def test_unknown_ids_and_routes_are_404(api, clean_data):
    client = api("admin")
    missing = str(uuid.uuid4())
    for response in (
        client.get(f"/tasks/{missing}"),
        client.get("/tasks/not-a-uuid"),
        client.put(f"/tasks/{missing}", {"title": "x"}),
        client.delete(f"/tasks/{missing}"),
        client.get(f"/tasks/{missing}/contexts"),
        client.post(f"/tasks/{missing}/contexts", {"context_type": "error"}),
        client.get(f"/tasks/{missing}/dependencies"),
        client.get("/no-such-thing"),
    ):
        assert_error(response, 404, "not_found")


def test_developer_keys_see_and_change_only_their_own_and_unassigned_tasks(
    api, owner_engine, clean_data
):
    mine, unassigned, theirs = seed_tasks(
        owner_engine,
        [
            {"title": "mine", "assigned_to": "test-developer"},
            {"title": "nobody's"},
            {"title": "theirs", "assigned_to": "test-viewer"},
        ],
    )
    developer = api("developer")
    listed = developer.get("/tasks").get_json()
    assert {t["id"] for t in listed["data"]} == {mine, unassigned}
    assert listed["pagination"]["total"] == 2
    assert api("admin").get("/tasks").get_json()["pagination"]["total"] == 3
    assert_error(developer.get(f"/tasks/{theirs}"), 404)
    assert_error(developer.put(f"/tasks/{theirs}", {"title": "taken"}), 404)
    assert_error(developer.delete(f"/tasks/{theirs}"), 404)
    assert_error(developer.post(f"/tasks/{theirs}/contexts", {"context_type": "error"}), 404)
    assert developer.put(f"/tasks/{mine}", {"priority": 9}).status_code == 200
    # nor hand a task to someone else, or create one for them: the row would leave their view
    assert_error(developer.put(f"/tasks/{mine}", {"assigned_to": "test-viewer"}), 403)
    assert_error(developer.post("/tasks", {"title": "gift", "assigned_to": "test-viewer"}), 403)
    with owner_engine.connect() as conn:
        assert (
            conn.scalar(text("SELECT title FROM tasks WHERE id = :id"), {"id": theirs}) == "theirs"
        )


def test_put_changes_only_the_fields_sent_and_refuses_nulls(api, owner_engine, clean_data):
    (task,) = seed_tasks(owner_engine, [{"title": "keep", "priority": 4}])
    client = api("api_client")
    changed = client.put(f"/tasks/{task}", {"description": "more", "assigned_to": None})
    assert changed.status_code == 200
    data = changed.get_json()["data"]
    assert (data["title"], data["priority"], data["description"]) == ("keep", 4, "more")
    refused = client.put(f"/tasks/{task}", {"title": None, "status": None})
    assert_fields_refused(refused, {"title", "status"})
    assert_error(client.put(f"/tasks/{task}", {"parent_task_id": task}), 400)


def test_bad_input_is_refused_clearly_never_a_500(api, owner_engine, clean_data):
    client = api("api_client")
    (task,) = seed_tasks(owner_engine, [{"title": "target"}])
    bodies = [
        {"title": "x" * 256},
        {"title": "ok", "description": "d" * 100_001},
        {"title": "nul\x00byte"},
        {"title": "ok", "metadata": {"k": "v\x00"}},
        {"title": "lone \ud800 surrogate"},
        {"title": "ok", "tags": [{"\udfff": 1}]},
        {"title": "ok", "priority": 11},
        {"title": "ok", "priority": 2.5},
        {"title": "ok", "priority": True},
        {"title": "ok", "estimated_hours": 1e12},
        {"title": "ok", "completed_at": "not a time"},
        {"title": "ok", "parent_task_id": "'; DROP TABLE tasks; --"},
        {"title": ["a"]},
        {"title": {"$gt": ""}},
        [],
        "just a string",
    ]
    for body in bodies:
        response = client.post("/tasks", body)
        assert response.status_code == 400, (body, response.get_json())
        assert response.get_json()["error"]["fields"], body
    sql_text = "Robert'); DROP TABLE tasks;-- \" OR 1=1 /* ${x} {{7*7}}"
    stored = client.post("/tasks", {"title": sql_text, "tags": [sql_text]})
    assert stored.status_code == 201 and stored.get_json()["data"]["title"] == sql_text
    for params in ({"status": sql_text}, {"type": "x" * 10_000}, {"assigned_to": sql_text}):
        assert client.get("/tasks", **params).status_code in (200, 400)
    raw = client.client.post(
        "/api/v1/tasks",
        data=b"{not json",
        headers={"X-API-Key": client.key, "Content-Type": "application/json"},
    )
    assert_error(raw, 400, "bad_request")
    null = client.client.post(
        "/api/v1/tasks",
        data=b"null",
        headers={"X-API-Key": client.key, "Content-Type": "application/json"},
    )
    assert_error(null, 400, "bad_request")
    form = client.client.post(
        "/api/v1/tasks", data={"title": "x"}, headers={"X-API-Key": client.key}
    )
    assert_error(form, 415, "unsupported_media_type")
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 2


def test_a_body_over_the_limit_is_413_and_writes_nothing(api, dash_app, owner_engine, clean_data):
    client = api("api_client")
    limit = dash_app.server.config["API_MAX_BODY_BYTES"]
    big = {"title": "big", "metadata": {"blob": "x" * limit}}
    assert_error(client.post("/tasks", big), 413, "payload_too_large")
    chunked = client.client.post(
        "/api/v1/tasks",
        input_stream=__import__("io").BytesIO(b'{"title": "' + b"y" * (limit + 10) + b'"}'),
        headers={
            "X-API-Key": client.key,
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        # what waitress and gunicorn say for a chunked body: read it to its end
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(chunked, 413, "payload_too_large")
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tasks")) == 0
