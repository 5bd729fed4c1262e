"""The alert evaluator: reads every rule's source, moves its state (normal -> pending -> firing
-> normal, or no_data / error / disabled), records transitions, and sends webhooks.

Exactly one evaluator works at a time across all workers and hosts: it holds a PostgreSQL
advisory lock on a dedicated connection for as long as it runs (data/leader.py); the others find
the lock taken, skip, and try again next interval (so one takes over when the holder stops).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.alertmanager import AlertmanagerClient, AlertmanagerSender, Observed
from taskmaster_dash.alerts.notify import WebhookNotifier
from taskmaster_dash.alerts.rules import Override, Rule, apply_overrides, configured_rules
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.alert_metrics import read_current
from taskmaster_dash.data.config import Settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName, user_message
from taskmaster_dash.data.leader import EVALUATOR_LOCK_KEY, ElectedLoop
from taskmaster_dash.data.prometheus import PrometheusReader, PrometheusUnavailable, get_prometheus

log = logging.getLogger(__name__)
LOCK_KEY = EVALUATOR_LOCK_KEY
DEFAULT_INTERVAL = 15.0
PROMETHEUS_OFF = "Prometheus is not configured (PROMETHEUS_ENABLED is off)"


@dataclass(frozen=True)
class Reading:
    value: float | None
    message: str | None = None
    error: bool = False


@dataclass(frozen=True)
class Result:
    rule: Rule
    state: str
    value: float | None
    message: str | None
    since: datetime


@dataclass(frozen=True)
class Decision:
    row: dict[str, Any]
    transition: store.Transition | None
    notification: tuple[str, datetime, datetime | None] | None  # status, startsAt, endsAt


def decide(
    rule: Rule,
    previous: store.StoredState | None,
    reading: Reading,
    now: datetime,
    silenced: bool = False,
) -> Decision:
    """The rule's next state from its previous one and what its source says now (pure)."""
    before = previous.state if previous else None
    if not rule.enabled:
        state = "disabled"
    elif reading.error:
        state = "error"
    elif reading.value is None:
        state = "no_data"
    elif not rule.breached(reading.value):
        state = "normal"
    else:
        waited = (now - previous.since).total_seconds() if previous and before == "pending" else 0
        fire = before == "firing" or waited >= rule.for_seconds
        state = "firing" if fire else "pending"

    since = previous.since if previous and state == before else now
    fired_at = previous.fired_at if previous else None
    if state == "firing" and before != "firing":
        fired_at = now
    notified = previous.notified if previous else False
    notification: tuple[str, datetime, datetime | None] | None = None
    if state == "firing" and not notified and not silenced:
        # A row saved as firing without fired_at (written by hand) still starts at a time.
        notification, notified = ("firing", fired_at or since, None), True
    elif state in ("normal", "disabled") and notified:
        notification, notified = ("resolved", fired_at or since, now), False
    if state in ("normal", "disabled"):
        fired_at = None
    # Unknown (error, no_data) is not "resolved": a firing alert stays open at the receiver.
    row = {
        "rule_name": rule.name,
        "title": rule.title,
        "severity": rule.severity,
        "link": rule.link,
        "state": state,
        "value": reading.value,
        "message": reading.message,
        "since": since,
        "fired_at": fired_at,
        "notified": notified,
    }
    transition = (
        store.Transition(rule.name, before, state, reading.value, reading.message)
        if state != before
        else None
    )
    return Decision(row, transition, notification)


