"""The audit log (written by the audit trigger on every table): pages of it, newest first, and
before/after shown as the keys that changed, with the roles, users and tasks its ids point at
named. A sign-in (the app stamps `last_login_at` as the system user) is shown as the user's own
event, "signed in"."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.db import SYSTEM_USER_ID, Actor, PoolName, get_database
from taskmaster_dash.data.users import UserInputError

ACTIONS = ("create", "update", "delete", "status_change", "regressed")
IGNORED_KEYS = frozenset({"updated_at"})
MAX_VALUE_CHARS = 120
COUNT_CAP = 100_000
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A row the sign-in wrote: the system user stamping someone's last_login_at.
_SIGN_IN = """(entity_type = 'users' AND user_id = CAST(:system_id AS uuid)
               AND old_values->>'last_login_at' IS DISTINCT FROM new_values->>'last_login_at')"""
_ATTEMPT_COUNTED = """(entity_type = 'users' AND user_id = CAST(:system_id AS uuid)
               AND new_values - 'login_attempts' - 'updated_at'
                   = old_values - 'login_attempts' - 'updated_at')"""
# Who acted: for a sign-in, the user who signed in.
_ACTOR = f"CASE WHEN {_SIGN_IN} THEN new_values->>'username' ELSE username END"
SIGNED_IN = "signed in"


@dataclass(frozen=True)
class AuditFilter:
    username: str | None = None
    table: str | None = None
    action: str | None = None
    since: date | None = None
    until: date | None = None  # inclusive: the whole day

    @classmethod
    def parse(
        cls,
        username: Any = None,
        table: Any = None,
        action: Any = None,
        since: Any = None,
        until: Any = None,
    ) -> AuditFilter:
        """From what the page's controls sent; refuses anything malformed with a sentence."""

        def text_value(value: Any, limit: int, what: str) -> str | None:
            if value in (None, ""):
                return None
            if not isinstance(value, str) or len(value) > limit:
                raise UserInputError(f"The {what} filter is not valid.")
            return value.strip() or None

        def day(value: Any, what: str) -> date | None:
            if value in (None, ""):
                return None
            try:
                return date.fromisoformat(str(value)[:10])
            except ValueError as exc:
                raise UserInputError(f"The {what} date is not a date.") from exc

        action = text_value(action, 20, "operation")
        if action is not None and action not in ACTIONS:
            raise UserInputError("The operation filter is not valid.")
        parsed = cls(
            text_value(username, 100, "user"),
            text_value(table, 63, "table"),
            action,
            day(since, "from"),
            day(until, "to"),
        )
        if parsed.since and parsed.until and parsed.since > parsed.until:
            raise UserInputError("The from date is after the to date.")
        return parsed

    def sql(self) -> tuple[str, dict[str, Any]]:
        # A sign-in writes two audit rows: the users row's last_login_at (shown as "signed in")
        # and the new user_sessions row (kept for forensics: session id, address, agent). The
        # page shows the event once; ended sessions (updates of user_sessions) are listed.
        # Each sign-in attempt is counted before its password is checked (an update of
        # login_attempts alone): bookkeeping, not an event of its own; a lock changes
        # locked_until and is listed.
        where = [
            "NOT (entity_type = 'user_sessions' AND action = 'create')",
            f"NOT ({_ATTEMPT_COUNTED})",
        ]
        params: dict[str, Any] = {"system_id": SYSTEM_USER_ID}
        if self.username:
            # The IN list keeps the username index usable; sign-ins are stored as system's.
            where.append(f"username IN (:username, 'system') AND {_ACTOR} = :username")
            params["username"] = self.username
        if self.table:
            where.append("entity_type = :table")
            params["table"] = self.table
        if self.action:
            where.append("action = :action")
            params["action"] = self.action
        if self.since:
            where.append('"timestamp" >= :since')
            params["since"] = datetime.combine(self.since, time.min, tzinfo=UTC)
        if self.until:
            where.append('"timestamp" < :until')
            params["until"] = datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC)
        return " AND ".join(where), params


def _show(value: Any, labels: dict[str, str]) -> str:
    if isinstance(value, str) and value in labels:
        return labels[value]
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    return shown if len(shown) <= MAX_VALUE_CHARS else shown[: MAX_VALUE_CHARS - 1] + "…"


