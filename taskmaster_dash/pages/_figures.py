"""Figure builders for the analytics panels (and the alerts timeline): plain Plotly JSON dicts,
not plotly.graph_objects, because building and validating a go.Figure costs tens of
milliseconds per chart, more than the query behind it. The styling matches _ui.style_figure.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pandas as pd

from taskmaster_dash.data.analytics import Window

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
            "margin": {"l": 48, "r": 16, "t": 40 if showlegend else 16, "b": 40},
            # above the plot on the left: the mode bar (top right, on hover) never covers it
            "legend": {
                "orientation": "h",
                "x": 0,
                "xanchor": "left",
                "y": 1.02,
                "yanchor": "bottom",
            },
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
        trace: dict[str, Any] = {  # Plotly's JSON for one trace
            "x": [xs[i] for i in index],
            "y": [ys[i] for i in index],
            "name": str(name),
        }
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
    figure = chart(traces, **{"barmode": "stack" if kind == "bar" else None, **layout})
    if isinstance(frame[x].dtype, pd.DatetimeTZDtype):
        figure["layout"]["xaxis"]["type"] = "date"  # draw() sets the ticks for the window
    return figure


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


def time_axis(window: Window) -> dict[str, Any]:
    """Ticks for a time axis over `window`: on whole buckets (never "14:01:59.9996"), at most
    about 8 of them, labelled to the minute or the day; the axis spans the whole window."""
    bucket = window.bucket
    buckets = max(1, math.ceil((window.end - window.start) / bucket))
    per_tick = next(n for n in (1, 2, 3, 4, 6, 12, 24, 48, 96, 192, 10**6) if buckets / n <= 8)
    daily = bucket >= timedelta(days=1)
    return {
        "tick0": f"{window.start:%Y-%m-%d %H:%M:%S}",
        "dtick": int((bucket * per_tick).total_seconds() * 1000),
        "tickformat": "%b %-d" if daily else "%H:%M<br>%b %-d",
        "hoverformat": "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M",
        "range": [f"{window.start:%Y-%m-%d %H:%M:%S}", f"{window.end:%Y-%m-%d %H:%M:%S}"],
    }
