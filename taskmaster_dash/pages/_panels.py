"""Analytics panels: a chart (or table) with its CSV download and click-through. One callback
draws a page's panels together (one answer for the browser to render); each panel is drawn
apart inside it, so a failing query shows its message in that panel and nowhere else.

A page lists its `Panel`s, puts `panel_layout(p)` in its layout and calls
`register(page, panels)` once at import; the analytics API (api/analytics.py) serves the same
panels as JSON. The figures themselves are built in pages/_figures.py.
Every callback (and the API) checks the panel's permission on the server before any query, and
runs the query as the signed-in user so RLS applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.evaluator import effective_rules
from taskmaster_dash.alerts.rules import Rule, configured_rules
from taskmaster_dash.auth.permissions import actor_with, has_permission, require_permission
from taskmaster_dash.data.alert_overlays import Bands, firing_bands
from taskmaster_dash.data.analytics import Window, floor_to
from taskmaster_dash.data.db import Actor, PoolName, user_message
from taskmaster_dash.pages._figures import (
    alert_overlay,
    dense_bars_as_steps,
    empty_figure,
    time_axis,
    x_on_grid,
)
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._panel_cache import cached_panel, shared, shared_drawing
from taskmaster_dash.pages._timerange import (
    PAGE_PATHS,
    ViewState,
    controls,
    page_keys,
    parse_query,
    parse_time,
    view_from_store,
)
from taskmaster_dash.pages._ui import CHART_CONFIG, href, not_permitted
from taskmaster_dash.services import current

NO_DATA = "no data in this range"
LOADING, BLANK, FAILED = (empty_figure(text) for text in ("loading…", NO_DATA, "could not load"))
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
    click: Callable[[Point, ViewState], str | None] | None = None
    value_column: str | None = None  # "no data" when this column sums to zero
    wide: bool = False
    step: timedelta | None = None  # the rollup step the fetch passes to view.window()


def panel_layout(panel: Panel) -> html.Div:
    body = (
        dcc.Graph(
            id=f"{panel.id}-graph",
            figure=LOADING,
            config=CHART_CONFIG,
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


@dataclass(frozen=True)
class PageAlerts:
    """The firing periods of the rules linked to one page, over one time range."""

    bands: Bands
    rules: list[Rule]
    problem: str | None = None

    def on(self, figure: dict) -> dict:
        return alert_overlay(figure, self.bands, self.rules, self.problem)


def page_alerts(
    actor: Actor, path: str, since: datetime, until: datetime, gap: timedelta
) -> PageAlerts:
    """When the rules whose link is the page at `path` fired between `since` and `until`
    (periods closer than `gap` drawn as one band), shared like a panel's data for at most one
    evaluation interval: alert state changes only when the evaluator runs."""
    life = current().settings.alerts_interval_seconds
    moment = timedelta(seconds=life)
    key = ("page-alerts", path, floor_to(since, moment), floor_to(until, moment), gap)
    return shared(key, actor, lambda: _read_page_alerts(actor, path, since, until, gap), life)


def _read_page_alerts(
    actor: Actor, path: str, since: datetime, until: datetime, gap: timedelta
) -> PageAlerts:
    # Every active user may read alert state; if it cannot be read, the charts still draw and
    # say so.
    try:
        rules = [
            rule
            for rule in effective_rules(list(configured_rules()), actor, PoolName.READ)
            if (urlsplit(rule.link).path.rstrip("/") or "/") == path
        ]
        bands = firing_bands(actor, [rule.name for rule in rules], since, until, gap)
    except SQLAlchemyError as exc:
        return PageAlerts(Bands([], 0), [], user_message(exc))
    return PageAlerts(bands, rules)


def draw(panel: Panel, view: ViewState, path: str | None = None) -> tuple[Any, Any]:
    """(figure or table, message) for `view`, as the signed-in user; a time-series chart
    with the alerts of the rules linked to the page at `path`."""
    actor = actor_with(panel.permission)
    drawing = shared_drawing(panel, actor, view, lambda: _drawing(panel, actor, view))
    if drawing is None:
        blank = BLANK if panel.figure else html.Div(NO_DATA, className="muted")
        return blank, html.Div(NO_DATA, className="muted an-empty")
    if path and panel.figure and drawing["layout"]["xaxis"].get("type") == "date":
        # alert state changes more often than the data: laid over the drawing on each call
        window = view.window(panel.step)
        drawing = page_alerts(actor, path, window.start, window.end, window.bucket).on(drawing)
    return drawing, None


def _drawing(panel: Panel, actor: Actor, view: ViewState) -> Any:
    """The panel's chart (a time axis laid out over the view's window) or table, None when it
    has no data."""
    frame = panel.fetch(actor, view)
    if _is_empty(panel, frame):
        return None
    if not panel.figure:
        assert panel.table is not None, f"panel {panel.id} has neither a figure nor a table"
        return panel.table(frame, view)
    figure = panel.figure(frame, view)
    xaxis = figure["layout"]["xaxis"]
    if xaxis.get("type") == "date":
        window = view.window(panel.step)
        xaxis.update(time_axis(window))
        # many buckets: one path per series (pages/_figures.py); else each bar fills
        # most of its bucket, however few buckets have data
        stepped = dense_bars_as_steps(figure, window)
        if figure["layout"].get("barmode") == "stack" and not stepped:
            width = window.bucket.total_seconds() * 1000
            for trace in figure["data"]:
                trace.update(width=0.8 * width, offset=0.1 * width)
        x_on_grid(figure, window.bucket)
    return figure


def _outputs(panel: Panel) -> tuple[Output, Output]:
    """Where a panel's draw goes: its figure (or table), and its message."""
    target = (f"{panel.id}-graph", "figure") if panel.figure else (f"{panel.id}-table", "children")
    return Output(*target), Output(f"{panel.id}-msg", "children")


