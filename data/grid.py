"""Turn a dash-ag-grid infinite-row-model request (startRow, endRow, sortModel, filterModel) into
SQL pieces. Column names from the client are looked up in a whitelist, never interpolated; every
value is a bound parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_PAGE = 500
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
class GridQuery:
    offset: int
    limit: int
    order_by: str
    where: list[str]
    params: dict[str, Any]


def _int(value: Any, default: int) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


def grid_query(
    request: Mapping[str, Any] | None,
    sortable: Mapping[str, str],
    filterable: Mapping[str, str],
    default_order: str,
) -> GridQuery:
    """`sortable` / `filterable` map the grid's field names to SQL expressions we wrote."""
    request = request if isinstance(request, Mapping) else {}
    start = _int(request.get("startRow"), 0)
    end = _int(request.get("endRow"), start + 100)
    limit = min(max(end - start, 1), MAX_PAGE)

    orders = []
    for item in request.get("sortModel") or []:
        if not isinstance(item, Mapping) or item.get("colId") not in sortable:
            continue
        direction = "DESC" if item.get("sort") == "desc" else "ASC"
        orders.append(f"{sortable[item['colId']]} {direction} NULLS LAST")
    order_by = ", ".join([*orders, default_order])

    where: list[str] = []
    params: dict[str, Any] = {}
    filters = request.get("filterModel") or {}
    if isinstance(filters, Mapping):
        for field, model in filters.items():
            if field not in filterable or not isinstance(model, Mapping):
                continue
            conditions = model.get("conditions") if "conditions" in model else [model]
            joiner = " OR " if model.get("operator") == "OR" else " AND "
            parts = []
            for condition in conditions or []:
                test = (
                    _TEXT_TESTS.get(condition.get("type"))
                    if isinstance(condition, Mapping)
                    else None
                )
                value = condition.get("filter") if test else None
                if test is None or value is None:
                    continue
                name = f"f{len(params)}"
                params[name] = str(value)[:MAX_FILTER_LENGTH]
                parts.append(test.format(p=name, c=filterable[field]))
            if parts:
                where.append("(" + joiner.join(parts) + ")")
    return GridQuery(start, limit, order_by, where, params)
