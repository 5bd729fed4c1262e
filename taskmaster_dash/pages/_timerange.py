"""The one view-state model behind every page's URL: each query key declared once (its name,
whether it takes one value or several, the values it allows, its default), read by
`parse_query`, written by `ViewState.query()`, and drawn as a control by `control()`.

Everything a view depends on lives in the URL query string (`?range=24h&refresh=1m&severity=
critical,high`), so a copied link opens the same view. Every value is checked against its key;
anything unknown or malformed falls back to the default and is said in `ViewState.problems`.
Controls write the URL through one server callback (`write_view`), which also hands the new
view to the charts and lists through the `tr-view` store, so the page is not rebuilt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dash import (
    ALL,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
)

from taskmaster_dash.data.analytics import UNASSIGNED, Filters, Window
from taskmaster_dash.data.analytics_tasks import AGE_BUCKETS
from taskmaster_dash.data.audit import ACTIONS as AUDIT_ACTIONS
from taskmaster_dash.data.errors.filters import OPEN_STATUSES, ErrorFilter
from taskmaster_dash.data.pool_health import RANGES as POOL_RANGES
from taskmaster_dash.data.vocabulary import (
    CATEGORIES,
    ENVIRONMENTS,
    RESOLUTION_STATUSES,
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
ANY = "any"  # every value of a multi-valued key
TIME_FORMAT = "%Y-%m-%d %H:%M"  # how From/To are shown and typed: UTC, 24-hour, ISO order
MAX_VALUES = 50
MAX_TEXT = 200

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+ -]{0,99}$")
_ASSIGNEE = re.compile(rf"{_NAME.pattern}|^{re.escape(UNASSIGNED)}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_NUMBER = re.compile(r"^[0-9]{1,2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Key:
    """One query key. `allowed`: the values (a tuple) or a pattern each value must match.
    `multi`: several values, written comma-separated. `charts`: False when only the page's
    list can use it (the charts' rollups do not keep that column). `field`: the Filters field."""

    name: str
    label: str
    allowed: tuple[str, ...] | re.Pattern
    multi: bool = True
    default: tuple[str, ...] = ()
    charts: bool = True
    field: str = ""
    text: bool = False  # free text (a search): not split at commas, not checked by a pattern

    @property
    def attr(self) -> str:
        return self.field or self.name

    def parse(self, raw: Any, problems: list[str]) -> tuple[str, ...]:
        if raw is None:
            return self.default
        if self.text:  # one free text, commas and all
            raw = raw[0] if isinstance(raw, list | tuple) and raw else raw
            text = raw.replace("\x00", "").strip()[:MAX_TEXT] if isinstance(raw, str) else ""
            return (text,) if text else self.default
        values = _values(raw) if self.multi else _values(raw)[:1]
        if self.multi and ANY in values and isinstance(self.allowed, tuple):
            return self.allowed
        kept = tuple(dict.fromkeys(v for v in values if self._ok(v)))[:MAX_VALUES]
        if len(kept) < len(set(values)):
            problems.append(f"Ignored an unknown {self.label.lower()}.")
        return kept or self.default

    def _ok(self, value: str) -> bool:
        if isinstance(self.allowed, tuple):
            return value in self.allowed
        return bool(self.allowed.match(value))

    def write(self, values: tuple[str, ...]) -> str | None:
        """The query-string value, or None when it is the default (left out of the URL)."""
        if tuple(values) == self.default:
            return None
        if not values or (isinstance(self.allowed, tuple) and set(values) == set(self.allowed)):
            return ANY  # every value, said outright (not the same as "not set" for a list)
        return ",".join(values)


def _values(raw: Any) -> list[str]:
    """Query values arrive as a string ("a,b"), a list of strings, or anything a client sends."""
    items = raw if isinstance(raw, list | tuple) else [raw]
    out: list[str] = []
    for item in items[:MAX_VALUES]:
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str) and len(item) <= 2000:
            out.extend(part.strip() for part in item.split(",") if part.strip())
    return out


# --- the keys, each declared once -----------------------------------------------------------

