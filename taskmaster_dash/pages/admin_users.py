"""Admin: users. A server-side paged grid of users, a form to create one, and actions on the
selected user (role, activate/deactivate, unlock, new password, API key)."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, dcc, html

from taskmaster_dash.auth.permissions import actor_with, has_permission, require_permission
from taskmaster_dash.data.users import (
    API_KEY_MAX_DAYS,
    UserInputError,
    admin_set_password,
    create_user,
    end_all_sessions,
    issue_api_key,
    revoke_api_key,
    role_names,
    set_user_active,
    set_user_role,
    unlock_user,
    user_summary,
    users_page,
)
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._input import pressed, whole_number
from taskmaster_dash.pages._ui import (
    field,
    grid_response,
    message,
    not_permitted,
    refresh_grid_on,
    register_page,
    when,
)

PERMISSION = "users:manage"
register_page(
    __name__,
    path="/admin/users",
    name="Users",
    order=90,
    permission=PERMISSION,
)

GRID = "au-grid"
CREATED = "au-created"  # stores bumped after a change, so the grid asks the server again
CHANGED = "au-changed"
PURGED = refresh_grid_on(GRID, CREATED, CHANGED)
ACTIONS = {
    "au-role-apply": "change the role",
    "au-activate": "activate",
    "au-deactivate": "deactivate",
    "au-unlock": "unlock",
    "au-password-apply": "set the password",
    "au-key-issue": "issue an API key",
    "au-key-revoke": "revoke the API key",
}
_TEXT_FILTER = {
    "filter": "agTextColumnFilter",
    "filterParams": {
        "filterOptions": ["contains", "equals", "startsWith"],
        "maxNumConditions": 1,
        "buttons": ["reset"],
    },
}
COLUMNS = [
    {"field": "username", "headerName": "Username", **_TEXT_FILTER},
    {"field": "email", "headerName": "E-mail", **_TEXT_FILTER},
    {"field": "role_name", "headerName": "Role", **_TEXT_FILTER},
    {"field": "is_active", "headerName": "Active", "maxWidth": 100},
    {"field": "locked", "headerName": "Locked", "maxWidth": 100},
    {"field": "last_login_at", "headerName": "Last login"},
    {"field": "login_attempts", "headerName": "Failed attempts", "maxWidth": 150},
    {"field": "api_key_expires_at", "headerName": "API key expires"},
]


def _button(label: str, button_id: str, kind: str = "") -> html.Button:
    return html.Button(label, id=button_id, className=f"button {kind}".strip(), n_clicks=0)


def layout(**_query: str) -> html.Div:
    if not has_permission(PERMISSION):
        return not_permitted("user administration")
    return _page()


@failure_message()
def _page() -> html.Div:
    roles = role_names(actor_with(PERMISSION))
    return html.Div(
        [
            html.H1("Users"),
            dcc.Store(id=CREATED, data=0),
            dcc.Store(id=CHANGED, data=0),
            dcc.Store(id=PURGED),
            html.Div(id="au-grid-message"),
            dag.AgGrid(
                id=GRID,
                rowModelType="infinite",
                columnDefs=COLUMNS,
                defaultColDef={"sortable": True, "resizable": True, "flex": 1, "minWidth": 110},
                dashGridOptions={
                    "rowSelection": {
                        "mode": "singleRow",
                        "checkboxes": False,
                        "enableClickSelection": True,
                    },
                    "cacheBlockSize": 50,
                    "maxBlocksInCache": 20,
                },
                getRowId="params.data.id",
                style={"height": "420px"},
            ),
            html.Div(
                [
                    html.Section(
                        [
                            html.H2("Create a user"),
                            field("Username", dcc.Input(id="au-new-username", maxLength=100)),
                            field(
                                "E-mail", dcc.Input(id="au-new-email", type="email", maxLength=255)
                            ),
                            field(
                                "Role",
                                dcc.Dropdown(
                                    id="au-new-role", options=roles, value=NEW_ROLE, clearable=False
                                ),
                            ),
                            field(
                                "Password",
                                dcc.Input(id="au-new-password", type="password", maxLength=256),
                            ),
                            _button("Create user", "au-create"),
                            html.Div(id="au-create-message"),
                        ],
                        className="panel",
                    ),
                    html.Section(
                        [
                            html.H2("Selected user"),
                            html.Div(
                                "Select a user in the table.", id="au-selected", className="muted"
                            ),
                            field(
                                "Role",
                                dcc.Dropdown(id="au-role-select", options=roles, clearable=False),
                            ),
                            html.Div(
                                [
                                    _button("Change role", "au-role-apply"),
                                    _button("Activate", "au-activate", "secondary"),
                                    _button("Deactivate", "au-deactivate", "danger"),
                                    _button("Unlock", "au-unlock", "secondary"),
                                    _button("End all sessions", "au-end-sessions", "secondary"),
                                ],
                                className="button-row",
                            ),
                            html.Div(id="au-sessions-message"),
                            field(
                                "New password",
                                dcc.Input(id="au-set-password", type="password", maxLength=256),
                            ),
                            _button("Set password", "au-password-apply", "secondary"),
                            field(
                                f"API key lifetime (days, 1-{API_KEY_MAX_DAYS})",
                                dcc.Input(
                                    id="au-key-days",
                                    type="number",
                                    value=90,
                                    min=1,
                                    max=API_KEY_MAX_DAYS,
                                    step=1,
                                ),
                            ),
                            html.Div(
                                [
                                    _button("Issue / rotate API key", "au-key-issue"),
                                    _button("Revoke API key", "au-key-revoke", "danger"),
                                ],
                                className="button-row",
                            ),
                            html.Div(id="au-action-message"),
                            html.Div(id="au-key-shown"),
                        ],
                        className="panel",
                    ),
                ],
                className="admin-forms",
            ),
        ]
    )


def _grid_row(row: dict) -> dict:
    return {
        **row,
        "is_active": "yes" if row["is_active"] else "no",
        "locked": "yes" if row["locked"] else "no",
        "last_login_at": when(row["last_login_at"]),
        "api_key_expires_at": when(row["api_key_expires_at"]),
    }


@callback(
    Output(GRID, "getRowsResponse"),
    Output("au-grid-message", "children"),
    Input(GRID, "getRowsRequest"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message(outputs=2, at=1, failed={0: grid_response()})
def load_users(request: dict | None):
    rows, total = users_page(actor_with(PERMISSION), request)
    return grid_response([_grid_row(r) for r in rows], total=total), None


NEW_ROLE = "viewer"  # what the create form starts with
CREATE_FORM = ("au-new-username", "au-new-email", "au-new-role", "au-new-password")


@callback(
    Output("au-create-message", "children"),
    Output(CREATED, "data"),
    *[Output(field_id, "value") for field_id in CREATE_FORM],
    Input("au-create", "n_clicks"),
    State("au-new-username", "value"),
    State("au-new-email", "value"),
    State("au-new-role", "value"),
    State("au-new-password", "value"),
    State(CREATED, "data"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message(outputs=6, failed={5: ""})
def create(_clicks, username, email, role, password, created):
    """A refused user keeps the form (but the password) for correcting; a created one empties
    it for the next."""
    values = [username, email, role, password]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise UserInputError("Fill in username, e-mail, role and password.")
    create_user(actor_with(PERMISSION), username.strip(), email.strip(), role, password)
    done = message(f"Created {username.strip()} ({role}).", "success")
    return done, (created if isinstance(created, int) else 0) + 1, "", "", NEW_ROLE, ""


@callback(
    Output("au-selected", "children"),
    Output("au-role-select", "value"),
    Input(GRID, "selectedRows"),
    Input(CHANGED, "data"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message(outputs=2)
def show_selected(selected, _changed):
    """The selected user as the database holds them now: read again after every action (the
    grid's selected row keeps the values it was selected with)."""
    row = _selected(selected)
    user = row and user_summary(actor_with(PERMISSION), row.get("id"))
    if not user:
        return "Select a user in the table.", None
    states = [
        s for s, on in (("inactive", not user["is_active"]), ("locked", user["locked"])) if on
    ]
    line = " · ".join([user["username"], user["email"], user["role_name"], *states])
    return line, user["role_name"]


def _selected(selected) -> dict | None:
    if isinstance(selected, list) and selected and isinstance(selected[0], dict):
        return selected[0]
    return None


@callback(
    Output("au-action-message", "children"),
    Output("au-key-shown", "children"),
    Output(CHANGED, "data"),
    Output("au-set-password", "value"),
    *[Input(button, "n_clicks") for button in ACTIONS],
    State(GRID, "selectedRows"),
    State("au-role-select", "value"),
    State("au-set-password", "value"),
    State("au-key-days", "value"),
    State(CHANGED, "data"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message(outputs=4, failed={1: None, 3: ""})
def act_on_user(*args):
    selected, role, password, days, changed = args[len(ACTIONS) :]
    action = pressed(ACTIONS)
    row = _selected(selected)
    if row is None:
        return message("Select a user in the table first.", "error"), None, dash.no_update, ""
    actor = actor_with(PERMISSION)
    user_id, name = row.get("id"), str(row.get("username", "the user"))[:100]
    key_shown = None
    if action == "au-role-apply":
        set_user_role(actor, user_id, role)
        done = f"{name} now has the role {role}."
    elif action in ("au-activate", "au-deactivate"):
        set_user_active(actor, user_id, action == "au-activate")
        done = f"{name} is now {'active' if action == 'au-activate' else 'inactive'}."
    elif action == "au-unlock":
        unlock_user(actor, user_id)
        done = f"{name} is unlocked."
    elif action == "au-password-apply":
        if not isinstance(password, str) or not password:
            raise UserInputError("Type the new password first.")
        admin_set_password(actor, user_id, password)
        done = f"The password of {name} is changed; their other sessions have ended."
    elif action == "au-key-issue":
        key, expires = issue_api_key(actor, user_id, _whole_days(days))
        done = f"New API key for {name}, valid until {when(expires)}."
        key_shown = html.Div(
            [
                html.P("Copy it now: it will not be shown again.", className="muted"),
                html.Div(key, id="au-api-key", className="api-key"),
            ]
        )
    else:
        revoke_api_key(actor, user_id)
        done = f"The API key of {name} is revoked."
    return message(done, "success"), key_shown, (changed if isinstance(changed, int) else 0) + 1, ""


@callback(
    Output("au-sessions-message", "children"),
    Input("au-end-sessions", "n_clicks"),
    State(GRID, "selectedRows"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message()
def end_sessions(clicks, selected):
    if not clicks:
        raise dash.exceptions.PreventUpdate
    row = _selected(selected)
    if row is None:
        return message("Select a user in the table first.", "error")
    name = str(row.get("username", "the user"))[:100]
    ended = end_all_sessions(actor_with(PERMISSION), row.get("id"))
    return message(f"Ended {ended} session(s) of {name}; they must sign in again.", "success")


def _whole_days(value) -> int:
    days = whole_number(value, 1, API_KEY_MAX_DAYS)
    if days is None:
        raise UserInputError(f"An API key lasts 1 to {API_KEY_MAX_DAYS} days.")
    return days
