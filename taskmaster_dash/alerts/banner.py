"""The alert banner on every page (firing alerts, worst first, each linking to its data) and the
one acknowledge / silence form that its entries and the /alerts rows open, pre-filled with
their rule.

The banner polls every 15 s with one small query (firing and failing rules only) whose answer
is shared by all sessions of this process for a few seconds. app.py puts `poller()` and
`action_form()` in the shell; importing this module registers the callbacks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.alertmanager import expire_in_alertmanager, silence_in_alertmanager
from taskmaster_dash.alerts.rules import Rule, RuleError, configured_rules, format_number
from taskmaster_dash.auth.permissions import (
    actor_with,
    has_permission,
    require_permission,
    signed_in_user,
)
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.db import DATABASE_UNREACHABLE, Actor, user_message
from taskmaster_dash.pages._input import choice
from taskmaster_dash.pages._ui import message, when
from taskmaster_dash.services import current

ACK = "alerts:ack"
POLL_ID = "alert-banner-poll"
HEALTH_URL_ID = "database-health-url"
DATABASE_STATUS_ID = "database-status"
POLL_MS = 15_000
SILENCE_MINUTES = {15: "15 minutes", 60: "1 hour", 240: "4 hours", 1440: "1 day"}
# How long an acknowledgement holds notifications; 0: until the instance resolves.
ACK_MINUTES = {**SILENCE_MINUTES, 0: "until it resolves"}
EVERY = "*"  # the target instance meaning every instance of the rule
MAX_NOTE = 2000
# What each button does: its label, the form's title and its confirm button.
ACTIONS = {
    "ack": ("Acknowledge", "Acknowledge", "Acknowledge"),
    "silence": ("Silence", "Silence", "Silence"),
    "unsilence": ("End silence", "End the silence of", "End silence"),
}
BUTTON = "alert-act"  # pattern-matching id type of every Acknowledge / Silence button
TARGET = "alert-action-target"  # {"rule", "action", "instance"} the open form acts on
ACTED = "alert-acted"  # bumped after each change, so the banner and /alerts read again
NEEDS_ACK = f"Acknowledging or silencing an alert needs the {ACK} permission."
SHOWN = "alert-banner-shown"  # fingerprint of what the banner shows


def poller() -> html.Div:
    """The banner's timer, and the line that says when the database is unreachable: it asks
    the public health route from the browser, because while the database is down the server
    cannot tell who is signed in and answers every callback 503."""
    return html.Div(
        [
            dcc.Interval(id=POLL_ID, interval=POLL_MS),
            dcc.Store(id=SHOWN),
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


def fingerprint(shown: Any) -> str:
    """A short digest of what a part of the page shows. Redrawing buttons that did not change
    would make Dash re-run the callback they feed, and a click in flight would be lost."""
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:16]


def _rows(actor: Actor) -> list[dict[str, Any]]:
    # Every signed-in user may read every alert, so one answer serves all sessions.
    return current().caches.banner.get("rows", lambda: store.banner_alerts(actor))


def action_buttons(
    rule_name: str, place: str, actions: list[str], instance: str = "", suffix: str = ""
) -> html.Span:
    """Buttons that open the form for one instance of `rule_name` ('' when it does not group,
    EVERY for all of them); `place` keeps ids unique per page part."""
    return html.Span(
        [
            html.Button(
                ACTIONS[action][0] + suffix,
                id={
                    "type": BUTTON,
                    "rule": rule_name,
                    "action": action,
                    "place": place,
                    "instance": instance,
                },
                className="button small",
            )
            for action in actions
        ],
        className="alert-actions",
    )


def instance_text(labels: Any) -> str:
    """An instance's labels as people read them: service_name=api, severity=high."""
    if not isinstance(labels, dict) or not labels:
        return ""
    return ", ".join(f"{k}={labels[k]}" for k in sorted(labels))


def held_until(until: Any) -> str:
    return f"until {when(until)}" if until else "until it resolves"


def action_form() -> html.Div:
    """The acknowledge / silence form (hidden until a button opens it) and its result."""
    return html.Div(
        [
            dcc.Store(id=TARGET),
            dcc.Store(id=ACTED, data=0),
            html.Div(id="alert-action-message"),
            html.Section(
                [
                    html.Strong(id="alert-action-title"),
                    html.Div(
                        dcc.Textarea(
                            id="alert-action-note",
                            placeholder="Note (who is on it, what was found)",
                            maxLength=MAX_NOTE,
                            className="form-note",
                        ),
                        id="alert-action-note-field",
                    ),
                    html.Label(
                        [
                            html.Span("Silence for", id="alert-action-minutes-label"),
                            dcc.Dropdown(
                                _options(SILENCE_MINUTES),
                                60,
                                id="alert-action-minutes",
                                clearable=False,
                            ),
                        ],
                        id="alert-action-minutes-field",
                        className="form-field",
                    ),
                    html.Div(
                        [
                            html.Button(id="alert-action-confirm", className="button"),
                            html.Button(
                                "Cancel", id="alert-action-cancel", className="button secondary"
                            ),
                        ],
                        className="form-row",
                    ),
                    html.Div(id="alert-action-error"),
                ],
                id="alert-action-form",
                className="panel alert-action-form",
                hidden=True,
            ),
        ],
        className="alert-action-area",
    )


