"""The alert evaluator: reads every rule's source, moves its state (normal -> pending -> firing
-> normal, or no_data / error / disabled), records transitions, and sends webhooks.

Exactly one evaluator works at a time across all workers and hosts: it holds a PostgreSQL
advisory lock on a dedicated connection for as long as it runs; the others find the lock taken,
skip, and try again next interval (so one takes over when the holder stops).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from taskmaster_dash.alerts.notify import WebhookNotifier
from taskmaster_dash.alerts.rules import Override, Rule, apply_overrides, configured_rules
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, Actor, Database, PoolName, user_message
from taskmaster_dash.data.prometheus import PrometheusReader, PrometheusUnavailable, get_prometheus

log = logging.getLogger(__name__)
LOCK_KEY = store.EVALUATOR_LOCK_KEY
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
    database: Database,
    rules: list[Rule],
    actor: Actor = SYSTEM_ACTOR,
    pool: PoolName = PoolName.BACKGROUND,
) -> list[Rule]:
    """`rules` with the admins' overrides from the database applied."""
    overrides = store.rule_overrides(database, actor, pool)
    return apply_overrides(rules, {name: Override(**values) for name, values in overrides.items()})


class AlertEvaluator:
    def __init__(
        self,
        database: Database,
        *,
        rules: list[Rule] | None = None,
        prometheus: Callable[[], PrometheusReader | None] = get_prometheus,
        notifier: WebhookNotifier | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.database = database
        self.rules = rules if rules is not None else list(configured_rules())
        self.prometheus = prometheus
        self.notifier = notifier
        self.interval = interval
        self.evaluations = 0
        self._memory: dict[str, store.StoredState] = {}
        self._last_rules = self.rules
        write = database.engines[PoolName.WRITE]
        connect_args: dict[str, Any] = {
            "application_name": "taskmaster_alert_evaluator",
            "connect_timeout": 5,
        }
        if database.ssl_mode:
            connect_args["sslmode"] = database.ssl_mode
        self._lock_engine = create_engine(
            write.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
        self._lock_conn: Connection | None = None
        self._leading = False

    # -- the one-evaluator lock ---------------------------------------------------------------

    def lead(self) -> bool:
        """True when this evaluator holds the lock (taking it if free); False when another does.

        The lock's connection stays open while this process stands by as well: a standby then
        retries on the same session instead of opening a connection every interval, and it shows
        in pg_stat_activity. If the database itself is unreachable, a leader carries on from
        memory, so the database-connection rule can still fire and notify."""
        if self._leading and self._lock_conn is not None:
            try:
                store.check_alive(self._lock_conn)
                return True
            except SQLAlchemyError:
                self._drop_lock()  # the session, and so the lock, is gone: try to take it again
        try:
            if self._lock_conn is None:
                self._lock_conn = self._lock_engine.connect()
            got = store.try_evaluator_lock(self._lock_conn)
        except SQLAlchemyError:
            self._drop_lock()
            if self._leading:
                log.warning("alerts: database unreachable; evaluating from memory")
            return self._leading
        if got != self._leading:
            log.info("alerts: this process %s the evaluator", "is now" if got else "is no longer")
        self._leading = got
        return got

    def _drop_lock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

    def release(self) -> None:
        """Give up the lock (closing its connection releases it) so another may take over."""
        self._drop_lock()
        self._leading = False
        self._lock_engine.dispose()

    # -- evaluation -----------------------------------------------------------------------------

    def read(self, rule: Rule) -> Reading:
        if rule.source_kind == "sql":
            try:
                value = store.SQL_SOURCES[rule.source](self.database)
            except SQLAlchemyError as exc:
                return Reading(None, user_message(exc), error=True)
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

    def evaluate_once(self, *, persist: bool = True) -> list[Result]:
        """Evaluate every rule once. With persist, store states and history and notify."""
        now = datetime.now(UTC)
        try:
            rules = self._last_rules = effective_rules(self.database, self.rules)
            previous = store.stored_states(self.database)
            silenced = store.silenced_rules(self.database)
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
                    self.database,
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
            self.evaluations += 1
        return [
            Result(rule, d.row["state"], d.row["value"], d.row["message"], d.row["since"])
            for rule, d in zip(rules, decisions, strict=True)
        ]

    def run(self, stop: threading.Event) -> None:
        """Evaluate every `interval` seconds while holding the lock, until `stop` is set."""
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    if self.lead():
                        self.evaluate_once()
                except Exception:  # the loop must survive anything and retry
                    log.exception("alerts: evaluation failed; retrying next interval")
                stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self.release()
            if self.notifier is not None:
                self.notifier.flush(5)  # give queued notifications a moment to go out


def evaluator_from_environment(database: Database) -> AlertEvaluator:
    """Interval and webhook from ALERTS_INTERVAL_SECONDS, ALERT_WEBHOOK_URL and
    ALERTS_EXTERNAL_URL; rules from ALERTS_RULES_FILE or the shipped file."""
    settings = load_settings()
    url = settings.alert_webhook_url
    notifier = (
        WebhookNotifier(url, external_url=settings.alerts_external_url or "") if url else None
    )
    return AlertEvaluator(database, notifier=notifier, interval=settings.alerts_interval_seconds)


def start_background(database: Database) -> threading.Event | None:
    """Start the evaluator in a daemon thread unless ALERTS_EVALUATOR is off; set the returned
    event to stop it."""
    if not load_settings().alerts_evaluator:
        log.info("alerts: evaluator not started (ALERTS_EVALUATOR is off)")
        return None
    evaluator = evaluator_from_environment(database)
    stop = threading.Event()
    thread = threading.Thread(
        target=evaluator.run, args=(stop,), name="alert-evaluator", daemon=True
    )
    thread.start()

    # Stopping the database first would make a running evaluation fail to save its state.
    def halt() -> None:
        stop.set()
        thread.join(10)

    database.stop_before_dispose(halt)
    return stop
