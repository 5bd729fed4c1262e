"""The alert evaluator: reads every rule's source, moves the state of each of its instances
(normal -> pending -> firing -> normal, or no_data / error / disabled), records transitions,
and sends webhooks and Alertmanager alerts.

A rule that groups (group_by) has one instance per label set in its source's result, each with
its own state, value, history, acknowledgement and silence; one that does not has one instance,
''. An instance that leaves its rule's result resolves (after keep_firing_for), as a series
that disappears does in Prometheus; it keeps no state afterwards. A source that cannot be read
puts every known instance of the rule in its on_error state (one '' instance when none is
known), a source with no data the ungrouped instance in its no_data state.

Exactly one evaluator works at a time across all workers and hosts: it holds a PostgreSQL
advisory lock on a dedicated connection for as long as it runs (data/leader.py); the others find
the lock taken, skip, and try again next interval (so one takes over when the holder stops).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.alertmanager import AlertmanagerClient, AlertmanagerSender, Observed
from taskmaster_dash.alerts.maintenance import muting_window
from taskmaster_dash.alerts.notify import WebhookNotifier
from taskmaster_dash.alerts.rules import (
    Override,
    Rule,
    alert_labels,
    apply_overrides,
    configured_rules,
    instance_key,
)
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.alert_metrics import Instances, read_current, read_many
from taskmaster_dash.data.alert_rule_store import with_app_rules
from taskmaster_dash.data.config import Settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, PoolName, user_message
from taskmaster_dash.data.leader import EVALUATOR_LOCK_KEY, ElectedLoop
from taskmaster_dash.data.maintenance import active_windows
from taskmaster_dash.data.prometheus import PrometheusReader, PrometheusUnavailable, get_prometheus

log = logging.getLogger(__name__)
LOCK_KEY = EVALUATOR_LOCK_KEY
DEFAULT_INTERVAL = 15.0
PROMETHEUS_OFF = "Prometheus is not configured (PROMETHEUS_ENABLED is off)"
NO_DATA = "the source returned no data"
GONE = "no longer in the rule's result"
ACTIVE = ("pending", "firing")


@dataclass(frozen=True)
class Reading:
    """What one instance's source says now. `gone`: the instance left its grouped rule's
    result (the condition no longer holds for it)."""

    value: float | None
    message: str | None = None
    error: bool = False
    gone: bool = False


@dataclass(frozen=True)
class RuleReading:
    """What a rule's source says now: its instances, or why it has none."""

    instances: Instances
    message: str | None = None
    error: bool = False


@dataclass(frozen=True)
class Result:
    rule: Rule
    state: str
    value: float | None
    message: str | None
    since: datetime
    instance: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    row: dict[str, Any]
    transition: store.Transition | None
    notification: tuple[str, datetime, datetime | None] | None  # status, startsAt, endsAt
    keep: bool = True  # False: the instance resolved by leaving the result; forget it


def _fallback(choice: str, unknown: str, before: str | None) -> str | None:
    """The state a rule's no_data / on_error choice gives; None: treat as breached."""
    if choice == "alerting":
        return None
    if choice == "keep_last":
        return before if before in ("normal", *ACTIVE) else unknown
    return "normal" if choice == "normal" else unknown


