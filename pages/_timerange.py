"""The time-range picker, auto-refresh choice and filters shared by the analytics pages.

Everything a view depends on lives in the URL query string (`?range=24h&refresh=1m&severity=
high`), so a copied link opens the same view. `parse_query` checks every value against a
whitelist; anything unknown or malformed falls back to the default instead of failing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dash import ALL, Input, Output, State, callback, dcc, html

from data.analytics import Filters, Window
from data.vocabulary import (
    CATEGORIES,
    SEVERITIES,
    TASK_STATUSES,
    VALIDATION_STATUSES,
    VALIDATION_TYPES,
)

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RANGE_LABELS = {
    "1h": "Last hour",
    "6h": "Last 6 hours",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "custom": "Custom…",
}
REFRESH_MS: dict[str, int | None] = {"off": None, "30s": 30_000, "1m": 60_000, "5m": 300_000}
DEFAULT_RANGE = "24h"
DEFAULT_REFRESH = "off"
MAX_CUSTOM_SPAN = timedelta(days=400)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+ -]{0,99}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Per page: each filter it accepts, with the allowed values (a tuple) or a pattern.
PAGE_FILTERS: dict[str, dict[str, tuple[str, ...] | re.Pattern]] = {
    "tasks": {"status": TASK_STATUSES, "type": _NAME, "assignee": _NAME, "task": _UUID},
    "validations": {"type": VALIDATION_TYPES, "status": VALIDATION_STATUSES},
    "errors": {"severity": SEVERITIES, "category": CATEGORIES, "service": _NAME},
    "overview": {},
}


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= 255 else None


def _parse_time(value: Any) -> datetime | None:
    text = _first(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not datetime(2000, 1, 1, tzinfo=UTC) <= parsed <= datetime(2200, 1, 1, tzinfo=UTC):
        return None
    return parsed.astimezone(UTC)


def _valid(value: str | None, allowed: tuple[str, ...] | re.Pattern) -> str | None:
    if value is None:
        return None
    if isinstance(allowed, tuple):
        return value if value in allowed else None
    return value if allowed.match(value) else None


@dataclass(frozen=True)
class ViewState:
    page: str = "overview"
    range: str = DEFAULT_RANGE
    start: datetime | None = None  # custom range only
    end: datetime | None = None
    refresh: str = DEFAULT_REFRESH
    filters: Filters = field(default_factory=Filters)
    offset: int = 0  # list paging

    def window(self, step: timedelta | None = None, now: datetime | None = None) -> Window:
        """The time axis; `step` is the chart's rollup step (see bucket_for)."""
        if self.range == "custom" and self.start and self.end:
            return Window.between(self.start, self.end, step)
        return Window.last(RANGES[self.range], now, step)

    def query(self) -> dict[str, str]:
        """The query-string values of this view (the same ones parse_query reads back)."""
        values: dict[str, str] = {"range": self.range}
        if self.range == "custom" and self.start and self.end:
            values["from"] = self.start.strftime("%Y-%m-%dT%H:%M:%SZ")
            values["to"] = self.end.strftime("%Y-%m-%dT%H:%M:%SZ")
        values["refresh"] = self.refresh
        for key in PAGE_FILTERS[self.page]:
            value = getattr(self.filters, key)
            if value:
                values[key] = value
        if self.offset:
            values["offset"] = str(self.offset)
        return values

    def href(self, path: str) -> str:
        return f"{path}?{urlencode(self.query())}"

    def with_changes(self, **changes: Any) -> ViewState:
        filters = {k: changes.pop(k) for k in list(changes) if k in PAGE_FILTERS[self.page]}
        return replace(self, filters=replace(self.filters, **filters), **changes)


def parse_query(query: Mapping[str, Any] | None, page: str) -> ViewState:
    """The view a query string asks for; unknown keys are ignored, bad values get defaults."""
    query = query if isinstance(query, Mapping) else {}
    range_ = _first(query.get("range"))
    start = end = None
    if range_ == "custom":
        start, end = _parse_time(query.get("from")), _parse_time(query.get("to"))
        if not (start and end and start < end and end - start <= MAX_CUSTOM_SPAN):
            range_, start, end = DEFAULT_RANGE, None, None
    elif range_ not in RANGES:
        range_ = DEFAULT_RANGE
    refresh = _first(query.get("refresh"))
    if refresh not in REFRESH_MS:
        refresh = DEFAULT_REFRESH
    filters = {
        key: _valid(_first(query.get(key)), allowed)
        for key, allowed in PAGE_FILTERS.get(page, {}).items()
    }
    offset_text = _first(query.get("offset")) or "0"
    offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 7 else 0
    return ViewState(
        page=page if page in PAGE_FILTERS else "overview",
        range=range_,
        start=start,
        end=end,
        refresh=refresh,
        filters=Filters(**filters),
        offset=offset,
    )


