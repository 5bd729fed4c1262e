"""The audit log (written by the audit trigger on every table): pages of it, newest first, and
before/after shown as the keys that changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text

from data.db import Actor, PoolName, get_database
from data.users import UserInputError

ACTIONS = ("create", "update", "delete", "status_change")
IGNORED_KEYS = frozenset({"updated_at"})
MAX_VALUE_CHARS = 120
COUNT_CAP = 100_000


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
        where = ["true"]
        params: dict[str, Any] = {}
        if self.username:
            where.append("username = :username")
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


def _show(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    return shown if len(shown) <= MAX_VALUE_CHARS else shown[: MAX_VALUE_CHARS - 1] + "…"


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


def diff_text(old: dict | None, new: dict | None) -> str:
    parts = []
    for key, before, after in changed_fields(old, new):
        if old is None:
            parts.append(f"{key}: {_show(after)}")
        elif new is None:
            parts.append(f"{key}: {_show(before)}")
        else:
            parts.append(f"{key}: {_show(before)} → {_show(after)}")
    return "; ".join(parts)


def audit_page(
    actor: Actor, filters: AuditFilter, offset: int, limit: int
) -> tuple[list[dict], int | None]:
    """Audit rows newest first, with a readable `changes` text, and the filtered total (None
    when it is over COUNT_CAP and this block does not reach the end: counting millions of rows
    for a scroll bar is not worth it)."""
    where, params = filters.sql()
    limit, offset = max(1, min(limit, 500)), max(0, offset)
    with get_database().transaction(PoolName.READ, actor) as conn:
        total = conn.scalar(
            text(f"SELECT count(*) FROM (SELECT 1 FROM audit_logs WHERE {where} LIMIT :cap) t"),
            {**params, "cap": COUNT_CAP + 1},
        )
        rows = conn.execute(
            text(
                f"""SELECT id::text AS id, "timestamp", username, entity_type, action,
                           entity_id::text AS entity_id, old_values, new_values
                    FROM audit_logs WHERE {where}
                    ORDER BY "timestamp" DESC, id DESC LIMIT :limit OFFSET :offset"""
            ),
            {**params, "limit": limit, "offset": offset},
        ).mappings()
        result = []
        for row in rows:
            item = dict(row)
            old, new = item.pop("old_values"), item.pop("new_values")
            item["changes"] = diff_text(old, new)
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
