"""Reading callback input as the client sent it (not a page: Dash skips files starting with _).

A callback receives whatever a client posts, not what our layout would send: these helpers
return a value of the expected type or a fallback (None / the default), never raise. The grid's
getRowsRequest has its own parser in data/grid.py (parse_grid_request).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

T = TypeVar("T", str, int)


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


def clicked_point(click_data: Any) -> Mapping[str, Any] | None:
    """The first point of a Plotly clickData, or None when there is no well-formed point."""
    points = click_data.get("points") if isinstance(click_data, Mapping) else None
    point = points[0] if isinstance(points, list) and points else None
    return point if isinstance(point, Mapping) else None


def clicked_value(click_data: Any, key: str, index: int | None = None) -> str | None:
    """One value of the clicked point (`x`, `label`, or `customdata` with index) as text, or
    None when it is missing or not a plain string or number."""
    point = clicked_point(click_data)
    value = point.get(key) if point is not None else None
    if index is not None:
        value = (
            value[index] if isinstance(value, list) and -len(value) <= index < len(value) else None
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
