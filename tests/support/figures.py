"""Reading the figures the app draws the way Plotly does."""

from __future__ import annotations

from datetime import datetime, timedelta


def x_values(trace: dict) -> list:
    """A trace's x values: its x, or those its x0 and dx make (pages/_figures.x_on_grid), one
    per y value, spelled as the app spells times."""
    if "x" in trace:
        return trace["x"]
    first, step = datetime.fromisoformat(trace["x0"]), timedelta(milliseconds=trace["dx"])
    return [f"{first + i * step:%Y-%m-%d %H:%M:%S}" for i in range(len(trace["y"]))]