def decide(
    rule: Rule,
    previous: store.StoredState | None,
    reading: Reading,
    now: datetime,
    silenced: bool = False,
    *,
    acknowledged: bool = False,
    instance: str = "",
    labels: dict[str, str] | None = None,
) -> Decision:
    """The instance's next state from its previous one and what its source says now (pure).

    `silenced`: notifications wait until the silence ends. `acknowledged`: an acknowledgement
    holds them; when it runs out and the instance still fires, it notifies again."""
    before = previous.state if previous else None
    value = reading.value
    cleared_at = previous.cleared_at if previous else None
    state: str | None
    if not rule.enabled:
        state = "disabled"
    elif reading.error:
        state = _fallback(rule.error_state, "error", before)
    elif value is None and not reading.gone:
        state = _fallback(rule.no_data_state, "no_data", before)
    else:
        state = "breached" if value is not None and rule.breached(value) else "normal"
    if state is None or state == "breached":  # the condition holds (or counts as holding)
        waited = (now - previous.since).total_seconds() if previous and before == "pending" else 0
        fire = before == "firing" or waited >= rule.for_seconds
        state, cleared_at = ("firing" if fire else "pending"), None
    elif state == "normal" and before == "firing" and rule.keep_firing_seconds:
        # keep_firing_for: a firing instance stays firing for a while after it clears.
        cleared_at = cleared_at or now
        if (now - cleared_at).total_seconds() < rule.keep_firing_seconds:
            state = "firing"
    if state != "firing":
        cleared_at = None
    unknown = reading.error or (value is None and not reading.gone)
    choice = rule.error_state if reading.error else rule.no_data_state
    if unknown and choice == "keep_last" and previous and state == before:
        value = previous.value  # keep_last keeps the last value too

    since = previous.since if previous and state == before else now
    fired_at = previous.fired_at if previous else None
    if state == "firing" and before != "firing":
        fired_at = now
    notified = previous.notified if previous else False
    was_held = previous.held if previous else False
    held = state == "firing" and (acknowledged or (was_held and silenced))
    notification: tuple[str, datetime, datetime | None] | None = None
    if state == "firing" and not silenced and not acknowledged and (not notified or was_held):
        # First notification, or again because the acknowledgement holding it ran out. A row
        # saved as firing without fired_at (written by hand) still starts at a time.
        notification, notified = ("firing", fired_at or since, None), True
    elif state in ("normal", "disabled") and notified:
        notification, notified = ("resolved", fired_at or since, now), False
    if state in ("normal", "disabled"):
        fired_at = None
    # Unknown (error, no_data) is not "resolved": a firing alert stays open at the receiver.
    labels = dict(labels if labels is not None else (previous.labels if previous else {}))
    row = {
        "rule_name": rule.name,
        "instance": instance,
        "labels": labels,
        "title": rule.title,
        "severity": rule.severity,
        "link": rule.link,
        "state": state,
        "value": value,
        "message": reading.message,
        "since": since,
        "fired_at": fired_at,
        "notified": notified,
        "held": held,
        "cleared_at": cleared_at,
    }
    transition = (
        store.Transition(rule.name, before, state, reading.value, reading.message, instance, labels)
        if state != before
        else None
    )
    return Decision(row, transition, notification, keep=not (reading.gone and state == "normal"))


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


def instance_readings(
    rule: Rule, reading: RuleReading, known: dict[str, store.StoredState]
) -> list[tuple[str, dict[str, str] | None, Reading]]:
    """Each instance to decide this evaluation, with its labels (None: keep the stored ones)
    and reading: those in the result, and the known ones that are not (`known`: the rule's
    stored instances by key)."""
    if not rule.enabled:
        return [(key, None, Reading(None)) for key in known] or [("", {}, Reading(None))]
    if reading.error:
        failing = Reading(None, reading.message, error=True)
        return [(key, None, failing) for key in known] or [("", {}, failing)]
    found: list[tuple[str, dict[str, str] | None, Reading]] = [
        (key, labels, Reading(value)) for key, (labels, value) in reading.instances.items()
    ]
    message = reading.message or NO_DATA
    for key in sorted(known.keys() - reading.instances.keys()):
        # Ungrouped: no data. Grouped (or a label set the rule no longer makes): the series
        # went away, so its alert resolves.
        gone = bool(rule.group_by) or key != ""
        found.append((key, None, Reading(None, GONE if gone else message, gone=gone)))
    if not rule.group_by and "" not in reading.instances and "" not in known:
        found.append(("", {}, Reading(None, message)))
    return found


def _query(rule: Rule) -> tuple[Any, ...]:
    """What a rule reads: rules with the same read it once per evaluation."""
    return (rule.source_kind, rule.source, rule.params, rule.group_by)


