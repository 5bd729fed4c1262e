"""Maintenance windows (pure): when a window is open, its occurrences in a range, which window
mutes an alert instance, and checking what a user typed for a new window.

A window is either one-off (starts_at .. ends_at) or weekly: on each of `days` (0 = Monday) from
`start_time` to `end_time`, wall-clock time in the IANA zone `time_zone`, so 09:00 stays 09:00
across daylight-saving changes. An end at or before the start ends the next day (Sat 22:00-02:00
runs into Sunday; 00:00-00:00 is the whole day). A local time the clocks skip (02:30 on the
night they jump from 02:00 to 03:00) is the moment they jump; a local time that happens twice
(the night they go back) is its first occurrence.

`matchers` work like Alertmanager's (= != =~ !~, regexes anchored, a missing label is ""); no
matchers mutes every rule.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from taskmaster_dash.data.refusal import Refused

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
OPERATORS = ("=", "!=", "=~", "!~")
# name, operator (the first one after the name: longest first), value
_MATCHER = re.compile(r"\s*([^=!~\s]+)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME = 100
MAX_NOTE = 2000
MAX_MATCHERS = 20
MAX_VALUE = 200
MAX_ONE_OFF = timedelta(days=366)
# Lookarounds and back-references are Python's, not RE2's: Alertmanager would refuse them.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")


class WindowError(Refused, ValueError):
    """What is wrong with a window someone asked for; nothing was saved."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op in ("=~", "!~"):
            try:
                hit = re.fullmatch(self.value, got) is not None
            except re.error:
                hit = False
        else:
            hit = got == self.value
        return hit if self.op in ("=", "=~") else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Window:
    """A maintenance window as stored (id, who) or as checked before saving (id "")."""

    name: str
    kind: str  # "once" | "weekly"
    time_zone: str = "UTC"
    starts_at: datetime | None = None  # once
    ends_at: datetime | None = None
    days: tuple[int, ...] = ()  # weekly
    start_time: time | None = None
    end_time: time | None = None
    matchers: tuple[Matcher, ...] = ()
    note: str = ""
    id: str = ""
    username: str = ""
    created_at: datetime | None = None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def mutes(self, labels: Mapping[str, str]) -> bool:
        """Whether the window covers an alert with these labels (at any time)."""
        return all(m.matches(labels) for m in self.matchers)

    def describe(self) -> str:
        """When it is open, as /alerts and the CLI show it."""
        if self.kind == "once":
            assert self.starts_at is not None and self.ends_at is not None
            shape = "%Y-%m-%d %H:%M"
            start = self.starts_at.astimezone(self.zone).strftime(shape)
            end = self.ends_at.astimezone(self.zone).strftime(shape)
            return f"{start} → {end} {self.time_zone}"
        assert self.start_time is not None and self.end_time is not None
        days = ", ".join(DAY_NAMES[d] for d in self.days)
        wraps = " (next day)" if self.end_time <= self.start_time else ""
        return f"every {days} {self.start_time:%H:%M}–{self.end_time:%H:%M}{wraps} {self.time_zone}"

    def scope(self) -> str:
        return ", ".join(map(str, self.matchers)) if self.matchers else "all rules"


Occurrence = tuple[datetime, datetime]  # [start, end) in UTC


