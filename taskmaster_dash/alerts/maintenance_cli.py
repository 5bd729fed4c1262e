"""`taskmaster-dash alerts maintenance list | add | delete` (wired into cli.py and alerts/cli.py).
The commands act as the built-in system user, as the other administrative commands do."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# Only light imports here: cli.py builds its parser from this module (--help answers at once).


def add_parser(alert_commands: Any) -> None:
    """The `maintenance` subcommand under `alerts`."""
    maintenance = alert_commands.add_parser(
        "maintenance", help="maintenance windows: list, add, delete"
    )
    commands = maintenance.add_subparsers(
        dest="maintenance_command", required=True, parser_class=type(maintenance)
    )
    commands.add_parser("list", help="every window: id, name, when, what it mutes, status")
    add = commands.add_parser(
        "add",
        help="add a one-off (--start, --end) or weekly (--days, --from, --to) window",
        description="Times are wall-clock times in --tz. A weekly window whose --to is at or "
        "before its --from ends the next day (Sat 22:00-02:00).",
    )
    add.add_argument("--name", required=True)
    # each option's dest is the validate_window keyword it fills (FORM_FIELDS)
    add.add_argument(
        "--tz", dest="time_zone", metavar="TZ", default="UTC", help="IANA time zone (default UTC)"
    )
    add.add_argument("--start", dest="starts_at", metavar="START", help="one-off: YYYY-MM-DD HH:MM")
    add.add_argument("--end", dest="ends_at", metavar="END", help="one-off: YYYY-MM-DD HH:MM")
    add.add_argument("--days", help="weekly: e.g. sat,sun")
    add.add_argument("--from", dest="start_time", help="weekly: HH:MM")
    add.add_argument("--to", dest="end_time", help="weekly: HH:MM")
    add.add_argument(
        "--match",
        dest="matchers",
        metavar="MATCH",
        action="append",
        default=[],
        help="label matcher (name=value, name!=value, name=~regex, name!~regex); repeatable; "
        "none: all rules",
    )
    add.add_argument("--note", default="")
    delete = commands.add_parser("delete", help="delete a window (its silences are expired)")
    delete.add_argument("id")


def _sync() -> str:
    from taskmaster_dash.alerts.maintenance_sync import sync_windows
    from taskmaster_dash.services import current

    client = current().alertmanager
    if client is None:
        return ""
    result = sync_windows(client)
    if result.problems:
        return f" Alertmanager not updated yet: {result.problem()}"
    return f" Alertmanager: {result.created} silences made, {result.expired} expired."


def run(args: argparse.Namespace, open_database: Callable) -> None:
    from taskmaster_dash.alerts.maintenance import FORM_FIELDS, next_occurrence, validate_window
    from taskmaster_dash.data import maintenance as store
    from taskmaster_dash.data.config import load_settings
    from taskmaster_dash.data.db import SYSTEM_ACTOR
    from taskmaster_dash.services import Services, install

    settings = load_settings()
    opened = open_database(settings)
    install(Services.build(settings, opened.database))
    try:
        now = datetime.now(UTC)
        if args.maintenance_command == "list":
            windows = store.list_windows()
            for w in windows:
                found = next_occurrence(w, now)
                status = (
                    "over"
                    if found is None
                    else f"open until {found[1]:%Y-%m-%d %H:%M} UTC"
                    if found[0] <= now
                    else f"next {found[0]:%Y-%m-%d %H:%M} UTC"
                )
                print(f"{w.id}  {w.name}  {w.describe()}  mutes {w.scope()}  ({status})")
            if not windows:
                print("No maintenance windows.")
        elif args.maintenance_command == "add":
            window = validate_window(
                **{field: getattr(args, field) for field in FORM_FIELDS},
                kind="once" if args.days is None else "weekly",
                now=now,
            )
            made = store.create_window(SYSTEM_ACTOR, window)
            print(f"Added {made.id}: {made.describe()}, mutes {made.scope()}.{_sync()}")
        else:
            gone = store.delete_window(SYSTEM_ACTOR, args.id)
            print(f"Deleted {gone.name!r}.{_sync()}")
    finally:
        opened.close()