class AlertEvaluator(ElectedLoop):
    """Evaluates every rule each `interval` seconds in the one process holding its lock.

    `clock` gives "now" for the pending periods and for when acknowledgements run out (tests
    pass one they move forward)."""

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
        self._memory: dict[tuple[str, str], store.StoredState] = {}
        self._last_rules = self.rules

    def read(self, rule: Rule) -> RuleReading:
        """The rule's instances now: SQL from the catalogue, PromQL as a vector whose
        group_by labels name the instance (ungrouped: the series' sum, as today)."""
        if rule.source_kind == "sql":
            try:
                found = read_current(rule)
            except SQLAlchemyError as exc:
                return RuleReading({}, user_message(exc), error=True)
        else:
            reader = self.prometheus()
            if reader is None:
                return RuleReading({}, PROMETHEUS_OFF)
            try:
                samples = reader.instant(rule.source)
            except PrometheusUnavailable as exc:
                return RuleReading({}, str(exc), error=True)
            found = {}
            for sample in samples:
                labels = {name: sample.labels.get(name, "") for name in rule.group_by}
                key = instance_key(labels)
                total = found[key][1] if key in found else 0.0
                found[key] = (labels, total + sample.value)
        return RuleReading(
            {k: (labels, v) for k, (labels, v) in found.items() if not math.isnan(v)}
        )

    def _read_sql(self, rules: list[Rule]) -> dict[tuple[Any, ...], RuleReading]:
        """Every enabled SQL rule's reading, one per distinct query, all in one transaction."""
        distinct: dict[tuple[Any, ...], Rule] = {}
        for rule in rules:
            if rule.enabled and rule.source_kind == "sql":
                distinct.setdefault(_query(rule), rule)
        readings = {}
        for query, found in zip(distinct, read_many(list(distinct.values())), strict=True):
            readings[query] = (
                RuleReading({}, user_message(found), error=True)
                if isinstance(found, SQLAlchemyError)
                else RuleReading(found)
            )
        return readings

    def work(self) -> None:
        self.evaluate_once()

    def evaluate_once(self, *, persist: bool = True) -> list[Result]:
        """Evaluate every rule once. With persist, store states and history and notify."""
        now = self.clock()
        try:
            rules = self._last_rules = with_app_rules(effective_rules(self.rules))
            previous = store.stored_states()
            holds = store.holds(now)
            windows = active_windows(now)
        except SQLAlchemyError as exc:
            log.warning("alerts: cannot read alert state (%s); using memory", user_message(exc))
            rules, previous, holds = self._last_rules, dict(self._memory), store.Holds()
            windows = []
        by_rule: dict[str, dict[str, store.StoredState]] = {}
        for (name, key), state in previous.items():
            by_rule.setdefault(name, {})[key] = state
        decided: list[tuple[Rule, Decision, store.StoredState | None]] = []
        # Rules that read the same metric the same way (a warning and a critical threshold)
        # share one read per evaluation.
        reads = self._read_sql(rules)
        for rule in rules:
            known = by_rule.get(rule.name, {})
            query = _query(rule)
            if not rule.enabled:
                reading = RuleReading({})
            elif query in reads:
                reading = reads[query]
            else:
                reading = reads[query] = self.read(rule)
            for key, labels, instance_reading in instance_readings(rule, reading, known):
                before = known.get(key)
                decision = decide(
                    rule,
                    before,
                    instance_reading,
                    now,
                    # A maintenance window mutes like a silence: state kept, no notification.
                    holds.is_silenced(rule.name, key)
                    or muting_window(windows, alert_labels(rule, labels), now) is not None,
                    acknowledged=(rule.name, key) in holds.acknowledged,
                    instance=key,
                    labels=labels,
                )
                decided.append((rule, decision, before))
        if persist:
            self._store(decided, now)
        return [
            Result(
                rule,
                d.row["state"],
                d.row["value"],
                d.row["message"],
                d.row["since"],
                d.row["instance"],
                d.row["labels"],
            )
            for rule, d, _before in decided
        ]

    def _store(
        self, decided: list[tuple[Rule, Decision, store.StoredState | None]], now: datetime
    ) -> None:
        fields = store.StoredState.__dataclass_fields__
        kept = [d.row for _rule, d, _before in decided if d.keep]
        # Only rows that changed are written (most do not, most of the time).
        changed, unchanged = [], []
        for _rule, d, before in decided:
            if not d.keep:
                continue
            if before is not None and all(getattr(before, k) == d.row[k] for k in fields):
                unchanged.append((d.row["rule_name"], d.row["instance"]))
            else:
                changed.append(d.row)
        transitions = [d.transition for _r, d, _b in decided if d.transition]
        try:
            store.save_states(changed, transitions, unchanged)
        except SQLAlchemyError as exc:
            log.error("alerts: cannot save alert state: %s", user_message(exc))
        self._memory = {
            (row["rule_name"], row["instance"]): store.StoredState(**{k: row[k] for k in fields})
            for row in kept
        }
        if self.notifier is not None:
            for rule, d, _before in decided:
                if d.notification:
                    status, starts, ends = d.notification
                    self.notifier.notify(
                        rule, status, d.row["value"], starts, ends, labels=d.row["labels"]
                    )
        if self.alertmanager is not None:  # every open alert, every evaluation
            self.alertmanager.publish(
                (
                    Observed(rule, d.row, before.fired_at if before else None)
                    for rule, d, before in decided
                ),
                now,
            )
        self.evaluations += 1

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
