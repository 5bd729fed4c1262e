"""Alert data: the alert tables (state, history, overrides, acknowledgements, silences; the
metrics rules read are in data/alert_metrics.py). Every signed-in user may read the tables;
overrides need alerts:manage, acknowledgements and silences alerts:ack or alerts:manage (RLS in
sql/migrations/050_alerts.sql and 060_alerts_ack.sql)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName, get_database

# ---------------------------------------------------------------------------------------------
# State and history (written by the evaluator as the system user).


@dataclass(frozen=True)
class StoredState:
    rule_name: str
    state: str
    value: float | None
    message: str | None
    since: datetime
    fired_at: datetime | None
    notified: bool
    instance: str = ""  # the label set's canonical text (alerts.rules.instance_key)
    labels: dict[str, str] = field(default_factory=dict)
    held: bool = False  # notifications held by an acknowledgement at the last evaluation
    cleared_at: datetime | None = None  # a firing instance's condition cleared (keep firing)


@dataclass(frozen=True)
class Transition:
    rule_name: str
    from_state: str | None
    to_state: str
    value: float | None
    message: str | None
    instance: str = ""
    labels: dict[str, str] = field(default_factory=dict)


_STATE_COLUMNS = ", ".join(StoredState.__dataclass_fields__)


def stored_states(actor: Actor = SYSTEM_ACTOR) -> dict[tuple[str, str], StoredState]:
    """Every instance's stored state, keyed by (rule name, instance)."""
    rows = get_database().fetch_rows(
        PoolName.BACKGROUND, actor, f"SELECT {_STATE_COLUMNS} FROM alert_states"
    )
    return {(row["rule_name"], row["instance"]): StoredState(**row) for row in rows}


def save_states(states: Iterable[dict[str, Any]], transitions: Iterable[Transition]) -> None:
    """Upsert each instance's state and append its transitions, in one transaction. Instances
    not in `states` (rules no longer defined, instances that resolved by leaving their rule's
    result) lose their state, so they leave the banner."""
    states = list(states)
    with get_database().transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as conn:
        conn.execute(
            text(
                """DELETE FROM alert_states s WHERE NOT EXISTS (
                       SELECT 1 FROM unnest(CAST(:names AS text[]), CAST(:instances AS text[]))
                           AS k(rule_name, instance)
                       WHERE k.rule_name = s.rule_name AND k.instance = s.instance)"""
            ),
            {
                "names": [row["rule_name"] for row in states],
                "instances": [row["instance"] for row in states],
            },
        )
        # One statement each, whatever the number of instances (thousands per evaluation).
        if states:
            conn.execute(
                text(
                    f"""INSERT INTO alert_states (rule_name, instance, labels, title, severity,
                           link, state, value, message, since, fired_at, notified, held,
                           cleared_at, last_evaluated_at)
                       SELECT r.*, now() FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                           AS r({_ROW_TYPES})
                       ON CONFLICT (rule_name, instance) DO UPDATE SET title = EXCLUDED.title,
                           labels = EXCLUDED.labels, severity = EXCLUDED.severity,
                           link = EXCLUDED.link, state = EXCLUDED.state, value = EXCLUDED.value,
                           message = EXCLUDED.message, since = EXCLUDED.since,
                           fired_at = EXCLUDED.fired_at, notified = EXCLUDED.notified,
                           held = EXCLUDED.held, cleared_at = EXCLUDED.cleared_at,
                           last_evaluated_at = now()"""
                ),
                {"rows": _json_rows(states, _ROW_TYPES)},
            )
        changes = [t.__dict__ for t in transitions]
        if changes:
            conn.execute(
                text(
                    f"""INSERT INTO alert_history (rule_name, instance, labels, from_state,
                           to_state, value, message)
                       SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                           AS r({_TRANSITION_TYPES})"""
                ),
                {"rows": _json_rows(changes, _TRANSITION_TYPES)},
            )


_ROW_TYPES = (
    "rule_name text, instance text, labels jsonb, title text, severity text, link text, "
    "state text, value float8, message text, since timestamptz, fired_at timestamptz, "
    "notified boolean, held boolean, cleared_at timestamptz"
)
_TRANSITION_TYPES = (
    "rule_name text, instance text, labels jsonb, from_state text, to_state text, "
    "value float8, message text"
)


def _json_rows(rows: list[dict[str, Any]], types: str) -> str:
    names = [column.split()[0] for column in types.split(", ")]

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            return None  # JSON has no NaN; a value that is not a number is no value
        return value

    return json.dumps([{n: plain(row.get(n)) for n in names} for row in rows])


# ---------------------------------------------------------------------------------------------
# Overrides (admins' edits; they win over rules.yaml).


