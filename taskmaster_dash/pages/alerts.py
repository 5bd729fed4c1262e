"""Alerts: every rule with its state, value, threshold and since when; the timeline of
transitions, acknowledgements and silences. Each row's Acknowledge / Silence buttons (alerts:ack)
open the shell's form from alerts/banner.py; rule editing needs alerts:manage. Both are checked
on the server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.alertmanager import AmSilence, alertmanager_silences
from taskmaster_dash.alerts.banner import (
    ACK,
    ACTED,
    EVERY,
    NEEDS_ACK,
    action_buttons,
    fingerprint,
    held_until,
    instance_text,
    known_rule,
)
from taskmaster_dash.alerts.evaluator import effective_rules
from taskmaster_dash.alerts.rules import (
    COMPARISONS,
    Rule,
    RuleError,
    configured_rules,
    exact_number,
    format_duration,
    format_number,
    instance_anchor,
    validate_override,
)
from taskmaster_dash.auth.permissions import (
    actor_with,
    has_permission,
    require_permission,
    signed_in_user,
)
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.db import PoolName, user_message
from taskmaster_dash.pages._figures import chart, empty_figure
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._maintenance import add_maintenance_bands, maintenance_section
from taskmaster_dash.pages._rule_editor import editor_section
from taskmaster_dash.pages._timerange import key_values, search_for, write_url_from
from taskmaster_dash.pages._ui import (
    CHART_CONFIG,
    data_table,
    field,
    form_row,
    link,
    message,
    register_page,
    text_input,
    when,
)

register_page(__name__, path="/alerts", name="Alerts", order=80)

MANAGE = "alerts:manage"
NEEDS_MANAGE = f"Editing rules needs the {MANAGE} permission."
TIMELINE_HOURS = {1: "1h", 6: "6h", 24: "24h", 168: "7d"}
# Worst first, so the legend reads like the banner; a state not listed here is drawn grey.
STATE_COLOURS = {
    "firing": "#e5484d",
    "pending": "#f5a524",
    "error": "#8e4ec6",
    "no_data": "#8a94a6",
    "disabled": "#c1c8d4",
    "normal": "#30a46c",
}


def _rule_options() -> list[dict[str, str]]:
    return [{"label": r.title, "value": r.name} for r in configured_rules()]


def _edit_form() -> html.Section:
    first = configured_rules()[0].name
    return html.Section(
        [
            html.H2("Edit a rule"),
            form_row(
                field(
                    "Rule",
                    dcc.Dropdown(_rule_options(), first, id="alerts-edit-rule", clearable=False),
                ),
                field(
                    "Comparison",
                    dcc.Dropdown(list(COMPARISONS), id="alerts-edit-cmp", clearable=False),
                ),
                field("Threshold", text_input("alerts-edit-threshold")),
                field("Pending period (30s, 5m, 1h)", text_input("alerts-edit-for")),
                dcc.Checklist([{"label": " enabled", "value": "enabled"}], id="alerts-edit-on"),
                html.Button("Save rule", id="alerts-edit-save", className="button"),
            ),
        ],
        className="panel",
    )


URL = "alerts-url"
URL_WRITTEN = write_url_from(URL)
HOURS_BY_LABEL = {label: hours for hours, label in TIMELINE_HOURS.items()}


def layout(**query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Alerts"),
            dcc.Store(id=URL),
            dcc.Store(id=URL_WRITTEN),
            dcc.Interval(id="alerts-refresh", interval=15_000),
            dcc.Store(id="alerts-table-shown"),
            html.Div(id="alerts-table"),
            *(
                html.P(line, className="muted", id=line_id)
                for permission, line, line_id in (
                    (ACK, NEEDS_ACK, "alerts-needs-ack"),
                    (MANAGE, NEEDS_MANAGE, "alerts-needs-manage"),
                )
                if not has_permission(permission)
            ),
            _edit_form() if has_permission(MANAGE) else None,
            editor_section(),  # rules written in the app (alerts:manage only)
            # Always present: the table refreshes when it changes.
            html.Div(id="alerts-edit-message"),
            maintenance_section(),
            html.H2("Timeline"),
            html.Label(
                [
                    "Range",
                    dcc.Dropdown(
                        id="alerts-timeline-hours",
                        options=[
                            {"label": f"last {label}", "value": hours}
                            for hours, label in TIMELINE_HOURS.items()
                        ],
                        value=HOURS_BY_LABEL[key_values(query, "alerts")["range"] or "24h"],
                        clearable=False,
                        className="tr-select",
                    ),
                ],
                className="tr-field timeline-range",
            ),
            dcc.Graph(id="alerts-timeline-chart", config=CHART_CONFIG),
            html.Div(id="alerts-timeline"),
        ]
    )


_when = partial(when, seconds=True, missing="—")


def _row_actions(state: dict[str, Any]) -> list[str]:
    """Firing (and failing) instances can be acknowledged; any silenced ahead, or unsilenced."""
    acknowledge = ["ack"] if state.get("state") in ("firing", "error") else []
    return [*acknowledge, "unsilence" if state.get("silenced_until") else "silence"]


def _ack_text(s: dict[str, Any]) -> str:
    """Who acknowledged, their note, and until when it holds (or when it ran out)."""
    if not s.get("ack_by"):
        return ""
    text = f"{s['ack_by']}: {s['ack_note']}"
    if not s.get("ack_active"):
        return f"{text} (ran out {_when(s['ack_until'])})"
    return f"{text} ({held_until(s.get('ack_until'))})"


def _silence_text(until: Any, by: Any, rule_wide: bool = False) -> str:
    if not until:
        return ""
    return f"{_when(until)} ({by}{', every instance' if rule_wide else ''})"


def _am_silences(silences: list[AmSilence]) -> list[Any]:
    return [
        html.Div(
            f"Alertmanager: {_when(s.ends_at)} "
            f"({s.created_by}{': ' + s.comment if s.comment else ''})",
            className="alert-detail alert-am-silence",
        )
        for s in silences
    ]


def _delivery_problems(failing: list[dict[str, Any]], reading: str | None) -> html.Div | None:
    """Say that notifications are failing: to which Alertmanager, since when, why."""
    lines = [
        f"Notifications to {f['target']} are failing: {f['last_error']} (last attempt "
        f"{_when(f['last_failure_at'])}; last delivered {_when(f['last_success_at'])})."
        for f in failing
    ]
    if reading:
        lines.append(reading)
    if not lines:
        return None
    return html.Div([message(line, "error") for line in lines], id="alerts-notify-failing")


def _rule_cell(rule: Rule) -> html.Td:
    return html.Td(
        [
            link(rule.title, rule.link),
            html.Details(
                [
                    html.Summary("what to do"),
                    html.P(rule.description),
                    html.P(rule.runbook) if rule.runbook else None,
                ],
                className="alert-detail alert-runbook",
            ),
        ]
    )


def _state_cell(state: str, detail: str | None) -> html.Td:
    return html.Td(
        [state, html.Div(detail or "", className="alert-detail")],
        className=f"alert-state alert-state-{state}",
    )


def _summary(instances: list[dict[str, Any]]) -> str:
    """A grouped rule's instances in one line: 3 instances: 1 firing, 2 normal."""
    if not instances:
        return "no instances"
    counts: dict[str, int] = {}
    for i in instances:
        counts[i["state"]] = counts.get(i["state"], 0) + 1
    order = [st for st in STATE_COLOURS if st in counts] + sorted(counts.keys() - STATE_COLOURS)
    parts = ", ".join(f"{counts[st]} {st}" for st in order)
    return f"{len(instances)} instance{'s' if len(instances) != 1 else ''}: {parts}"