TASK_STATUS = Key("status", "Status", TASK_STATUSES)
TASK_TYPE = Key("type", "Type", _NAME)
ASSIGNEE = Key("assignee", "Assignee", _ASSIGNEE)
PRIORITY = Key("priority", "Priority", _NUMBER, charts=False)
COMPLEXITY = Key("complexity", "Complexity", _NUMBER, charts=False)
TAG = Key("tag", "Tag", _NAME, charts=False)
AGE = Key("age", "Age", AGE_BUCKETS, charts=False)
TASK = Key("task", "Task", _UUID, multi=False, charts=False)
VALIDATION_TYPE = Key("type", "Type", VALIDATION_TYPES)
VALIDATION_STATUS = Key("status", "Status", VALIDATION_STATUSES)
SEVERITY = Key("severity", "Severity", SEVERITIES)
CATEGORY = Key("category", "Category", CATEGORIES)
SERVICE = Key("service", "Service", _NAME)
CODE = Key("code", "Error code", _CODE)
ERROR_STATUS = Key("status", "Status", RESOLUTION_STATUSES, default=OPEN_STATUSES, charts=False)
ENVIRONMENT = Key("environment", "Environment", ENVIRONMENTS, charts=False)
SEARCH = Key("q", "Search code or message", (), multi=False, charts=False, text=True)
# Error groups (migration 080): "yes" lists only the regressed / escalating ones, "no" hides them.
FLAG_VALUES = ("yes", "no")
REGRESSED = Key("regressed", "Regressed", FLAG_VALUES, multi=False, charts=False)
ESCALATING = Key("escalating", "Escalating", FLAG_VALUES, multi=False, charts=False)

# Per page: the filters it accepts, in the order the controls show them.
PAGE_KEYS: dict[str, tuple[Key, ...]] = {
    "tasks": (TASK_STATUS, TASK_TYPE, ASSIGNEE, PRIORITY, COMPLEXITY, TAG, AGE, TASK),
    "validations": (VALIDATION_TYPE, VALIDATION_STATUS),
    "errors": (
        SEVERITY,
        CATEGORY,
        SERVICE,
        CODE,
        ERROR_STATUS,
        ENVIRONMENT,
        REGRESSED,
        ESCALATING,
        SEARCH,
    ),
    "overview": (),
}
# Pages whose URL holds only their own keys (no analytics time range): what their controls
# show is read with `key_values` and written with `search_for`.
POOL_RANGE = Key("range", "Range", tuple(POOL_RANGES), multi=False, default=("15m",))
ALERT_RANGE = Key("range", "Range", ("1h", "6h", "24h", "7d"), multi=False, default=("24h",))
AUDIT_USER = Key("user", "User", _NAME, multi=False)
AUDIT_TABLE = Key("table", "Table", re.compile(r"^[a-z_][a-z0-9_]{0,62}$"), multi=False)
AUDIT_OPERATION = Key("operation", "Operation", AUDIT_ACTIONS, multi=False)
AUDIT_FROM = Key("from", "From", re.compile(r"^\d{4}-\d{2}-\d{2}$"), multi=False)
AUDIT_TO = Key("to", "To", AUDIT_FROM.allowed, multi=False)
SIMPLE_PAGE_KEYS: dict[str, tuple[Key, ...]] = {
    "pools": (POOL_RANGE,),
    "alerts": (ALERT_RANGE,),
    "audit": (AUDIT_USER, AUDIT_TABLE, AUDIT_OPERATION, AUDIT_FROM, AUDIT_TO),
}


def key_values(query: Mapping[str, Any] | None, page: str) -> dict[str, str | None]:
    """The single values a simple page's URL asks for (None: not set); bad ones are dropped."""
    query = query if isinstance(query, Mapping) else {}
    values = {}
    for key in SIMPLE_PAGE_KEYS[page]:
        parsed = key.parse(query.get(key.name), [])
        values[key.name] = parsed[0] if parsed else None
    return values


def search_for(values: Mapping[str, Any], page: str) -> str:
    """The query string of a simple page's controls (checked like a URL, defaults left out)."""
    chosen = key_values(values, page)
    written = {}
    for key in SIMPLE_PAGE_KEYS[page]:
        value = chosen[key.name]
        text = key.write((value,) if value else ())
        if text is not None and value:
            written[key.name] = text
    return "?" + urlencode(written) if written else "?"


# Page -> the path its URL belongs to.
PAGE_PATHS = {
    "tasks": "/tasks",
    "validations": "/validations",
    "errors": "/errors",
    "overview": "/",
}


