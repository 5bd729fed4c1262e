"""Figure builders for the analytics panels (and the alerts timeline): plain Plotly JSON dicts,
not plotly.graph_objects, because building and validating a go.Figure costs tens of
milliseconds per chart, more than the query behind it. The styling matches _ui.style_figure.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pandas as pd

from taskmaster_dash.alerts.rules import Rule, format_number
from taskmaster_dash.data.alert_overlays import Band, Bands
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
    }
    if y_range:
        yaxis["range"] = y_range
    if y_log:
        yaxis["type"] = "log"
    if reversed_y:  # horizontal bars: long category labels (error codes) stay readable
        yaxis.update(autorange="reversed", automargin=True)
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


def empty_figure(message: str) -> dict:
    """A chart with no data that says `message` (loading, no data, failed) in the charts' own
    style: plain JSON, not a go.Figure, whose 7 KB theme every placeholder would carry."""
    figure = chart([], showlegend=False)
    layout = figure["layout"]
    layout["annotations"] = [{"text": message, "showarrow": False, "font": {"size": 14}}]
    layout["xaxis"]["visible"] = layout["yaxis"]["visible"] = False
    return figure


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


# Above this many buckets a stacked bar chart is drawn as stacked steps: the same numbers over
# the same buckets, but one SVG path per series instead of one per bar. At 24 h of 5-minute
# buckets the bars are 2-3 px wide and thousands of them cost Chromium most of the page's
# drawing time (bench/browser.py: the three /errors rate charts went from ~450 ms to ~90 ms).
DENSE_BARS = 100


def dense_bars_as_steps(figure: dict, window: Window) -> bool:
    """Turn the stacked bar traces of `figure` (a time series over `window`, x values the
    bucket starts) into stacked areas of steps when it has more than DENSE_BARS buckets:
    each series zero-filled over every bucket, its value held across its bucket (line shape
    "hv"), and one closing point of 0 at the window's end so the last bucket has its width
    (it adds nothing to the series' sum; its customdata is null, so a click there names no
    series). True when it did."""
    layout = figure["layout"]
    if layout.get("barmode") != "stack":
        return False
    buckets = math.ceil((window.end - window.start) / window.bucket)
    if buckets <= DENSE_BARS:
        return False
    bars = [trace for trace in figure["data"] if trace.get("type") == "bar"]
    # every bucket of the window, and any the data has beyond it (a frame read a moment
    # earlier may start one bucket before): no value is ever dropped
    times = sorted(
        {f"{window.start + i * window.bucket:%Y-%m-%d %H:%M:%S}" for i in range(buckets)}.union(
            *(trace["x"] for trace in bars)
        )
    )
    # the closing point ends the last bucket (the axis stops at the window's end), so the
    # points stay one bucket apart (x_on_grid)
    last = datetime.fromisoformat(times[-1]).replace(tzinfo=window.start.tzinfo)
    end = f"{last + window.bucket:%Y-%m-%d %H:%M:%S}"
    for trace in bars:
        values = dict(zip(trace["x"], trace["y"], strict=True))
        name = trace.get("customdata", [None])[0] if trace.get("customdata") else None
        colour = (trace.pop("marker", None) or {}).get("color")
        trace.update(
            type="scatter",
            mode="lines",
            stackgroup="one",
            line={"shape": "hv", "width": 0, **({"color": colour} if colour else {})},
            x=[*times, end],
            y=[*(values.get(t, 0) for t in times), 0],
        )
        if name is not None:
            trace["customdata"] = [*([name] * len(times)), None]
        for key in ("width", "offset"):
            trace.pop(key, None)
    layout["barmode"] = None
    return True


def x_on_grid(figure: dict, bucket: timedelta) -> None:
    """x0 and dx instead of x for each trace whose x values are consecutive bucket starts
    (a time series with no gaps, the zero-filled steps): the same points, less than half the
    JSON, and no date strings for the browser to parse (plotly's dateTime2ms was a tenth of
    drawing a chart). Alert bands (bars with a base) keep their x."""
    step = bucket.total_seconds()
    for trace in figure["data"]:
        xs = trace.get("x")
        if not isinstance(xs, list) or len(xs) < 3 or "base" in trace or "width" in trace:
            continue
        try:
            times = [datetime.fromisoformat(x) for x in xs]
        except (TypeError, ValueError):  # not times: categories, numbers
            continue
        if any((b - a).total_seconds() != step for a, b in pairwise(times)):
            continue
        del trace["x"]
        trace.update(x0=xs[0], dx=int(step * 1000))


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


# --- alerts on the charts -------------------------------------------------------------------

ALERT_COLOURS = {
    "critical": SERIES_COLOURS["critical"],
    "warning": SERIES_COLOURS["medium"],
    "none": SERIES_COLOURS["info"],
}
BAND = {  # one band: the full height of the plot, behind the data
    "type": "rect",
    "xref": "x",
    "yref": "paper",
    "y0": 0,
    "y1": 1,
    "opacity": 0.14,
    "line": {"width": 0},
    "layer": "below",
}
ALERT_TRACE = "alert-overlay"  # the hover traces' meta: what tests and clicks tell apart


def _utc(moment: datetime, format: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time as the charts' x values are written (UTC wall-clock)."""
    return pd.Timestamp(moment).tz_convert("UTC").strftime(format)