def _table(
    rules: list[Rule],
    states: dict[tuple[str, str], dict[str, Any]],
    can_act: bool,
    am_silences: dict[tuple[str, str], list[AmSilence]] | None = None,
    rule_silences: dict[str, dict[str, Any]] | None = None,
) -> html.Table | html.P:
    """One row per rule; a rule that groups has its instances in rows under it, each with
    its state, value, since, acknowledgement, silences and actions."""
    header = [
        "Rule",
        "Severity",
        "State",
        "Value",
        "Condition",
        "For",
        "Since",
        "Acknowledged",
        "Silenced until",
        *(["Act"] if can_act else []),
    ]
    am = am_silences or {}
    body = []
    for rule in rules:
        condition = rule.condition + ("" if rule.enabled else " (disabled)")
        period = format_duration(rule.for_seconds) + (
            f", keeps firing {format_duration(rule.keep_firing_seconds)}"
            if rule.keep_firing_seconds
            else ""
        )
        instances = [v for (name, _i), v in states.items() if name == rule.name]
        if not rule.group_by and all(i["instance"] == "" for i in instances):
            s = instances[0] if instances else {}
            state = s.get("state", "not evaluated yet")
            cells = [
                _rule_cell(rule),
                html.Td(rule.severity),
                _state_cell(state, s.get("message")),
                html.Td(format_number(s.get("value"))),
                html.Td(condition),
                html.Td(period),
                html.Td(_when(s.get("since"))),
                html.Td(_ack_text(s)),
                html.Td(
                    [
                        _silence_text(s.get("silenced_until"), s.get("silenced_by")),
                        *_am_silences(am.get((rule.name, ""), [])),
                    ]
                ),
            ]
            if can_act:
                cells.append(html.Td(action_buttons(rule.name, "row", _row_actions(s))))
            body.append(html.Tr(cells, id=instance_anchor(rule.name)))
            continue
        wide = (rule_silences or {}).get(rule.name, {})
        by = ", ".join(rule.group_by) or "labels"
        cells = [
            _rule_cell(rule),
            html.Td(rule.severity),
            _state_cell(_summary(instances), f"one instance per {by}"),
            html.Td(""),
            html.Td(condition),
            html.Td(period),
            html.Td(""),
            html.Td(""),
            html.Td(_silence_text(wide.get("until"), wide.get("username"), True)),
        ]
        if can_act:
            actions = ["ack", "unsilence" if wide else "silence"]
            cells.append(html.Td(action_buttons(rule.name, "row", actions, EVERY, " all")))
        body.append(html.Tr(cells, id=instance_anchor(rule.name), className="alert-rule-row"))
        for s in instances:
            key = s["instance"]
            cells = [
                html.Td(
                    instance_text(s.get("labels")) or "(no labels)", className="alert-instance"
                ),
                html.Td(rule.severity),
                _state_cell(s["state"], s.get("message")),
                html.Td(format_number(s.get("value"))),
                html.Td(""),
                html.Td(""),
                html.Td(_when(s.get("since"))),
                html.Td(_ack_text(s)),
                html.Td(
                    [
                        _silence_text(
                            s.get("silenced_until"),
                            s.get("silenced_by"),
                            bool(s.get("silenced_rule")),
                        ),
                        *_am_silences(am.get((rule.name, key), [])),
                    ]
                ),
            ]
            if can_act:
                cells.append(html.Td(action_buttons(rule.name, "row", _row_actions(s), key)))
            body.append(
                html.Tr(
                    cells,
                    id=instance_anchor(rule.name, key),
                    className="alert-instance-row",
                )
            )
    return data_table(header, body, "alerts-rules-table")