def page_keys(page: str) -> dict[str, Key]:
    return {key.name: key for key in PAGE_KEYS.get(page, ())}


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= 255 else None


def parse_time(value: Any) -> datetime | None:
    """A UTC moment from ISO text ("2026-11-30 09:00", "2026-11-30T09:00:00Z", a date), else
    None. A time without a zone is UTC."""
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


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ViewState:
    page: str = "overview"
    range: str = DEFAULT_RANGE
    start: datetime | None = None  # custom range only
    end: datetime | None = None
    refresh: str = DEFAULT_REFRESH
    filters: Filters = field(default_factory=Filters)
    offset: int = 0  # list paging
    problems: tuple[str, ...] = field(default=(), compare=False)

    def window(self, step: timedelta | None = None, now: datetime | None = None) -> Window:
        """The time axis; `step` is the chart's rollup step (see bucket_for)."""
        if self.range == "custom" and self.start and self.end:
            return Window.between(self.start, self.end, step)
        return Window.last(RANGES[self.range], now, step)

    def values(self, key: Key) -> tuple[str, ...]:
        value = getattr(self.filters, key.attr)
        if value is None:
            return ()
        return value if isinstance(value, tuple) else (value,)

    def query(self) -> dict[str, str]:
        """The query-string values of this view (the same ones parse_query reads back)."""
        values: dict[str, str] = {"range": self.range}
        if self.range == "custom" and self.start and self.end:
            values["from"] = _stamp(self.start)
            values["to"] = _stamp(self.end)
        values["refresh"] = self.refresh
        for key in PAGE_KEYS[self.page]:
            written = key.write(self.values(key))
            if written is not None:
                values[key.name] = written
        if self.offset:
            values["offset"] = str(self.offset)
        return values

    def search(self) -> str:
        return "?" + urlencode(self.query())

    def href(self, path: str | None = None) -> str:
        return f"{path or PAGE_PATHS[self.page]}{self.search()}"

    def with_changes(self, **changes: Any) -> ViewState:
        """A copy with some keys changed: range/start/end/refresh/offset, or filters by key
        name (a string or a tuple of strings)."""
        keys = page_keys(self.page)
        filters: dict[str, Any] = {}  # Filters field -> value; the field is named at run time
        for name in [n for n in changes if n in keys]:
            key, value = keys[name], changes.pop(name)
            values = (value,) if isinstance(value, str) else tuple(value or ())
            filters[key.attr] = values if key.multi else (values[0] if values else None)
        return replace(self, filters=replace(self.filters, **filters), **changes)

    def error_filter(self, now: datetime | None = None) -> ErrorFilter:
        """The triage list's filter: the page's window and every error key."""
        window = self.window(now=now)
        f = self.filters
        return ErrorFilter(
            statuses=f.status if set(f.status) != set(RESOLUTION_STATUSES) else (),
            severities=f.severity,
            categories=f.category,
            services=f.service,
            environments=f.environment,
            codes=f.code,
            since=window.start,
            until=window.end,
            search=f.q or "",
            regressed=_flag(f.regressed),
            escalating=_flag(f.escalating),
        )


def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "yes"


def parse_query(query: Mapping[str, Any] | None, page: str) -> ViewState:
    """The view a query string asks for; unknown keys are ignored, bad values get defaults and
    a sentence in `problems`."""
    query = query if isinstance(query, Mapping) else {}
    page = page if page in PAGE_KEYS else "overview"
    problems: list[str] = []
    range_ = _first(query.get("range"))
    start, end = parse_time(query.get("from")), parse_time(query.get("to"))
    if range_ is None and start and end:
        range_ = "custom"  # from/to alone mean a custom range
    if range_ == "custom":
        if not (start and end and start < end and end - start <= MAX_CUSTOM_SPAN):
            problems.append(
                "Ignored the custom range: From and To must be UTC times like "
                f"{datetime(2026, 11, 30, 9, tzinfo=UTC):{TIME_FORMAT}}, From before To, "
                "at most 400 days apart."
            )
            range_ = DEFAULT_RANGE
    elif range_ is not None and range_ not in RANGES:
        problems.append("Ignored an unknown time range.")
        range_ = DEFAULT_RANGE
    if range_ != "custom":
        start = end = None
    refresh = _first(query.get("refresh"))
    if refresh not in REFRESH_MS:
        refresh = DEFAULT_REFRESH
    filters: dict[str, Any] = {}
    for key in PAGE_KEYS[page]:
        values = key.parse(query.get(key.name), problems)
        filters[key.attr] = values if key.multi else (values[0] if values else None)
    offset_text = _first(query.get("offset")) or "0"
    offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 7 else 0
    return ViewState(
        page=page,
        range=range_ or DEFAULT_RANGE,
        start=start,
        end=end,
        refresh=refresh,
        filters=Filters(**filters),
        offset=offset,
        problems=tuple(problems),
    )


