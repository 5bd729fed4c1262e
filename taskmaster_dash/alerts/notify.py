"""Webhook notifications in Prometheus Alertmanager's webhook format (version 4).

`WebhookNotifier.send` only puts the message on a queue; a worker thread posts it, retrying
with exponential backoff, so a slow or dead receiver never holds up evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from taskmaster_dash.alerts.delivery import DeliveryWorker, rfc3339
from taskmaster_dash.alerts.rules import Rule, alert_labels, format_number

log = logging.getLogger(__name__)
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def alertmanager_payload(
    rule: Rule,
    status: str,
    value: float | None,
    starts_at: datetime,
    ends_at: datetime | None,
    *,
    receiver: str = "taskmaster-dash",
    external_url: str = "",
    instance_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One instance's alert ("firing" or "resolved") as Alertmanager would post it to a
    webhook."""
    labels = alert_labels(rule, instance_labels)
    extra = set(labels) - set(alert_labels(rule))
    group = {"alertname": rule.name, **{k: labels[k] for k in sorted(labels) if k in extra}}
    annotations = {
        "summary": rule.title,
        "description": rule.description,
        "runbook": rule.runbook,
        "value": format_number(value),
        "threshold": rule.condition,
    }
    base = external_url.rstrip("/")
    return {
        "version": "4",
        # One message per instance: its group is the alert name and the instance's labels.
        "groupKey": "{}:{" + ",".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": f"{base}/alerts" if base else "",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(starts_at),
                "endsAt": rfc3339(ends_at) if ends_at else ZERO_TIME,
                "generatorURL": f"{base}{rule.link}" if base else rule.link,
                "fingerprint": fingerprint(labels),
            }
        ],
    }


class WebhookNotifier(DeliveryWorker[dict[str, Any]]):
    def __init__(
        self,
        url: str,
        *,
        receiver: str = "taskmaster-dash",
        external_url: str = "",
        max_attempts: int = 6,
        backoff_seconds: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.receiver = receiver
        self.external_url = external_url
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout
        self.delivered = 0
        self.given_up = 0
        super().__init__("alert-webhook", maxsize=1000)

    def notify(
        self,
        rule: Rule,
        status: str,
        value: float | None,
        starts_at: datetime,
        ends_at: datetime | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Queue one instance's notification (`labels`: the instance's labels)."""
        payload = alertmanager_payload(
            rule,
            status,
            value,
            starts_at,
            ends_at,
            receiver=self.receiver,
            external_url=self.external_url,
            instance_labels=labels,
        )
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.given_up += 1
            log.error("alert webhook queue is full; dropped %s %s", status, rule.name)

    def _deliver(self, payload: dict[str, Any]) -> None:
        for attempt in range(self.max_attempts):
            try:
                response = requests.post(self.url, json=payload, timeout=self.timeout)
                if response.ok:
                    self.delivered += 1
                    return
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses this message; retrying will not help
                reason = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
            delay = min(self.backoff_seconds * 2**attempt, 300)
            log.warning("alert webhook %s failed (%s); retrying in %.1f s", self.url, reason, delay)
            if self._stop.wait(delay):
                break
        self.given_up += 1
        log.error("alert webhook %s: gave up on %s", self.url, payload["groupKey"])
