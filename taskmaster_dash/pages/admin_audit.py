"""Admin: the audit log, newest first, filterable by user, table, operation and date range, with
before/after shown as the keys that changed. Paged on the server."""

from __future__ import annotations

import dash_ag_grid as dag
from dash import Input, Output, State, callback, dcc, html

from taskmaster_dash.auth.permissions import actor_with, has_permission, require_permission
from taskmaster_dash.data.audit import ACTIONS, AuditFilter, audit_page, audited_tables
from taskmaster_dash.data.grid import parse_grid_request
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._timerange import key_values, search_for, write_url_from
from taskmaster_dash.pages._ui import (
    field,
    grid_response,
    not_permitted,
    refresh_grid_on,
    register_page,
    when,
)

PERMISSION = "audit:read"
register_page(
    __name__,
    path="/admin/audit",
    name="Audit log",
    order=92,
    permission=PERMISSION,
)

GRID = "aa-grid"
FILTERS = "aa-filters"
PURGED = refresh_grid_on(GRID, FILTERS)
COLUMNS = [
    {"field": "timestamp", "headerName": "When", "minWidth": 210, "maxWidth": 230},
    {"field": "username", "headerName": "Who", "maxWidth": 160},
    {"field": "entity_type", "headerName": "Table", "maxWidth": 160},
    {"field": "action", "headerName": "Operation", "maxWidth": 140},
    {"field": "changes", "headerName": "Changes", "flex": 3, "tooltipField": "changes"},
]


URL = "aa-url"
URL_WRITTEN = write_url_from(URL)


def layout(**query: str) -> html.Div:
    if not has_permission(PERMISSION):
        return not_permitted("the audit log")
    return _page(key_values(query, "audit"))  # ?user=&table=&operation=&from=&to=


@failure_message()
def _page(chosen: dict[str, str | None]) -> html.Div:
    tables = audited_tables(actor_with(PERMISSION))
    return html.Div(
        [
            html.H1("Audit log"),
            dcc.Store(id=FILTERS, data=_filters_from(chosen)),
            dcc.Store(id=PURGED),
            dcc.Store(id=URL),
            dcc.Store(id=URL_WRITTEN),
            html.Div(
                [
                    field(
                        "User (exact)",
                        dcc.Input(id="aa-user", value=chosen["user"], maxLength=100, debounce=True),
                    ),
                    field(
                        "Table", dcc.Dropdown(id="aa-table", options=tables, value=chosen["table"])
                    ),
                    field(
                        "Operation",
                        dcc.Dropdown(
                            id="aa-action", options=list(ACTIONS), value=chosen["operation"]
                        ),
                    ),
                    field(
                        "Dates",
                        dcc.DatePickerRange(
                            id="aa-dates",
                            display_format="YYYY-MM-DD",
                            start_date=chosen["from"],
                            end_date=chosen["to"],
                        ),
                    ),
                ],
                className="filter-row",
            ),
            html.Div(id="aa-message"),
            dag.AgGrid(
                id=GRID,
                rowModelType="infinite",
                columnDefs=COLUMNS,
                defaultColDef={"resizable": True, "sortable": False, "flex": 1},
                dashGridOptions={
                    "rowSelection": {
                        "mode": "singleRow",
                        "checkboxes": False,
                        "enableClickSelection": True,
                    },
                    "cacheBlockSize": 100,
                    "maxBlocksInCache": 10,
                    "tooltipShowDelay": 300,
                },
                getRowId="params.data.id",
                style={"height": "520px"},
            ),
            html.Div(id="aa-detail", className="panel audit-detail"),
        ]
    )


def _filters_from(chosen: dict) -> dict:
    return {
        "username": chosen["user"],
        "table": chosen["table"],
        "action": chosen["operation"],
        "since": chosen["from"],
        "until": chosen["to"],
    }


@callback(
    Output(FILTERS, "data"),
    Output(URL, "data"),
    Input("aa-user", "value"),
    Input("aa-table", "value"),
    Input("aa-action", "value"),
    Input("aa-dates", "start_date"),
    Input("aa-dates", "end_date"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
def choose_filters(user, table, action, since, until):
    """The filters for the grid, and the same in the URL (the one view model writes it)."""
    day = lambda v: v[:10] if isinstance(v, str) else v  # noqa: E731 - the picker sends dates
    query = {
        "user": user,
        "table": table,
        "operation": action,
        "from": day(since),
        "to": day(until),
    }
    return {"username": user, "table": table, "action": action, "since": since, "until": until}, (
        search_for(query, "audit")
    )


@callback(
    Output(GRID, "getRowsResponse"),
    Output("aa-message", "children"),
    Input(GRID, "getRowsRequest"),
    State(FILTERS, "data"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message(outputs=2, at=1, failed={0: grid_response()})
def load_audit(request, filters):
    block = parse_grid_request(request)
    chosen = AuditFilter.parse(**_known(filters))
    rows, total = audit_page(actor_with(PERMISSION), chosen, block.start, block.limit)
    for row in rows:
        row["timestamp"] = when(row["timestamp"], seconds=True)
    # total None: more rows than are counted; the grid learns the end from a short block.
    return grid_response(rows, total=total, block=block), None


def _known(filters) -> dict:
    keys = ("username", "table", "action", "since", "until")
    return {k: filters.get(k) for k in keys} if isinstance(filters, dict) else {}


@callback(
    Output("aa-detail", "children"),
    Input(GRID, "selectedRows"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
def show_detail(selected):
    if not (isinstance(selected, list) and selected and isinstance(selected[0], dict)):
        return "Select a row to see its changes in full."
    row = selected[0]
    changes = str(row.get("changes") or "(no field changed)").split("; ")
    title = f"{row.get('timestamp')} · {row.get('username') or 'unknown'} · " + (
        f"{row.get('action')} {row.get('entity_type')} {row.get('entity') or ''}"
    )
    return [html.Strong(title), html.Ul([html.Li(c) for c in changes])]
