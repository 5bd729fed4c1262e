"""Your account (/account, linked from your name in the header): who you are, what your role
allows, where you are signed in (end any of those sessions), and a form to change your own
password."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.login import change_own_password, own_sessions
from taskmaster_dash.auth.passwords import MAX_PASSWORD_LENGTH
from taskmaster_dash.auth.permissions import PERMISSIONS, signed_in_user
from taskmaster_dash.data.db import user_message
from taskmaster_dash.data.sessions import end_session
from taskmaster_dash.data.users import UserInputError, own_account
from taskmaster_dash.pages._admin import result
from taskmaster_dash.pages._ui import panel_message, when

dash.register_page(
    __name__, path="/account", name="Account", title="Account · TaskMaster Dash", nav=False
)

END_SESSION = "account-end-session"  # pattern-matching id type of each session's End button


def _password_field(label: str, component_id: str, autocomplete: str) -> html.Label:
    return html.Label(
        [
            label,
            dcc.Input(
                id=component_id,
                type="password",
                maxLength=MAX_PASSWORD_LENGTH,
                autoComplete=autocomplete,
            ),
        ],
        className="form-field",
    )


def _details(user) -> html.Div:
    dates, problem = {}, None
    try:
        dates = own_account(user.actor()) or {}
    except SQLAlchemyError as exc:
        problem = panel_message(user_message(exc))
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


def _sessions_table(user) -> html.Div | html.Table:
    """The user's live sessions; each but this one has an End button."""
    try:
        found = own_sessions(user)
    except SQLAlchemyError as exc:
        return panel_message(user_message(exc))
    header = html.Tr([html.Th(h) for h in ("Signed in", "Last seen", "IP address", "Browser", "")])
    rows = [
        html.Tr(
            [
                html.Td(when(s["created_at"])),
                html.Td(when(s["last_seen_at"])),
                html.Td(s["ip_address"] or "—"),
                html.Td(s["user_agent"] or "—"),
                html.Td(
                    html.Span("this session", className="muted")
                    if s["id"] == user.record.session_id
                    else html.Button(
                        "End",
                        id={"type": END_SESSION, "session": s["id"]},
                        className="button secondary",
                        n_clicks=0,
                    )
                ),
            ]
        )
        for s in found
    ]
    return html.Table([html.Thead(header), html.Tbody(rows)], className="role-table")


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
                    html.Div(
                        [
                            _password_field(
                                "Current password", "account-current", "current-password"
                            ),
                            _password_field("New password", "account-new", "new-password"),
                            _password_field("New password again", "account-repeat", "new-password"),
                            html.Button("Change password", id="account-change", className="button"),
                        ],
                        className="form-row",
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
def change_password(_clicks: Any, current: Any, new: Any, repeat: Any):
    # Any signed-in user may change their own password, and only their own: the user comes
    # from the session, never from the request.
    user = signed_in_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    keep = (dash.no_update,) * 3
    if not (isinstance(current, str) and current and isinstance(new, str) and new):
        return result("Type your current password and the new one.", ok=False), *keep
    if max(len(current), len(new)) > MAX_PASSWORD_LENGTH:
        return result(f"A password has at most {MAX_PASSWORD_LENGTH} characters.", ok=False), *keep
    if new != repeat:
        return result("The two new passwords differ.", ok=False), dash.no_update, "", ""
    if new == current:
        return result("Choose a password different from the current one.", ok=False), *keep
    try:
        problem = change_own_password(user, current, new)
    except UserInputError as exc:
        return result(str(exc), ok=False), *keep
    except SQLAlchemyError as exc:
        return result(f"Not changed: {user_message(exc)}", ok=False), *keep
    if problem:
        return result(problem, ok=False), "", dash.no_update, dash.no_update
    return result("Your password is changed; your other sessions have ended."), "", "", ""


@callback(
    Output("account-sessions", "children"),
    Output("account-sessions-message", "children"),
    Input({"type": END_SESSION, "session": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def end_one_session(_clicks: Any):
    # Only the signed-in user's own sessions: end_session matches the session id against the
    # user from the server-side session, whatever id the client sends.
    user = signed_in_user()
    pressed = ctx.triggered_id
    if user is None or not isinstance(pressed, dict) or not ctx.triggered[0].get("value"):
        raise dash.exceptions.PreventUpdate
    try:
        ended = end_session(user.actor(), pressed.get("session"), "ended from /account")
    except SQLAlchemyError as exc:
        return dash.no_update, result(f"Not ended: {user_message(exc)}", ok=False)
    message = (
        result("The session has ended; that browser is signed out.")
        if ended
        else result("That session had already ended.", ok=False)
    )
    return _sessions_table(user), message
