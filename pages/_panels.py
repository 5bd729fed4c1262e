"""Analytics panels: a chart (or table) with its CSV download and click-through, each drawn by
its own callback so a failing query shows its message in that panel and nowhere else.

A page lists its `Panel`s, puts `panel_layout(p)` in its layout and calls `register(panels)` once
at import. Every callback checks the panel's permission on the server before any query, and
runs the query as the signed-in user so RLS applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from auth.permissions import actor_with, require_permission
from data.db import Actor, user_message
from pages._timerange import ViewState, _parse_time, parse_query, view_from_store
from pages._ui import empty_figure, panel_message, style_figure

NO_DATA = "no data in this range"
Fetch = Callable[[Actor, ViewState], pd.DataFrame]


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    permission: str
    fetch: Fetch
    # figure(df, view) for a chart; table(df, view) -> component for a table panel
    figure: Callable[[pd.DataFrame, ViewState], go.Figure] | None = None
    table: Callable[[pd.DataFrame, ViewState], Any] | None = None
    # click(point, view) -> href of the matching filtered list, or None
    click: Callable[[dict, ViewState], str | None] | None = None
    value_column: str | None = None  # "no data" when this column sums to zero
    wide: bool = False


def panel_layout(panel: Panel) -> html.Div:
    body = (
        dcc.Graph(
            id=f"{panel.id}-graph",
            figure=empty_figure("loading…"),
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
    blank = empty_figure(NO_DATA) if panel.figure else html.Div(NO_DATA, className="muted")
    try:
        frame = panel.fetch(actor, view)
    except SQLAlchemyError as exc:
        failed = empty_figure("could not load") if panel.figure else None
        return failed, panel_message(f"{panel.title}: {user_message(exc)}")
    if _is_empty(panel, frame):
        return blank, html.Div(NO_DATA, className="muted an-empty")
    if panel.figure:
        return style_figure(panel.figure(frame, view)), None
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


def register(panels: Sequence[Panel]) -> None:
    for panel in panels:
        _register_one(panel)


# --- figures ------------------------------------------------------------------------------


def series_figure(
    frame: pd.DataFrame, x: str, y: str, series: str, *, kind: str = "line", y_title: str = ""
) -> go.Figure:
    """One trace per value of `series`; each point carries its series value as customdata."""
    figure = go.Figure()
    for name, rows in frame.groupby(series, sort=True):
        custom = [str(name)] * len(rows)
        xs, ys = _plain(rows[x]), _plain(rows[y])
        if kind == "bar":
            figure.add_trace(go.Bar(x=xs, y=ys, name=str(name), customdata=custom))
        else:
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=str(name),
                    customdata=custom,
                    mode="lines",
                    stackgroup="one" if kind == "area" else None,
                )
            )
    if kind == "bar":
        figure.update_layout(barmode="stack")
    figure.update_yaxes(title=y_title)
    return figure


def _plain(values: pd.Series) -> list:
    """Plain JSON values; times as UTC wall-clock, which is what a click reports back."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return [v.strftime("%Y-%m-%d %H:%M:%S") for v in values]
    return values.tolist()


def bars(frame: pd.DataFrame, x: str, ys: dict[str, str], *, horizontal: bool = False):
    """One bar trace per column in `ys` ({column: label}), side by side."""
    figure = go.Figure()
    for column, label in ys.items():
        if horizontal:
            figure.add_trace(
                go.Bar(y=_plain(frame[x]), x=_plain(frame[column]), name=label, orientation="h")
            )
        else:
            figure.add_trace(
                go.Bar(x=_plain(frame[x].astype(str)), y=_plain(frame[column]), name=label)
            )
    figure.update_layout(barmode="group")
    if horizontal:
        figure.update_yaxes(autorange="reversed")
    return figure


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
                bucket: timedelta = view.window().bucket
                query.update(range="custom", **{"from": start.isoformat()})
                query["to"] = (start + bucket).isoformat()
        if series_key and point.get("customdata") is not None:
            custom = point["customdata"]
            query[series_key] = custom[0] if isinstance(custom, list) else custom
        return parse_query(query, page).href(path)

    return handler