def rule_overrides(
    actor: Actor = SYSTEM_ACTOR, pool: PoolName = PoolName.BACKGROUND
) -> dict[str, dict[str, Any]]:
    rows = get_database().fetch_rows(
        pool,
        actor,
        "SELECT rule_name, threshold, comparison, for_seconds, enabled FROM alert_rule_overrides",
    )
    return {row.pop("rule_name"): row for row in rows}


def save_override(
    actor: Actor,
    rule_name: str,
    threshold: float,
    comparison: str,
    for_seconds: int,
    enabled: bool,
) -> None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        conn.execute(
            text(
                """INSERT INTO alert_rule_overrides (rule_name, threshold, comparison,
                       for_seconds, enabled, updated_by)
                   VALUES (:rule, :threshold, :comparison, :for_seconds, :enabled,
                           current_app_user_id())
                   ON CONFLICT (rule_name) DO UPDATE SET threshold = EXCLUDED.threshold,
                       comparison = EXCLUDED.comparison, for_seconds = EXCLUDED.for_seconds,
                       enabled = EXCLUDED.enabled, updated_by = EXCLUDED.updated_by"""
            ),
            {
                "rule": rule_name,
                "threshold": threshold,
                "comparison": comparison,
                "for_seconds": for_seconds,
                "enabled": enabled,
            },
        )


# ---------------------------------------------------------------------------------------------
# Acknowledgements and silences.


def acknowledge(
    actor: Actor,
    rule_name: str,
    note: str,
    instance: str | None = None,
    minutes: int | None = None,
) -> None:
    """Acknowledge one instance (None: every instance of the rule), holding its notifications
    for `minutes` (None: until it resolves)."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        conn.execute(
            text(
                """INSERT INTO alert_acknowledgements (rule_name, instance, note, until,
                       acknowledged_by, username)
                   VALUES (:rule, :instance, :note,
                           clock_timestamp() + make_interval(mins => CAST(:minutes AS int)),
                           current_app_user_id(), :username)"""
            ),
            {
                "rule": rule_name,
                "instance": instance,
                "note": note,
                "minutes": minutes,
                "username": actor.username,
            },
        )


def silence(
    actor: Actor, rule_name: str, minutes: int, note: str, instance: str | None = None
) -> str:
    """Silence one instance (None: every instance of the rule) for `minutes`; the id."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        return str(
            conn.execute(
                text(
                    """INSERT INTO alert_silences (rule_name, instance, until, note, created_by,
                           username)
                       VALUES (:rule, :instance,
                               clock_timestamp() + make_interval(mins => :minutes),
                               NULLIF(:note, ''), current_app_user_id(), :username)
                       RETURNING id"""
                ),
                {
                    "rule": rule_name,
                    "instance": instance,
                    "minutes": minutes,
                    "note": note,
                    "username": actor.username,
                },
            ).scalar_one()
        )


def link_alertmanager_silences(actor: Actor, silence_id: str, ids: list[str]) -> None:
    """Record the Alertmanager silences made for the app's silence `silence_id`."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        conn.execute(
            text("UPDATE alert_silences SET alertmanager_ids = :ids WHERE id = :id"),
            {"ids": ids, "id": silence_id},
        )


def end_silences(actor: Actor, rule_name: str, instance: str | None = None) -> EndedSilences:
    """End the active silences that hold the instance (its own and the rule's; None: every
    silence of the rule): how many, and the Alertmanager silences they had."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        rows = conn.execute(
            text(
                """UPDATE alert_silences SET until = greatest(clock_timestamp(),
                          created_at + interval '1 millisecond')
                   WHERE rule_name = :rule AND until > clock_timestamp()
                     AND (CAST(:instance AS text) IS NULL OR instance IS NULL
                          OR instance = :instance)
                   RETURNING alertmanager_ids"""
            ),
            {"rule": rule_name, "instance": instance},
        ).all()
    return EndedSilences(len(rows), [i for row in rows for i in row[0]])


@dataclass(frozen=True)
class EndedSilences:
    count: int
    alertmanager_ids: list[str]

    def __bool__(self) -> bool:
        return self.count > 0


