"""One error, read and acted on: the view shared by the detail page (/errors/<id>) and the side
panel of the triage list, and the callback behind its Investigating / Resolve / Ignore / Reopen
buttons.

Both places use the same component ids (they are never on screen together), so the action
callback is defined once, here. Text from the error row is always given to Dash as strings,
which it renders as text: a message containing HTML is shown, never run.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

from dash import Input, Output, State, callback, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.permissions import actor_with, require_permission
from taskmaster_dash.data.db import user_message
from taskmaster_dash.data.errors.actions import (
    ACTIONS,
    MAX_NOTE,
    change_errors,
    parse_seen,
)
from taskmaster_dash.data.errors.detail import ErrorDetail, error_detail
from taskmaster_dash.data.errors.filters import CLOSED_STATUSES, OPEN_STATUSES, parse_uuid
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._input import pressed
from taskmaster_dash.pages._ui import data_table, link, message, when

CHANGED = "err-changed"  # data: {"ids": [...], "at": ms} after a successful action
MESSAGE = "err-action-message"
BODY = "err-body"
SEEN = "err-seen"  # data: {"id", "updated_at"} of the error as shown
NOTE = "err-note"
DUPLICATE = "err-duplicate-of"
RESOLVE = "err-resolve"
IGNORE = "err-ignore"
REOPEN = "err-reopen"
INVESTIGATE = "err-investigate"
BUTTON_ACTIONS = {
    RESOLVE: "resolve",
    IGNORE: "ignore",
    REOPEN: "reopen",
    INVESTIGATE: "investigate",
}


# A change that failed on the database: the note typed stays in its field.
NOT_SAVED = "The change was not saved. {} Your note is kept; try again."


def error_link(error_id: str, label: str | None = None) -> dcc.Link:
    return link(label or error_id, f"/errors/{error_id}")


_time = partial(when, seconds=True, missing="—")


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _facts(pairs: list[tuple[str, Any]]) -> html.Dl:
    items: list[Any] = []
    for label, value in pairs:
        items += [
            html.Dt(label),
            html.Dd(value if isinstance(value, html.Div | dcc.Link) else _text(value)),
        ]
    return html.Dl(items, className="facts")


def _json_block(value: Any, block_id: str) -> html.Pre:
    return html.Pre(
        json.dumps(value if value is not None else {}, indent=2, sort_keys=True, default=str),
        className="code-block",
        id=block_id,
    )


def _section(title: str, *children: Any) -> html.Section:
    return html.Section([html.H3(title), *children], className="detail-section")


def _linked(detail: ErrorDetail) -> list[Any]:
    error = detail.error
    task = detail.task
    if task:
        task_text: Any = html.Div(
            [
                link(task["title"], f"/tasks/{task['id']}"),
                html.Span(f" ({task['status']})", className="muted"),
            ]
        )
    else:
        task_text = "not visible to you" if error["task_id"] else None
    validation = detail.validation
    validation_text = (
        f"{validation['validation_type']}: {validation['validation_status']}"
        + (
            f", score {validation['validation_score']}"
            if validation["validation_score"] is not None
            else ""
        )
        if validation
        else ("not visible to you" if error["validation_result_id"] else None)
    )
    workflow = detail.workflow
    workflow_text = (
        f"{workflow['workflow_id']} · step {workflow['step']}: {workflow['status']}"
        + (f" ({workflow['error_message']})" if workflow["error_message"] else "")
        if workflow
        else ("not visible to you" if error["workflow_state_id"] else None)
    )
    return [("Task", task_text), ("Validation", validation_text), ("Workflow", workflow_text)]


def _history(detail: ErrorDetail) -> Any:
    if not detail.history:
        return html.P("Nothing has been done to this error through the app yet.", className="muted")
    rows = []
    for item in detail.history:
        if item["action"] == "create":
            change = "created"
        elif item["old_status"] != item["new_status"]:
            change = f"{item['old_status']} → {item['new_status']}"
        else:
            change = item["action"]
        note = html.Td(_text(item["notes"]), className="note-cell")
        rows.append([_time(item["timestamp"]), _text(item["username"]), change, note])
    return data_table(["When", "Who", "Change", "Note"], rows, "err-history")


def group_badges(group: dict[str, Any]) -> list[html.Span]:
    """The Regressed / Escalating badges of a group (the triage grid draws the same ones in
    assets/error_groups.js)."""
    badges = []
    if group.get("regressed"):
        badges.append(html.Span("Regressed", className="badge badge-regressed"))
    if group.get("escalating"):
        badges.append(html.Span("Escalating", className="badge badge-escalating"))
    return badges


def _same_code(detail: ErrorDetail) -> Any:
    if not detail.same_code:
        return html.P("No other error groups with this code.", className="muted")
    more = detail.same_code_total - len(detail.same_code)
    total = f"{detail.same_code_total:,}" + ("+" if detail.same_code_more else "")
    noun = "group" if detail.same_code_total == 1 and not detail.same_code_more else "groups"
    return html.Div(
        [
            html.P(f"{total} other error {noun} with this code; the newest:", className="muted"),
            html.Ul(
                [
                    html.Li(
                        [
                            error_link(row["id"], row["id"][:8]),
                            f" {row['error_severity']} · {row['resolution_status']} · "
                            f"last seen {_time(row['last_occurred_at'])} · "
                            f"×{row['occurrence_count']:,}"
                            + (f" in {row['group_rows']:,} rows" if row["group_rows"] > 1 else "")
                            + " ",
                            *group_badges(row),
                            " — ",
                            html.Span(row["error_message"]),
                        ],
                        className="same-code-group",
                    )
                    for row in detail.same_code
                ],
                id="err-same-code",
            ),
            html.P(f"and {more:,} more", className="muted") if more > 0 else None,
        ]
    )


def note_input(input_id: str, placeholder: str) -> dcc.Textarea:
    """Where the note of a triage action is typed (kept when the action fails)."""
    return dcc.Textarea(
        id=input_id, maxLength=MAX_NOTE, placeholder=placeholder, className="note-input"
    )


def _actions(detail: ErrorDetail) -> html.Div:
    error = detail.error
    status = error["resolution_status"]
    is_open = status in OPEN_STATUSES
    return html.Div(
        [
            dcc.Store(
                id=SEEN, data={"id": error["id"], "updated_at": error["updated_at"].isoformat()}
            ),
            html.Label("Note", htmlFor=NOTE),
            note_input(NOTE, "What was done, or why it can be ignored (required for both)"),
            html.Div(
                [
                    html.Button(
                        "Investigating",
                        id=INVESTIGATE,
                        className="button secondary",
                        disabled=status != "unresolved",
                        title="Tell the others you are on it (the error stays open)",
                    ),
                    html.Button("Resolve", id=RESOLVE, className="button", disabled=not is_open),
                    html.Button(
                        "Ignore", id=IGNORE, className="button secondary", disabled=not is_open
                    ),
                    dcc.Input(
                        id=DUPLICATE,
                        placeholder="duplicate of (error id, optional)",
                        className="text-input",
                        disabled=not is_open,
                        maxLength=64,
                    ),
                    html.Button(
                        "Reopen",
                        id=REOPEN,
                        className="button secondary",
                        disabled=status not in CLOSED_STATUSES,
                    ),
                ],
                className="action-row",
            ),
        ],
        className="error-actions",
        id="err-actions",
    )


def detail_body(detail: ErrorDetail, can_write: bool) -> list[Any]:
    error = detail.error
    duplicate_of = parse_uuid((error.get("metadata") or {}).get("duplicate_of"))
    resolution: list[tuple[str, Any]] = [
        ("Status", error["resolution_status"]),
        ("Notes", error["resolution_notes"]),
        (
            "Resolved",
            f"{_time(error['resolved_at'])} by {error['resolved_by']}"
            if error["resolved_at"]
            else None,
        ),
    ]
    if duplicate_of:
        resolution.append(("Duplicate of", html.Div(error_link(duplicate_of))))
    return [
        html.Div(
            [
                html.Span(
                    error["error_severity"], className=f"badge sev-{error['error_severity']}"
                ),
                html.Span(error["error_code"], className="error-code", id="err-code"),
                html.Span(error["resolution_status"], className="badge status", id="err-status"),
                *group_badges(error),
            ],
            className="error-heading",
        ),
        html.P(error["error_message"], className="error-message", id="err-message"),
        _actions(detail) if can_write else None,
        _facts(
            [
                ("Category", error["error_category"]),
                (
                    "Service",
                    " ".join(p for p in (error["service_name"], error["service_version"]) if p),
                ),
                ("Seen in", detail.seen_in),
                ("Environment", error["environment"]),
                ("Occurrences", f"{error['occurrence_count']:,}"),
                ("First seen", _time(error["first_occurred_at"])),
                ("Last seen", _time(error["last_occurred_at"])),
                ("Regressed", _time(error["regressed_at"]) if error["regressed_at"] else None),
                (
                    "Escalating since",
                    _time(error["escalating_since"]) if error["escalating"] else None,
                ),
                *resolution,
                *_linked(detail),
            ]
        ),
        _section(
            "Stack trace",
            html.Pre(_text(error["stack_trace"]), className="code-block", id="err-stack"),
        ),
        _section("Details", _json_block(error["error_details"], "err-details")),
        _section("Context", _json_block(error["context_data"], "err-context")),
        _section(
            "Request",
            _facts(
                [
                    ("User", error["user_id"]),
                    ("Session", error["session_id"]),
                    ("IP address", error["ip_address"]),
                    ("User agent", error["user_agent"]),
                ]
            ),
        ),
        _section("Same code", _same_code(detail)),
        _section("History", _history(detail)),
    ]


def error_view(detail: ErrorDetail, can_write: bool) -> html.Div:
    return html.Div(
        [
            dcc.Store(id=CHANGED),
            html.Div(id=MESSAGE),
            html.Div(detail_body(detail, can_write), id=BODY),
        ],
        className="error-view",
        id=f"error-view-{detail.error['id']}",
    )


def no_such_error() -> html.Div:
    return html.Div(
        [
            html.H2("No such error"),
            html.P("There is no error with that id, or you may not see it."),
        ],
        className="panel",
        id="no-such-error",
    )


@callback(
    Output(BODY, "children"),
    Output(MESSAGE, "children"),
    Output(CHANGED, "data"),
    *[Input(button, "n_clicks") for button in BUTTON_ACTIONS],
    State(SEEN, "data"),
    State(NOTE, "value"),
    State(DUPLICATE, "value"),
    prevent_initial_call=True,
)
@require_permission("errors:write")
@failure_message(outputs=3, at=1, database=NOT_SAVED)
def act_on_error(*args: Any):
    seen, note, duplicate_of = args[len(BUTTON_ACTIONS) :]
    actor = actor_with("errors:write")
    action = BUTTON_ACTIONS[pressed(BUTTON_ACTIONS)]
    seen = seen if isinstance(seen, dict) else {}
    item = parse_seen(seen.get("id"), seen.get("updated_at"))
    change_errors(actor, [item], action, note, duplicate_of if action == "ignore" else None)
    changed = {"ids": [item.error_id], "at": int(time.time() * 1000)}
    done = f"{ACTIONS[action].label.capitalize()}."  # "Resolved.", "Marked investigating."
    try:  # saved: a failing re-read must not say otherwise
        detail = error_detail(actor, item.error_id)
    except SQLAlchemyError as exc:
        reload = f"{done} (Reload to see it: {user_message(exc)})"
        return no_update, message(reload, "warning"), changed
    if detail is None:
        return no_update, message(done, "success"), changed
    return detail_body(detail, True), message(done, "success"), changed