def _timeline(events: list[dict[str, Any]]) -> html.Table | html.P | html.Div:
    if not events:
        return message("No transitions yet.", "info")
    rows = [
        [
            _when(e["at"]),
            e["rule_name"],
            "every instance" if e["instance"] is None else e["instance"].replace(",", ", "),
            e["what"],
            format_number(e["value"]),
            e["who"] or "",
            e["detail"] or "",
        ]
        for e in events
    ]
    header = ["When", "Rule", "Instance", "What", "Value", "Who", "Detail"]
    return data_table(header, rows, "alerts-timeline-table")


def _band(titles: dict[str, str], period: dict[str, Any]) -> str:
    """A timeline band's name: the rule's title, and the instance's labels when it groups."""
    title = titles.get(period["rule_name"], period["rule_name"])
    instance = period.get("instance") or ""
    return f"{title} ({instance.replace(',', ', ')})" if instance else title


def _timeline_figure(periods: list[dict[str, Any]], titles: dict[str, str], hours: int):
    """Each rule's states as coloured bands across the last `hours`, one legend entry per
    state."""
    if not periods:
        return empty_figure("No transitions in this range.")
    present = {p["state"] for p in periods}
    order = [s for s in STATE_COLOURS if s in present] + sorted(present - STATE_COLOURS.keys())
    traces = []
    for state in order:
        rows = [p for p in periods if p["state"] == state]
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": state,
                "y": [_band(titles, r) for r in rows],
                "base": [r["started"].isoformat() for r in rows],
                "x": [(r["ended"] - r["started"]).total_seconds() * 1000 for r in rows],
                "customdata": [[_when(r["started"]), _when(r["ended"])] for r in rows],
                "hovertemplate": f"%{{y}}: {state}<br>%{{customdata[0]}} → %{{customdata[1]}}"
                "<extra></extra>",
                "marker": {"color": STATE_COLOURS.get(state, "#8a94a6")},
            }
        )
    figure = chart(traces, barmode="overlay")
    now = datetime.now(UTC)
    figure["layout"].update(
        hovermode="closest",
        xaxis={
            **figure["layout"]["xaxis"],
            "type": "date",
            "range": [(now - timedelta(hours=hours)).isoformat(), now.isoformat()],
        },
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        height=max(240, 60 + 40 * len({_band(titles, p) for p in periods})),
    )
    return figure


