"""Backlog and throughput (/tasks): open tasks over time, created vs completed, age and
breakdowns of the open backlog, estimated vs actual hours, links, and the filtered task list
that every task chart's click-through opens."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
from dash import html

from taskmaster_dash.data import analytics_tasks as q
from taskmaster_dash.data.db import Actor
from taskmaster_dash.pages._figures import bars, series_figure
from taskmaster_dash.pages._panels import (
    Fetch,
    Panel,
    analytics_layout,
    click_to,
    windowed_panel,
)
from taskmaster_dash.pages._timerange import ViewState
from taskmaster_dash.pages._ui import link, list_grid, register_page, when

PERMISSION = "tasks:read"
register_page(
    __name__,
    path="/tasks",
    name="Tasks",
    title="Backlog and throughput",
    order=1,
    permission=PERMISSION,
)
PAGE_SIZE = 25


def _backlog_figure(frame: pd.DataFrame, _view: ViewState):
    return series_figure(frame, "bucket", "open", "series", kind="area", y_title="open tasks")


def _created_completed_figure(frame: pd.DataFrame, _view: ViewState):
    long = frame.melt("bucket", ["created", "completed"], var_name="series", value_name="tasks")
    return series_figure(long, "bucket", "tasks", "series", kind="bar", barmode="group")


def _breakdown_figure(frame: pd.DataFrame, _view: ViewState):
    return series_figure(frame, "key", "tasks", "status", kind="bar", y_title="open tasks")


def _age_figure(frame: pd.DataFrame, _view: ViewState):
    order = {age: i for i, age in enumerate(q.AGE_BUCKETS)}
    frame = frame.sort_values("age", key=lambda s: s.map(order))
    return series_figure(frame, "age", "tasks", "status", kind="bar", y_title="open tasks")


def _links_figure(frame: pd.DataFrame, _view: ViewState):
    frame = frame.assign(links=frame["links"].map(lambda n: "5+" if n == 5 else str(n)))
    return bars(frame, "links", {"children": "child tasks", "dependencies": "dependencies"})


def _hours_figure(frame: pd.DataFrame, _view: ViewState):
    return bars(frame, "type", {"estimated": "estimated h", "actual": "actual h"})


TASK_COLUMNS: list[dict[str, Any]] = [
    {"field": "title", "headerName": "Title", "cellRenderer": "AppLink", "flex": 3},
    {"field": "status", "headerName": "Status"},
    {"field": "type", "headerName": "Type"},
    {"field": "priority", "headerName": "Priority"},
    {"field": "assignee", "headerName": "Assignee"},
    {"field": "created_at", "headerName": "Created", "minWidth": 150},
    {"field": "completed_at", "headerName": "Completed", "minWidth": 150},
]


def _task_row(row: dict) -> dict:
    return {
        "id": row["id"],
        "href": f"/tasks/{row['id']}",
        "title": row["title"],
        "status": row["status"],
        "type": row["type"],
        "priority": row["priority"],
        "assignee": row["assignee"] or "—",
        "created_at": when(row["created_at"]),
        "completed_at": when(row["completed_at"]),
    }


def task_table(frame: pd.DataFrame, view: ViewState) -> html.Div:
    more = len(frame) > PAGE_SIZE
    rows = [_task_row(row) for row in frame.head(PAGE_SIZE).to_dict("records")]
    pager = []
    if view.offset:
        back = view.with_changes(offset=max(0, view.offset - PAGE_SIZE))
        pager.append(link("← newer", back.href("/tasks"), id="task-list-prev"))
    if more:
        nxt = view.with_changes(offset=view.offset + PAGE_SIZE)
        pager.append(link("older →", nxt.href("/tasks"), id="task-list-next"))
    grid = list_grid("task-list-rows", TASK_COLUMNS, rows)
    return html.Div([grid, html.Div(pager, className="an-pager")])


def _list_window(view: ViewState):
    return view.window() if view.range == "custom" else None


def _breakdown_fetch(by: str) -> Fetch:
    def fetch(actor: Actor, view: ViewState) -> pd.DataFrame:
        return q.open_breakdown(actor, by, view.filters)

    return fetch


TASK_CLICK = partial(click_to, "tasks", step=q.STEP)
_panel = partial(windowed_panel, permission=PERMISSION, step=q.STEP)

PANELS = [
    _panel(
        "tasks-backlog",
        "Open tasks over time (by status now)",
        q.backlog_over_time,
        _backlog_figure,
        click=TASK_CLICK(series_key="status", series_values=q.BACKLOG_SERIES),
        value_column="open",
        wide=True,
    ),
    _panel(
        "tasks-throughput",
        "Created vs completed",
        q.created_vs_completed,
        _created_completed_figure,
        # created: every task created in the bucket; completed: the ones completed in it
        click=TASK_CLICK(series_key="status", series_values={"created": "any"}),
        value_column="created",
        wide=True,
    ),
    Panel(
        "tasks-age",
        "Age of open tasks",
        PERMISSION,
        lambda actor, v: q.open_task_age(actor, v.filters),
        _age_figure,
        click=TASK_CLICK(series_key="status", x_key="age"),
    ),
    *[
        Panel(
            f"tasks-by-{by}",
            f"Open tasks by {by}",
            PERMISSION,
            _breakdown_fetch(by),
            _breakdown_figure,
            click=TASK_CLICK(series_key="status", x_key=by),
        )
        for by in q.BREAKDOWNS
    ],
    _panel(
        "tasks-hours",
        "Estimated vs actual hours (completed in range, mean)",
        q.estimated_vs_actual,
        _hours_figure,
        click=TASK_CLICK(x_key="type", fixed={"status": "completed"}),
    ),
    Panel(
        "tasks-links",
        "Open tasks by child tasks and dependencies",
        PERMISSION,
        lambda actor, v: q.open_task_links(actor, v.filters),
        _links_figure,
    ),
    Panel(
        "tasks-list",
        "Tasks (oldest first; open unless a status is chosen; a custom range limits the list)",
        PERMISSION,
        lambda actor, v: q.task_list(
            actor, _list_window(v), v.filters, page=v.offset // PAGE_SIZE, size=PAGE_SIZE
        ),
        table=task_table,
        wide=True,
    ),
]
layout = analytics_layout(
    "tasks",
    PANELS,
    permission=PERMISSION,
    what="backlog and throughput",
    title="Backlog and throughput",
    step=q.STEP,
)