def _lasted(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def alert_overlay(
    figure: dict, bands: Bands, rules: Sequence[Rule], problem: str | None = None
) -> dict:
    """`figure` (a time-series chart) with a band for each firing period of `rules` and, per
    rule, one hover trace with a marker where each band starts and ends: rule title, instance,
    value and from-to times. Shapes plus one trace per rule, however many periods. A new
    figure: `figure` (which a cache may share) is left as it was."""
    layout = {**figure["layout"]}
    figure = {**figure, "data": list(figure["data"]), "layout": layout}
    notes = []
    if problem:
        notes.append(f"alerts not shown: {problem}")
    if bands.hidden:
        notes.append(f"{bands.hidden:,} more firing periods not drawn (the longest are)")
    if notes:
        note = {"text": "; ".join(notes), "showarrow": False, "font": {"size": 10}}
        note.update(xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom")
        layout["annotations"] = [*layout.get("annotations", ()), note]
    drawn = {band.rule_name for band in bands.bands}
    shown = [rule for rule in rules if rule.name in drawn]
    if not shown:
        return figure
    shapes = list(layout.get("shapes", ()))
    for rank, rule in enumerate(shown):
        colour = ALERT_COLOURS.get(rule.severity, ALERT_COLOURS["none"])
        group = f"alert-{rule.name}"
        xs: list[str] = []
        texts: list[str] = []
        symbols: list[str] = []
        for band in (b for b in bands.bands if b.rule_name == rule.name):
            x0, x1 = _utc(band.shown_from), _utc(band.shown_to)
            shapes.append({**BAND, "x0": x0, "x1": x1, "fillcolor": colour, "legendgroup": group})
            text = _band_text(rule, band)
            xs.append(x0)
            texts.append(text)
            symbols.append("triangle-down")
            if band.ended is not None and band.ended == band.shown_to:
                xs.append(x1)  # it stopped inside the range: a marker there too
                texts.append(text)
                symbols.append("triangle-down-open")
        figure["data"].append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": [0.98 - 0.06 * (rank % 8)] * len(xs),
                "yaxis": "y2",
                "name": f"⚠ {_plain_text(rule.title)}",
                "legendgroup": group,
                "text": texts,
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": colour, "size": 10, "symbol": symbols},
                "cliponaxis": False,
                "meta": ALERT_TRACE,
            }
        )
    layout["shapes"] = shapes
    layout["yaxis2"] = {"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True}
    return figure


def _plain_text(text: str) -> str:
    """`text` as Plotly shows it, never as markup (an instance's label values come from the
    data: a service named "<a href=...>" stays text)."""
    return html.escape(text, quote=False)


def _band_text(rule: Rule, band: Band) -> str:
    until = band.ended
    lines = [f"<b>{_plain_text(rule.title)}</b> ({rule.severity})"]
    if band.instance:
        lines.append(_plain_text(band.instance))
    lasted = _lasted(((until or band.shown_to) - band.started).total_seconds())
    to = _utc(until, "%b %-d %H:%M UTC") if until else "still firing"
    lines.append(f"firing {_utc(band.started, '%b %-d %H:%M')} → {to} ({lasted})")
    value = f"value {format_number(band.value)}"
    if band.periods > 1:
        value += f", peak {format_number(band.peak)}; fired {band.periods:,} times"
    lines.append(value)
    return "<br>".join(lines)
