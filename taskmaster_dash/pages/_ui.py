"""Small building blocks shared by the pages (not a page: Dash skips files starting with _)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import dash
import dash_ag_grid as dag
import plotly.graph_objects as go
from dash import ClientsideFunction, Input, Output, State, clientside_callback, dcc, html

from taskmaster_dash.data.grid import GridRequest

# Every chart's Plotly config: the mode bar only while the pointer is over the chart (it covers
# legends otherwise), no Plotly logo.
CHART_CONFIG: dcc.Graph.Config = {"displaylogo": False, "displayModeBar": "hover"}


APP_TITLE = "TaskMaster Dash"


def register_page(module: str, name: str, title: str | None = None, **options: Any) -> None:
    """`dash.register_page`, the browser tab titled "<title> · TaskMaster Dash" (`title` is the
    page's `name` unless given); `options` as there (path, order, nav, permission, ...)."""
    dash.register_page(module, name=name, title=f"{title or name} · {APP_TITLE}", **options)


def href(path: str) -> str:
    """An app path ("/tasks?range=7d") as the browser must ask for it: under the app's URL
    prefix (url_base_pathname / requests_pathname_prefix), "/dash/tasks?range=7d"."""
    return dash.get_relative_path(path)


def link(children: Any, path: str, **props: Any) -> dcc.Link:
    """A link to a page of the app; `path` is the app path, the prefix is added here."""
    return dcc.Link(children, href=href(path), **props)


def stat_card(card_id: str, label: str, path: str) -> dcc.Link:
    """A headline figure that links to the page with its detail; the value is filled in later."""
    return link(
        html.Div(
            [
                html.Div(label, className="stat-label"),
                html.Div("…", id=card_id, className="stat-value"),
            ],
            className="stat-card",
        ),
        path,
        className="stat-link",
    )


def when(value: datetime | None, seconds: bool = False, missing: str = "") -> str:
    """A moment as the app shows it everywhere: UTC, to the minute (or second)."""
    if not isinstance(value, datetime) or value != value:  # None, text, pandas' NaT
        return missing
    # "2026-12-07 09:30:00+00:00", cut: twice as fast as strftime (the grid shows 300 a page)
    shown = value.astimezone(UTC).isoformat(" ", "seconds")
    return f"{shown[: 19 if seconds else 16]} UTC"


def field(label: str, component: Any) -> html.Label:
    """A form control with its label above it."""
    return html.Label([html.Span(label, className="field-label"), component], className="field")


def form_row(*controls: Any, **props: Any) -> html.Div:
    """Form controls side by side, wrapping on a narrow screen."""
    return html.Div(list(controls), className="form-row", **props)


def text_input(component_id: str, placeholder: str | None = None, **props: Any) -> dcc.Input:
    """A one-line text box (the callback parses what is typed)."""
    if placeholder is not None:
        props["placeholder"] = placeholder
    return dcc.Input(id=component_id, type="text", **props)


def data_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any] | html.Tr],
    table_id: str | None = None,
    *,
    empty: str | None = None,
) -> html.Table | html.P:
    """A plain table: a header row and one row per item (a list of cells, or an html.Tr when
    the row needs its own id or class; an html.Td cell keeps its own class). With `empty`,
    no rows give that sentence instead of a table with no body."""
    body = [row if isinstance(row, html.Tr) else html.Tr([_cell(c) for c in row]) for row in rows]
    named: dict[str, Any] = {"id": table_id} if table_id else {}
    if not body and empty is not None:
        return html.P(empty, className="muted", **named)
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(body)],
        className="data-table",
        **named,
    )


def list_grid(grid_id: str, columns: Sequence[dict[str, Any]], rows: Sequence[dict]) -> dag.AgGrid:
    """One page of a list (the server pages it) as one AG Grid rather than a table of Dash
    components, which the browser draws several times slower. Each row has an "id"; a column
    with cellRenderer "AppLink" links its text to the row's "href" (an app path, prefixed
    here; assets/grid_links.js)."""
    shown = [{**row, "href": href(row["href"])} if "href" in row else row for row in rows]
    return dag.AgGrid(
        id=grid_id,
        rowData=shown,
        columnDefs=list(columns),
        defaultColDef={"sortable": False, "resizable": True, "flex": 1, "minWidth": 90},
        getRowId="params.data.id",
        dashGridOptions={"domLayout": "autoHeight", "suppressCellFocus": True},
        style={"width": "100%"},
    )


def _cell(value: Any) -> html.Td:
    return value if isinstance(value, html.Td) else html.Td(value)


def grid_response(
    rows: Sequence[dict] = (), *, total: int | None = 0, block: GridRequest | None = None
) -> dict[str, Any]:
    """An infinite grid's getRowsResponse. rowCount is the total when it was counted (no rows,
    as when the query failed: 1, because a grid told 0 never asks again); uncounted (total
    None), a short block is the last one and ends the list, a full one leaves it open (None)
    so the grid asks for more as the user scrolls."""
    if total is not None:
        count: int | None = max(total, 1)
    elif block is not None and len(rows) < block.limit:
        count = max(1, block.start + len(rows))
    else:
        count = None
    return {"rowData": list(rows), "rowCount": count}


def refresh_grid_on(grid_id: str, *stores: str) -> str:
    """After a server-side change (or a new external filter) the infinite grid drops its cached
    blocks and asks the server again. Call at import time; put a dcc.Store with the returned id
    in the page's layout."""
    done = f"{grid_id}-purged"
    clientside_callback(
        ClientsideFunction("grid", "purge"),  # assets/clientside.js
        Output(done, "data"),
        [Input(store, "data") for store in stores],
        State(grid_id, "id"),
        prevent_initial_call=True,
    )
    return done


def not_permitted(what: str = "this page") -> html.Div:
    return html.Div(
        [html.H2("Not permitted"), html.P(f"Your role does not allow you to see {what}.")],
        className="panel not-permitted",
        id="not-permitted",
    )


MessageKind = Literal["success", "info", "warning", "error"]


def message(text: Any, kind: MessageKind = "error", **props: Any) -> html.Div:
    """What the app tells the user after an action or about a panel, styled by kind: success
    (done), info (nothing is wrong), warning (done, but look), error (not done, or cannot
    show). The one place a message gets its look (assets/style.css, .message-<kind>)."""
    return html.Div(
        text,
        className=f"message message-{kind}",
        role="alert" if kind == "error" else "status",
        **props,
    )


def style_figure(figure: go.Figure, title: str | None = None) -> go.Figure:
    """Transparent backgrounds and a neutral font so charts read well in light and dark themes."""
    figure.update_layout(
        title=title,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": "#8a94a6"},
        margin={"l": 40, "r": 16, "t": 40 if title else 16, "b": 40},
        hovermode="x unified",
    )
    figure.update_xaxes(gridcolor="rgba(138,148,166,0.2)")
    figure.update_yaxes(gridcolor="rgba(138,148,166,0.2)", rangemode="tozero")
    return figure
