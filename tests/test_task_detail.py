"""/tasks/<id>: one task in full, read as the user (RLS), with its related rows."""

from __future__ import annotations

import json
import uuid

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import text

from tests.support.auth import browser_sign_in
from tests.support.callbacks import render_page

HOSTILE = '<img src=x onerror="window.hacked=1"> and <script>window.hacked=2</script>'


@pytest.fixture
def task_family(owner_engine, clean_data) -> dict[str, str]:
    """A task with a parent, a child, a dependency, a workflow step, a context, two validation
    runs and an error; its title and description carry HTML that must stay text."""
    ids = {name: str(uuid.uuid4()) for name in ("parent", "task", "child", "blocker", "error")}
    with owner_engine.begin() as conn:

        def run(sql: str, **params) -> None:
            conn.execute(text(sql), {**ids, **params})

        run("INSERT INTO tasks (id, title) VALUES (:parent, 'Parent epic')")
        run(
            """INSERT INTO tasks (id, title, description, parent_task_id, assigned_to, status,
                   requirements, tags)
               VALUES (:task, :title, :description, :parent, 'bob', 'in_progress',
                       '["Works offline", "Has tests"]', '["api"]')""",
            title="Ship it " + HOSTILE,
            description="Why: " + HOSTILE,
        )
        run("INSERT INTO tasks (id, title, parent_task_id) VALUES (:child, 'Child step', :task)")
        run("INSERT INTO tasks (id, title, status) VALUES (:blocker, 'Schema change', 'pending')")
        run(
            """INSERT INTO task_dependencies (parent_task_id, child_task_id, dependency_type)
               VALUES (:blocker, :task, 'blocks')"""
        )
        run(
            """INSERT INTO workflow_states (workflow_id, task_id, step, status, retry_count)
               VALUES ('wf-77', :task, 'deploy', 'failed', 2)"""
        )
        run(
            """INSERT INTO task_contexts (task_id, context_type, context_data)
               VALUES (:task, 'codebase', '{"repo": "taskmaster", "files": 3}')"""
        )
        run(
            """INSERT INTO validation_results (task_id, validation_type, validation_status,
                   validation_score, execution_time_ms)
               VALUES (:task, 'security', 'failed', 41.5, 900),
                      (:task, 'syntax', 'passed', 97, 120)"""
        )
        run(
            """INSERT INTO error_logs (id, task_id, error_code, error_category, error_severity,
                   error_message)
               VALUES (:error, :task, 'DEPLOY_FAILED', 'workflow', 'high', 'Rollout stalled')"""
        )
    return ids


def page_of(client, dash_app, task_id: str) -> str:
    return json.dumps(render_page(client, dash_app, f"/tasks/{task_id}"))


def test_the_task_page_shows_the_task_and_everything_linked(dash_app, client_as, task_family):
    shown = page_of(client_as("viewer"), dash_app, task_family["task"])
    for expected in (
        "Parent epic",
        f"/tasks/{task_family['parent']}",
        "Child step",
        "blocks this task",
        "Schema change",
        "wf-77",
        "deploy",
        '\\"repo\\": \\"taskmaster\\"',
        "Works offline",
        "security",
        "41.5",
        "DEPLOY_FAILED",
        f"/errors/{task_family['error']}",
    ):
        assert expected in shown, expected
    # The blocker's page shows the same dependency from its side.
    blocker = page_of(client_as("viewer"), dash_app, task_family["blocker"])
    assert "this task blocks" in blocker and "Ship it" in blocker


def test_sections_follow_the_readers_permissions(dash_app, client_as, task_family):
    # api_client may read tasks but neither validation results nor errors.
    shown = page_of(client_as("api_client"), dash_app, task_family["task"])
    assert "Child step" in shown
    assert "task-validations" not in shown and "task-errors" not in shown
    assert "DEPLOY_FAILED" not in shown and "41.5" not in shown


def test_a_developer_sees_only_their_own_and_unassigned_tasks(
    dash_app, client_as, task_family, owner_engine
):
    developer = client_as("developer")
    # Assigned to bob: hidden by RLS, as if it did not exist.
    assert "no-such-task" in page_of(developer, dash_app, task_family["task"])
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE tasks SET assigned_to = 'test-developer' WHERE id = :id"),
            {"id": task_family["task"]},
        )
    assert "Child step" in page_of(developer, dash_app, task_family["task"])


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), "not-a-uuid", "1' OR '1'='1", "x" * 5000])
def test_unknown_or_malformed_ids_say_no_such_task(dash_app, client_as, bad):
    assert "no-such-task" in page_of(client_as("viewer"), dash_app, bad)


@pytest.mark.browser
def test_from_the_task_list_to_the_task_and_on_to_its_error(dash_duo, dash_app, users, task_family):
    browser_sign_in(dash_duo, dash_app, "test-viewer", path="/tasks")
    dash_duo.wait_for_contains_text("#task-list-rows", "Ship it", timeout=15)
    dash_duo.driver.execute_script("window.sameDocument = true")
    dash_duo.driver.find_element(By.PARTIAL_LINK_TEXT, "Ship it").click()
    # The hostile title is shown as text, never run.
    dash_duo.wait_for_text_to_equal("#task-title", "Ship it " + HOSTILE, timeout=15)
    # The list's link moves within the app, as a dcc.Link does: no page reload.
    assert dash_duo.driver.execute_script("return window.sameDocument === true")
    assert dash_duo.driver.execute_script("return window.hacked === undefined")
    dash_duo.find_element("#task-errors a").click()
    dash_duo.wait_for_text_to_equal("#err-message", "Rollout stalled", timeout=15)
