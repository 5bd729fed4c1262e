"""Your account (/account, linked from your name in the header): who you are, what your role
allows, where you are signed in (end any of those sessions), and a form to change your own
password."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from taskmaster_dash.auth.login import change_own_password, own_sessions
from taskmaster_dash.auth.passwords import MAX_PASSWORD_LENGTH
from taskmaster_dash.auth.permissions import PERMISSIONS, signed_in_user
from taskmaster_dash.data.sessions import end_session
from taskmaster_dash.data.users import UserInputError, own_account
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._ui import data_table, field, form_row, message, register_page, when

register_page(__name__, path="/account", name="Account", nav=False)

END_SESSION = "account-end-session"  # pattern-matching id type of each session's End button


def _password_field(label: str, component_id: str, autocomplete: str) -> html.Label:
    return field(
        label,
        dcc.Input(
            id=component_id,
            type="password",
            maxLength=MAX_PASSWORD_LENGTH,
            autoComplete=autocomplete,
        ),
    )


@failure_message()
def _account_dates(user, dates: dict) -> None:
    """Fill `dates` (last sign-in, API key); what the session knows is shown without them."""
    dates.update(own_account(user.actor()) or {})


def _details(user) -> html.Div:
    dates: dict = {}
    problem = _account_dates(user, dates)
    granted = sorted(user.record.permissions)
    allowed = (
        ["everything (*)"]
        if "*" in granted
        else [f"{p}: {PERMISSIONS.get(p, 'custom permission')}" for p in granted]
    )
    key = (
        f"expires {when(dates.get('api_key_expires_at'))}"
        if dates.get("has_api_key")
        else "none (an admin issues API keys)"
    )
    rows = [
        ("Username", user.username),
        ("E-mail", user.record.email),
        ("Role", user.record.role_name),
        ("Last sign-in", when(dates.get("last_login_at"), missing="—")),
        ("API key", key),
    ]
    return html.Div(
        [
            html.Dl(
                [part for k, v in rows for part in (html.Dt(k), html.Dd(v))],
                id="account-dl",
                className="facts",
            ),
            html.H3("Your role allows"),
            html.Ul([html.Li(a) for a in allowed], id="account-permissions"),
            problem,
        ],
        className="panel",
    )


@failure_message()
def _sessions_table(user) -> html.Div:
    """The user's live sessions; each but this one has an End button."""
    sessions, live = own_sessions(user)
    rows = [
        [
            when(s["created_at"]),
            when(s["last_seen_at"]),
            s["ip_address"] or "—",
            s["user_agent"] or "—",
            html.Span("this session", className="muted")
            if s["id"] == user.record.session_id
            else html.Button(
                "End",
                id={"type": END_SESSION, "session": s["id"]},
                className="button secondary",
                n_clicks=0,
            ),
        ]
        for s in sessions
    ]
    more = live - len(sessions)
    return html.Div(
        [
            data_table(["Signed in", "Last seen", "IP address", "Browser", ""], rows),
            html.P(
                f"{more:,} more, seen less recently, are not listed.",
                className="muted",
                id="account-sessions-more",
            )
            if more > 0
            else None,
        ]
    )


def _sessions_panel(user) -> html.Div:
    return html.Div(
        [
            html.H2("Where you are signed in"),
            html.P(
                "End a session you do not recognise: that browser is signed out at once.",
                className="muted",
            ),
            html.Div(_sessions_table(user), id="account-sessions"),
            html.Div(id="account-sessions-message"),
        ],
        className="panel",
    )


def layout(**_query: str) -> html.Div:
    user = signed_in_user()
    if user is None:  # the sign-in gate redirects first; kept for safety
        return html.Div()
    return html.Div(
        [
            html.H1("Your account"),
            _details(user),
            _sessions_panel(user),
            html.Div(
                [
                    html.H2("Change your password"),
                    html.P("Your other sessions end; this one carries on.", className="muted"),
                    form_row(
                        _password_field("Current password", "account-current", "current-password"),
                        _password_field("New password", "account-new", "new-password"),
                        _password_field("New password again", "account-repeat", "new-password"),
                        html.Button("Change password", id="account-change", className="button"),
                    ),
                    html.Div(id="account-message"),
                ],
                className="panel",
            ),
        ]
    )


@callback(
    Output("account-message", "children"),
    Output("account-current", "value"),
    Output("account-new", "value"),
    Output("account-repeat", "value"),
    Input("account-change", "n_clicks"),
    State("account-current", "value"),
    State("account-new", "value"),
    State("account-repeat", "value"),
    prevent_initial_call=True,
)
@failure_message(outputs=4, database="Not changed: {}")
def change_password(_clicks: Any, current: Any, new: Any, repeat: Any):
    # Any signed-in user may change their own password, and only their own: the user comes
    # from the session, never from the request.
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    if not (isinstance(current, str) and current and isinstance(new, str) and new):
        raise UserInputError("Type your current password and the new one.")
    if max(len(current), len(new)) > MAX_PASSWORD_LENGTH:
        raise UserInputError(f"A password has at most {MAX_PASSWORD_LENGTH} characters.")
    if new != repeat:
        return message("The two new passwords differ."), dash.no_update, "", ""
    if new == current:
        raise UserInputError("Choose a password different from the current one.")
    problem = change_own_password(user, current, new)
    if problem:
        return message(problem), "", dash.no_update, dash.no_update
    done = message("Your password is changed; your other sessions have ended.", "success")
    return done, "", "", ""


@callback(
    Output("account-sessions", "children"),
    Output("account-sessions-message", "children"),
    Input({"type": END_SESSION, "session": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
@failure_message(outputs=2, at=1, database="Not ended: {}")
def end_one_session(_clicks: Any):
    # Only the signed-in user's own sessions: end_session matches the session id against the
    # user from the server-side session, whatever id the client sends.
    user = signed_in_user()
    pressed = ctx.triggered_id
    if user is None or not isinstance(pressed, dict) or not ctx.triggered[0].get("value"):
        raise dash.exceptions.PreventUpdate
    ended = end_session(user.actor(), pressed.get("session"), "ended from /account")
    said = (
        message("The session has ended; that browser is signed out.", "success")
        if ended
        else message("That session had already ended.", "warning")
    )
    return _sessions_table(user), said