@callback(
    Output("alerts-timeline-chart", "figure"),
    Input("alerts-refresh", "n_intervals"),
    Input("alerts-timeline-hours", "value"),
)
def refresh_timeline_chart(_tick: Any, hours: Any):
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    if type(hours) is not int or hours not in TIMELINE_HOURS:
        hours = 24  # only a hand-made request sends anything else
    titles = {r.name: r.title for r in configured_rules()}
    try:
        periods = store.state_periods(user.actor(), list(titles), hours)
    except SQLAlchemyError as exc:
        return empty_figure(user_message(exc))
    return add_maintenance_bands(_timeline_figure(periods, titles, hours), user.actor(), hours)


@callback(
    Output("alerts-table", "children"),
    Output("alerts-timeline", "children"),
    Output("alerts-table-shown", "data"),
    Input("alerts-refresh", "n_intervals"),
    Input("alerts-edit-message", "children"),
    Input(ACTED, "data"),
    State("alerts-table-shown", "data"),
)
def refresh_alerts(_tick: Any, _edited: Any, _acted: Any, shown: Any):
    # Every signed-in user may see alerts (RLS: any active user).
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    actor = user.actor()
    try:
        rules = effective_rules(list(configured_rules()), actor, PoolName.READ)
        states = store.alert_table(actor)
        wide = store.rule_silences(actor)
        events = store.alert_history(actor)
        failing = store.failing_deliveries(actor)
        by_name = {r.name: r for r in rules}
        targets = [
            (by_name[name], key, s["labels"])
            for (name, key), s in states.items()
            if name in by_name
        ]
        seen = {name for name, _key in states}
        targets += [(r, "", {}) for r in rules if r.name not in seen]
        am_silences, reading = alertmanager_silences(targets, actor)
    except SQLAlchemyError as exc:
        problem = message(user_message(exc), "error")
        return problem, problem, None
    can_act = user.has(ACK)
    now = fingerprint((rules, states, wide, events, can_act, failing, am_silences, reading))
    if now == shown:  # unchanged: keep the rows' buttons (see fingerprint)
        raise dash.exceptions.PreventUpdate
    table = _table(rules, states, can_act, am_silences, wide)
    return [_delivery_problems(failing, reading), table], _timeline(events), now


@callback(
    Output("alerts-edit-cmp", "value"),
    Output("alerts-edit-threshold", "value"),
    Output("alerts-edit-for", "value"),
    Output("alerts-edit-on", "value"),
    Input("alerts-edit-rule", "value"),
)
@require_permission(MANAGE)
def fill_edit_form(rule_name: Any):
    try:
        name = known_rule(rule_name)
        rules = effective_rules(list(configured_rules()), actor_with(MANAGE), PoolName.READ)
    except (RuleError, SQLAlchemyError):
        raise dash.exceptions.PreventUpdate from None
    rule = next(r for r in rules if r.name == name)
    return (
        rule.comparison,
        exact_number(rule.threshold),
        format_duration(rule.for_seconds),
        ["enabled"] if rule.enabled else [],
    )


@callback(
    Output("alerts-edit-message", "children"),
    Input("alerts-edit-save", "n_clicks"),
    State("alerts-edit-rule", "value"),
    State("alerts-edit-threshold", "value"),
    State("alerts-edit-cmp", "value"),
    State("alerts-edit-for", "value"),
    State("alerts-edit-on", "value"),
    prevent_initial_call=True,
)
@require_permission(MANAGE)
@failure_message(refused="Not saved: {}.")
def save_rule(_clicks, rule_name, threshold, comparison, for_value, enabled):
    actor = actor_with(MANAGE)
    name = known_rule(rule_name)
    if enabled is not None and not isinstance(enabled, list):
        raise RuleError("enabled: expected a list")
    edit = validate_override(threshold, comparison, for_value, "enabled" in (enabled or []))
    store.save_override(
        actor,
        name,
        edit.threshold,
        edit.comparison,
        edit.for_seconds,
        edit.enabled,
    )
    return message(
        f"Saved {name}: {edit.comparison} {format_number(edit.threshold)} for "
        f"{format_duration(edit.for_seconds)}, {'enabled' if edit.enabled else 'disabled'}.",
        "success",
    )


@callback(Output(URL, "data"), Input("alerts-timeline-hours", "value"), prevent_initial_call=True)
def timeline_range_in_url(hours: object) -> str:
    """The timeline's range lives in the URL (?range=7d), written from the one view model."""
    label = TIMELINE_HOURS.get(hours) if type(hours) is int else None
    return search_for({"range": label}, "alerts")
