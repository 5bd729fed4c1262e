"""Errors: the error-rate charts (their own issue) and, below them, the triage list."""

from __future__ import annotations

import dash
from dash import html

from auth.permissions import has_permission
from pages._error_triage import triage_section
from pages._ui import not_permitted

dash.register_page(
    __name__,
    path="/errors",
    name="Errors",
    title="Errors · TaskMaster Dash",
    order=30,
    permission="errors:read",
)


def layout(**query: str) -> html.Div:
    if not has_permission("errors:read"):
        return not_permitted("errors")
    return html.Div([html.H1("Errors"), triage_section(**query)])
