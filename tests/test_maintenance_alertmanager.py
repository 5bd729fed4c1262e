"""Maintenance windows in a real Alertmanager (Debian's binary, started on loopback as in
tests/test_alertmanager.py): a window made on /alerts becomes one silence per occurrence open
now or starting within 7 days, with matchers on its labels; a sync makes the next ones ahead and
remakes lost ones; deleting the window expires them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import text

from taskmaster_dash.alerts.alertmanager import AlertmanagerClient, rfc3339
from taskmaster_dash.alerts.maintenance_sync import sync_windows
from taskmaster_dash.data.local_alertmanager import LocalAlertmanager, alertmanager_binary
from tests.support.callbacks import callback_output
from tests.support.maintenance import save_one_off_window
from tests.support.processes import free_port
from tests.support.sql import all_rows, count_rows
from tests.test_alertmanager import am_config, am_silences
from tests.test_alerts import Receiver
from tests.test_maintenance import create, delete

pytestmark = pytest.mark.skipif(
    alertmanager_binary() is None, reason="needs prometheus-alertmanager (make test installs it)"
)


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


@pytest.fixture
def clean_windows(owner_engine, services):
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE maintenance_windows, maintenance_window_silences, audit_logs"))


@pytest.fixture
def am(tmp_path, services):
    """A real Alertmanager, and the services using it (the app's syncs go there)."""
    hook = Receiver()
    server = LocalAlertmanager(tmp_path / "alertmanager", am_config(hook.url))
    server.start()
    try:
        with services.using(alertmanager=AlertmanagerClient([server.url])):
            yield server
    finally:
        server.stop()
        hook.close()


def live(server) -> list[dict]:
    return [s for s in am_silences(server) if s["status"]["state"] in ("active", "pending")]


def expected_nights(now: datetime) -> list[tuple[datetime, datetime]]:
    """Sat and Sun 22:00-02:00 in Berlin, open now or starting within 7 days, worked out here
    day by day."""
    berlin = ZoneInfo("Europe/Berlin")
    today = now.astimezone(berlin).date()
    found = []
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if day.weekday() not in (5, 6):
            continue
        start = datetime.combine(day, time(22), berlin).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(2), berlin).astimezone(UTC)
        if end > now and start < now + timedelta(days=7):
            found.append((start, end))
    return found


def test_a_weekly_window_becomes_silences_ahead_and_deleting_expires_them(
    am, clean_windows, dash_app, client_as, owner_engine
):
    before = datetime.now(UTC)
    said = json.dumps(
        callback_output(
            create(
                client_as("admin"),
                dash_app,
                **{"maint-matchers": 'service_name=billing\nseverity=~"warning|critical"'},
            ),
            "maint-message.children",
        )
    )
    assert "message-success" in said, said
    made = live(am)
    nights = expected_nights(before)
    assert len(made) == len(nights) >= 2
    for silence, (start, end) in zip(sorted(made, key=lambda s: s["endsAt"]), nights, strict=True):
        assert {
            (m["name"], m["value"], m["isRegex"], m.get("isEqual", True))
            for m in silence["matchers"]
        } == {
            ("service", "taskmaster-dash", False, True),
            ("service_name", "billing", False, True),
            ("severity", "warning|critical", True, True),
        }
        assert parse(silence["endsAt"]) == end
        # Made ahead: it starts with its occurrence (or now, for one already open).
        assert abs(parse(silence["startsAt"]) - max(start, before)) < timedelta(seconds=5)
        assert silence["createdBy"] == "test-admin"
        assert "Maintenance window 'Nightly import'" in silence["comment"]
    links = all_rows(owner_engine, "SELECT silence_id FROM maintenance_window_silences")
    assert {r["silence_id"] for r in links} == {s["id"] for s in made}

    # Syncing again changes nothing; a silence Alertmanager lost is made again.
    client = AlertmanagerClient([am.url])
    assert sync_windows(client).created == 0
    client.expire_silence(made[0]["id"])
    again = sync_windows(client)
    assert (again.created, again.problems) == (1, [])
    assert len(live(am)) == len(nights)

    # Deleting the window on /alerts expires every one of them.
    (window_id,) = [r["id"] for r in all_rows(owner_engine, "SELECT id FROM maintenance_windows")]
    said = json.dumps(
        callback_output(
            delete(client_as("admin"), dash_app, str(window_id)), "maint-delete-message.children"
        )
    )
    assert "Deleted maintenance window" in said and "message-success" in said
    assert live(am) == []
    assert count_rows(owner_engine, "maintenance_window_silences") == 0


