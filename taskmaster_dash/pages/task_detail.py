"""One task on its own page: /tasks/<id> (linked from the task list, the lowest-scoring
validation runs and the error detail)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from dash import dcc, html

from taskmaster_dash.auth.permissions import actor_with, has_permission
from taskmaster_dash.data.tasks import RECENT, TaskDetail, task_detail
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._ui import data_table, link, not_permitted, register_page, when

PERMISSION = "tasks:read"
register_page(
    __name__,
    path_template="/tasks/<task_id>",
    name="Task",
    nav=False,
    permission=PERMISSION,
)


_when = partial(when, missing="—")


def _shown(value: Any) -> str:
    return "—" if value is None or value == "" or value == [] else str(value)


def _record_table(
    records: Sequence[dict[str, Any]],
    headers: Sequence[str],
    keys: Sequence[str],
    table_id: str,
    empty: str,
) -> html.Table | html.P:
    """A table of records: under each heading, its key's values (times as times, none as —)."""
    rows = [
        [_when(r[key]) if isinstance(r[key], datetime) else _shown(r[key]) for key in keys]
        for r in records
    ]
    return data_table(headers, rows, table_id, empty=empty)


def task_link(row: dict[str, Any]) -> dcc.Link:
    return link(row["title"], f"/tasks/{row['id']}")


def _items(values: Any) -> Any:
    """A JSON list of requirements, criteria or files as a bullet list (anything else as text)."""
    if isinstance(values, list) and values:
        return html.Ul([html.Li(v if isinstance(v, str) else json.dumps(v)) for v in values])
    return _shown(values)


def _section(title: str, body: Any) -> html.Section:
    return html.Section([html.H2(title), body], className="panel")


def _overview(detail: TaskDetail) -> html.Section:
    t = detail.task
    pairs = [
        ("Status", t["status"]),
        ("Type", t["type"]),
        ("Priority", t["priority"]),
        ("Complexity", t["complexity_score"]),
        ("Assigned to", _shown(t["assigned_to"])),
        ("Tags", ", ".join(map(str, t["tags"] or [])) or "—"),
        (
            "Estimated / actual hours",
            f"{_shown(t['estimated_hours'])} / {_shown(t['actual_hours'])}",
        ),
        ("Created", _when(t["created_at"])),
        ("Updated", _when(t["updated_at"])),
        ("Completed", _when(t["completed_at"])),
        ("Parent task", task_link(detail.parent) if detail.parent else "—"),
    ]
    facts = html.Dl(
        [part for label, value in pairs for part in (html.Dt(label), html.Dd(value))],
        className="facts",
        id="task-facts",
    )
    return html.Section(
        [
            html.P(t["description"] or "No description.", className="task-description"),
            facts,
            html.H3("Requirements"),
            _items(t["requirements"]),
            html.H3("Acceptance criteria"),
            _items(t["acceptance_criteria"]),
            html.H3("Affected files"),
            _items(t["affected_files"]),
        ],
        className="panel",
    )


def _related(detail: TaskDetail) -> html.Section:
    children = [[task_link(c), c["status"]] for c in detail.children]
    dependencies = [[d["relation"], task_link(d), d["status"]] for d in detail.dependencies]
    return _section(
        "Related tasks",
        html.Div(
            [
                html.H3("Child tasks"),
                data_table(["Task", "Status"], children, "task-children", empty="No child tasks."),
                html.H3("Dependencies"),
                data_table(
                    ["Relation", "Task", "Status"],
                    dependencies,
                    "task-dependencies",
                    empty="No dependencies.",
                ),
            ]
        ),
    )


def _workflow(detail: TaskDetail) -> html.Section:
    headers = ["Workflow", "Step", "Status", "Started", "Completed", "Retries", "Error"]
    keys = ["workflow_id", "step", "status", "started_at", "completed_at", "retry_count",
            "error_message"]  # fmt: skip
    return _section(
        "Workflow steps",
        _record_table(detail.workflow, headers, keys, "task-workflow", "No workflow steps."),
    )


def _contexts(detail: TaskDetail) -> html.Section:
    body = [
        [
            c["context_type"],
            _when(c["created_at"]),
            html.Pre(json.dumps(c["context_data"], indent=2, default=str), className="code-block"),
        ]
        for c in detail.contexts
    ]
    return _section(
        f"Contexts (newest {RECENT})",
        data_table(["Type", "Added", "Data"], body, "task-contexts", empty="No contexts."),
    )


def _validations(detail: TaskDetail) -> html.Section:
    headers = ["Type", "Status", "Score", "Time (ms)", "Retries", "Claude Code", "Run"]
    keys = ["validation_type", "validation_status", "validation_score", "execution_time_ms",
            "retry_count", "claude_code_version", "created_at"]  # fmt: skip
    return _section(
        f"Validation runs (newest {RECENT})",
        _record_table(detail.validations, headers, keys, "task-validations", "No validation runs."),
    )


def _errors(detail: TaskDetail) -> html.Section:
    body = [
        [
            e["error_severity"],
            link(e["error_code"], f"/errors/{e['id']}"),
            e["error_message"],
            e["resolution_status"],
            _when(e["last_occurred_at"]),
        ]
        for e in detail.errors
    ]
    header = ["Severity", "Code", "Message", "Status", "Last seen"]
    return _section(
        f"Errors (most recent {RECENT})",
        data_table(header, body, "task-errors", empty="No errors linked to this task."),
    )


def layout(task_id: str | None = None, **_query: str) -> html.Div:
    if not has_permission(PERMISSION):
        return not_permitted("tasks")
    back = link("← Tasks", "/tasks", className="back-link")
    return html.Div([back, _task(task_id or "")])


@failure_message(database="This task could not be loaded. {}")
def _task(task_id: str) -> html.Div:
    detail = task_detail(actor_with(PERMISSION), task_id)
    if detail is None:
        return html.Div(
            [
                html.H2("No such task"),
                html.P("There is no task with that id, or you may not see it."),
            ],
            className="panel",
            id="no-such-task",
        )
    # Validation runs and errors need their own read permission (RLS would return none anyway).
    sections = [_overview(detail), _related(detail), _workflow(detail), _contexts(detail)]
    if has_permission("validations:read"):
        sections.append(_validations(detail))
    if has_permission("errors:read"):
        sections.append(_errors(detail))
    return html.Div([html.H1(detail.task["title"], id="task-title"), *sections])
