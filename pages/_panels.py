"""Analytics panels: a chart (or table) with its CSV download and click-through, each drawn by
its own callback so a failing query shows its message in that panel and nowhere else.

A page lists its `Panel`s, puts `panel_layout(p)` in its layout and calls
`register(page, panels)` once at import; the analytics API serves the same panels as JSON.
Every callback (and the API) checks the panel's permission on the server before any query, and
runs the query as the signed-in user so RLS applies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from auth.permissions import actor_with, has_permission, require_permission
from data.db import Actor, user_message
from pages._timerange import ViewState, _parse_time, controls, parse_query, view_from_store
from pages._ui import empty_figure, not_permitted, panel_message

NO_DATA = "no data in this range"
# Built once: a go.Figure costs milliseconds to make.
LOADING, BLANK, FAILED = (
    empty_figure(text).to_plotly_json() for text in ("loading…", NO_DATA, "could not load")
)
Fetch = Callable[[Actor, ViewState], pd.DataFrame]


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    permission: str
    fetch: Fetch
    # figure(df, view) for a chart; table(df, view) -> component for a table panel
    figure: Callable[[pd.DataFrame, ViewState], dict] | None = None
    table: Callable[[pd.DataFrame, ViewState], Any] | None = None
    # click(point, view) -> href of the matching filtered list, or None
    click: Callable[[dict, ViewState], str | None] | None = None
    value_column: str | None = None  # "no data" when this column sums to zero
    wide: bool = False


def panel_layout(panel: Panel) -> html.Div:
    body = (
        dcc.Graph(
            id=f"{panel.id}-graph",
            figure=LOADING,
            config={"displaylogo": False},
            className="an-graph",
        )
        if panel.figure
        else html.Div(id=f"{panel.id}-table", className="an-table")
    )
    return html.Div(
        [
            html.Div(
                [
                    html.H3(panel.title, className="an-title"),
                    html.Button("CSV", id=f"{panel.id}-csv", className="an-csv", title="Download"),
                ],
                className="an-head",
            ),
            html.Div(id=f"{panel.id}-msg", className="an-msg"),
            body,
            dcc.Download(id=f"{panel.id}-download"),
        ],
        className="panel an-panel" + (" an-wide" if panel.wide else ""),
        id=f"{panel.id}-panel",
    )


def _is_empty(panel: Panel, frame: pd.DataFrame) -> bool:
    if frame.empty:
        return True
    column = panel.value_column
    return bool(column and column in frame and frame[column].fillna(0).sum() == 0)


def draw(panel: Panel, view: ViewState) -> tuple[Any, Any]:
    """(figure or table, message) for `view`, as the signed-in user."""
    actor = actor_with(panel.permission)
    blank = BLANK if panel.figure else html.Div(NO_DATA, className="muted")
    try:
        frame = panel.fetch(actor, view)
    except SQLAlchemyError as exc:
        failed = FAILED if panel.figure else None
        return failed, panel_message(f"{panel.title}: {user_message(exc)}")
    if _is_empty(panel, frame):
        return blank, html.Div(NO_DATA, className="muted an-empty")
    if panel.figure:
        return panel.figure(frame, view), None
    return panel.table(frame, view), None


def _register_one(panel: Panel) -> None:
    target = f"{panel.id}-graph.figure" if panel.figure else f"{panel.id}-table.children"
    target_id, target_prop = target.split(".")

    @callback(
        Output(target_id, target_prop),
        Output(f"{panel.id}-msg", "children"),
        Input("tr-view", "data"),
        Input("tr-interval", "n_intervals"),
    )
    @require_permission(panel.permission)
    def _draw(view_data, _ticks):
        return draw(panel, view_from_store(view_data))

    @callback(
        Output(f"{panel.id}-download", "data"),
        Output(f"{panel.id}-msg", "children", allow_duplicate=True),
        Input(f"{panel.id}-csv", "n_clicks"),
        State("tr-view", "data"),
        prevent_initial_call=True,
    )
    @require_permission(panel.permission)
    def _csv(_clicks, view_data):
        view = view_from_store(view_data)
        try:
            frame = panel.fetch(actor_with(panel.permission), view)
        except SQLAlchemyError as exc:
            return no_update, panel_message(f"{panel.title}: {user_message(exc)}")
        name = f"{panel.id}-{view.range}.csv"
        return dcc.send_data_frame(frame.to_csv, name, index=False), no_update

    if panel.figure and panel.click:

        @callback(
            Output("tr-location", "href", allow_duplicate=True),
            Input(f"{panel.id}-graph", "clickData"),
            State("tr-view", "data"),
            prevent_initial_call=True,
        )
        @require_permission(panel.permission)
        def _click(click_data, view_data):
            points = (click_data or {}).get("points") if isinstance(click_data, dict) else None
            if not points or not isinstance(points[0], dict):
                return no_update
            return panel.click(points[0], view_from_store(view_data)) or no_update


# page name -> its panels: the analytics API (/api/v1/analytics/<page>) serves the same data.
PAGE_PANELS: dict[str, list[Panel]] = {}


def register(page: str, panels: Sequence[Panel]) -> None:
    PAGE_PANELS[page] = list(panels)
    for panel in panels:
        _register_one(panel)


def panels_as_json(page: str, query: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(body, HTTP status) for GET /api/v1/analytics/<page>: the rows behind every panel of the
    page the signed-in user may read, for the range and filters in `query` (the page's own URL
    keys; values it does not accept fall back to the defaults, and `view` says what was used).
    A panel whose query fails carries its message; the others are still answered."""
    meta = {"requestId": f"req_{uuid.uuid4().hex[:16]}", "timestamp": _iso(datetime.now(UTC))}
    panels = PAGE_PANELS.get(page)
    if panels is None:
        known = ", ".join(sorted(PAGE_PANELS))
        return {"error": f"No analytics named {page!r}; there are: {known}.", "meta": meta}, 404
    readable = [p for p in panels if has_permission(p.permission)]
    if not readable:
        return {"error": "Not permitted.", "meta": meta}, 403
    view = parse_query(query, page)
    window = view.window()
    answered: dict[str, Any] = {}
    for panel in readable:
        try:
            frame = panel.fetch(actor_with(panel.permission), view)
        except SQLAlchemyError as exc:
            answered[panel.id] = {"title": panel.title, "error": user_message(exc)}
            continue
        rows = json.loads(frame.to_json(orient="records", date_format="iso"))
        answered[panel.id] = {"title": panel.title, "rows": rows}
    data = {
        "view": view.query(),
        "window": {"start": _iso(window.start), "end": _iso(window.end)},
        "panels": answered,
    }
    return {"data": data, "meta": meta}, 200


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- figures ------------------------------------------------------------------------------
# Plain dicts, not plotly.graph_objects: building and validating a go.Figure costs tens of
# milliseconds per chart, more than the query behind it. The styling matches _ui.style_figure.