def _item(row: dict[str, Any], can_act: bool) -> html.Div:
    shown = instance_text(row.get("labels"))
    title = f"{row['title']} ({shown})" if shown else row["title"]
    if row["state"] == "error":
        text = f"Cannot evaluate “{title}”: {row['message']}"
        href, kind = "/alerts", "error"
    else:
        text = f"{title}: {format_number(row['value'])}"
        href, kind = row["link"], row["severity"]
        if row["ack_by"]:
            text += f" (acknowledged by {row['ack_by']} {held_until(row.get('ack_until'))})"
    instance = row.get("instance") or ""
    link = dcc.Link(
        [html.Strong(kind.upper() if kind != "error" else "UNKNOWN"), " ", text],
        href=dash.get_relative_path(href),
        className="alert-link",
        id={"type": "alert-banner-item", "rule": row["rule_name"], "instance": instance},
    )
    buttons = (
        action_buttons(row["rule_name"], "banner", ["ack", "silence"], instance)
        if can_act
        else None
    )
    return html.Div([link, buttons], className=f"alert-item alert-{kind}")


@callback(
    Output("alert-banner", "children"),
    Output(SHOWN, "data"),
    Input(POLL_ID, "n_intervals"),
    Input(ACTED, "data"),
    State(SHOWN, "data"),
)
def refresh_banner(_ticks: int | None, _acted: Any, shown: Any):
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    try:
        rows = _rows(user.actor())
    except SQLAlchemyError as exc:
        problem = f"Alerts cannot be read: {user_message(exc)}"
        return html.Div(problem, className="alert-item alert-error"), None
    can_act = user.has(ACK)
    now = fingerprint((rows, can_act))
    if now == shown:
        raise dash.exceptions.PreventUpdate
    if not rows:
        return None, now
    hint = None if can_act else html.Div(NEEDS_ACK, className="alert-hint", id="alert-needs-ack")
    return [*(_item(row, can_act) for row in rows), hint], now


def _rules() -> dict[str, Rule]:
    return {r.name: r for r in configured_rules()}


def _rule_titles() -> dict[str, str]:
    return {name: r.title for name, r in _rules().items()}


def known_rule(name: Any) -> str:
    """`name` if it is a configured rule (whatever a client sends); RuleError otherwise."""
    if not isinstance(name, str) or name not in _rule_titles():
        raise RuleError("unknown rule")
    return name


def known_instance(actor: Actor, rule_name: str, instance: Any) -> tuple[str | None, dict | None]:
    """The instance a client names: '' (the rule's one instance, or a rule not evaluated yet),
    EVERY (None: every instance), or a stored instance of the rule, with its labels (None for
    every instance); RuleError otherwise."""
    if instance is None or instance == "":
        return "", {}
    if instance == EVERY:
        return None, None
    if not isinstance(instance, str) or len(instance) > 500:
        raise RuleError("unknown alert instance")
    labels = store.instance_labels(actor, rule_name, instance)
    if labels is None:
        raise RuleError("unknown alert instance (it may have resolved)")
    return instance, labels


def _note(note: Any, required: bool) -> str:
    if note is not None and not isinstance(note, str):
        raise RuleError("the note must be text")
    note = (note or "").strip()
    if required and not note:
        raise RuleError("write a note saying who is on it or what was found")
    if len(note) > MAX_NOTE:
        raise RuleError(f"the note is longer than {MAX_NOTE} characters")
    return note


def _options(choices: dict[int, str]) -> list[dict[str, Any]]:
    return [{"label": v, "value": k} for k, v in choices.items()]


