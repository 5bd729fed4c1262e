"""Admin: roles. Every role with its permissions; create a role, edit a role's permissions from
the catalogue, deactivate or reactivate a role."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.permissions import actor_with, has_permission, require_permission
from taskmaster_dash.data.roles import (
    SPEC_ROLES,
    create_role,
    known_permissions,
    roles,
    set_role_active,
    set_role_permissions,
)
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._input import choice, pressed
from taskmaster_dash.pages._ui import data_table, field, message, not_permitted, register_page

PERMISSION = "users:manage"
register_page(
    __name__,
    path="/admin/roles",
    name="Roles",
    order=91,
    permission=PERMISSION,
)

CHANGED = "ar-changed"
ACTIONS = ("ar-create", "ar-save", "ar-deactivate", "ar-activate")


def layout(**_query: str) -> html.Div:
    if not has_permission(PERMISSION):
        return not_permitted("role administration")
    catalogue = known_permissions()
    return html.Div(
        [
            html.H1("Roles"),
            dcc.Store(id=CHANGED, data=0),
            html.Div(id="ar-table", className="panel"),
            html.Div(
                [
                    html.Section(
                        [
                            html.H2("Edit a role"),
                            field("Role", dcc.Dropdown(id="ar-role-select", clearable=False)),
                            html.P(
                                "To create a role, type a new name instead of choosing one.",
                                className="muted",
                            ),
                            field(
                                "New role name (lower-case letters and _)",
                                dcc.Input(id="ar-name", maxLength=50),
                            ),
                            field("Description", dcc.Textarea(id="ar-description", maxLength=500)),
                            html.Div(
                                [
                                    html.Span("Permissions", className="field-label"),
                                    dcc.Checklist(
                                        id="ar-permissions",
                                        options=[
                                            {"label": f" {name} — {about}", "value": name}
                                            for name, about in catalogue.items()
                                        ],
                                        value=[],
                                    ),
                                ],
                                className="perm-list",
                            ),
                            html.Div(
                                [
                                    html.Button(
                                        "Create role",
                                        id="ar-create",
                                        className="button",
                                        n_clicks=0,
                                    ),
                                    html.Button(
                                        "Save permissions",
                                        id="ar-save",
                                        className="button",
                                        n_clicks=0,
                                    ),
                                    html.Button(
                                        "Deactivate",
                                        id="ar-deactivate",
                                        className="button danger",
                                        n_clicks=0,
                                    ),
                                    html.Button(
                                        "Activate",
                                        id="ar-activate",
                                        className="button secondary",
                                        n_clicks=0,
                                    ),
                                ],
                                className="button-row",
                            ),
                            html.Div(id="ar-message"),
                        ],
                        className="panel",
                    )
                ],
                className="admin-forms",
            ),
        ]
    )


@callback(
    Output("ar-table", "children"),
    Output("ar-role-select", "options"),
    Input(CHANGED, "data"),
)
@require_permission(PERMISSION)
@failure_message(outputs=2, failed={1: []})
def show_roles(_changed):
    found = roles(actor_with(PERMISSION))
    header = ["Role", "Description", "Permissions", "Active", "Active users"]
    body = [
        html.Tr(
            [
                html.Td(r["role_name"] + (" (built-in)" if r["role_name"] in SPEC_ROLES else "")),
                html.Td(r["role_description"] or ""),
                html.Td(", ".join(r["permissions"]) or "none"),
                html.Td("yes" if r["is_active"] else "no"),
                html.Td(str(r["active_users"])),
            ],
            id={"type": "ar-row", "role": r["role_name"]},
        )
        for r in found
    ]
    return data_table(header, body), [r["role_name"] for r in found]


@callback(
    Output("ar-permissions", "value"),
    Output("ar-description", "value"),
    Input("ar-role-select", "value"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
def load_role(role_name):
    try:
        found = {r["role_name"]: r for r in roles(actor_with(PERMISSION))}
    except SQLAlchemyError:
        raise dash.exceptions.PreventUpdate from None
    role = found.get(choice(role_name, found))
    if role is None:
        return [], ""
    return list(role["permissions"]), role["role_description"] or ""


@callback(
    Output("ar-message", "children"),
    Output(CHANGED, "data"),
    *[Input(button, "n_clicks") for button in ACTIONS],
    State("ar-role-select", "value"),
    State("ar-name", "value"),
    State("ar-description", "value"),
    State("ar-permissions", "value"),
    State(CHANGED, "data"),
    prevent_initial_call=True,
)
@require_permission(PERMISSION)
@failure_message(outputs=2)
def act_on_role(*args):
    selected, new_name, description, permissions, changed = args[len(ACTIONS) :]
    action = pressed(ACTIONS)
    actor = actor_with(PERMISSION)
    if action == "ar-create":
        name = new_name.strip() if isinstance(new_name, str) else new_name
        create_role(actor, name, description, permissions)
        done = f"Created the role {name}."
    elif action == "ar-save":
        set_role_permissions(actor, selected, permissions, description)
        done = f"Saved the permissions of {selected}."
    else:
        set_role_active(actor, selected, action == "ar-activate")
        done = f"{selected} is now {'active' if action == 'ar-activate' else 'inactive'}."
    return message(done, "success"), (changed or 0) + 1
