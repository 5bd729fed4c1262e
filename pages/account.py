"""Your account (/account, linked from your name in the header): who you are, what your role
allows, and a form to change your own password."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from auth.login import change_own_password
from auth.passwords import MAX_PASSWORD_LENGTH
from auth.permissions import PERMISSIONS, signed_in_user
from data.db import user_message
from data.users import UserInputError, own_account
from pages._admin import result
from pages._ui import panel_message, when

dash.register_page(
    __name__, path="/account", name="Account", title="Account · TaskMaster Dash", nav=False
)


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


def layout(**_query: str) -> html.Div:
    user = signed_in_user()
    if user is None:  # the sign-in gate redirects first; kept for safety
        return html.Div()
    return html.Div(
        [
            html.H1("Your account"),
            _details(user),
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
