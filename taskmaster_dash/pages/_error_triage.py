"""The triage list under the error-rate charts on /errors: filters (kept in the URL), a
server-side paged grid over error_logs, a side panel with the clicked error, and bulk
resolve / ignore of the selected rows.

`triage_section(**query)` is what pages/errors.py puts below its charts.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import dash
import dash_ag_grid as dag
from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
)

from taskmaster_dash.auth.permissions import (
    actor_with,
    has_permission,
    require_permission,
    signed_in_user,
)
from taskmaster_dash.data.errors.actions import (
    ACTIONS,
    MAX_BULK,
    TriageRefused,
    change_errors,
    parse_seen,
)
from taskmaster_dash.data.errors.detail import error_detail
from taskmaster_dash.data.errors.filters import parse_uuid
from taskmaster_dash.data.errors.listing import SPARK_WINDOWS, count_errors, error_page
from taskmaster_dash.data.grid import parse_grid_request
from taskmaster_dash.pages._error_panel import (
    CHANGED,
    NOT_SAVED,
    error_view,
    no_such_error,
    note_input,
)
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._input import pressed
from taskmaster_dash.pages._timerange import (
    PAGE_KEYS,
    RANGES,
    ViewState,
    control,
    view_from_store,
)
from taskmaster_dash.pages._ui import grid_response, link, message, refresh_grid_on, when

GRID = "triage-grid"
PANEL = "triage-panel"
PANEL_CLOSE = "triage-panel-close"
COUNT = "triage-count"
MESSAGE = "triage-message"
GRID_MESSAGE = "triage-grid-message"
REFRESH = "triage-refresh"  # data changes -> the grid's cache is purged and the count redone
BULK_NOTE = "triage-bulk-note"
BULK_RESOLVE = "triage-bulk-resolve"
BULK_IGNORE = "triage-bulk-ignore"
BULK_INVESTIGATE = "triage-bulk-investigate"
BULK_BUTTONS = {BULK_INVESTIGATE: "investigate", BULK_RESOLVE: "resolve", BULK_IGNORE: "ignore"}
BULK_MESSAGE = "triage-bulk-message"
PAGE_SIZE = 100

# One row per error group (migration 080). The status cell carries the Regressed / Escalating
# badges and the Occurrences cell the hourly sparkline: both drawn by assets/error_groups.js.
COLUMNS = [
    {"field": "error_severity", "headerName": "Severity", "sortable": True, "width": 105},
    {"field": "error_code", "headerName": "Code", "width": 160},
    {
        "field": "error_message",
        "headerName": "Message",
        "flex": 1,
        "minWidth": 240,
        "tooltipField": "error_message",
    },
    {
        "field": "resolution_status",
        "headerName": "Status",
        "width": 230,
        "cellRenderer": "ErrorGroupStatus",
    },
    {"field": "occurrence_count", "headerName": "Count", "sortable": True, "width": 90},
    {
        "field": "sparkline",
        "headerName": "Occurrences / hour",
        "width": 140,
        "cellRenderer": "OccurrenceSparkline",
    },
    {"field": "seen_in", "headerName": "Seen in", "width": 180, "tooltipField": "seen_in"},
    {"field": "environment", "headerName": "Env", "width": 110},
    {"field": "first_occurred_at", "headerName": "First seen", "sortable": True, "width": 185},
    {
        "field": "last_occurred_at",
        "headerName": "Last seen",
        "sortable": True,
        "sort": "desc",
        "width": 185,
    },
    {
        "field": "escalating_since",
        "headerName": "Escalating since",
        "sortable": True,
        "sortingOrder": ["desc", "asc", None],  # the first click: escalating first
        "width": 185,
    },
    {"field": "error_category", "headerName": "Category", "width": 130},
    {"field": "task", "headerName": "Task", "width": 160, "tooltipField": "task"},
]
TIME_COLUMNS = ("first_occurred_at", "last_occurred_at", "escalating_since")
# What the browser reads of a row: the columns, the row id, the badges (assets/error_groups.js)
# and updated_at (a bulk action's check that the row has not changed since it was shown).
ROW_FIELDS = (
    *(str(column["field"]) for column in COLUMNS),
    "id",
    "regressed",
    "escalating",
    "updated_at",
)


def spark_hours(view: ViewState) -> int:
    """The sparkline spans the last 24 hours for a view of a day or less, else 7 days."""
    day, week = SPARK_WINDOWS
    window = view.window()
    span = RANGES.get(view.range) or window.end - window.start  # presets: not floored
    return day if span <= timedelta(hours=day) else week


LIST_KEYS = [key for key in PAGE_KEYS["errors"] if not key.charts]  # the charts' keys sit above


def _bulk_bar() -> html.Div:
    return html.Div(
        [
            note_input(
                BULK_NOTE, "One note for all selected errors (required to resolve or ignore)"
            ),
            html.Button(
                "Investigating",
                id=BULK_INVESTIGATE,
                className="button secondary",
                title="Tell the others you are on the selected errors (they stay open)",
            ),
            html.Button("Resolve selected", id=BULK_RESOLVE, className="button"),
            html.Button("Ignore selected", id=BULK_IGNORE, className="button secondary"),
            html.Div(id=BULK_MESSAGE),
        ],
        className="bulk-bar",
    )


def triage_section(view: ViewState) -> html.Div:
    """The list under the charts; it reads the page's view (range, severity, ...) and adds its
    own keys (status, environment, search), all in the one URL."""
    if not has_permission("errors:read"):
        return html.Div(id="error-triage")
    can_write = has_permission("errors:write")
    options: dict[str, Any] = {
        "cacheBlockSize": PAGE_SIZE,
        "maxBlocksInCache": 50,
        "infiniteInitialRowCount": 1,
        "tooltipShowDelay": 400,
        "suppressCellFocus": True,
    }
    if can_write:
        # Only with something to act on; AG Grid fails on a null rowSelection, so a
        # read-only list leaves the option out altogether.
        options["rowSelection"] = {
            "mode": "multiRow",
            "checkboxes": True,
            "headerCheckbox": False,
            "enableClickSelection": False,
        }
    grid = dag.AgGrid(
        id=GRID,
        rowModelType="infinite",
        columnDefs=COLUMNS,
        defaultColDef={"sortable": False, "resizable": True, "filter": False},
        getRowId="params.data.id",
        dashGridOptions=options,
        style={"height": "600px", "width": "100%"},
        className="triage-grid",
    )
    return html.Div(
        [
            html.H2("Triage"),
            dcc.Store(id=REFRESH),
            dcc.Store(id=PURGED),
            html.Div([control(key, view) for key in LIST_KEYS], className="tr-bar triage-filters"),
            html.Div(
                [
                    html.Div(id=COUNT, className="triage-count"),
                    html.Div(id=MESSAGE),
                    html.Div(id=GRID_MESSAGE),
                ],
                className="triage-status-line",
            ),
            _bulk_bar() if can_write else None,
            html.Div(
                [
                    html.Div(grid, className="triage-list"),
                    html.Aside(id=PANEL, className="triage-panel"),
                ],
                className="triage-body",
            ),
        ],
        id="error-triage",
        className="error-triage",
    )


# -- callbacks -----------------------------------------------------------------------------

# A new view or a change made here: the grid drops its cached blocks and asks again.
PURGED = refresh_grid_on(GRID, "tr-view", REFRESH)


@callback(
    Output(GRID, "getRowsResponse"),
    Output(GRID_MESSAGE, "children"),
    Input(GRID, "getRowsRequest"),
    State("tr-view", "data"),
    prevent_initial_call=True,
)
@require_permission("errors:read")
@failure_message(
    outputs=2, at=1, database="The error list could not be loaded. {}", failed={0: grid_response()}
)
def rows_for_grid(request: Any, view_data: Any):
    actor = actor_with("errors:read")
    block = parse_grid_request(request, PAGE_SIZE)
    view = view_from_store(view_data)
    flt = view.error_filter()
    sort_model = request.get("sortModel") if isinstance(request, dict) else None
    rows = error_page(actor, flt, sort_model, block.start, block.end, spark_hours(view))
    shown = [{name: row[name] for name in ROW_FIELDS} for row in rows]
    for row in shown:
        for column in TIME_COLUMNS:
            row[column] = when(row[column], seconds=True) or None
    return grid_response(shown, total=None, block=block), None


@callback(
    Output(COUNT, "children"),
    Output(MESSAGE, "children"),
    Input("tr-view", "data"),
    Input(REFRESH, "data"),
)
@require_permission("errors:read")
@failure_message(outputs=2, at=1, database="Could not count the errors. {}", failed={0: ""})
def count_matching(view_data: Any, _changed: Any):
    actor = actor_with("errors:read")
    flt = view_from_store(view_data).error_filter()
    count, more = count_errors(actor, flt)
    if count == 0:
        return "No errors match these filters.", None
    noun = "error" if count == 1 and not more else "errors"
    return f"{count:,}{'+' if more else ''} {noun} match.", None


# A change made in the side panel refreshes the list too.
clientside_callback(
    ClientsideFunction("triage", "refreshOnChange"),  # assets/clientside.js
    Output(REFRESH, "data", allow_duplicate=True),
    Input(CHANGED, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(PANEL, "children"),
    Input(GRID, "cellClicked"),
    prevent_initial_call=True,
)
@require_permission("errors:read")
@failure_message(database="This error could not be loaded. {}")
def open_side_panel(clicked: Any):
    actor = actor_with("errors:read")
    if not isinstance(clicked, dict) or str(clicked.get("colId", "")).startswith("ag-Grid-"):
        raise dash.exceptions.PreventUpdate  # the selection checkbox, not the row
    error_id = parse_uuid(clicked.get("rowId"))
    if error_id is None:
        return no_such_error()
    detail = error_detail(actor, error_id)
    if detail is None:
        return no_such_error()
    user = signed_in_user()
    return html.Div(
        [
            html.Div(
                [
                    link("Open on its own page", f"/errors/{error_id}", id="triage-panel-link"),
                    html.Button("Close", id=PANEL_CLOSE, className="button secondary"),
                ],
                className="panel-toolbar",
            ),
            error_view(detail, user is not None and user.has("errors:write")),
        ],
        className="panel",
    )


@callback(
    Output(PANEL, "children", allow_duplicate=True),
    Input(PANEL_CLOSE, "n_clicks"),
    prevent_initial_call=True,
)
def close_side_panel(clicks: Any):
    if not clicks:
        raise dash.exceptions.PreventUpdate
    return None


@callback(
    Output(BULK_MESSAGE, "children"),
    Output(BULK_NOTE, "value"),
    Output(REFRESH, "data", allow_duplicate=True),
    Output(GRID, "deselectAll"),
    *[Input(button, "n_clicks") for button in BULK_BUTTONS],
    State(GRID, "selectedRows"),
    State(BULK_NOTE, "value"),
    prevent_initial_call=True,
)
@require_permission("errors:write")
@failure_message(outputs=4, database=NOT_SAVED)
def bulk_action(*args: Any):
    selected, note = args[len(BULK_BUTTONS) :]
    actor = actor_with("errors:write")
    action = BULK_BUTTONS[pressed(BULK_BUTTONS)]
    if not isinstance(selected, list):
        selected = []
    if len(selected) > MAX_BULK:
        raise TriageRefused(f"At most {MAX_BULK} errors at once; nothing was saved.")
    seen = [
        parse_seen(row.get("id"), row.get("updated_at"))
        if isinstance(row, dict)
        else parse_seen(None, None)
        for row in selected
    ]
    changed = change_errors(actor, seen, action, note)
    plural = "error" if len(changed) == 1 else "errors"
    return (
        message(f"{len(changed)} {plural} {ACTIONS[action].label}.", "success"),
        "",
        {"ids": changed, "at": int(time.time() * 1000)},
        True,
    )
