"""Bits shared by the admin pages (not a page: Dash skips files starting with _)."""

from __future__ import annotations

import json

from dash import Input, Output, clientside_callback, html

from taskmaster_dash.pages._ui import message


def field(label: str, component) -> html.Label:
    return html.Label([html.Span(label, className="field-label"), component], className="field")


def result(text: str, ok: bool = True) -> html.Div:
    return message(text, "success" if ok else "error")


def refresh_grid_on(grid_id: str, *stores: str) -> str:
    """After a server-side change (or a new external filter) the infinite grid drops its cached
    blocks and asks the server again. Call at import time; put a dcc.Store with the returned id
    in the page's layout."""
    done = f"{grid_id}-purged"
    purge = (
        "function() { try { window.dash_ag_grid.getApi(" + json.dumps(grid_id) + ")"
        ".purgeInfiniteCache(); } catch (e) {} return Date.now(); }"
    )
    clientside_callback(
        purge,
        Output(done, "data"),
        [Input(store, "data") for store in stores],
        prevent_initial_call=True,
    )
    return done