def _failed(panel: Panel) -> str:
    return f"{panel.title}: {{}}"  # the database's sentence, named by the panel


def _drawer(page: str, panel: Panel) -> Callable[[Any], tuple[Any, Any]]:
    """draw(panel) for a view from the store (draw checks the panel's permission); a refusal
    or a database error becomes the panel's message, in that panel and nowhere else."""

    @failure_message(
        outputs=2, at=1, database=_failed(panel), failed={0: FAILED if panel.figure else None}
    )
    def _draw(view_data: Any) -> tuple[Any, Any]:
        return draw(panel, view_from_store(view_data), PAGE_PATHS.get(page))

    return _draw


def _register_section(page: str, group: Sequence[Panel]) -> None:
    drawers = [_drawer(page, p) for p in group]
    outputs = [output for p in group for output in _outputs(p)]

    @callback(*outputs, Input("tr-view", "data"), Input("tr-interval", "n_intervals"))
    @require_permission(group[0].permission)
    def _draw_all(view_data, _ticks):
        return [value for drawn in drawers for value in drawn(view_data)]


def _register_draw(page: str, panels: Sequence[Panel]) -> None:
    """One callback draws every panel of a page whose panels share one permission, so the
    browser gets one answer for the whole section (one render pass instead of one per chart,
    and the page's list asks for its rows meanwhile); a page mixing permissions (Overview,
    whose layout leaves out what the caller may not see) draws each panel by itself."""
    if len({p.permission for p in panels}) == 1:
        _register_section(page, panels)
    else:
        for panel in panels:
            _register_section(page, [panel])


def _register_actions(panel: Panel) -> None:
    """The panel's CSV download and, for a chart with one, its click-through."""
    failed = _failed(panel)

    @callback(
        Output(f"{panel.id}-download", "data"),
        Output(f"{panel.id}-msg", "children", allow_duplicate=True),
        Input(f"{panel.id}-csv", "n_clicks"),
        State("tr-view", "data"),
        prevent_initial_call=True,
    )
    @require_permission(panel.permission)
    @failure_message(outputs=2, at=1, database=failed)
    def _csv(_clicks, view_data):
        view = view_from_store(view_data)
        frame = panel.fetch(actor_with(panel.permission), view)
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
            point = clicked_point(click_data)
            if point is None:
                return no_update
            return panel.click(point, view_from_store(view_data)) or no_update


# page name -> its panels: the analytics API (/api/v1/analytics/<page>) serves the same data.
PAGE_PANELS: dict[str, list[Panel]] = {}


def register(page: str, panels: Sequence[Panel]) -> None:
    panels = [cached_panel(p) for p in panels]  # shared per view and visibility
    PAGE_PANELS[page] = list(panels)
    _register_draw(page, panels)
    for panel in panels:
        _register_actions(panel)


# --- click-through ------------------------------------------------------------------------

# Page -> the id of its list, where a chart's click lands (the URL's #fragment scrolls there).
PAGE_LISTS = {
    "tasks": "tasks-list-panel",
    "validations": "val-lowest-panel",
    "errors": "error-triage",
}


@dataclass(frozen=True)
class Point:
    """One clicked point, as far as a client's clickData could be trusted."""

    x: str | None
    y: str | None
    label: str | None  # a bar's category (its x, or its y when the bar is horizontal)
    series: str | None  # the trace's customdata (its series value)


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value) if math.isfinite(value) else None
    if isinstance(value, str) and 0 < len(value) <= 200:
        return value
    return None


