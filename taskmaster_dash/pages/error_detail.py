"""One error on its own page: /errors/<id> (linked from the triage list and the side panel)."""

from __future__ import annotations

import dash
from dash import dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.permissions import actor_with, has_permission
from taskmaster_dash.data.db import user_message
from taskmaster_dash.data.errors.detail import error_detail
from taskmaster_dash.pages._error_panel import error_view, no_such_error
from taskmaster_dash.pages._ui import not_permitted, panel_message

dash.register_page(
    __name__,
    path_template="/errors/<error_id>",
    name="Error",
    title="Error · TaskMaster Dash",
    nav=False,
    permission="errors:read",
)


def layout(error_id: str | None = None, **_query: str) -> html.Div:
    if not has_permission("errors:read"):
        return not_permitted("errors")
    back = dcc.Link("← All errors", href=dash.get_relative_path("/errors"), className="back-link")
    try:
        detail = error_detail(actor_with("errors:read"), error_id or "")
    except SQLAlchemyError as exc:
        return html.Div(
            [back, panel_message(f"This error could not be loaded. {user_message(exc)}")]
        )
    if detail is None:
        return html.Div([back, no_such_error()])
    return html.Div(
        [
            back,
            html.H1(f"Error {detail.error['error_code']}"),
            error_view(detail, has_permission("errors:write")),
        ]
    )