def _filter_control(key: str, allowed, value: str | None) -> html.Label:
    control_id = {"type": "tr-filter", "key": key}
    if isinstance(allowed, tuple):
        control = dcc.Dropdown(
            id=control_id,
            options=[{"label": v.replace("_", " "), "value": v} for v in allowed],
            value=value,
            placeholder="all",
            clearable=True,
            className="tr-select",
        )
    else:
        control = dcc.Input(
            id=control_id,
            value=value or "",
            placeholder="all",
            debounce=True,
            maxLength=100,
            className="tr-input",
        )
    return html.Label([key.capitalize(), control], className="tr-field")


def controls(view: ViewState, step: timedelta | None = None) -> html.Div:
    """The picker bar: range, custom from/to, auto-refresh, the page's filters; plus the URL
    writer, the view store that panels read, and the refresh timer. `step`: the page's rollup
    step, for the "one point per" line."""
    window = view.window(step)
    start = view.start or window.start
    end = view.end or window.end
    fields = [
        html.Label(
            [
                "Range",
                dcc.Dropdown(
                    id="tr-range",
                    options=[{"label": label, "value": key} for key, label in RANGE_LABELS.items()],
                    value=view.range,
                    clearable=False,
                    className="tr-select",
                ),
            ],
            className="tr-field",
        ),
        html.Div(
            [
                html.Label(
                    [
                        "From (UTC)",
                        dcc.Input(
                            id="tr-from",
                            type="datetime-local",
                            value=start.strftime("%Y-%m-%dT%H:%M"),
                            debounce=True,
                        ),
                    ],
                    className="tr-field",
                ),
                html.Label(
                    [
                        "To (UTC)",
                        dcc.Input(
                            id="tr-to",
                            type="datetime-local",
                            value=end.strftime("%Y-%m-%dT%H:%M"),
                            debounce=True,
                        ),
                    ],
                    className="tr-field",
                ),
            ],
            className="tr-custom",
            style=None if view.range == "custom" else {"display": "none"},
        ),
        html.Label(
            [
                "Auto-refresh",
                dcc.Dropdown(
                    id="tr-refresh",
                    options=[{"label": key, "value": key} for key in REFRESH_MS],
                    value=view.refresh,
                    clearable=False,
                    className="tr-select",
                ),
            ],
            className="tr-field",
        ),
        *[
            _filter_control(key, allowed, getattr(view.filters, key))
            for key, allowed in PAGE_FILTERS[view.page].items()
            if key != "task"
        ],
    ]
    interval = REFRESH_MS[view.refresh]
    return html.Div(
        [
            dcc.Location(id="tr-location", refresh="callback-nav"),
            dcc.Store(id="tr-view", data={**view.query(), "page": view.page}),
            dcc.Interval(id="tr-interval", interval=interval or 60_000, disabled=interval is None),
            html.Div(fields, className="tr-bar"),
            html.Div(
                f"{window.start:%Y-%m-%d %H:%M} – {window.end:%Y-%m-%d %H:%M} UTC, "
                f"one point per {_describe(window.bucket)}",
                id="tr-summary",
                className="muted tr-summary",
            ),
        ],
        className="tr-controls",
    )


def _describe(bucket: timedelta) -> str:
    minutes = int(bucket.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 1440:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} d"


def view_from_store(data: Any) -> ViewState:
    """The view a panel callback was given (from the browser: validated again here)."""
    data = data if isinstance(data, Mapping) else {}
    page = data.get("page")
    page = page if isinstance(page, str) and page in PAGE_FILTERS else "overview"
    return parse_query(data, page)


@callback(
    Output("tr-location", "search"),
    Input("tr-range", "value"),
    Input("tr-from", "value"),
    Input("tr-to", "value"),
    Input("tr-refresh", "value"),
    Input({"type": "tr-filter", "key": ALL}, "value"),
    State({"type": "tr-filter", "key": ALL}, "id"),
    State("tr-view", "data"),
    prevent_initial_call=True,
)
def write_url(range_, start, end, refresh, values, ids, current):
    """A changed control becomes a new query string; the page re-renders from the URL."""
    page = view_from_store(current).page
    query: dict[str, Any] = {"range": range_, "from": start, "to": end, "refresh": refresh}
    for control_id, value in zip(ids or [], values or [], strict=False):
        if isinstance(control_id, dict):
            query[str(control_id.get("key"))] = value
    if range_ == "custom" and not (start and end):
        query["range"] = DEFAULT_RANGE
    return "?" + urlencode(parse_query(query, page).query())
