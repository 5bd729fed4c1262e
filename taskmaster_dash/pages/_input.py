"""Reading callback input as the client sent it (not a page: Dash skips files starting with _).

A callback receives whatever a client posts, not what our layout would send: these helpers
return a value of the expected type or a fallback (None / the default), never raise. The grid's
getRowsRequest has its own parser in data/grid.py (parse_grid_request), a chart's clickData
in pages/_panels.py (clicked_point).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, TypeVar, overload

from dash import ctx
from dash.exceptions import PreventUpdate

T = TypeVar("T", str, int)


@overload
def choice(value: Any, allowed: Collection[T], default: T) -> T: ...
@overload
def choice(value: Any, allowed: Collection[T], default: None = None) -> T | None: ...
def choice(value: Any, allowed: Collection[T], default: T | None = None) -> T | None:
    """`value` when it is one of `allowed` (same type: 1.0 is not 1, True is not 1)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return default
    return value if value in allowed else default  # type: ignore[return-value]


def whole_number(value: Any, low: int, high: int) -> int | None:
    """A whole number from low to high (10 and 10.0 alike), or None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if low <= value <= high else None


def pressed(buttons: Collection[str]) -> str:
    """The id of the button (one of `buttons`) that fired this callback; anything else (a
    button drawn again, a hand-made request) updates nothing."""
    button = ctx.triggered_id
    if not isinstance(button, str) or button not in buttons:
        raise PreventUpdate
    return button
