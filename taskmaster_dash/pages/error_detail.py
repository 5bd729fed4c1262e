"""One error on its own page: /errors/<id> (linked from the triage list and the side panel)."""

from __future__ import annotations

from dash import html

from taskmaster_dash.auth.permissions import actor_with, has_permission
from taskmaster_dash.data.errors.detail import error_detail
from taskmaster_dash.pages._error_panel import error_view, no_such_error
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._ui import link, not_permitted, register_page

register_page(
    __name__,
    path_template="/errors/<error_id>",
    name="Error",
    nav=False,
    permission="errors:read",
)


def layout(error_id: str | None = None, **_query: str) -> html.Div:
    if not has_permission("errors:read"):
        return not_permitted("errors")
    back = link("← All errors", "/errors", className="back-link")
    return html.Div([back, _error(error_id or "")])


@failure_message(database="This error could not be loaded. {}")
def _error(error_id: str) -> html.Div:
    detail = error_detail(actor_with("errors:read"), error_id)
    if detail is None:
        return no_such_error()
    return html.Div(
        [
            html.H1(f"Error {detail.error['error_code']}"),
            error_view(detail, has_permission("errors:write")),
        ]
    )