def app_alertmanager_silence_ids(actor: Actor) -> set[str]:
    """Ids of the Alertmanager silences the app made for its active silences."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        "SELECT unnest(alertmanager_ids) AS id FROM alert_silences WHERE until > now()",
    )
    return {row["id"] for row in rows}


# ---------------------------------------------------------------------------------------------
# Notification delivery (written by the evaluator's Alertmanager sender).


def record_delivery(target: str, error: str | None) -> None:
    """The latest delivery to `target`: None for success, else what went wrong."""
    with get_database().transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as conn:
        conn.execute(
            text(
                """INSERT INTO alert_notifier_status AS s (target, last_success_at,
                       last_failure_at, last_error)
                   VALUES (:target, CASE WHEN :ok THEN clock_timestamp() END,
                           CASE WHEN :ok THEN NULL ELSE clock_timestamp() END, :error)
                   ON CONFLICT (target) DO UPDATE SET
                       last_success_at = CASE WHEN :ok THEN clock_timestamp()
                                              ELSE s.last_success_at END,
                       last_failure_at = CASE WHEN :ok THEN s.last_failure_at
                                              ELSE clock_timestamp() END,
                       last_error = CASE WHEN :ok THEN s.last_error ELSE :error END,
                       updated_at = clock_timestamp()"""
            ),
            {"target": target, "ok": error is None, "error": error},
        )


def failing_deliveries(actor: Actor) -> list[dict[str, Any]]:
    """Targets whose latest delivery failed: target, last_failure_at, last_error,
    last_success_at."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT target, last_failure_at, last_error, last_success_at
           FROM alert_notifier_status
           WHERE last_failure_at IS NOT NULL
             AND (last_success_at IS NULL OR last_failure_at > last_success_at)
           ORDER BY target""",
    )


@dataclass(frozen=True)
class Holds:
    """What holds notifications at an evaluation: silenced and acknowledged instances, as
    (rule name, instance); a rule-wide silence as (rule name, None)."""

    silenced: frozenset[tuple[str, str | None]] = frozenset()
    acknowledged: frozenset[tuple[str, str]] = frozenset()

    def is_silenced(self, rule_name: str, instance: str) -> bool:
        return (rule_name, None) in self.silenced or (rule_name, instance) in self.silenced


def holds(now: datetime, actor: Actor = SYSTEM_ACTOR) -> Holds:
    """Silences active at `now`, and the stored instances with an acknowledgement made since
    they started firing that has not run out at `now` (the evaluator's clock)."""
    database = get_database()
    silences = database.fetch_rows(
        PoolName.BACKGROUND,
        actor,
        "SELECT DISTINCT rule_name, instance FROM alert_silences WHERE until > :now",
        {"now": now},
    )
    acked = database.fetch_rows(
        PoolName.BACKGROUND,
        actor,
        """SELECT s.rule_name, s.instance FROM alert_states s
           WHERE s.fired_at IS NOT NULL AND EXISTS (
               SELECT 1 FROM alert_acknowledgements a
               WHERE a.rule_name = s.rule_name AND (a.instance IS NULL OR a.instance = s.instance)
                 AND a.created_at >= s.fired_at AND (a.until IS NULL OR a.until > :now))""",
        {"now": now},
    )
    return Holds(
        frozenset((r["rule_name"], r["instance"]) for r in silences),
        frozenset((r["rule_name"], r["instance"]) for r in acked),
    )


# ---------------------------------------------------------------------------------------------
# What the banner and the /alerts page read: one row per instance.

_SILENCED = """EXISTS (SELECT 1 FROM alert_silences x
                         WHERE x.rule_name = s.rule_name AND x.until > now()
                           AND (x.instance IS NULL OR x.instance = s.instance))"""
# The latest acknowledgement of this firing (or failing) period, whether it still holds or not.
_LATEST_ACK = """LEFT JOIN LATERAL (
        SELECT a.username AS ack_by, a.note AS ack_note, a.created_at AS ack_at,
               a.until AS ack_until, (a.until IS NULL OR a.until > now()) AS ack_active
        FROM alert_acknowledgements a
        WHERE a.rule_name = s.rule_name AND (a.instance IS NULL OR a.instance = s.instance)
          AND a.created_at >= coalesce(s.fired_at, s.since)
        ORDER BY a.created_at DESC LIMIT 1) ack ON true"""


def banner_alerts(actor: Actor) -> list[dict[str, Any]]:
    """Firing and failing instances, not silenced, worst first; with who acknowledged them
    (while the acknowledgement holds) and until when."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT s.rule_name, s.instance, s.labels, s.title, s.severity, s.link, s.state,
                   s.value, s.message, s.since,
                   CASE WHEN ack.ack_active THEN ack.ack_by END AS ack_by,
                   CASE WHEN ack.ack_active THEN ack.ack_until END AS ack_until
            FROM alert_states s {_LATEST_ACK}
            WHERE s.state IN ('firing', 'error') AND s.severity <> 'none' AND NOT {_SILENCED}
            ORDER BY s.state = 'error', s.severity = 'warning', s.since, s.rule_name,
                     s.instance""",
    )


@dataclass(frozen=True)
class FiringSummary:
    firing: int  # instances
    silenced: int  # of the firing ones
    acknowledged: int  # of the firing ones, by an acknowledgement that still holds


