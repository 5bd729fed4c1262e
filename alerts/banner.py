"""The alert banner on every page: firing alerts, worst first, each linking to its data.

It polls every 15 s with one small query (firing and failing rules only) whose answer is shared
by all sessions of this process for a few seconds. app.py imports this module.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from alerts.rules import format_number
from auth.permissions import signed_in_user
from data.alerts import banner_alerts
from data.db import DATABASE_UNREACHABLE, Actor, get_database, user_message

POLL_ID = "alert-banner-poll"
HEALTH_URL_ID = "database-health-url"
DATABASE_STATUS_ID = "database-status"
POLL_MS = 15_000
CACHE_SECONDS = 5.0
_cache: dict[str, Any] = {"at": -1e9, "rows": []}
_cache_lock = threading.Lock()


def poller() -> html.Div:
    """The banner's timer, and the line that says when the database is unreachable: it asks
    the public health route from the browser, because while the database is down the server
    cannot tell who is signed in and answers every callback 503."""
    return html.Div(
        [
            dcc.Interval(id=POLL_ID, interval=POLL_MS),
            dcc.Store(id=HEALTH_URL_ID, data=dash.get_relative_path("/api/v1/health")),
            html.Div(id=DATABASE_STATUS_ID),
        ]
    )


clientside_callback(
    """async function(_ticks, url) {
        let body;
        try {
            body = await (await fetch(url, {cache: 'no-store'})).json();
        } catch (e) {
            return window.dash_clientside.no_update;  // the server itself is away
        }
        if (body.database !== 'disconnected') { return null; }
        return {namespace: 'dash_html_components', type: 'Div', props: {
            id: 'database-unreachable', className: 'alert-item alert-critical',
            children: """
    + json.dumps(DATABASE_UNREACHABLE)
    + """}};
    }""",
    Output(DATABASE_STATUS_ID, "children"),
    Input(POLL_ID, "n_intervals"),
    State(HEALTH_URL_ID, "data"),
)


def clear_cache() -> None:
    with _cache_lock:
        _cache["at"] = -1e9


def _rows(actor: Actor) -> list[dict[str, Any]]:
    # Every signed-in user may read every alert, so one answer serves all sessions.
    with _cache_lock:
        if time.monotonic() - _cache["at"] < CACHE_SECONDS:
            return _cache["rows"]
    rows = banner_alerts(get_database(), actor)
    with _cache_lock:
        _cache.update(at=time.monotonic(), rows=rows)
    return rows


def _item(row: dict[str, Any]) -> dcc.Link:
    if row["state"] == "error":
        text = f"Cannot evaluate “{row['title']}”: {row['message']}"
        href, kind = "/alerts", "error"
    else:
        text = f"{row['title']}: {format_number(row['value'])}"
        href, kind = row["link"], row["severity"]
        if row["ack_by"]:
            text += f" (acknowledged by {row['ack_by']})"
    return dcc.Link(
        [html.Strong(kind.upper() if kind != "error" else "UNKNOWN"), " ", text],
        href=dash.get_relative_path(href),
        className=f"alert-item alert-{kind}",
        id={"type": "alert-banner-item", "rule": row["rule_name"]},
    )


@callback(Output("alert-banner", "children"), Input(POLL_ID, "n_intervals"))
def refresh_banner(_ticks: int | None):
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    try:
        rows = _rows(user.actor())
    except SQLAlchemyError as exc:
        return html.Div(
            f"Alerts cannot be read: {user_message(exc)}", className="alert-item alert-error"
        )
    return [_item(row) for row in rows] or None
