"""Alert data: the alert tables (state, history, overrides, acknowledgements, silences; the
metrics rules read are in data/alert_metrics.py). Every signed-in user may read the tables;
overrides need alerts:manage, acknowledgements and silences alerts:ack or alerts:manage (RLS in
sql/migrations/050_alerts.sql and 060_alerts_ack.sql)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Transition:
    rule_name: str
    from_state: str | None
    to_state: str
    value: float | None
    message: str | None


def stored_states(actor: Actor = SYSTEM_ACTOR) -> dict[str, StoredState]:
    rows = get_database().fetch_rows(
        PoolName.BACKGROUND,
        actor,
        """SELECT rule_name, state, value, message, since, fired_at, notified
           FROM alert_states""",
    )
    return {row["rule_name"]: StoredState(**row) for row in rows}


def save_states(states: Iterable[dict[str, Any]], transitions: Iterable[Transition]) -> None:
    """Upsert each rule's state and append its transitions, in one transaction. Rules that
    are no longer defined lose their state (so they leave the banner)."""
    states = list(states)
    with get_database().transaction(PoolName.BACKGROUND, SYSTEM_ACTOR) as conn:
        conn.execute(
            text("DELETE FROM alert_states WHERE rule_name <> ALL(:names)"),
            {"names": [row["rule_name"] for row in states]},
        )
        for row in states:
            conn.execute(
                text(
                    """INSERT INTO alert_states (rule_name, title, severity, link, state, value,
                           message, since, fired_at, notified, last_evaluated_at)
                       VALUES (:rule_name, :title, :severity, :link, :state, :value, :message,
                               :since, :fired_at, :notified, now())
                       ON CONFLICT (rule_name, instance) DO UPDATE SET title = EXCLUDED.title,
                           severity = EXCLUDED.severity, link = EXCLUDED.link,
                           state = EXCLUDED.state, value = EXCLUDED.value,
                           message = EXCLUDED.message, since = EXCLUDED.since,
                           fired_at = EXCLUDED.fired_at, notified = EXCLUDED.notified,
                           last_evaluated_at = now()"""
                ),
                row,
            )
        for t in transitions:
            conn.execute(
                text(
                    """INSERT INTO alert_history (rule_name, from_state, to_state, value, message)
                       VALUES (:rule_name, :from_state, :to_state, :value, :message)"""
                ),
                t.__dict__,
            )


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


def acknowledge(actor: Actor, rule_name: str, note: str) -> None:
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        conn.execute(
            text(
                """INSERT INTO alert_acknowledgements (rule_name, note, acknowledged_by, username)
                   VALUES (:rule, :note, current_app_user_id(), :username)"""
            ),
            {"rule": rule_name, "note": note, "username": actor.username},
        )


def silence(actor: Actor, rule_name: str, minutes: int, note: str) -> str:
    """Silence the rule for `minutes`; the new silence's id."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        return str(
            conn.execute(
                text(
                    """INSERT INTO alert_silences (rule_name, until, note, created_by, username)
                       VALUES (:rule, clock_timestamp() + make_interval(mins => :minutes),
                               NULLIF(:note, ''), current_app_user_id(), :username)
                       RETURNING id"""
                ),
                {"rule": rule_name, "minutes": minutes, "note": note, "username": actor.username},
            ).scalar_one()
        )


def link_alertmanager_silences(actor: Actor, silence_id: str, ids: list[str]) -> None:
    """Record the Alertmanager silences made for the app's silence `silence_id`."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        conn.execute(
            text("UPDATE alert_silences SET alertmanager_ids = :ids WHERE id = :id"),
            {"ids": ids, "id": silence_id},
        )


def end_silences(actor: Actor, rule_name: str) -> EndedSilences:
    """End the rule's active silences: how many, and the Alertmanager silences they had."""
    with get_database().transaction(PoolName.WRITE, actor) as conn:
        rows = conn.execute(
            text(
                """UPDATE alert_silences SET until = greatest(clock_timestamp(),
                          created_at + interval '1 millisecond')
                   WHERE rule_name = :rule AND until > clock_timestamp()
                   RETURNING alertmanager_ids"""
            ),
            {"rule": rule_name},
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


def silenced_rules(actor: Actor = SYSTEM_ACTOR) -> set[str]:
    rows = get_database().fetch_rows(
        PoolName.BACKGROUND,
        actor,
        "SELECT DISTINCT rule_name FROM alert_silences WHERE until > now()",
    )
    return {row["rule_name"] for row in rows}


# ---------------------------------------------------------------------------------------------
# What the banner and the /alerts page read.

_SILENCED = """EXISTS (SELECT 1 FROM alert_silences x
                         WHERE x.rule_name = s.rule_name AND x.until > now())"""
_LATEST_ACK = """LEFT JOIN LATERAL (
        SELECT a.username AS ack_by, a.note AS ack_note, a.created_at AS ack_at
        FROM alert_acknowledgements a
        WHERE a.rule_name = s.rule_name AND a.created_at >= s.since
        ORDER BY a.created_at DESC LIMIT 1) ack ON true"""


def banner_alerts(actor: Actor) -> list[dict[str, Any]]:
    """Firing alerts and rules that cannot be evaluated, not silenced, worst first."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT s.rule_name, s.title, s.severity, s.link, s.state, s.value, s.message,
                   s.since, ack.ack_by
            FROM alert_states s {_LATEST_ACK}
            WHERE s.state IN ('firing', 'error') AND s.severity <> 'none' AND NOT {_SILENCED}
            ORDER BY s.state = 'error', s.severity = 'warning', s.since""",
    )