def _key(key: str, values: tuple[Any, Any], labels: dict[str, str]) -> str:
    """`role_id` reads `role` when its value is shown by name."""
    named = any(isinstance(v, str) and v in labels for v in values)
    return key.removesuffix("_id") if named else key


def changed_fields(old: dict | None, new: dict | None) -> list[tuple[str, Any, Any]]:
    """(key, before, after) for each key whose value differs; a created row lists its non-empty
    values, a deleted row what it held."""
    old, new = old or {}, new or {}
    keys = [k for k in {**old, **new} if k not in IGNORED_KEYS]
    return [
        (k, old.get(k), new.get(k))
        for k in keys
        if old.get(k) != new.get(k)
        and not (old.get(k) in (None, {}, []) and new.get(k) in (None, {}, []))
    ]


def diff_text(old: dict | None, new: dict | None, labels: dict[str, str] | None = None) -> str:
    """The changed keys as text; an id found in `labels` (id -> name) is shown by its name."""
    labels = labels or {}
    parts = []
    for key, before, after in changed_fields(old, new):
        shown = _key(key, (before, after), labels)
        if old is None:
            parts.append(f"{shown}: {_show(after, labels)}")
        elif new is None:
            parts.append(f"{shown}: {_show(before, labels)}")
        else:
            parts.append(f"{shown}: {_show(before, labels)} → {_show(after, labels)}")
    return "; ".join(parts)


def _ids_in(rows: list[dict]) -> list[str]:
    """Every id-looking value the rows' changes hold, and the ids of the rows they changed."""
    found = {row["entity_id"] for row in rows if row["entity_id"]}
    for row in rows:
        for values in (row["old_values"], row["new_values"]):
            for key, value in (values or {}).items():
                if key != "id" and isinstance(value, str) and _UUID.match(value):
                    found.add(value)
    return sorted(found)


def _labels(conn, ids: list[str]) -> dict[str, str]:
    """Names of the roles, users and tasks among `ids`, in one query (migration 060)."""
    if not ids:
        return {}
    rows = conn.execute(
        text("SELECT id::text, label FROM audit_id_labels(CAST(:ids AS uuid[]))"), {"ids": ids}
    )
    return dict(rows.all())


def audit_page(
    actor: Actor, filters: AuditFilter, offset: int, limit: int
) -> tuple[list[dict], int | None]:
    """Audit rows newest first, with a readable `changes` text and the changed row's name
    (`entity`: a role, user or task; else its id), and the filtered total (None
    when it is over COUNT_CAP and this block does not reach the end: counting millions of rows
    for a scroll bar is not worth it)."""
    where, params = filters.sql()
    limit, offset = max(1, min(limit, 500)), max(0, offset)
    with get_database().transaction(PoolName.READ, actor) as conn:
        total = conn.scalar(
            text(f"SELECT count(*) FROM (SELECT 1 FROM audit_logs WHERE {where} LIMIT :cap) t"),
            {**params, "cap": COUNT_CAP + 1},
        )
        rows = [
            dict(row)
            for row in conn.execute(
                text(
                    f"""SELECT id::text AS id, "timestamp", {_ACTOR} AS username, entity_type,
                               action, entity_id::text AS entity_id, old_values, new_values,
                               {_SIGN_IN} AS signed_in
                        FROM audit_logs WHERE {where}
                        ORDER BY "timestamp" DESC, id DESC LIMIT :limit OFFSET :offset"""
                ),
                {**params, "limit": limit, "offset": offset},
            ).mappings()
        ]
        labels = _labels(conn, _ids_in(rows))
        result = []
        for item in rows:
            old, new = item.pop("old_values"), item.pop("new_values")
            signed_in = item.pop("signed_in")
            item["changes"] = SIGNED_IN if signed_in else diff_text(old, new, labels)
            item["entity"] = labels.get(item["entity_id"] or "", item["entity_id"])
            result.append(item)
    if total > COUNT_CAP:
        return result, (offset + len(result) if len(result) < limit else None)
    return result, int(total)


def audited_tables(actor: Actor) -> list[str]:
    """Tables that carry the audit trigger (the choices of the table filter)."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT DISTINCT c.relname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           WHERE t.tgfoid = 'audit_row_change'::regproc AND NOT t.tgisinternal ORDER BY 1""",
    )
    return [r["name"] for r in rows]