GRID = "rgba(138,148,166,0.2)"
# Severities and task states keep one colour on every chart (worst in red) and their own order
# (worst first, at the bottom of a stack); other series take plotly's palette alphabetically.
SERIES_COLOURS = {
    "critical": "#e5484d",
    "high": "#f76b15",
    "medium": "#f5a524",
    "low": "#3e8ed0",
    "info": "#8a94a6",
    "pending": "#f5a524",
    "in_progress": "#3e8ed0",
    "closed since": "#c1c8d4",
    "completed": "#30a46c",
    "failed": "#e5484d",
    "cancelled": "#8a94a6",
}
SERIES_ORDER = {name: rank for rank, name in enumerate(SERIES_COLOURS)}


def chart(
    traces: list[dict],
    *,
    barmode: str | None = None,
    y_title: str = "",
    y_range: list[float] | None = None,
    y_log: bool = False,
    reversed_y: bool = False,
    showlegend: bool = True,
) -> dict:
    yaxis: dict[str, Any] = {
        "gridcolor": GRID,
        "rangemode": "tozero",
        "title": {"text": y_title},
        "automargin": True,  # long category labels (error codes, rule names) stay readable
    }
    if y_range:
        yaxis["range"] = y_range
    if y_log:
        yaxis["type"] = "log"
    if reversed_y:
        yaxis["autorange"] = "reversed"
    return {
        "data": traces,
        "layout": {
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"color": "#8a94a6"},
            "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
            "hovermode": "x unified",
            "barmode": barmode,
            "showlegend": showlegend,
            "xaxis": {"gridcolor": GRID},
            "yaxis": yaxis,
        },
    }


