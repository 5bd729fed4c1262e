"""Alert rules written in the app (table alert_rules, migration 091): each kept as its
rules.yaml entry and read back through the one parser, parse_rule. Every signed-in user may
read them; writing needs alerts:manage (RLS). Changes are audited by the table's trigger."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import text

from taskmaster_dash.alerts.rule_io import rule_entry
from taskmaster_dash.alerts.rules import Rule, RuleError, parse_rule
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName, get_database

log = logging.getLogger(__name__)


def _rows(actor: Actor, pool: PoolName) -> list[dict[str, Any]]:
    return get_database().fetch_rows(
        pool,
        actor,
        """SELECT r.name, r.definition, r.enabled, r.updated_at, u.username AS updated_by
           FROM alert_rules r LEFT JOIN users u ON u.id = r.updated_by
           ORDER BY r.name""",
    )


def app_rules(actor: Actor = SYSTEM_ACTOR, pool: PoolName = PoolName.BACKGROUND) -> list[Rule]:
    """The rules written in the app, enabled and disabled (origin "app"). A stored rule that no
    longer parses (a metric since removed) is left out with a log line, not a failed cycle."""
    rules = []
    for index, row in enumerate(_rows(actor, pool)):
        try:
            rule = parse_rule(row["definition"], index, origin="app")
        except RuleError as exc:
            log.warning("alert rule %s written in the app is not valid: %s", row["name"], exc)
            continue
        rules.append(replace(rule, enabled=row["enabled"]))
    return rules


def with_app_rules(rules: list[Rule]) -> list[Rule]:
    """`rules` followed by the app's rules they do not already hold (so wiring the app's rules
    into effective_rules as well never lists one twice)."""
    names = {r.name for r in rules}
    return rules + [r for r in app_rules() if r.name not in names]


def rule_authors(actor: Actor) -> dict[str, tuple[str | None, datetime]]:
    """Who changed each app rule last, and when."""
    return {
        row["name"]: (row["updated_by"], row["updated_at"]) for row in _rows(actor, PoolName.READ)
    }


def _clash(rule: Rule, file_rules: set[str]) -> None:
    if rule.name in file_rules:
        raise RuleError(
            f"rule {rule.name}: the rules file already has a rule of that name; choose another"
        )


_UPSERT = """INSERT INTO alert_rules (name, definition, enabled, created_by, updated_by)
             VALUES (:name, CAST(:definition AS jsonb), :enabled, current_app_user_id(),
                     current_app_user_id())
             ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition,
                 enabled = EXCLUDED.enabled, updated_by = EXCLUDED.updated_by
             RETURNING (xmax = 0) AS created"""


def save_rules(
    actor: Actor, rules: list[tuple[Rule, bool]], file_rules: set[str]
) -> tuple[int, int]:
    """Create or replace these app rules (rule, enabled) in one transaction: all or none.
    (created, updated)."""
    for rule, _ in rules:
        _clash(rule, file_rules)
    created = updated = 0
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        for rule, enabled in rules:
            params = {
                "name": rule.name,
                "definition": json.dumps(rule_entry(rule)),
                "enabled": enabled,
            }
            if conn.execute(text(_UPSERT), params).scalar_one():
                created += 1
            else:
                updated += 1
    return created, updated


def save_rule(actor: Actor, rule: Rule, enabled: bool, file_rules: set[str]) -> bool:
    """Create or replace one app rule; True when it is new."""
    created, _ = save_rules(actor, [(rule, enabled)], file_rules)
    return created == 1


def delete_rule(actor: Actor, name: str) -> bool:
    """Delete the app rule `name`; False when there was none. Its state rows go with it at the
    evaluator's next cycle (rules that are no longer defined lose their state)."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        deleted = conn.execute(
            text("DELETE FROM alert_rules WHERE name = :name RETURNING id"), {"name": name}
        ).first()
    return deleted is not None