def test_an_open_window_mutes_matching_alerts_in_alertmanager(am, clean_windows, users):
    now = datetime.now(UTC)
    save_one_off_window(
        users.actor("admin"),
        "Billing deploy",
        now - timedelta(minutes=10),
        now + timedelta(hours=1),
        now,
        matchers="service_name=billing",
    )
    client = AlertmanagerClient([am.url])
    assert sync_windows(client).created == 1
    alerts = [
        {
            "labels": {
                "alertname": "HighErrorRate",
                "severity": "critical",
                "service": "taskmaster-dash",
                "service_name": service,
            },
            "startsAt": rfc3339(now),
        }
        for service in ("billing", "search")
    ]
    requests.post(f"{am.url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()
    states = {
        a["labels"]["service_name"]: a["status"]["state"]
        for a in requests.get(f"{am.url}/api/v2/alerts", timeout=5).json()
    }
    assert states == {"billing": "suppressed", "search": "active"}


def test_silences_are_made_ahead_as_occurrences_come_within_a_week(am, clean_windows, users):
    now = datetime.now(UTC)
    starts = now + timedelta(days=10)
    save_one_off_window(
        users.actor("admin"), "Datacentre move", starts, starts + timedelta(hours=6), now
    )
    client = AlertmanagerClient([am.url])
    assert sync_windows(client, now).created == 0  # ten days off: not yet
    assert live(am) == []
    assert sync_windows(client, now + timedelta(days=4)).created == 1  # six days off: made
    (silence,) = live(am)
    assert silence["status"]["state"] == "pending"
    assert parse(silence["startsAt"]) == starts.replace(second=0, microsecond=0)
    # No label matchers: every rule of this app (and only this app's alerts).
    assert [(m["name"], m["value"]) for m in silence["matchers"]] == [
        ("service", "taskmaster-dash")
    ]


def test_with_alertmanager_down_the_window_is_saved_and_synced_later(
    am, services, clean_windows, dash_app, client_as, owner_engine
):
    dead = AlertmanagerClient([f"http://127.0.0.1:{free_port()}"], timeout=1)
    with services.using(alertmanager=dead):
        said = json.dumps(
            callback_output(create(client_as("admin"), dash_app), "maint-message.children")
        )
    assert "Created 'Nightly import'" in said and "Alertmanager not updated yet" in said
    assert "message-warning" in said
    assert count_rows(owner_engine, "maintenance_windows") == 1
    assert count_rows(owner_engine, "maintenance_window_silences") == 0
    result = sync_windows(AlertmanagerClient([am.url]))
    assert result.created == len(expected_nights(datetime.now(UTC))) and not result.problems
    assert len(live(am)) == result.created

    # Deleted while Alertmanager is down: the silences stay linked, and the next sync that
    # reaches it expires them.
    (window_id,) = [r["id"] for r in all_rows(owner_engine, "SELECT id FROM maintenance_windows")]
    with services.using(alertmanager=dead):
        said = json.dumps(
            callback_output(
                delete(client_as("admin"), dash_app, str(window_id)),
                "maint-delete-message.children",
            )
        )
    assert "Deleted maintenance window" in said and "Alertmanager not updated yet" in said
    assert count_rows(owner_engine, "maintenance_window_silences") == result.created
    caught_up = sync_windows(AlertmanagerClient([am.url]))
    assert (caught_up.expired, caught_up.problems) == (result.created, [])
    assert live(am) == []
    assert count_rows(owner_engine, "maintenance_window_silences") == 0
