"""The triage list under the error-rate charts on /errors: filters (kept in the URL), a
server-side paged grid over error_logs, a side panel with the clicked error, and bulk
resolve / ignore of the selected rows.

`triage_section(**query)` is what pages/errors.py puts below its charts.
"""

from __future__ import annotations

import time
from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from auth.permissions import actor_with, has_permission, require_permission, signed_in_user
from data.db import user_message
from data.errors import (
    ACTIONS,
    ANY,
    CATEGORIES,
    ENVIRONMENTS,
    MAX_BULK,
    MAX_NOTE,
    MAX_SEARCH,
    RANGES,
    SEVERITIES,
    STATUSES,
    ErrorFilter,
    TriageRefused,
    change_errors,
    count_errors,
    error_detail,
    error_page,
    filter_from_query,
    make_filter,
    parse_seen,
    parse_uuid,
    service_names,
)
from pages._error_panel import CHANGED, error_view, no_such_error, ok_message
from pages._ui import panel_message

GRID = "triage-grid"
PANEL = "triage-panel"
PANEL_CLOSE = "triage-panel-close"
COUNT = "triage-count"
MESSAGE = "triage-message"
GRID_MESSAGE = "triage-grid-message"
REFRESH = "triage-refresh"  # data changes -> the grid's cache is purged and the count redone
URL_SYNC = "triage-url-sync"
BULK_NOTE = "triage-bulk-note"
BULK_RESOLVE = "triage-bulk-resolve"
BULK_IGNORE = "triage-bulk-ignore"
BULK_INVESTIGATE = "triage-bulk-investigate"
BULK_BUTTONS = {BULK_INVESTIGATE: "investigate", BULK_RESOLVE: "resolve", BULK_IGNORE: "ignore"}
BULK_MESSAGE = "triage-bulk-message"
F_STATUS = "triage-status"
F_SEVERITY = "triage-severity"
F_CATEGORY = "triage-category"
F_SERVICE = "triage-service"
F_ENVIRONMENT = "triage-environment"
F_RANGE = "triage-range"
F_FROM = "triage-from"
F_TO = "triage-to"
F_SEARCH = "triage-search"
# Filter component -> URL query key; the order is the order of the callbacks' filter arguments.
FILTERS = {
    F_STATUS: "status",
    F_SEVERITY: "severity",
    F_CATEGORY: "category",
    F_SERVICE: "service",
    F_ENVIRONMENT: "environment",
    F_RANGE: "range",
    F_FROM: "from",
    F_TO: "to",
    F_SEARCH: "q",
}
PAGE_SIZE = 100

COLUMNS = [
    {"field": "error_severity", "headerName": "Severity", "sortable": True, "width": 105},
    {"field": "error_code", "headerName": "Code", "width": 170},
    {
        "field": "error_message",
        "headerName": "Message",
        "flex": 1,
        "minWidth": 240,
        "tooltipField": "error_message",
    },
    {"field": "error_category", "headerName": "Category", "width": 130},
    {"field": "service", "headerName": "Service", "width": 150},
    {"field": "environment", "headerName": "Env", "width": 110},
    {"field": "occurrence_count", "headerName": "Count", "sortable": True, "width": 90},
    {"field": "first_occurred_at", "headerName": "First", "sortable": True, "width": 165},
    {
        "field": "last_occurred_at",
        "headerName": "Last",
        "sortable": True,
        "sort": "desc",
        "width": 165,
    },
    {"field": "resolution_status", "headerName": "Status", "width": 125},
    {"field": "task", "headerName": "Task", "width": 160, "tooltipField": "task"},
]


def _options(values: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"label": v.replace("_", " "), "value": v} for v in values]


def _dropdown(component_id: str, label: str, options: list, value: Any, multi: bool = True):
    return html.Div(
        [
            html.Label(label, htmlFor=component_id),
            dcc.Dropdown(
                id=component_id,
                options=options,
                value=value,
                multi=multi,
                clearable=multi,
                placeholder="any",
            ),
        ],
        className="filter",
    )


def _text_input(component_id: str, label: str, value: str, placeholder: str, size: int = 64):
    return html.Div(
        [
            html.Label(label, htmlFor=component_id),
            dcc.Input(
                id=component_id,
                value=value,
                placeholder=placeholder,
                debounce=True,
                maxLength=size,
                className="text-input",
            ),
        ],
        className="filter",
    )


def _query_text(query: dict[str, Any], key: str) -> str:
    value = query.get(key)
    return value[:64] if isinstance(value, str) else ""


