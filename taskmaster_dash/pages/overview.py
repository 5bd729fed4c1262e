"""Overview: the headline figures of the TaskMaster database, each linking to its page."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from taskmaster_dash.auth.permissions import SessionUser, has_permission, signed_in_user
from taskmaster_dash.data.alerts import FiringSummary, firing_summary
from taskmaster_dash.data.analytics import Filters, Window
from taskmaster_dash.data.analytics_errors import STEP as ERROR_STEP
from taskmaster_dash.data.analytics_errors import error_rate
from taskmaster_dash.data.analytics_tasks import BACKLOG_SERIES, backlog_over_time
from taskmaster_dash.data.analytics_tasks import STEP as TASK_STEP
from taskmaster_dash.data.overview import (
    ErrorHeadline,
    completed_per_day,
    completed_per_day_of_week,
    error_headline,
    mean_validation_score,
    open_backlog,
)
from taskmaster_dash.pages._figures import bars, series_figure
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._panel_cache import shared
from taskmaster_dash.pages._panels import Panel, click_to, panel_layout, register, windowed_panel
from taskmaster_dash.pages._timerange import controls, parse_query
from taskmaster_dash.pages._ui import register_page, stat_card

register_page(__name__, path="/", name="Overview", order=0)

REFRESH = "overview-refresh"
# (id, label, the page with its detail), in the order shown.
CARDS = [
    ("ov-open-backlog", "Open backlog", "/tasks"),
    ("ov-backlog-trend", "Backlog change (24 h)", "/tasks?range=24h"),
    ("ov-completed-per-day", "Completed per day (7 d)", "/tasks?range=7d"),
    ("ov-mean-score", "Mean validation score (7 d)", "/validations?range=7d"),
    ("ov-errors-hour", "Errors in the last hour", "/errors?range=1h&status=any"),
    # Triage follows the page range: the widest one lists (nearly) every open error.
    ("ov-unresolved", "Unresolved errors", "/errors?range=30d#error-triage"),
    ("ov-firing-alerts", "Firing alerts", "/alerts"),
]
CARD_IDS = [card_id for card_id, _, _ in CARDS]
NOT_ALLOWED = "—"

# The backlog and error-rate charts of /tasks and /errors, over the range picked here; a click
# opens the matching list there.
PANELS = [
    windowed_panel(
        "ov-backlog",
        "Open tasks over time",
        backlog_over_time,
        lambda frame, _v: series_figure(frame, "bucket", "open", "series", kind="area"),
        click=click_to("tasks", series_key="status", series_values=BACKLOG_SERIES, step=TASK_STEP),
        value_column="open",
        permission="tasks:read",
        step=TASK_STEP,
    ),
    windowed_panel(
        "ov-error-rate",
        "Error rate by severity",
        partial(error_rate, by="severity"),
        lambda frame, _v: series_figure(frame, "bucket", "errors", "series", kind="bar"),
        click=click_to("errors", series_key="severity", step=ERROR_STEP),
        value_column="errors",
        permission="errors:read",
        step=ERROR_STEP,
    ),
    Panel(
        "ov-completed",
        "Tasks completed per day (last 30 days)",
        "tasks:read",
        lambda actor, _v: completed_per_day(actor, 30),
        lambda frame, _v: bars(frame, "day", {"completed": "completed"}, showlegend=False),
        # a day's bar: the tasks completed that (UTC) day, in the task list on /tasks
        click=click_to("tasks", fixed={"status": "completed"}, bucket=timedelta(days=1)),
        value_column="completed",
        wide=True,
    ),
]
register("overview", PANELS)


def firing_card(summary: FiringSummary) -> list:
    """The count of firing alerts, and how many of them someone silenced or acknowledged."""
    handled = [
        f"{count:,} {what}"
        for count, what in ((summary.silenced, "silenced"), (summary.acknowledged, "acknowledged"))
        if count
    ]
    note = html.Div(", ".join(handled), className="stat-note") if handled else None
    return [f"{summary.firing:,}", note]


def unresolved_card(errors: ErrorHeadline) -> Any:
    """The open error groups; regressed ones are among them (they are unresolved again), and
    the card says how many."""
    if not errors.regressed:
        return f"{errors.unresolved:,}"
    note = f"{errors.regressed:,} regressed"
    return [f"{errors.unresolved:,}", html.Div(note, className="stat-note", id="ov-regressed")]


def backlog_change_24h(actor) -> int:
    """Open tasks now minus open tasks 24 hours ago (from the backlog series)."""
    frame = backlog_over_time(actor, Window.last(timedelta(hours=24), step=TASK_STEP), Filters())
    if frame.empty:
        return 0
    totals = frame.groupby("bucket")["open"].sum().sort_index()
    return int(totals.iloc[-1] - totals.iloc[0])


def layout(**query: str) -> html.Div:
    view = parse_query(query, "overview")
    return html.Div(
        [
            html.H1("Overview"),
            controls(view),
            dcc.Interval(id=REFRESH, interval=60_000),
            html.Div([stat_card(*card) for card in CARDS], className="stat-grid"),
            html.Div(id="ov-message"),
            html.Div(
                [panel_layout(p) for p in PANELS if has_permission(p.permission)],
                className="an-grid",
            ),
        ]
    )


@callback(
    [Output(card_id, "children") for card_id in CARD_IDS] + [Output("ov-message", "children")],
    Input(REFRESH, "n_intervals"),
)
def refresh_overview(_ticks: int | None):
    # Each figure is checked against its own permission, on the server, before any query.
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    values: dict[str, Any] = dict.fromkeys(CARD_IDS, NOT_ALLOWED)
    problem = _fill_cards(user, values)
    return [*(values[card_id] for card_id in CARD_IDS), problem]


@failure_message()
def _fill_cards(user: SessionUser, values: dict[str, Any]) -> None:
    """Fill `values` (card id -> shown value) as far as the user's permissions and the
    database allow; the cards filled before a failure keep their values."""
    actor = user.actor()
    # Every signed-in user may read alerts (the banner shows them on every page).
    values["ov-firing-alerts"] = firing_card(firing_summary(actor))
    # Counts of now are read every time (kept by trigger, cheap and exact); figures over time
    # come from the rollups and are shared like the panels' data (pages/_panel_cache.py).
    if user.has("tasks:read"):
        values["ov-open-backlog"] = f"{open_backlog(actor).total:,}"
        per_day = shared("ov-completed-per-day", actor, lambda: completed_per_day_of_week(actor))
        values["ov-completed-per-day"] = f"{per_day:,.1f}"
        change = shared("ov-backlog-trend", actor, lambda: backlog_change_24h(actor))
        values["ov-backlog-trend"] = f"{change:+,}"
    if user.has("validations:read"):
        score = shared("ov-mean-score", actor, lambda: mean_validation_score(actor))
        values["ov-mean-score"] = "no data" if score is None else f"{score:.1f}"
    if user.has("errors:read"):
        errors = error_headline(actor)
        values["ov-errors-hour"] = f"{errors.errors_last_hour:,}"
        values["ov-unresolved"] = unresolved_card(errors)
