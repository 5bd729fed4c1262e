"""Prometheus Alertmanager: the evaluator sends it every open alert the way Prometheus does, the
app's silences become its silences, and its own silences show on /alerts.

`AlertmanagerClient` speaks the v2 API to one Alertmanager or an HA pair (ALERTMANAGER_URL,
comma-separated). Alerts go to every instance (they deduplicate among themselves); a silence
goes to the first instance that takes it (the pair shares silences by gossip).

`AlertmanagerSender` is the evaluator's hook: `publish` only queues the evaluation's alerts; a
worker thread posts them and records each delivery's outcome in the database (data/alerts.py),
so a dead or slow Alertmanager never holds up evaluation and /alerts can say it is failing.
"""

from __future__ import annotations

import logging
import queue
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.delivery import DeliveryWorker, rfc3339
from taskmaster_dash.alerts.rules import Rule, alert_labels, format_number, instance_anchor
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.config import Settings
from taskmaster_dash.data.db import Actor, user_message
from taskmaster_dash.services import current

log = logging.getLogger(__name__)
RESOLVED_RESEND = timedelta(minutes=15)  # Prometheus resends a resolved alert this long
VALID_INTERVALS = 4  # an alert not heard of for 4 intervals resolves itself (as Prometheus)


class AlertmanagerError(RuntimeError):
    """No Alertmanager answered as expected; the message says which and why (one line),
    `reason` only why."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def alert_annotations(rule: Rule, value: float | None) -> dict[str, str]:
    annotations = {
        "summary": rule.title,
        "description": rule.description,
        "runbook": rule.runbook,
        "runbook_url": rule.runbook_url,
        "value": format_number(value),
        "threshold": rule.condition,
    }
    return {k: v for k, v in annotations.items() if v}


def generator_url(rule: Rule, external_url: str, instance: str = "") -> str:
    """The instance's row on the app's /alerts page."""
    return f"{external_url.rstrip('/')}/alerts#{instance_anchor(rule.name, instance)}"


def urls_from(setting: str | None) -> list[str]:
    return [u.strip().rstrip("/") for u in (setting or "").split(",") if u.strip()]


def _reason(exc: requests.RequestException | None, response: requests.Response | None) -> str:
    if response is not None:
        return f"HTTP {response.status_code}: {' '.join(response.text.split())[:200]}"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


# ------------------------------------------------------------------------------ matching


def matcher_matches(matcher: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One Alertmanager matcher against a label set (a missing label is the empty string)."""
    value = labels.get(str(matcher.get("name")), "")
    wanted = str(matcher.get("value", ""))
    if matcher.get("isRegex"):
        try:
            hit = re.fullmatch(wanted, value) is not None
        except re.error:
            return False
    else:
        hit = value == wanted
    return hit if matcher.get("isEqual", True) else not hit


