"""The maintenance windows section of /alerts (not a page: Dash skips files starting with _):
every window with whether it is open and when it next opens, for every signed-in user; the
create form and the delete buttons for alerts:manage (checked on the server); and the windows
drawn as shaded bands on the alerts timeline chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.banner import fingerprint
from taskmaster_dash.alerts.maintenance import (
    DAY_NAMES,
    Window,
    known_time_zones,
    next_occurrence,
    occurrences,
    validate_window,
)
from taskmaster_dash.alerts.maintenance_sync import sync_after_change
from taskmaster_dash.auth.permissions import (
    actor_with,
    has_permission,
    require_permission,
    signed_in_user,
)
from taskmaster_dash.data import maintenance as store
from taskmaster_dash.data.db import Actor, PoolName, user_message
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._ui import data_table, field, form_row, message, text_input, when

MANAGE = "alerts:manage"
NEEDS_MANAGE = f"Creating and deleting maintenance windows needs the {MANAGE} permission."
DELETE = "maint-delete"
BAND_COLOUR = "rgba(62, 99, 221, 0.14)"
# The create form's inputs, by the validate_window keyword each one fills.
FORM_INPUTS = {
    "name": "maint-name",
    "kind": "maint-kind",
    "time_zone": "maint-tz",
    "starts_at": "maint-start",
    "ends_at": "maint-end",
    "days": "maint-days",
    "start_time": "maint-from",
    "end_time": "maint-to",
    "matchers": "maint-matchers",
    "note": "maint-note",
}


def _form() -> html.Div:
    return html.Div(
        [
            html.H3("New maintenance window"),
            form_row(
                field("Name", text_input("maint-name", maxLength=100)),
                field(
                    "Kind",
                    dcc.RadioItems(
                        [
                            {"label": " one-off", "value": "once"},
                            {"label": " weekly", "value": "weekly"},
                        ],
                        "once",
                        id="maint-kind",
                        inline=True,
                    ),
                ),
                field(
                    "Time zone",
                    dcc.Dropdown(sorted(known_time_zones()), "UTC", id="maint-tz", clearable=False),
                ),
            ),
            form_row(
                field(
                    "One-off: start (YYYY-MM-DD HH:MM)",
                    text_input("maint-start", "2026-12-24 22:00"),
                ),
                field("One-off: end", text_input("maint-end", "2026-12-25 02:00")),
            ),
            form_row(
                field(
                    "Weekly: days",
                    dcc.Checklist(
                        [{"label": f" {d}", "value": d} for d in DAY_NAMES],
                        [],
                        id="maint-days",
                        inline=True,
                    ),
                ),
                field("from (HH:MM)", text_input("maint-from", "22:00")),
                field("to (before from: next day)", text_input("maint-to", "02:00")),
            ),
            form_row(
                field(
                    "Labels, one per line (empty: all rules)",
                    dcc.Textarea(
                        id="maint-matchers",
                        placeholder='service_name="billing"\nseverity=~"warning|critical"',
                        rows=3,
                    ),
                ),
                field("Note", text_input("maint-note", maxLength=2000)),
                html.Button("Create window", id="maint-create", className="button"),
            ),
        ],
        id="maint-form",
    )


def maintenance_section() -> html.Section:
    """The section as /alerts includes it (the form only for alerts:manage)."""
    manager = has_permission(MANAGE)
    return html.Section(
        [
            html.H2("Maintenance windows"),
            html.P(
                "Alerts a window covers are still evaluated and shown, but send no notification "
                "while it is open.",
                className="muted",
            ),
            dcc.Store(id="maint-shown"),
            html.Div(id="maint-list"),
            html.Div(id="maint-delete-message"),
            _form() if manager else html.P(NEEDS_MANAGE, className="muted", id="maint-needs"),
            html.Div(id="maint-message"),
        ],
        className="panel",
        id="maint-section",
    )


def _status(window: Window, now: datetime) -> str:
    found = next_occurrence(window, now)
    if found is None:
        return "over"
    start, end = found
    if start <= now:
        return f"open now, until {when(end)}"
    return f"next: {when(start)} → {when(end)}"


def _table(windows: list[Window], now: datetime, manager: bool) -> html.Table | html.P:
    header = ["Name", "When", "Mutes", "Status", "By", *(["Delete"] if manager else [])]
    rows = []
    for w in windows:
        status = _status(w, now)
        cells: list[Any] = [
            html.Td([w.name, html.Div(w.note, className="alert-detail") if w.note else None]),
            w.describe(),
            w.scope(),
            html.Td(status, className="maint-open" if status.startswith("open") else ""),
            w.username,
        ]
        if manager:
            cells.append(
                html.Button(
                    "Delete",
                    id={"type": DELETE, "window": w.id},
                    className="button small danger",
                )
            )
        rows.append(html.Tr([c if isinstance(c, html.Td) else html.Td(c) for c in cells]))
    return data_table(
        header, rows, "maint-table", empty="No maintenance windows. Alerts notify as usual."
    )


@callback(
    Output("maint-list", "children"),
    Output("maint-shown", "data"),
    Input("alerts-refresh", "n_intervals"),
    Input("maint-message", "children"),
    Input("maint-delete-message", "children"),
    State("maint-shown", "data"),
)
def refresh_windows(_tick: Any, _made: Any, _deleted: Any, shown: Any):
    # Every signed-in user may see the windows (RLS: any active user).
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    try:
        windows = store.list_windows(user.actor(), PoolName.READ)
    except SQLAlchemyError as exc:
        return message(user_message(exc), "error"), None
    now = datetime.now(UTC)
    manager = user.has(MANAGE)
    seen = fingerprint(([(w, _status(w, now)) for w in windows], manager))
    if seen == shown:  # unchanged: keep the delete buttons as they are
        raise dash.exceptions.PreventUpdate
    return _table(windows, now, manager), seen


@callback(
    Output("maint-message", "children"),
    Input("maint-create", "n_clicks"),
    *[State(component_id, "value") for component_id in FORM_INPUTS.values()],
    prevent_initial_call=True,
)
@require_permission(MANAGE)
@failure_message(refused="Not saved. {}")
def create_window(_clicks, *values):
    actor = actor_with(MANAGE)
    window = validate_window(**dict(zip(FORM_INPUTS, values, strict=True)), now=datetime.now(UTC))
    stored = store.create_window(actor, window)
    done = f"Created {stored.name!r}: {stored.describe()}, muting {stored.scope()}."
    problem = sync_after_change(actor)
    if problem:
        return message(f"{done} {problem}", "warning")
    return message(done, "success")


@callback(
    Output("maint-delete-message", "children"),
    Input({"type": DELETE, "window": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
@require_permission(MANAGE)
@failure_message(refused="Not deleted: {}")
def delete_window(_clicks: Any):
    pressed = ctx.triggered_id
    # Buttons drawn again fire with no clicks; only a real click deletes.
    if not isinstance(pressed, dict) or not ctx.triggered or not ctx.triggered[0].get("value"):
        raise dash.exceptions.PreventUpdate
    actor = actor_with(MANAGE)
    gone = store.delete_window(actor, str(pressed.get("window", "")))
    done = f"Deleted maintenance window {gone.name!r}."
    problem = sync_after_change(actor)
    if problem:
        return message(f"{done} {problem}", "warning")
    return message(done, "success")


# ------------------------------------------------------------------------------ timeline


def add_maintenance_bands(
    figure: Any, actor: Actor, hours: int, now: datetime | None = None
) -> Any:
    """The alerts timeline with each maintenance window's occurrences in the last `hours` as a
    shaded band (named at its top). A figure without axes (no transitions), or windows that
    cannot be read, leave the figure as it was."""
    if isinstance(figure, go.Figure) or not isinstance(figure, dict):
        return figure
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=hours)
    try:
        windows = store.list_windows(actor, PoolName.READ)
    except SQLAlchemyError:
        return figure
    shapes, notes = [], []
    for w in windows:
        for start, end in occurrences(w, since, now):
            x0, x1 = max(start, since).isoformat(), min(end, now).isoformat()
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": x0,
                    "x1": x1,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": BAND_COLOUR,
                    "line": {"width": 0},
                    "layer": "below",
                    "name": f"maintenance: {w.name}",
                }
            )
            notes.append(
                {
                    "x": x0,
                    "xref": "x",
                    "xanchor": "left",
                    "y": 1,
                    "yref": "paper",
                    "yanchor": "top",
                    "text": f"maintenance: {w.name[:40]}",
                    "showarrow": False,
                    "font": {"size": 10},
                }
            )
    layout = figure.setdefault("layout", {})
    layout["shapes"] = [*layout.get("shapes", []), *shapes]
    layout["annotations"] = [*layout.get("annotations", []), *notes]
    return figure
