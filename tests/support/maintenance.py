"""Maintenance windows saved as the /alerts form saves them: its texts, checked, then stored."""

from __future__ import annotations

from datetime import datetime

from taskmaster_dash.alerts.maintenance import Window, validate_window
from taskmaster_dash.data import maintenance as store
from taskmaster_dash.data.db import Actor

FORM_MINUTE = "%Y-%m-%d %H:%M"  # how the form takes a one-off window's start and end


def save_one_off_window(
    actor: Actor,
    name: str,
    starts: datetime,
    ends: datetime,
    now: datetime,
    matchers: str | None = None,
) -> Window:
    """A one-off window in UTC from `starts` to `ends` (to the minute, as typed in the form),
    checked at `now` and stored as `actor`."""
    return store.create_window(
        actor,
        validate_window(
            name=name,
            kind="once",
            time_zone="UTC",
            starts_at=starts.strftime(FORM_MINUTE),
            ends_at=ends.strftime(FORM_MINUTE),
            matchers=matchers,
            now=now,
        ),
    )