@callback(
    Output(TARGET, "data"),
    Output("alert-action-form", "hidden"),
    Output("alert-action-title", "children"),
    Output("alert-action-note", "value"),
    Output("alert-action-note-field", "hidden"),
    Output("alert-action-minutes-field", "hidden"),
    Output("alert-action-confirm", "children"),
    Output("alert-action-error", "children"),
    Output("alert-action-message", "children", allow_duplicate=True),
    Output("alert-action-minutes-label", "children"),
    Output("alert-action-minutes", "options"),
    Output("alert-action-minutes", "value"),
    Input({"type": BUTTON, "rule": ALL, "action": ALL, "place": ALL, "instance": ALL}, "n_clicks"),
    Input("alert-action-cancel", "n_clicks"),
    prevent_initial_call=True,
)
def open_action_form(_buttons: Any, _cancel: Any):
    """A button opens the form for its instance and action; Cancel closes it (a saved change
    too, in act_on_alert: a redrawn banner re-runs this callback, and Dash drops the answer of
    a run that a newer one overtakes). Opening reads and writes nothing, so a caller without
    alerts:ack just gets no update."""
    fired = ctx.triggered_prop_ids
    keep = dash.no_update
    if "alert-action-cancel.n_clicks" in fired:
        return None, True, None, "", True, True, None, None, None, keep, keep, keep
    titles = _rule_titles()
    clicked = [
        fired[t["prop_id"]]
        for t in ctx.triggered
        if t.get("value") and isinstance(fired.get(t["prop_id"]), dict)
    ]
    trigger = clicked[0] if clicked else {}
    action, rule_name = choice(trigger.get("action"), ACTIONS), choice(trigger.get("rule"), titles)
    instance = trigger.get("instance", "")
    if not (has_permission(ACK) and action and rule_name) or not isinstance(instance, str):
        raise dash.exceptions.PreventUpdate
    _label, title, confirm = ACTIONS[action]
    shown = "every instance" if instance == EVERY else instance.replace(",", ", ")
    ack = action == "ack"
    return (
        {"rule": rule_name, "action": action, "instance": instance},
        False,
        f"{title} “{titles[rule_name]}”" + (f" ({shown})" if shown else ""),
        "",
        action == "unsilence",
        action == "unsilence",
        confirm,
        None,
        None,
        "Hold notifications" if ack else "Silence for",
        _options(ACK_MINUTES if ack else SILENCE_MINUTES),
        60,
    )


@callback(
    Output("alert-action-message", "children"),
    Output("alert-action-error", "children", allow_duplicate=True),
    Output(ACTED, "data"),
    Output("alert-action-form", "hidden", allow_duplicate=True),
    Output(TARGET, "data", allow_duplicate=True),
    Input("alert-action-confirm", "n_clicks"),
    State(TARGET, "data"),
    State("alert-action-note", "value"),
    State("alert-action-minutes", "value"),
    State(ACTED, "data"),
    prevent_initial_call=True,
)
@require_permission(ACK)
def act_on_alert(_clicks: Any, target: Any, note: Any, minutes: Any, acted: Any):
    """Acknowledge, silence or end the silence of the form's instance (or every instance of
    its rule). The target comes from the client like everything else: rule, instance, action,
    note and duration are checked here."""
    actor = actor_with(ACK)
    target = target if isinstance(target, dict) else {}
    action = choice(target.get("action"), ACTIONS)
    try:
        name = known_rule(target.get("rule"))
        instance, labels = known_instance(actor, name, target.get("instance"))
        what = name + (f" ({instance.replace(',', ', ')})" if instance else "")
        what = what if instance is not None else f"every instance of {name}"
        if action == "ack":
            hold = choice(minutes, ACK_MINUTES)
            if hold is None:
                raise RuleError("choose how long to hold notifications from the list")
            store.acknowledge(actor, name, _note(note, required=True), instance, hold or None)
            held = f"for {ACK_MINUTES[hold]}" if hold else "until it resolves"
            done = message(f"Acknowledged {what}: notifications held {held}.", "success")
        elif action == "silence":
            duration = choice(minutes, SILENCE_MINUTES)
            if duration is None:
                raise RuleError("choose a duration from the list")
            text = _note(note, required=False)
            silence_id = store.silence(actor, name, duration, text, instance)
            mirrored = silence_in_alertmanager(
                actor, _rules()[name], silence_id, duration, text, labels
            )
            said = f"Silenced {what} for {SILENCE_MINUTES[duration]}."
            done = (
                message(f"{said} {mirrored}", "warning") if mirrored else message(said, "success")
            )
        elif action == "unsilence":
            ended = store.end_silences(actor, name, instance)
            expired = expire_in_alertmanager(ended.alertmanager_ids)
            said = f"Ended the silence of {what}."
            done = (
                message(
                    f"{said} {expired}" if expired else said, "warning" if expired else "success"
                )
                if ended
                else message(f"{what} was not silenced.", "warning")
            )
        else:
            raise RuleError("choose Acknowledge or Silence on an alert")
    except RuleError as exc:
        verb = {"ack": "acknowledged", "unsilence": "changed"}.get(action or "", "silenced")
        problem = message(f"Not {verb}: {exc}.", "error")
    except SQLAlchemyError as exc:
        problem = message(user_message(exc), "error")
    else:
        current().caches.banner.clear()
        return done, None, (acted if isinstance(acted, int) else 0) + 1, True, None
    keep = dash.no_update
    return keep, problem, keep, keep, keep
