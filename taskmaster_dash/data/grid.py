"""Read a dash-ag-grid infinite-row-model request (startRow, endRow, sortModel, filterModel),
whatever shape the client sent, and turn it into SQL pieces. Column names from the client are
looked up in a whitelist, never interpolated; every value is a bound parameter."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_PAGE = 500
MAX_START = 1_000_000_000  # beyond any real table here, and inside PostgreSQL's OFFSET range
MAX_FILTER_LENGTH = 200

# Text filter types of ag-grid, as SQL over lower-cased text (no LIKE, so no wildcards to escape).
_TEXT_TESTS = {
    "contains": "position(lower(:{p}) in lower({c})) > 0",
    "notContains": "position(lower(:{p}) in lower({c})) = 0",
    "equals": "lower({c}) = lower(:{p})",
    "notEqual": "lower({c}) <> lower(:{p})",
    "startsWith": "left(lower({c}), length(:{p})) = lower(:{p})",
    "endsWith": "right(lower({c}), length(:{p})) = lower(:{p})",
}


@dataclass(frozen=True)
class GridRequest:
    """A getRowsRequest as the server will use it: rows start..end-1 (at most MAX_PAGE), the
    sort as (column, "asc"|"desc") pairs and the filters, each of the right type."""

    start: int = 0
    end: int = 100
    sort: tuple[tuple[str, str], ...] = ()
    filters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        return self.end - self.start


def _row_number(value: Any) -> int | None:
    """A whole, finite, non-negative row number, or None (Infinity, NaN, text, lists...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(int(value), MAX_START)


def parse_grid_request(raw: Any, page_size: int = 100) -> GridRequest:
    """The one reading of an infinite grid's getRowsRequest, whatever the client sent: bad
    numbers fall back to the first page, the block is clamped to MAX_PAGE rows, sort entries
    and filters of the wrong shape are dropped (column names are checked later, per grid)."""
    raw = raw if isinstance(raw, Mapping) else {}
    start = _row_number(raw.get("startRow"))
    start = 0 if start is None else start
    end = _row_number(raw.get("endRow"))
    end = start + page_size if end is None or end <= start else min(end, start + MAX_PAGE)
    sort_model = raw.get("sortModel")
    sort = tuple(
        (item["colId"], "desc" if item.get("sort") == "desc" else "asc")
        for item in (sort_model if isinstance(sort_model, list) else [])
        if isinstance(item, Mapping) and isinstance(item.get("colId"), str)
    )
    filter_model = raw.get("filterModel")
    filters = {
        name: model
        for name, model in (filter_model if isinstance(filter_model, Mapping) else {}).items()
        if isinstance(name, str) and isinstance(model, Mapping)
    }
    return GridRequest(start, end, sort, filters)


@dataclass(frozen=True)
class GridQuery:
    offset: int
    limit: int
    order_by: str
    where: list[str]
    params: dict[str, Any]


def _conditions(model: Mapping[str, Any]) -> tuple[list[Any], str]:
    """A column's filter as a list of conditions and the joiner between them."""
    if "conditions" in model:
        conditions = model.get("conditions")
        conditions = conditions if isinstance(conditions, list) else []
    else:
        conditions = [model]
    return conditions, " OR " if model.get("operator") == "OR" else " AND "


def grid_query(
    request: Any,
    sortable: Mapping[str, str],
    filterable: Mapping[str, str],
    default_order: str,
) -> GridQuery:
    """`request` is what the grid sent (parsed here) or a GridRequest; `sortable` /
    `filterable` map the grid's field names to SQL expressions we wrote."""
    parsed = request if isinstance(request, GridRequest) else parse_grid_request(request)
    orders = [
        f"{sortable[column]} {direction.upper()} NULLS LAST"
        for column, direction in parsed.sort
        if column in sortable
    ]
    order_by = ", ".join([*orders, default_order])

    where: list[str] = []
    params: dict[str, Any] = {}
    for column, model in parsed.filters.items():
        if column not in filterable:
            continue
        conditions, joiner = _conditions(model)
        parts = []
        for condition in conditions:
            if not isinstance(condition, Mapping):
                continue
            kind, value = condition.get("type"), condition.get("filter")
            test = _TEXT_TESTS.get(kind) if isinstance(kind, str) else None
            if test is None or not isinstance(value, str | int | float) or isinstance(value, bool):
                continue
            name = f"f{len(params)}"
            params[name] = str(value)[:MAX_FILTER_LENGTH]
            parts.append(test.format(p=name, c=filterable[column]))
        if parts:
            where.append("(" + joiner.join(parts) + ")")
    return GridQuery(parsed.start, parsed.limit, order_by, where, params)