@dataclass(frozen=True)
class FiringSummary:
    firing: int
    silenced: int  # of the firing ones
    acknowledged: int  # of the firing ones, since they started firing


def firing_summary(actor: Actor) -> FiringSummary:
    row = get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT count(*) AS firing, count(*) FILTER (WHERE {_SILENCED}) AS silenced,
                   count(ack.ack_by) AS acknowledged
            FROM alert_states s {_LATEST_ACK}
            WHERE s.state = 'firing' AND s.severity <> 'none'""",
    )[0]
    return FiringSummary(**row)


def alert_table(actor: Actor) -> dict[str, dict[str, Any]]:
    """Per rule: stored state, latest acknowledgement in this state, active silence."""
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        f"""SELECT s.rule_name, s.state, s.value, s.message, s.since,
                   ack.ack_by, ack.ack_note, ack.ack_at, sil.until AS silenced_until,
                   sil.username AS silenced_by
            FROM alert_states s {_LATEST_ACK}
            LEFT JOIN LATERAL (
                SELECT x.until, x.username FROM alert_silences x
                WHERE x.rule_name = s.rule_name AND x.until > now()
                ORDER BY x.until DESC LIMIT 1) sil ON true""",
    )
    return {row["rule_name"]: row for row in rows}


def alert_history(actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
    """Transitions, acknowledgements and silences, newest first."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        """SELECT * FROM (
               SELECT created_at AS at, rule_name, 'transition' AS kind,
                      coalesce(from_state, '—') || ' → ' || to_state AS what, value,
                      message AS detail, NULL AS who
               FROM alert_history
               UNION ALL
               SELECT created_at, rule_name, 'acknowledged', 'acknowledged', NULL, note, username
               FROM alert_acknowledgements
               UNION ALL
               SELECT created_at, rule_name, 'silenced',
                      'silenced until ' || to_char(until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                      || ' UTC', NULL, note, username
               FROM alert_silences) events
           ORDER BY at DESC LIMIT :limit""",
        {"limit": limit},
    )


def state_periods(actor: Actor, rule_names: list[str], hours: int) -> list[dict[str, Any]]:
    """The rules' states over the last `hours` as periods (rule_name, state, started, ended):
    a state lasts from its transition to the rule's next one, clipped to the window. Each
    rule's last transition before the window (one index probe per rule) gives the state the
    window opens with."""
    return get_database().fetch_rows(
        PoolName.READ,
        actor,
        """WITH bounds AS (SELECT now() - make_interval(hours => :hours) AS since, now() AS until),
           transitions AS (
               SELECT h.rule_name, h.to_state, h.created_at
               FROM alert_history h, bounds b
               WHERE h.created_at >= b.since AND h.rule_name = ANY(:names)
               UNION ALL
               SELECT opening.* FROM unnest(CAST(:names AS text[])) rule(name), bounds b, LATERAL (
                   SELECT h.rule_name, h.to_state, h.created_at FROM alert_history h
                   WHERE h.rule_name = rule.name AND h.created_at < b.since
                   ORDER BY h.created_at DESC LIMIT 1) opening),
           periods AS (
               SELECT rule_name, to_state AS state, created_at AS started,
                      lead(created_at) OVER (PARTITION BY rule_name ORDER BY created_at) AS ended
               FROM transitions)
           SELECT p.rule_name, p.state, greatest(p.started, b.since) AS started,
                  coalesce(p.ended, b.until) AS ended
           FROM periods p, bounds b
           WHERE coalesce(p.ended, b.until) > b.since
           ORDER BY p.rule_name, p.started""",
        {"names": rule_names, "hours": hours},
    )
