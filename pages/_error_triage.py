"""The triage list under the error-rate charts on /errors (its own issue fills this in)."""

from __future__ import annotations

from dash import html


def triage_section(**_query: str) -> html.Div:
    return html.Div(id="error-triage")