def view_from_store(data: Any) -> ViewState:
    """The view a callback was given (from the browser: validated again here)."""
    data = data if isinstance(data, Mapping) else {}
    page = data.get("page")
    return parse_query(data, page if isinstance(page, str) else "overview")


# --- controls -------------------------------------------------------------------------------


def _control_id(name: str) -> dict[str, str]:
    return {"type": "tr-key", "key": name}


def _options(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": v.replace("_", " "), "value": v} for v in values]


def control(
    key: Key, view: ViewState, choices: Sequence[str] | None = None, mark_list_only: bool = False
) -> html.Label:
    """The control of one key, showing the view's value. `choices`: values to offer for a
    key checked by a pattern (e.g. the service names); else it is a text field.
    `mark_list_only`: say "(list)" when only the page's list uses the key."""
    values = view.values(key)
    offered = list(key.allowed) if isinstance(key.allowed, tuple) and not key.text else choices
    if offered is not None:
        offered = [*offered, *(v for v in values if v not in offered)]
        widget: Any = dcc.Dropdown(
            id=_control_id(key.name),
            options=_options(offered),
            value=list(values) if key.multi else (values[0] if values else None),
            multi=key.multi,
            placeholder="any",
            className="tr-select",
        )
    else:
        widget = dcc.Input(
            id=_control_id(key.name),
            value=", ".join(values) if key.multi else (values[0] if values else ""),
            placeholder="any" + (" (a, b)" if key.multi else ""),
            debounce=True,
            maxLength=MAX_TEXT,
            type="search" if key.text else "text",
            className="tr-input",
        )
    label = f"{key.label} (list)" if mark_list_only and not key.charts else key.label
    return html.Label([label, widget], className="tr-field")


def _time_input(name: str, label: str, moment: datetime) -> html.Label:
    return html.Label(
        [
            label,
            dcc.Input(
                id=_control_id(name),
                value=f"{moment:{TIME_FORMAT}}",
                placeholder="2026-11-30 09:00",
                debounce=True,
                maxLength=25,
                className="tr-input tr-time",
            ),
        ],
        className="tr-field",
    )


def shown_in_bar(page: str) -> list[Key]:
    """The keys the picker bar shows: on /errors the list's own keys sit on the list instead;
    a single task (`task`, from a link) has no control."""
    return [k for k in PAGE_KEYS[page] if k is not TASK and (k.charts or page != "errors")]


def summary(view: ViewState, step: timedelta | None, now: datetime | None = None) -> str:
    window = view.window(step, now)
    return (
        f"{window.start:{TIME_FORMAT}} – {window.end:{TIME_FORMAT}} UTC, "
        f"one point per {describe(window.bucket)}"
    )


def problems_line(view: ViewState) -> html.Div | None:
    return html.Div(" ".join(view.problems), className="muted") if view.problems else None


def controls(
    view: ViewState,
    step: timedelta | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
    keys: Sequence[Key] | None = None,
) -> html.Div:
    """The picker bar: range, custom from/to, auto-refresh and `keys` (default: the page's keys
    that the charts use too); plus the view store that panels read, the refresh timer and the
    "window" line. `step`: the page's rollup step, for the "one point per" line."""
    window = view.window(step)
    chosen = keys if keys is not None else shown_in_bar(view.page)
    fields = [
        html.Label(
            [
                "Range",
                dcc.Dropdown(
                    id=_control_id("range"),
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
                _time_input("from", "From (UTC)", view.start or window.start),
                _time_input("to", "To (UTC)", view.end or window.end),
            ],
            id="tr-custom",
            className="tr-custom",
            style=None if view.range == "custom" else {"display": "none"},
        ),
        html.Label(
            [
                "Auto-refresh",
                dcc.Dropdown(
                    id=_control_id("refresh"),
                    options=[{"label": key, "value": key} for key in REFRESH_MS],
                    value=view.refresh,
                    clearable=False,
                    className="tr-select",
                ),
            ],
            className="tr-field",
        ),
        *[control(key, view, (choices or {}).get(key.name), True) for key in chosen],
    ]
    interval = REFRESH_MS[view.refresh]
    return html.Div(
        [
            dcc.Store(id="tr-view", data={**view.query(), "page": view.page}),
            dcc.Location(id="tr-location", refresh="callback-nav"),
            dcc.Store(id="tr-url"),
            dcc.Store(id=URL_WRITTEN),
            dcc.Store(id="tr-step", data=step.total_seconds() if step else None),
            dcc.Store(id="tr-loaded", data=True),
            dcc.Interval(id="tr-interval", interval=interval or 60_000, disabled=interval is None),
            html.Div(fields, className="tr-bar"),
            html.Div(problems_line(view), id="tr-problems"),
            html.Div(summary(view, step), id="tr-summary", className="muted tr-summary"),
        ],
        className="tr-controls",
    )


def describe(bucket: timedelta) -> str:
    minutes = int(bucket.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 1440:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} d"


def view_from_controls(ids: Any, values: Any, page: str) -> ViewState:
    """The view the page's controls show (values from the browser: checked like a URL)."""
    query: dict[str, Any] = {}
    for control_id, value in zip(ids or [], values or [], strict=False):
        if isinstance(control_id, dict) and isinstance(control_id.get("key"), str):
            if isinstance(value, list) and not value:
                value = ANY  # a cleared multi-select means every value
            query[control_id["key"]] = value
    keys = page_keys(page)
    for name, key in keys.items():
        if query.get(name) == ANY and not key.default:
            query.pop(name)
    if query.get("range") != "custom":
        query.pop("from", None)
        query.pop("to", None)
    return parse_query(query, page)


@callback(
    Output("tr-view", "data"),
    Output("tr-url", "data"),
    Output("tr-custom", "style"),
    Output("tr-problems", "children"),
    Input({"type": "tr-key", "key": ALL}, "value"),
    State({"type": "tr-key", "key": ALL}, "id"),
    State("tr-view", "data"),
    prevent_initial_call=True,
)
def write_view(values, ids, current):
    """A changed control becomes the new view: the panels and lists redraw from it, and the
    URL (written by the model, never by hand) follows it without rebuilding the page."""
    page = view_from_store(current).page
    view = view_from_controls(ids, values, page)
    custom = None if view.range == "custom" else {"display": "none"}
    return {**view.query(), "page": view.page}, view.search(), custom, problems_line(view)


def write_url_from(store_id: str) -> str:
    """The server writes a query string into `store_id`; the browser only puts it in the
    address bar (replaceState: no history entry, and Dash's router does not rebuild the page).
    Call once at import; put dcc.Store(store_id) and dcc.Store(<returned id>) in the layout."""
    done = f"{store_id}-written"
    clientside_callback(
        ClientsideFunction("view", "writeUrl"),  # assets/clientside.js
        Output(done, "data"),
        Input(store_id, "data"),
        prevent_initial_call=True,
    )
    return done


URL_WRITTEN = write_url_from("tr-url")

# A chart's click opens its list with "#<list id>" in the URL: once the page is drawn, scroll
# there (the list usually sits far below the charts).
clientside_callback(
    ClientsideFunction("view", "scrollToHash"),  # assets/clientside.js
    Output("tr-loaded", "data"),
    Input("tr-loaded", "data"),
)

STEPS = {300.0: timedelta(minutes=5), 3600.0: timedelta(hours=1)}  # the rollups' steps


@callback(
    Output("tr-summary", "children"),
    Input("tr-view", "data"),
    Input("tr-interval", "n_intervals"),
    State("tr-step", "data"),
    prevent_initial_call=True,
)
def refresh_summary(view_data, _ticks, step_seconds):
    """The "window" line follows the view and moves with every auto-refresh, like the data."""
    step = STEPS.get(step_seconds) if isinstance(step_seconds, int | float) else None
    return summary(view_from_store(view_data), step)