def _local(day: date, at: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """The instant (UTC) the wall clock in `zone` shows `at` on `day`; a time the clocks skip
    is the moment they jump (02:30 on a 02:00 -> 03:00 night opens at 03:00)."""
    wall = datetime.combine(day, at)
    later = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if later.astimezone(zone).replace(tzinfo=None) == wall:
        return later  # it exists (a time shown twice: its first occurrence)
    # In the gap: `earlier` (read with the offset after the jump) is before it, `later` after;
    # the wall clock rises across the jump, so bisect for the first instant showing >= wall.
    earlier = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while later - earlier > timedelta(seconds=1):
        middle = earlier + (later - earlier) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            later = middle
        else:
            earlier = middle
    return later.replace(microsecond=0) + timedelta(seconds=1 if later.microsecond else 0)


def occurrences(window: Window, since: datetime, until: datetime) -> list[Occurrence]:
    """The window's occurrences that overlap [since, until), in order (UTC)."""
    if window.kind == "once":
        assert window.starts_at is not None and window.ends_at is not None
        if window.starts_at < until and window.ends_at > since:
            return [(window.starts_at.astimezone(UTC), window.ends_at.astimezone(UTC))]
        return []
    assert window.start_time is not None and window.end_time is not None
    zone = window.zone
    wraps = window.end_time <= window.start_time
    # The day before `since` too: its occurrence may run past midnight into the range.
    day = since.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date()
    found = []
    while day <= last:
        if day.weekday() in window.days:
            start = _local(day, window.start_time, zone)
            end = _local(day + timedelta(days=1) if wraps else day, window.end_time, zone)
            if start < until and end > since and end > start:
                found.append((start, end))
        day += timedelta(days=1)
    return found


def open_occurrence(window: Window, now: datetime) -> Occurrence | None:
    """The occurrence open at `now` (start <= now < end), if any."""
    return next((o for o in occurrences(window, now, now + timedelta(microseconds=1))), None)


def is_active(window: Window, now: datetime) -> bool:
    return open_occurrence(window, now) is not None


def next_occurrence(window: Window, now: datetime) -> Occurrence | None:
    """The open occurrence, else the next one to start (within 8 days for a weekly window:
    one always starts by then); None when a one-off window is over."""
    until = window.ends_at if window.kind == "once" and window.ends_at else now
    found = occurrences(window, now, max(until, now) + timedelta(days=8))
    return found[0] if found else None


def muting_window(
    windows: Iterable[Window], labels: Mapping[str, str], now: datetime
) -> Window | None:
    """The first window open at `now` that covers an alert with these labels."""
    return next((w for w in windows if w.mutes(labels) and is_active(w, now)), None)


# ------------------------------------------------------------------------------ validation


@functools.cache
def known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_time_zone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WindowError("Time zone: choose one (an IANA name such as Europe/Berlin or UTC).")
    name = value.strip()
    if len(name) > 64 or name not in known_time_zones():
        raise WindowError(f"Time zone: {name[:64]!r} is not a known IANA time zone.")
    return name


def _text(value: Any, what: str, limit: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise WindowError(f"{what}: expected text.")
    value = value.strip()
    if required and not value:
        raise WindowError(f"{what}: required.")
    if len(value) > limit:
        raise WindowError(f"{what}: at most {limit} characters (got {len(value)}).")
    return value


def parse_clock(value: Any, what: str) -> time:
    """HH:MM (24-hour)."""
    text = _text(value, what, 5, required=True)
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if not match:
        raise WindowError(f"{what}: expected a time of day as HH:MM (00:00 to 23:59).")
    return time(int(match[1]), int(match[2]))


def parse_local_moment(value: Any, what: str, zone: zoneinfo.ZoneInfo) -> datetime:
    """'YYYY-MM-DD HH:MM' (or with a T) read in `zone`; aware, in UTC."""
    text = _text(value, what, 25, required=True)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{what}: expected a date and time as YYYY-MM-DD HH:MM.") from None
    if moment.tzinfo is not None:
        raise WindowError(f"{what}: leave out the offset; the time zone field says which zone.")
    return moment.replace(tzinfo=zone).astimezone(UTC)


def parse_days(value: Any) -> tuple[int, ...]:
    """Day names (Mon..Sun, any case, or 0..6) from a list or a comma-separated text."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise WindowError("Days: choose at least one day of the week.")
    if len(value) > 7 * 3:
        raise WindowError("Days: at most the seven days of the week.")
    names = {n.lower(): i for i, n in enumerate(DAY_NAMES)}
    days = set()
    for item in value:
        key = item.strip().lower()[:3] if isinstance(item, str) else item
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
            days.add(key)
        elif isinstance(key, str) and key in names:
            days.add(names[key])
        else:
            raise WindowError(f"Days: {str(item)[:20]!r} is not a day (Mon, Tue, ... Sun).")
    return tuple(sorted(days))


def parse_matcher(text: str) -> Matcher:
    """One matcher: name=value, name!=value, name=~regex or name!~regex (value may be quoted)."""
    match = _MATCHER.fullmatch(text)
    if not match:
        raise WindowError(
            f"Labels: {text[:60]!r} is not a matcher (name=value, name!=value, name=~regex)."
        )
    name, op, value = match[1], match[2], match[3]
    name, value = name.strip(), value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if not LABEL_NAME.fullmatch(name) or len(name) > 100:
        raise WindowError(
            f"Labels: {name[:60]!r} is not a label name (letters, digits and _, not first digit)."
        )
    if len(value) > MAX_VALUE:
        raise WindowError(f"Labels: the value of {name} is longer than {MAX_VALUE} characters.")
    if op in ("=~", "!~"):
        if _NOT_RE2.search(value):
            raise WindowError(
                f"Labels: {name}{op}: lookarounds and back-references are not supported."
            )
        try:
            re.compile(value)
        except re.error as exc:
            raise WindowError(
                f"Labels: {name}{op}{value[:60]!r} is not a valid regex: {exc}."
            ) from None
    return Matcher(name, op, value)


def parse_matchers(value: Any) -> tuple[Matcher, ...]:
    """Matchers one per line (or a list of such texts); blank lines are ignored."""
    if value is None:
        return ()
    if isinstance(value, str):
        if len(value) > MAX_MATCHERS * (MAX_VALUE + 110):
            raise WindowError("Labels: too long.")
        value = value.splitlines()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise WindowError("Labels: expected text, one matcher per line.")
    lines = [v.strip() for v in value if v.strip()]
    if len(lines) > MAX_MATCHERS:
        raise WindowError(f"Labels: at most {MAX_MATCHERS} matchers (got {len(lines)}).")
    return tuple(parse_matcher(line) for line in lines)


# What a user writes for a window besides its kind: validate_window's keywords, which the CLI's
# `alerts maintenance add` options are named for.
FORM_FIELDS = (
    "name",
    "time_zone",
    "starts_at",
    "ends_at",
    "days",
    "start_time",
    "end_time",
    "matchers",
    "note",
)


def validate_window(
    *,
    name: Any,
    kind: Any,
    time_zone: Any,
    starts_at: Any = None,
    ends_at: Any = None,
    days: Any = None,
    start_time: Any = None,
    end_time: Any = None,
    matchers: Any = None,
    note: Any = None,
    now: datetime,
) -> Window:
    """A window from what a user sent (form texts, lists); WindowError says what is wrong."""
    title = _text(name, "Name", MAX_NAME, required=True)
    if kind not in ("once", "weekly"):
        raise WindowError("Kind: choose one-off or weekly.")
    zone_name = parse_time_zone(time_zone)
    zone = zoneinfo.ZoneInfo(zone_name)
    common: dict[str, Any] = {
        "name": title,
        "kind": kind,
        "time_zone": zone_name,
        "matchers": parse_matchers(matchers),
        "note": _text(note, "Note", MAX_NOTE, required=False),
    }
    if kind == "once":
        start = parse_local_moment(starts_at, "Start", zone)
        end = parse_local_moment(ends_at, "End", zone)
        if end <= start:
            raise WindowError("End: must be after the start.")
        if end <= now:
            raise WindowError("End: this window would already be over.")
        if end - start > MAX_ONE_OFF:
            raise WindowError("End: a one-off window lasts at most 366 days.")
        return Window(**common, starts_at=start, ends_at=end)
    return Window(
        **common,
        days=parse_days(days),
        start_time=parse_clock(start_time, "From"),
        end_time=parse_clock(end_time, "To"),
    )


def window_from_row(row: Mapping[str, Any]) -> Window:
    """A stored window (data/maintenance.py's row) as a Window."""
    matchers: Sequence[Mapping[str, str]] = row.get("matchers") or []
    return Window(
        id=str(row["id"]),
        name=row["name"],
        kind=row["kind"],
        time_zone=row["time_zone"],
        starts_at=row.get("starts_at"),
        ends_at=row.get("ends_at"),
        days=tuple(row.get("days") or ()),
        start_time=row.get("start_time"),
        end_time=row.get("end_time"),
        matchers=tuple(Matcher(m["name"], m["op"], m["value"]) for m in matchers),
        note=row.get("note") or "",
        username=row.get("username") or "",
        created_at=row.get("created_at"),
    )