def _filters(flt: ErrorFilter, query: dict[str, Any]) -> html.Div:
    try:
        services = service_names(actor_with("errors:read"))
    except SQLAlchemyError:
        services = []
    services = sorted(set(services) | set(flt.services))
    return html.Div(
        [
            _dropdown(F_STATUS, "Status", _options(STATUSES), list(flt.statuses)),
            _dropdown(F_SEVERITY, "Severity", _options(SEVERITIES), list(flt.severities)),
            _dropdown(F_CATEGORY, "Category", _options(CATEGORIES), list(flt.categories)),
            _dropdown(
                F_SERVICE,
                "Service",
                [{"label": s, "value": s} for s in services],
                list(flt.services),
            ),
            _dropdown(F_ENVIRONMENT, "Environment", _options(ENVIRONMENTS), list(flt.environments)),
            _dropdown(
                F_RANGE,
                "Time range",
                [{"label": "any time", "value": ANY}]
                + [{"label": f"last {r}", "value": r} for r in RANGES],
                flt.range or ANY,
                multi=False,
            ),
            _text_input(F_FROM, "From (UTC)", _query_text(query, "from"), "2026-11-28T08:00"),
            _text_input(F_TO, "To (UTC)", _query_text(query, "to"), "2026-11-28T20:00"),
            html.Div(
                [
                    html.Label("Search code or message", htmlFor=F_SEARCH),
                    dcc.Input(
                        id=F_SEARCH,
                        type="search",
                        value=flt.search,
                        debounce=True,
                        maxLength=MAX_SEARCH,
                        placeholder="e.g. DB_DEADLOCK or timeout",
                        className="text-input",
                    ),
                ],
                className="filter filter-search",
            ),
        ],
        className="triage-filters",
    )