def firing_summary(actor: Actor) -> FiringSummary:
    row = get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT count(*) AS firing, count(*) FILTER (WHERE {_SILENCED}) AS silenced,
                   count(*) FILTER (WHERE ack.ack_active) AS acknowledged
            FROM alert_states s {_LATEST_ACK}
            WHERE s.state = 'firing' AND s.severity <> 'none'""",
    )[0]
    return FiringSummary(**row)


def alert_table(actor: Actor) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (rule, instance): stored state, the latest acknowledgement of this firing period
    (ack_active: it still holds), the active silence that ends last."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT s.rule_name, s.instance, s.labels, s.state, s.value, s.message, s.since,
                   ack.ack_by, ack.ack_note, ack.ack_at, ack.ack_until, ack.ack_active,
                   sil.until AS silenced_until, sil.username AS silenced_by,
                   sil.instance IS NULL AS silenced_rule
            FROM alert_states s {_LATEST_ACK}
            LEFT JOIN LATERAL (
                SELECT x.until, x.username, x.instance FROM alert_silences x
                WHERE x.rule_name = s.rule_name AND x.until > now()
                  AND (x.instance IS NULL OR x.instance = s.instance)
                ORDER BY x.until DESC LIMIT 1) sil ON true
            ORDER BY s.rule_name, s.instance""",
    )
    return {(row["rule_name"], row["instance"]): row for row in rows}


def rule_silences(actor: Actor) -> dict[str, dict[str, Any]]:
    """Active rule-wide silences (every instance), the one ending last per rule."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT DISTINCT ON (rule_name) rule_name, until, username FROM alert_silences
           WHERE instance IS NULL AND until > now() ORDER BY rule_name, until DESC""",
    )
    return {row["rule_name"]: row for row in rows}


def alert_history(actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
    """Transitions, acknowledgements and silences, newest first; `instance` is '' for a rule
    that does not group and NULL for an action on every instance."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT * FROM (
               SELECT created_at AS at, rule_name, instance, 'transition' AS kind,
                      coalesce(from_state, '—') || ' → ' || to_state AS what, value,
                      message AS detail, NULL AS who
               FROM alert_history
               UNION ALL
               SELECT created_at, rule_name, instance, 'acknowledged',
                      CASE WHEN until IS NULL THEN 'acknowledged until resolved'
                           ELSE 'acknowledged until '
                                || to_char(until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                                || ' UTC' END,
                      NULL, note, username
               FROM alert_acknowledgements
               UNION ALL
               SELECT created_at, rule_name, instance, 'silenced',
                      'silenced until ' || to_char(until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                      || ' UTC', NULL, note, username
               FROM alert_silences) events
           ORDER BY at DESC LIMIT :limit""",
        {"limit": limit},
    )


def state_periods(actor: Actor, rule_names: list[str], hours: int) -> list[dict[str, Any]]:
    """The instances' states over the last `hours` as periods (rule_name, instance, state,
    started, ended): a state lasts from its transition to the instance's next one, clipped to
    the window. Each instance's last transition before the window gives the state the window
    opens with."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        """WITH bounds AS (SELECT now() - make_interval(hours => :hours) AS since, now() AS until),
           transitions AS (
               SELECT h.rule_name, h.instance, h.to_state, h.created_at
               FROM alert_history h, bounds b
               WHERE h.created_at >= b.since AND h.rule_name = ANY(:names)
               UNION ALL
               SELECT opening.* FROM unnest(CAST(:names AS text[])) rule(name), bounds b, LATERAL (
                   SELECT DISTINCT ON (h.instance) h.rule_name, h.instance, h.to_state,
                          h.created_at
                   FROM alert_history h
                   WHERE h.rule_name = rule.name AND h.created_at < b.since
                   ORDER BY h.instance, h.created_at DESC) opening),
           periods AS (
               SELECT rule_name, instance, to_state AS state, created_at AS started,
                      lead(created_at) OVER (PARTITION BY rule_name, instance
                                             ORDER BY created_at) AS ended
               FROM transitions)
           SELECT p.rule_name, p.instance, p.state, greatest(p.started, b.since) AS started,
                  coalesce(p.ended, b.until) AS ended
           FROM periods p, bounds b
           WHERE coalesce(p.ended, b.until) > b.since
           ORDER BY p.rule_name, p.instance, p.started""",
        {"names": rule_names, "hours": hours},
    )


def instance_labels(actor: Actor, rule_name: str, instance: str) -> dict[str, str] | None:
    """The stored labels of one instance; None when the rule has no such instance."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        "SELECT labels FROM alert_states WHERE rule_name = :rule AND instance = :instance",
        {"rule": rule_name, "instance": instance},
    )
    return dict(rows[0]["labels"]) if rows else None