def effective_rules(
    rules: list[Rule],
    actor: Actor = SYSTEM_ACTOR,
    pool: PoolName = PoolName.BACKGROUND,
) -> list[Rule]:
    """`rules` with the admins' overrides from the database applied."""
    overrides = store.rule_overrides(actor, pool)
    return apply_overrides(rules, {name: Override(**values) for name, values in overrides.items()})


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlertEvaluator(ElectedLoop):
    """Evaluates every rule each `interval` seconds in the one process holding its lock.

    `clock` gives "now" for the pending periods (tests pass one they move forward)."""

    thread_name = "alert-evaluator"

    def __init__(
        self,
        *,
        rules: list[Rule] | None = None,
        prometheus: Callable[[], PrometheusReader | None] = get_prometheus,
        notifier: WebhookNotifier | None = None,
        alertmanager: AlertmanagerSender | None = None,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(LOCK_KEY, "alert_evaluator", interval)
        self.rules = rules if rules is not None else list(configured_rules())
        self.prometheus = prometheus
        self.notifier = notifier
        self.alertmanager = alertmanager
        self.clock = clock
        self.evaluations = 0
        self._memory: dict[str, store.StoredState] = {}
        self._last_rules = self.rules

    def read(self, rule: Rule) -> Reading:
        if rule.source_kind == "sql":
            try:
                found = read_current(rule)
            except SQLAlchemyError as exc:
                return Reading(None, user_message(exc), error=True)
            value = found[""][1] if "" in found else None
        else:
            reader = self.prometheus()
            if reader is None:
                return Reading(None, PROMETHEUS_OFF)
            try:
                value = reader.scalar(rule.source)
            except PrometheusUnavailable as exc:
                return Reading(None, str(exc), error=True)
        if value is None or math.isnan(value):
            return Reading(None, "the source returned no data")
        return Reading(value)

    def work(self) -> None:
        self.evaluate_once()

    def evaluate_once(self, *, persist: bool = True) -> list[Result]:
        """Evaluate every rule once. With persist, store states and history and notify."""
        now = self.clock()
        try:
            rules = self._last_rules = effective_rules(self.rules)
            previous = store.stored_states()
            silenced = store.silenced_rules()
        except SQLAlchemyError as exc:
            log.warning("alerts: cannot read alert state (%s); using memory", user_message(exc))
            rules, previous, silenced = self._last_rules, dict(self._memory), set()
        decisions = [
            decide(
                rule,
                previous.get(rule.name),
                self.read(rule) if rule.enabled else Reading(None),
                now,
                rule.name in silenced,
            )
            for rule in rules
        ]
        if persist:
            try:
                store.save_states(
                    [d.row for d in decisions],
                    [d.transition for d in decisions if d.transition],
                )
            except SQLAlchemyError as exc:
                log.error("alerts: cannot save alert state: %s", user_message(exc))
            self._memory = {
                d.row["rule_name"]: store.StoredState(
                    **{k: d.row[k] for k in store.StoredState.__dataclass_fields__}
                )
                for d in decisions
            }
            if self.notifier is not None:
                for rule, d in zip(rules, decisions, strict=True):
                    if d.notification:
                        status, starts, ends = d.notification
                        self.notifier.notify(rule, status, d.row["value"], starts, ends)
            if self.alertmanager is not None:  # every open alert, every evaluation
                self.alertmanager.publish(
                    (
                        Observed(
                            rule, d.row, p.fired_at if (p := previous.get(rule.name)) else None
                        )
                        for rule, d in zip(rules, decisions, strict=True)
                    ),
                    now,
                )
            self.evaluations += 1
        return [
            Result(rule, d.row["state"], d.row["value"], d.row["message"], d.row["since"])
            for rule, d in zip(rules, decisions, strict=True)
        ]

    def finish(self) -> None:
        if self.notifier is not None:
            self.notifier.flush(5)  # give queued notifications a moment to go out
        if self.alertmanager is not None:
            self.alertmanager.flush(5)


def evaluator_from_settings(settings: Settings) -> AlertEvaluator:
    """Interval, webhook and Alertmanager from ALERTS_INTERVAL_SECONDS, ALERT_WEBHOOK_URL,
    ALERTMANAGER_URL and ALERTS_EXTERNAL_URL; rules from the services (ALERTS_RULES_FILE or the
    shipped file)."""
    url, external = settings.alert_webhook_url, settings.alerts_external_url or ""
    notifier = WebhookNotifier(url, external_url=external) if url else None
    client = AlertmanagerClient.from_settings(settings)
    sender = (
        AlertmanagerSender(client, external_url=external, interval=settings.alerts_interval_seconds)
        if client
        else None
    )
    return AlertEvaluator(
        notifier=notifier, alertmanager=sender, interval=settings.alerts_interval_seconds
    )
