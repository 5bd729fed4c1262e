"""The floor of bench/load.py: the shipped app as gunicorn serves it, plus one bench-only
callback that returns a constant. Calling it costs what every callback pays before its own
work (the sign-in gate and session lookup, Dash's dispatch, the server), so a panel's time
above the floor is the panel's own.

    gunicorn -c gunicorn.conf.py -w 2 bench.floor:server     # what bench/load.py starts

Never imported by the app: the callback exists only in a process started by the benchmark.
"""

from __future__ import annotations

from dash import Dash, Input, Output

FLOOR_OUTPUT = "bench-floor.children"


def add_floor(app: Dash) -> None:
    """Register the constant callback (before the app's first request)."""

    @app.callback(Output("bench-floor", "children"), Input("bench-floor-ping", "n_clicks"))
    def constant(_clicks: int | None) -> str:
        return "ok"


def __getattr__(name: str):
    # like taskmaster_dash.app: gunicorn builds the app on first access, not at import
    if name == "server":
        from taskmaster_dash.app import app_from_environment

        app = app_from_environment()
        add_floor(app)
        globals()["server"] = app.server
        return app.server
    raise AttributeError(name)
