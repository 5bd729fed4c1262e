"""Small building blocks shared by the pages (not a page: Dash skips files starting with _)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import plotly.graph_objects as go
from dash import dcc, html

# Every chart's Plotly config: the mode bar only while the pointer is over the chart (it covers
# legends otherwise), no Plotly logo.
CHART_CONFIG: dcc.Graph.Config = {"displaylogo": False, "displayModeBar": "hover"}


def stat_card(card_id: str, label: str, href: str) -> dcc.Link:
    """A headline figure that links to the page with its detail; the value is filled in later."""
    return dcc.Link(
        html.Div(
            [
                html.Div(label, className="stat-label"),
                html.Div("…", id=card_id, className="stat-value"),
            ],
            className="stat-card",
        ),
        href=href,
        className="stat-link",
    )


def when(value: datetime | None, seconds: bool = False, missing: str = "") -> str:
    """A moment as the app shows it everywhere: UTC, to the minute (or second)."""
    shape = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return value.astimezone(UTC).strftime(shape) if isinstance(value, datetime) else missing


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


def panel_message(text: Any) -> html.Div:
    """An error message; the older name of message(text, "error")."""
    return message(text, "error")


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


def empty_figure(message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, font={"size": 14})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return style_figure(figure)