def _bulk_bar() -> html.Div:
    return html.Div(
        [
            dcc.Textarea(
                id=BULK_NOTE,
                maxLength=MAX_NOTE,
                placeholder="One note for all selected errors (required to resolve or ignore)",
                className="note-input",
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


def triage_section(**query: Any) -> html.Div:
    if not has_permission("errors:read"):
        return html.Div(id="error-triage")
    flt = filter_from_query(query)
    can_write = has_permission("errors:write")
    selection = (
        {
            "mode": "multiRow",
            "checkboxes": True,
            "headerCheckbox": False,
            "enableClickSelection": False,
        }
        if can_write
        else None
    )
    grid = dag.AgGrid(
        id=GRID,
        rowModelType="infinite",
        columnDefs=COLUMNS,
        defaultColDef={"sortable": False, "resizable": True, "filter": False},
        getRowId="params.data.id",
        dashGridOptions={
            "rowSelection": selection,
            "cacheBlockSize": PAGE_SIZE,
            "maxBlocksInCache": 50,
            "infiniteInitialRowCount": 1,
            "tooltipShowDelay": 400,
            "suppressCellFocus": True,
        },
        style={"height": "600px", "width": "100%"},
        className="triage-grid",
    )
    return html.Div(
        [
            html.H2("Triage"),
            dcc.Store(id=REFRESH),
            dcc.Store(id=URL_SYNC),
            _filters(flt, query),
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


def _filter_from_values(values: tuple) -> ErrorFilter:
    status, severity, category, service, environment, range_, since, until, q = values
    return make_filter(
        status=status,
        severity=severity,
        category=category,
        service=service,
        environment=environment,
        range=range_,
        since=since,
        until=until,
        q=q,
    )


# -- callbacks -----------------------------------------------------------------------------

FILTER_STATES = [State(component, "value") for component in FILTERS]
FILTER_INPUTS = [Input(component, "value") for component in FILTERS]


@callback(
    Output(GRID, "getRowsResponse"),
    Output(GRID_MESSAGE, "children"),
    Input(GRID, "getRowsRequest"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
@require_permission("errors:read")
def rows_for_grid(request: Any, *filters: Any):
    actor = actor_with("errors:read")
    request = request if isinstance(request, dict) else {}
    try:
        start = max(0, int(request.get("startRow") or 0))
        end = max(start + 1, int(request.get("endRow") or start + PAGE_SIZE))
    except (TypeError, ValueError):
        start, end = 0, PAGE_SIZE
    flt = _filter_from_values(filters)
    try:
        rows = error_page(actor, flt, request.get("sortModel"), start, end)
    except SQLAlchemyError as exc:
        # rowCount 1, never 0: a grid told "0 rows" never asks again after a purge.
        return {"rowData": [], "rowCount": 1}, panel_message(
            f"The error list could not be loaded. {user_message(exc)}"
        )
    # A short page is the last one: then the grid knows where the list ends. Otherwise the
    # count stays open (None) and the grid asks for more as the user scrolls.
    row_count = max(1, start + len(rows)) if len(rows) < end - start else None
    return {"rowData": rows, "rowCount": row_count}, None


@callback(
    Output(COUNT, "children"),
    Output(MESSAGE, "children"),
    *FILTER_INPUTS,
    Input(REFRESH, "data"),
)
@require_permission("errors:read")
def count_matching(*values: Any):
    actor = actor_with("errors:read")
    flt = _filter_from_values(values[:-1])
    problems = html.Div(" ".join(flt.problems), className="muted") if flt.problems else None
    try:
        count, more = count_errors(actor, flt)
    except SQLAlchemyError as exc:
        return "", panel_message(f"Could not count the errors. {user_message(exc)}")
    if count == 0:
        return "No errors match these filters.", problems
    noun = "error" if count == 1 and not more else "errors"
    return f"{count:,}{'+' if more else ''} {noun} match.", problems


# Filters -> URL (replaceState keeps other sections' keys and adds no history entry) and a
# fresh start for the grid. The server reads the filters back when the grid asks for rows.
clientside_callback(
    """function(status, severity, category, service, environment, range, from, to, q) {
        const params = new URLSearchParams(window.location.search);
        const set = (key, value, fallback) => {
            const text = Array.isArray(value) ? value.join(',') : (value || '');
            if (text && text !== fallback) { params.set(key, text); } else { params.delete(key); }
        };
        const statusText = Array.isArray(status) ? status.join(',') : '';
        if (statusText === 'unresolved,investigating') { params.delete('status'); }
        else { params.set('status', statusText || 'any'); }
        set('severity', severity); set('category', category); set('service', service);
        set('environment', environment); set('range', range, 'any'); set('from', from);
        set('to', to); set('q', q);
        const search = params.toString();
        window.history.replaceState(window.history.state, '',
            window.location.pathname + (search ? '?' + search : ''));
        const api = dash_ag_grid.getApi('triage-grid');
        if (api) { api.purgeInfiniteCache(); }
        return search;
    }""",
    Output(URL_SYNC, "data"),
    *FILTER_INPUTS,
    prevent_initial_call=True,
)

clientside_callback(
    """function(refresh) {
        const api = dash_ag_grid.getApi('triage-grid');
        if (api) { api.purgeInfiniteCache(); }
        return window.dash_clientside.no_update;
    }""",
    Output(URL_SYNC, "data", allow_duplicate=True),
    Input(REFRESH, "data"),
    prevent_initial_call=True,
)

# A change made in the side panel refreshes the list too.
clientside_callback(
    "function(changed) { return changed; }",
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
def open_side_panel(clicked: Any):
    actor = actor_with("errors:read")
    if not isinstance(clicked, dict) or str(clicked.get("colId", "")).startswith("ag-Grid-"):
        raise dash.exceptions.PreventUpdate  # the selection checkbox, not the row
    error_id = parse_uuid(clicked.get("rowId"))
    if error_id is None:
        return no_such_error()
    try:
        detail = error_detail(actor, error_id)
    except SQLAlchemyError as exc:
        return panel_message(f"This error could not be loaded. {user_message(exc)}")
    if detail is None:
        return no_such_error()
    user = signed_in_user()
    return html.Div(
        [
            html.Div(
                [
                    dcc.Link(
                        "Open on its own page",
                        href=dash.get_relative_path(f"/errors/{error_id}"),
                        id="triage-panel-link",
                    ),
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
def bulk_action(*args: Any):
    selected, note = args[len(BULK_BUTTONS) :]
    actor = actor_with("errors:write")
    action = BULK_BUTTONS.get(ctx.triggered_id)
    if action is None:
        raise dash.exceptions.PreventUpdate
    try:
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
    except TriageRefused as exc:
        return panel_message(str(exc)), no_update, no_update, no_update
    except SQLAlchemyError as exc:
        return (
            panel_message(
                f"The change was not saved. {user_message(exc)} Your note is kept; try again."
            ),
            no_update,
            no_update,
            no_update,
        )
    plural = "error" if len(changed) == 1 else "errors"
    return (
        ok_message(f"{len(changed)} {plural} {ACTIONS[action].label}."),
        "",
        {"ids": changed, "at": int(time.time() * 1000)},
        True,
    )