def _plain(values: pd.Series) -> list:
    """Plain JSON values; times as UTC wall-clock, which is what a click reports back."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S").tolist()
    return values.tolist()


def series_figure(
    frame: pd.DataFrame, x: str, y: str, series: str, *, kind: str = "line", **layout: Any
) -> dict:
    """One trace per value of `series`; each point carries its series value as customdata."""
    traces = []
    xs, ys = _plain(frame[x]), _plain(frame[y])
    groups = frame.groupby(series, sort=True).indices
    for name in sorted(groups, key=lambda n: (SERIES_ORDER.get(str(n), len(SERIES_ORDER)), str(n))):
        index = groups[name]
        trace = {"x": [xs[i] for i in index], "y": [ys[i] for i in index], "name": str(name)}
        trace["customdata"] = [str(name)] * len(index)
        if str(name) in SERIES_COLOURS:
            trace["marker" if kind == "bar" else "line"] = {"color": SERIES_COLOURS[str(name)]}
        if kind == "bar":
            trace["type"] = "bar"
        else:
            trace.update(type="scatter", mode="lines")
            if kind == "area":
                trace["stackgroup"] = "one"
        traces.append(trace)
    return chart(traces, **{"barmode": "stack" if kind == "bar" else None, **layout})


def bars(
    frame: pd.DataFrame, x: str, ys: dict[str, str], *, horizontal: bool = False, **layout: Any
) -> dict:
    """One bar trace per column in `ys` ({column: label}), side by side."""
    keys = _plain(frame[x].astype(str))
    traces = [
        (
            {"type": "bar", "orientation": "h", "y": keys, "x": _plain(frame[c]), "name": label}
            if horizontal
            else {"type": "bar", "x": keys, "y": _plain(frame[c]), "name": label}
        )
        for c, label in ys.items()
    ]
    return chart(traces, **{"barmode": "group", "reversed_y": horizontal, **layout})


# --- click-through ------------------------------------------------------------------------


def _point_time(point: dict) -> datetime | None:
    value = point.get("x")
    return _parse_time(value) if isinstance(value, str) else None


def click_to(
    path: str,
    page: str,
    *,
    series_key: str | None = None,
    x_key: str | None = None,
    fixed: dict[str, str] | None = None,
    step: timedelta | None = None,
) -> Callable[[dict, ViewState], str | None]:
    """A click handler: the list at `path`, filtered by the clicked point. A time on the x axis
    narrows the range to that bucket; `series_key` takes the trace's value (customdata),
    `x_key` the x value; every value is checked again by the target page's whitelist."""

    def handler(point: dict, view: ViewState) -> str | None:
        query: dict[str, Any] = {**view.query(), **(fixed or {})}
        query.pop("offset", None)
        if x_key:
            query[x_key] = point.get("y") if point.get("orientation") == "h" else point.get("x")
        else:
            start = _point_time(point)
            if start is not None:
                bucket: timedelta = view.window(step).bucket
                query.update(range="custom", **{"from": start.isoformat()})
                query["to"] = (start + bucket).isoformat()
        if series_key and point.get("customdata") is not None:
            custom = point["customdata"]
            query[series_key] = custom[0] if isinstance(custom, list) else custom
        return parse_query(query, page).href(path)

    return handler


def analytics_page(
    query: dict[str, str],
    *,
    permission: str,
    what: str,
    title: str,
    page: str,
    step: timedelta,
    panels: Sequence[Panel],
    section: str | None = None,
    below: Sequence[Any] = (),
) -> html.Div:
    """The layout every analytics page shares: the permission check, the range picker and
    filters from the URL, the panel grid, and anything the page adds below it."""
    if not has_permission(permission):
        return not_permitted(what)
    view = parse_query(query, page)
    return html.Div(
        [
            html.H1(title),
            controls(view, step),
            *([html.H2(section, className="an-section")] if section else []),
            html.Div([panel_layout(p) for p in panels], className="an-grid"),
            *below,
        ]
    )