def silence_matches(silence: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    matchers = silence.get("matchers") or []
    return bool(matchers) and all(matcher_matches(m, labels) for m in matchers)


@dataclass(frozen=True)
class AmSilence:
    """An active Alertmanager silence, as /alerts and `alerts check` show it."""

    id: str
    ends_at: datetime
    created_by: str
    comment: str


Target = tuple[Rule, str, Mapping[str, str]]  # a rule, an instance key and its labels


def active_silences_by_instance(
    silences: Iterable[Mapping[str, Any]],
    targets: Iterable[Target],
    exclude: frozenset[str] | set[str] = frozenset(),
) -> dict[tuple[str, str], list[AmSilence]]:
    """The active silences (not those in `exclude`) matching each instance's alert labels,
    keyed by (rule name, instance)."""
    active = [
        s
        for s in silences
        if (s.get("status") or {}).get("state") == "active" and s.get("id") not in exclude
    ]
    found: dict[tuple[str, str], list[AmSilence]] = {}
    for rule, instance, instance_labels in targets:
        labels = alert_labels(rule, instance_labels)
        for s in active:
            if silence_matches(s, labels):
                found.setdefault((rule.name, instance), []).append(
                    AmSilence(
                        str(s["id"]),
                        datetime.fromisoformat(str(s["endsAt"]).replace("Z", "+00:00")),
                        str(s.get("createdBy", "")),
                        str(s.get("comment", "")),
                    )
                )
    return found


# ------------------------------------------------------------------------------ the client


class AlertmanagerClient:
    def __init__(self, urls: list[str], *, timeout: float = 3.0) -> None:
        if not urls:
            raise ValueError("at least one Alertmanager URL is needed")
        self.urls = urls
        self.timeout = timeout
        self._http = requests.Session()

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertmanagerClient | None:
        urls = urls_from(settings.alertmanager_url)
        return cls(urls) if urls else None

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The response if it is a success; AlertmanagerError naming the URL otherwise."""
        try:
            response = self._http.request(method, url, timeout=self.timeout, **kwargs)
            if response.ok:
                return response
            reason = _reason(None, response)
        except requests.RequestException as exc:
            reason = _reason(exc, None)
        raise AlertmanagerError(f"{url}: {reason}", reason)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> dict[str, str | None]:
        """Post to every Alertmanager; per URL, None for delivered or what went wrong."""
        outcome: dict[str, str | None] = {}
        for url in self.urls:
            try:
                self._call("POST", f"{url}/api/v2/alerts", json=alerts)
                outcome[url] = None
            except AlertmanagerError as exc:
                outcome[url] = exc.reason
        return outcome

    def _first(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        problems = []
        for url in self.urls:
            try:
                return self._call(method, url + path, **kwargs)
            except AlertmanagerError as exc:
                problems.append(str(exc))
        raise AlertmanagerError("; ".join(problems))

    def create_silence(
        self, labels: Mapping[str, str], ends_at: datetime, created_by: str, comment: str
    ) -> str:
        """A silence matching exactly these labels until `ends_at`; its id."""
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in sorted(labels.items())
            ],
            "startsAt": rfc3339(datetime.now(UTC)),
            "endsAt": rfc3339(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        return self.post_silence(body)

    def post_silence(self, body: Mapping[str, Any]) -> str:
        """Create the silence `body` describes (Alertmanager's own shape: any matchers, any
        start); its id."""
        return str(self._first("POST", "/api/v2/silences", json=body).json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        if not re.fullmatch(r"[0-9a-fA-F-]{1,64}", silence_id):
            raise AlertmanagerError(f"not a silence id: {silence_id[:64]!r}")
        self._first("DELETE", f"/api/v2/silence/{silence_id}")

    def silences(self) -> list[dict[str, Any]]:
        answer = self._first("GET", "/api/v2/silences").json()
        return answer if isinstance(answer, list) else []


# ------------------------------------------------------------------------------ the sender


@dataclass(frozen=True)
class Observed:
    """One instance after an evaluation: its new row (with instance and labels) and when the
    stored one before it started firing."""

    rule: Rule
    row: Mapping[str, Any]
    previous_fired_at: datetime | None


class AlertmanagerSender(DeliveryWorker[list[dict[str, Any]]]):
    """The evaluator's hook: every open alert each evaluation, and each resolved one for 15
    minutes after it resolved (as Prometheus sends them)."""

    def __init__(
        self, client: AlertmanagerClient, *, external_url: str = "", interval: float = 15.0
    ) -> None:
        self.client = client
        self.external_url = external_url
        self.interval = interval
        self._resolved: dict[tuple[str, str], tuple[dict[str, Any], datetime]] = {}
        super().__init__("alertmanager", maxsize=20)

    def _alert(self, o: Observed, starts: datetime, ends: datetime) -> dict[str, Any]:
        alert = {
            "labels": alert_labels(o.rule, o.row.get("labels")),
            "annotations": alert_annotations(o.rule, o.row.get("value")),
            "startsAt": rfc3339(starts),
            "endsAt": rfc3339(ends),
        }
        if self.external_url:
            alert["generatorURL"] = generator_url(
                o.rule, self.external_url, o.row.get("instance", "")
            )
        return alert

    def publish(self, observed: Iterable[Observed], now: datetime) -> None:
        """Queue this evaluation's alerts. An alert is open from firing until it is normal or
        disabled again (no data or an error after firing keeps it open, as in the app)."""
        valid_until = now + timedelta(seconds=VALID_INTERVALS * max(self.interval, 1))
        batch = []
        for o in observed:
            key = (o.rule.name, o.row.get("instance", ""))
            fired_at = o.row.get("fired_at")
            if fired_at is not None:
                self._resolved.pop(key, None)
                batch.append(self._alert(o, fired_at, valid_until))
            elif o.previous_fired_at is not None:
                resolved = self._alert(o, o.previous_fired_at, now)
                self._resolved[key] = (resolved, now + RESOLVED_RESEND)
        for key, (alert, keep_until) in list(self._resolved.items()):
            if keep_until < now:
                del self._resolved[key]
            else:
                batch.append(alert)
        if not batch:
            return
        try:
            self._queue.put_nowait(batch)
        except queue.Full:  # the next evaluation sends the same alerts again
            log.warning("alertmanager: queue full; dropped one evaluation's alerts")

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for url, problem in self.client.post_alerts(batch).items():
            if problem:
                log.warning("alertmanager %s: cannot send %d alerts: %s", url, len(batch), problem)
            try:
                store.record_delivery(url, problem)
            except SQLAlchemyError as exc:
                log.warning("alertmanager: cannot record delivery: %s", user_message(exc))


# ------------------------------------------------------------------------------ silences


def silence_comment(username: str, note: str) -> str:
    return (
        f"{note} (silenced on TaskMaster Dash by {username})"
        if note
        else (f"Silenced on TaskMaster Dash by {username}")
    )


def mirror_silence(
    client: AlertmanagerClient,
    rule: Rule,
    minutes: int,
    username: str,
    note: str,
    instance_labels: Mapping[str, str] | None = None,
) -> str:
    """The app's silence as an Alertmanager silence with matchers on the instance's labels
    (None: the rule's own labels, which every instance carries); its id."""
    ends_at = datetime.now(UTC) + timedelta(minutes=minutes)
    return client.create_silence(
        alert_labels(rule, instance_labels), ends_at, username, silence_comment(username, note)
    )


# The app's side (called from the /alerts actions, the page and `alerts check`).


def silence_in_alertmanager(
    actor: Actor,
    rule: Rule,
    silence_id: str,
    minutes: int,
    note: str,
    instance_labels: Mapping[str, str] | None = None,
) -> str | None:
    """Make the app's new silence an Alertmanager silence too; None, or what went wrong (the
    silence then holds in the app only)."""
    services = current()
    if services.alertmanager is None:
        return None
    try:
        am_id = mirror_silence(
            services.alertmanager, rule, minutes, actor.username or "", note, instance_labels
        )
    except AlertmanagerError as exc:
        return f"Alertmanager did not take it ({exc}), so it holds in the app only."
    store.link_alertmanager_silences(actor, silence_id, [am_id])
    services.caches.alertmanager_silences.clear()
    return None


def expire_in_alertmanager(ids: list[str]) -> str | None:
    """Expire the Alertmanager silences behind ended app silences; None, or what went wrong."""
    services = current()
    if services.alertmanager is None or not ids:
        return None
    problems = []
    for silence_id in ids:
        try:
            services.alertmanager.expire_silence(silence_id)
        except AlertmanagerError as exc:
            problems.append(str(exc))
    services.caches.alertmanager_silences.clear()
    if problems:
        return f"Alertmanager did not expire it ({'; '.join(problems)[:300]})."
    return None


def alertmanager_silences(
    targets: Iterable[Target], actor: Actor
) -> tuple[dict[tuple[str, str], list[AmSilence]], str | None]:
    """Alertmanager's own active silences per (rule, instance) (not those the app made, which
    the app shows as its own), read at most every few seconds; and what went wrong reading
    them."""
    services = current()
    client = services.alertmanager
    if client is None:
        return {}, None
    try:
        raw = services.caches.alertmanager_silences.get("silences", client.silences)
    except (AlertmanagerError, ValueError) as exc:  # ValueError: not JSON
        return {}, f"Alertmanager silences could not be read: {exc}"
    own = store.app_alertmanager_silence_ids(actor)
    return active_silences_by_instance(raw, targets, own), None