def clicked_point(click_data: Any) -> Point | None:
    """The first point of Plotly's clickData, or None for anything a chart would not send
    (null, [], {"points": [{"customdata": []}]}, strings where numbers go, Infinity...)."""
    points = click_data.get("points") if isinstance(click_data, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    # x-unified hover lists every series at that x, zeros too (a stepped chart's zero-filled
    # buckets): the click means the first one that has a value there
    first = next(
        (p for p in points if isinstance(p, dict) and _scalar(p.get("y")) not in (None, "0")),
        points[0],
    )
    custom = first.get("customdata")
    if isinstance(custom, list):
        custom = custom[0] if custom else None
    point = Point(
        x=_scalar(first.get("x")),
        y=_scalar(first.get("y")),
        label=_scalar(first.get("label")),
        series=_scalar(custom),
    )
    return point if point.x is not None or point.y is not None else None


def click_to(
    page: str,
    *,
    series_key: str | None = None,
    series_values: Mapping[str, str] | None = None,
    x_key: str | None = None,
    fixed: Mapping[str, str] | None = None,
    step: timedelta | None = None,
    bucket: timedelta | None = None,
) -> Callable[[Point, ViewState], str | None]:
    """A click handler: the list of `page` (on its own page, scrolled to), filtered by exactly
    what was clicked, on top of the view's range and the filters that page accepts. A time on
    the x axis becomes a custom range of that bucket (`bucket`, else the chart's, from `step`),
    snapped to it; `series_key` takes the trace's series (renamed by `series_values`), `x_key`
    the bar's category. A clicked value the target does not accept gives no update."""
    keys = page_keys(page)

    def handler(point: Point, view: ViewState) -> str | None:
        query: dict[str, Any] = {**view.query(), **(fixed or {})}
        query.pop("offset", None)
        clicked: dict[str, str] = {}
        if x_key:
            category = point.label or point.x
            if category is None:
                return None
            clicked[x_key] = category
        else:
            moment = parse_time(point.x)
            if moment is None:
                return None
            size = bucket or view.window(step).bucket
            start = floor_to(moment, size)
            query.update({"range": "custom", "from": start.isoformat()})
            query["to"] = (start + size).isoformat()
        if series_key:
            if point.series is None:
                return None
            value = (series_values or {}).get(point.series, point.series)
            clicked[series_key] = value
        target = parse_query({**query, **clicked}, page)
        for name, value in clicked.items():
            wanted = keys[name].parse(value, [])
            if target.values(keys[name]) != wanted or not wanted:
                return None  # not a value the list accepts: say nothing rather than half
        return href(f"{PAGE_PATHS[page]}{target.search()}#{PAGE_LISTS.get(page, '')}")

    return handler


Query = Callable[[Actor, Window, Any], pd.DataFrame]


def windowed(query: Query, step: timedelta) -> Fetch:
    """The fetch of a panel drawn from `query(actor, window, filters)` over the view's window
    at the rollup `step` and its filters: what most panels are."""
    return lambda actor, view: query(actor, view.window(step), view.filters)


def windowed_panel(
    panel_id: str,
    title: str,
    query: Query,
    figure: Callable[[pd.DataFrame, ViewState], dict] | None = None,
    *,
    permission: str,
    step: timedelta,
    **options: Any,
) -> Panel:
    """A panel of `windowed(query, step)` that keeps its step, so its time axis and its cache
    life follow the buckets the query read. A page binds its permission and step once
    (functools.partial) and lists its panels with what differs."""
    return Panel(panel_id, title, permission, windowed(query, step), figure, step=step, **options)


def analytics_layout(
    page: str,
    panels: Sequence[Panel],
    *,
    permission: str,
    what: str,
    title: str,
    step: timedelta,
    section: str | None = None,
    below: Sequence[Callable[[ViewState], Any]] = (),
    choices: Callable[[], Mapping[str, Sequence[str]]] | None = None,
) -> Callable[..., html.Div]:
    """Register the page's panels and return its `layout`: the one every analytics page
    shares (the permission check, the range picker and filters from the URL, the panel grid,
    and anything the page adds below it). `choices` is asked per request, once permitted."""
    register(page, panels)

    def layout(**query: str) -> html.Div:
        if not has_permission(permission):
            return not_permitted(what)
        view = parse_query(query, page)
        return html.Div(
            [
                html.H1(title),
                controls(view, step, choices() if choices else None),
                *([html.H2(section, className="an-section")] if section else []),
                html.Div([panel_layout(p) for p in panels], className="an-grid"),
                *[part(view) for part in below],
            ]
        )

    return layout
