"""The triage actions (investigate, resolve, ignore, reopen) as a small state machine, applied
to one or many errors in one transaction, with a check that nobody changed a row since the
user saw it. Notes are checked for presence and length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.data.db import Actor, PoolName, get_database
from taskmaster_dash.data.errors.filters import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    fmt_time,
    parse_timestamp,
    parse_uuid,
)
from taskmaster_dash.data.refusal import Refused

MAX_NOTE = 5000
MAX_BULK = 500


class TriageRefused(Refused):
    """A request that cannot be carried out as asked; the message is meant for the user.
    Nothing was written."""


@dataclass(frozen=True)
class Action:
    label: str  # past tense, for messages
    allowed_from: tuple[str, ...]
    note_required: bool


ACTIONS = {
    "resolve": Action("resolved", OPEN_STATUSES, True),
    "ignore": Action("ignored", OPEN_STATUSES, True),
    "reopen": Action("reopened", CLOSED_STATUSES, False),
    # Someone is on it: the list and the Overview still count it as open.
    "investigate": Action("marked investigating", ("unresolved",), False),
}


@dataclass(frozen=True)
class Seen:
    """An error as the user saw it: its id and updated_at."""

    error_id: str
    updated_at: datetime


def parse_seen(error_id: Any, updated_at: Any) -> Seen:
    canonical = parse_uuid(error_id)
    seen_at = parse_timestamp(updated_at)
    if canonical is None:
        raise TriageRefused("That is not an error id; nothing was saved.")
    if seen_at is None:
        raise TriageRefused("The page did not say which version of the error you saw; reload it.")
    return Seen(canonical, seen_at)


def check_note(action: str, note: Any) -> str | None:
    """The note to store (None when empty and allowed); TriageRefused when it is not usable."""
    if action not in ACTIONS:
        raise TriageRefused("Unknown action; nothing was saved.")
    if note is not None and not isinstance(note, str):
        raise TriageRefused("The note must be text; nothing was saved.")
    cleaned = (note or "").replace("\x00", "").strip()
    if len(cleaned) > MAX_NOTE:
        raise TriageRefused(
            f"The note is {len(cleaned):,} characters; at most {MAX_NOTE:,} are allowed. "
            "Nothing was saved."
        )
    if not cleaned and ACTIONS[action].note_required:
        raise TriageRefused(f"A note is required to mark errors {ACTIONS[action].label}.")
    return cleaned or None


def _who_changed(conn: Connection, error_id: str, since: datetime) -> str:
    row = (
        conn.execute(
            text(
                """SELECT username, "timestamp", new_values->>'resolution_status' AS status
                   FROM audit_logs
                   WHERE entity_type = 'error_logs' AND entity_id = :id
                   ORDER BY "timestamp" DESC LIMIT 1"""
            ),
            {"id": error_id},
        )
        .mappings()
        .first()
    )
    if row is None or row["timestamp"] < since - timedelta(seconds=1):
        return "someone (outside this app)"
    when = fmt_time(row["timestamp"])
    return f"{row['username'] or 'someone'} (at {when} UTC, now {row['status']})"


def _apply(
    conn: Connection,
    actor: Actor,
    seen: Sequence[Seen],
    action: str,
    note: str | None,
    duplicate_of: str | None,
) -> list[str]:
    """Lock the rows, check each is as seen and may take the action, then change them all.
    Raises TriageRefused (and the caller's transaction rolls back) if any one cannot."""
    ids = [s.error_id for s in seen]
    current = {
        row["id"]: row
        for row in conn.execute(
            text(
                """SELECT id::text AS id, updated_at, resolution_status FROM error_logs
                   WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE"""
            ),
            {"ids": ids},
        ).mappings()
    }
    problems = []
    for item in seen:
        row = current.get(item.error_id)
        short = item.error_id[:8]
        if row is None:
            problems.append(f"error {short} does not exist (or is not visible to you)")
        elif row["updated_at"] != item.updated_at:
            problems.append(
                f"error {short} was changed by {_who_changed(conn, item.error_id, item.updated_at)}"
                " after you loaded it; reload to see the change"
            )
        elif row["resolution_status"] not in ACTIONS[action].allowed_from:
            problems.append(
                f"error {short} is {row['resolution_status']} and cannot be {ACTIONS[action].label}"
            )
    if problems:
        raise TriageRefused("Nothing was saved: " + "; ".join(problems) + ".")
    if action == "reopen":
        status = "unresolved"
    elif action == "investigate":
        status = "investigating"
    elif action == "ignore" and duplicate_of:
        status = "duplicate"
    else:
        status = "resolved" if action == "resolve" else "wont_fix"
    closing = status in CLOSED_STATUSES
    changed = conn.execute(
        text(
            """UPDATE error_logs
               SET resolution_status = :status,
                   resolution_notes = :note,
                   resolved_at = CASE WHEN :closing THEN now() END,
                   resolved_by = CASE WHEN :closing THEN CAST(:username AS text) END,
                   metadata = CASE
                       WHEN CAST(:duplicate_of AS text) IS NOT NULL
                       THEN COALESCE(metadata, '{}'::jsonb)
                            || jsonb_build_object('duplicate_of', CAST(:duplicate_of AS text))
                       ELSE COALESCE(metadata, '{}'::jsonb) - 'duplicate_of' END
               WHERE id = ANY(CAST(:ids AS uuid[]))
               RETURNING id::text"""
        ),
        {
            "status": status,
            "note": note,
            "closing": closing,
            "username": actor.username,
            "duplicate_of": duplicate_of,
            "ids": ids,
        },
    ).scalars()
    done = list(changed)
    if len(done) != len(ids):  # RLS hid some rows from the update: write nothing
        raise TriageRefused("Nothing was saved: you may not change some of these errors.")
    return done


def change_errors(
    actor: Actor,
    seen: Sequence[Seen],
    action: str,
    note: Any,
    duplicate_of: Any = None,
) -> list[str]:
    """Apply `action` to every error in `seen` in ONE transaction: all of them or none.
    Returns the changed ids; raises TriageRefused (nothing written) or a database error."""
    cleaned = check_note(action, note)
    if not seen:
        raise TriageRefused("Select at least one error first.")
    if len(seen) > MAX_BULK:
        raise TriageRefused(f"At most {MAX_BULK} errors at once; nothing was saved.")
    if len({s.error_id for s in seen}) != len(seen):
        raise TriageRefused("The same error was selected twice; nothing was saved.")
    target = None
    if duplicate_of not in (None, ""):
        if action != "ignore":
            raise TriageRefused("Only an ignored error can be a duplicate; nothing was saved.")
        target = parse_uuid(duplicate_of)
        if target is None:
            raise TriageRefused("'Duplicate of' must be an error id; nothing was saved.")
        if any(s.error_id == target for s in seen):
            raise TriageRefused("An error cannot be a duplicate of itself; nothing was saved.")
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        if target and not conn.scalar(
            text("SELECT EXISTS (SELECT 1 FROM error_logs WHERE id = :id)"), {"id": target}
        ):
            raise TriageRefused(f"There is no error {target}; nothing was saved.")
        return _apply(conn, actor, seen, action, cleaned, target)
