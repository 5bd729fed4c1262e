"""Alertmanager: a real one (Debian's binary) started here on loopback, its receiver a webhook
this test listens on. Alerts go there the way Prometheus sends them; its inhibition rule (the
shipped example's) mutes the dependent alerts; silences go both ways; a dead Alertmanager never
breaks evaluation and /alerts says notifications are failing."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from dash.testing.wait import until
from sqlalchemy import text

from taskmaster_dash.alerts.alertmanager import (
    AlertmanagerClient,
    AlertmanagerSender,
    rfc3339,
    silence_matches,
)
from taskmaster_dash.alerts.evaluator import AlertEvaluator
from taskmaster_dash.alerts.rules import load_rules
from taskmaster_dash.data.config import SettingsError, load_settings
from taskmaster_dash.data.local_alertmanager import LocalAlertmanager, alertmanager_binary
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_values
from tests.support.processes import free_port
from tests.test_alerts import (
    ALERT_TABLES,
    Receiver,
    act,
    acted,
    cli_env,
    count_elements,
    firing_alert,
    insert_pending_tasks,
    table_rows,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "alertmanager.example.yml"
EXTERNAL = "http://dash.example"

pytestmark = pytest.mark.skipif(
    alertmanager_binary() is None, reason="needs prometheus-alertmanager (make test installs it)"
)


class Clock:
    """The evaluator's clock: the test says when time moves (to now: Alertmanager compares
    startsAt/endsAt with its own wall clock)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> datetime:
        self.now = max(self.now + timedelta(milliseconds=1), datetime.now(UTC))
        return self.now


def rule(name: str, **changes):
    return replace(next(r for r in load_rules() if r.name == name), **changes)


def always(name: str):
    """The rule, made to fire on any reading (>= 0) at once."""
    return rule(name, comparison=">=", threshold=0, for_seconds=0)


def am_config(hook_url: str) -> str:
    """The shipped example with every receiver sent to the test's webhook and 1 s timings."""
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    timings = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    config["route"].update(timings)
    for route in config["route"]["routes"]:
        route.update(timings)
    for receiver in config["receivers"]:
        receiver.pop("webhook_configs", None)
        receiver["webhook_configs"] = [{"url": hook_url, "send_resolved": True}]
    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture
def clean_alerts(owner_engine, services):
    with owner_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALERT_TABLES}, alert_notifier_status, audit_logs"))


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alertmanager(tmp_path, hook):
    server = LocalAlertmanager(tmp_path / "alertmanager", am_config(hook.url))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def am_services(services, alertmanager, clean_alerts):
    """The services with this Alertmanager: the app's silences go there, its silences show."""
    with services.using(alertmanager=AlertmanagerClient([alertmanager.url])) as s:
        yield s


@pytest.fixture
def sender(alertmanager):
    s = AlertmanagerSender(
        AlertmanagerClient([alertmanager.url]), external_url=EXTERNAL, interval=1
    )
    yield s
    s.close()


def am_alerts(server) -> dict[str, dict]:
    answer = requests.get(f"{server.url}/api/v2/alerts", timeout=5).json()
    return {a["labels"]["alertname"]: a for a in answer}


def am_silences(server) -> list[dict]:
    return requests.get(f"{server.url}/api/v2/silences", timeout=5).json()


def silence_in_alertmanager(server, matcher: dict, hours: float, comment: str) -> None:
    """A silence an operator makes in Alertmanager itself (not through the app), from now."""
    now = datetime.now(UTC)
    body = {
        "matchers": [matcher],
        "startsAt": rfc3339(now),
        "endsAt": rfc3339(now + timedelta(hours=hours)),
        "createdBy": "ops-person",
        "comment": comment,
    }
    requests.post(f"{server.url}/api/v2/silences", json=body, timeout=5).raise_for_status()


class Notifications:
    """What Alertmanager delivered to the test's webhook, collected as it arrives."""

    def __init__(self, hook: Receiver) -> None:
        self.hook = hook
        self.seen: list[dict] = []

    def collect(self) -> list[dict]:
        while not self.hook.payloads.empty():
            self.seen.append(self.hook.payloads.get())
        return self.seen

    def has(self, alertname: str, status: str) -> dict | None:
        for payload in self.collect():
            for alert in payload["alerts"]:
                if alert["labels"]["alertname"] == alertname and alert["status"] == status:
                    return alert
        return None

    def names(self) -> set[str]:
        return {a["labels"]["alertname"] for p in self.collect() for a in p["alerts"]}


def test_the_example_config_is_valid_and_in_the_readme():
    result = subprocess.run(
        ["amtool", "check-config", str(EXAMPLE)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8") in readme
    # The inhibition names rules that exist.
    names = {r.name for r in load_rules()}
    assert {"DatabaseConnectionFailures", "SlowQueries", "HighPoolUtilisation"} <= names
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['alertname="DatabaseConnectionFailures"']
    assert inhibit["target_matchers"] == ['alertname=~"SlowQueries|HighPoolUtilisation"']


def test_the_watchdog_always_fires_and_routes_to_the_heartbeat_receiver():
    watchdog = rule("Watchdog")
    assert dict(watchdog.labels) == {"heartbeat": "true"} and watchdog.severity == "none"
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    first = config["route"]["routes"][0]
    assert first == {**first, "matchers": ['heartbeat="true"'], "receiver": "heartbeat"}


@pytest.mark.parametrize(
    ("matchers", "hit"),
    [
        ([{"name": "alertname", "value": "TaskBacklog", "isRegex": False}], True),
        ([{"name": "alertname", "value": "Task.*", "isRegex": True}], True),
        ([{"name": "alertname", "value": "Task", "isRegex": True}], False),  # anchored
        ([{"name": "severity", "value": "warning", "isRegex": False, "isEqual": False}], False),
        ([{"name": "team", "value": "", "isRegex": False}], True),  # missing label is ""
        ([], False),
    ],
)
def test_silence_matchers(matchers, hit):
    labels = {"alertname": "TaskBacklog", "severity": "warning", "service": "taskmaster-dash"}
    assert silence_matches({"matchers": matchers}, labels) is hit


def test_alertmanager_url_is_checked(monkeypatch):
    monkeypatch.setenv("ALERTMANAGER_URL", "http://a:9093/, http://b:9093")
    assert load_settings().alertmanager_url == "http://a:9093,http://b:9093"
    monkeypatch.setenv("ALERTMANAGER_URL", "http://a:9093,ftp://b")
    with pytest.raises(SettingsError, match="ALERTMANAGER_URL"):
        load_settings()


def test_a_firing_alert_reaches_alertmanager_and_resolving_sends_ends_at(
    am_services, alertmanager, sender, hook, clean_data, owner_engine
):
    notifications = Notifications(hook)
    clock = Clock()
    backlog = rule("TaskBacklog", for_seconds=0, runbook_url="https://runbooks.example/backlog")
    evaluator = AlertEvaluator(rules=[backlog], alertmanager=sender, clock=clock)
    assert evaluator.evaluate_once()[0].state == "normal"
    assert sender.flush()
    assert am_alerts(alertmanager) == {}  # nothing open, nothing sent

    insert_pending_tasks(owner_engine, 101)
    clock.tick()
    assert evaluator.evaluate_once()[0].state == "firing"
    until(lambda: "TaskBacklog" in am_alerts(alertmanager), timeout=15)
    alert = am_alerts(alertmanager)["TaskBacklog"]
    assert alert["labels"] == {
        "alertname": "TaskBacklog",
        "severity": "warning",
        "service": "taskmaster-dash",
    }
    annotations = alert["annotations"]
    assert annotations["summary"] == backlog.title
    assert annotations["description"] == backlog.description
    assert annotations["runbook_url"] == "https://runbooks.example/backlog"
    assert annotations["value"] == "101"
    assert alert["generatorURL"] == f"{EXTERNAL}/alerts#alert-row-TaskBacklog"
    assert alert["status"]["state"] == "active"
    fired_at = table_rows(owner_engine, "SELECT fired_at FROM alert_states")[0][0]
    assert alert["startsAt"].startswith(rfc3339(fired_at)[:19])
    until(lambda: notifications.has("TaskBacklog", "firing"), timeout=15)

    # Resent every interval while firing: endsAt moves on each time.
    first_end = alert["endsAt"]
    clock.tick()
    evaluator.evaluate_once()
    until(lambda: am_alerts(alertmanager)["TaskBacklog"]["endsAt"] != first_end, timeout=15)

    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET status = 'completed', completed_at = now()"))
    resolved_at = clock.tick()
    assert evaluator.evaluate_once()[0].state == "normal"
    until(lambda: notifications.has("TaskBacklog", "resolved"), timeout=15)
    resolved = notifications.has("TaskBacklog", "resolved")
    assert resolved is not None
    ends = datetime.fromisoformat(resolved["endsAt"].replace("Z", "+00:00"))
    assert abs((ends - resolved_at).total_seconds()) < 0.001
    assert "TaskBacklog" not in am_alerts(alertmanager)  # resolved: not active any more


def test_the_inhibition_rule_mutes_slow_queries_while_the_database_fails(
    am_services, alertmanager, sender, hook, clean_data
):
    notifications = Notifications(hook)
    clock = Clock()
    rules = [always("DatabaseConnectionFailures"), always("SlowQueries"), always("TaskBacklog")]
    evaluator = AlertEvaluator(rules=rules, alertmanager=sender, clock=clock)
    assert {r.state for r in evaluator.evaluate_once()} == {"firing"}
    until(lambda: len(am_alerts(alertmanager)) == 3, timeout=15)
    slow = am_alerts(alertmanager)["SlowQueries"]
    assert slow["status"]["state"] == "suppressed"
    assert slow["status"]["inhibitedBy"]
    # The cause and the unrelated warning (routed like SlowQueries) are delivered, SlowQueries
    # not: it was posted in the same request and waits the same group_wait.
    until(lambda: {"DatabaseConnectionFailures", "TaskBacklog"} <= notifications.names(), 15)
    assert "SlowQueries" not in notifications.names()
    assert am_alerts(alertmanager)["TaskBacklog"]["status"]["state"] == "active"


def test_silences_go_both_ways(
    am_services, alertmanager, dash_app, client_as, owner_engine, pg_server
):
    firing_alert(owner_engine, "HighErrorRate")
    # Without alerts:ack, a direct POST is refused and nothing reaches Alertmanager.
    refused = act(client_as("viewer"), dash_app, "HighErrorRate", "silence", "sneaky", 60)
    assert refused.status_code == 403 and am_silences(alertmanager) == []
    on_call = client_as("on_call")
    said = acted(act(on_call, dash_app, "HighErrorRate", "silence", "deploying", 60))
    assert "Silenced HighErrorRate for 1 hour" in said and "message-success" in said
    (made,) = [s for s in am_silences(alertmanager) if s["status"]["state"] == "active"]
    assert {(m["name"], m["value"], m["isRegex"]) for m in made["matchers"]} == {
        ("alertname", "HighErrorRate", False),
        ("severity", "critical", False),
        ("service", "taskmaster-dash", False),
    }
    assert made["createdBy"] == "test-on-call" and "deploying" in made["comment"]
    ends = datetime.fromisoformat(made["endsAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(minutes=60)
    assert table_rows(owner_engine, "SELECT alertmanager_ids FROM alert_silences") == [
        ([made["id"]],)
    ]

    # Ending it in the app expires it in Alertmanager.
    assert "Ended the silence" in acted(act(on_call, dash_app, "HighErrorRate", "unsilence"))
    (after,) = [s for s in am_silences(alertmanager) if s["id"] == made["id"]]
    assert after["status"]["state"] == "expired"

    # One made in Alertmanager shows on /alerts for every role, and in `alerts check`.
    silence_in_alertmanager(
        alertmanager,
        {"name": "alertname", "value": "Task.*", "isRegex": True, "isEqual": True},
        2,
        "nightly import",
    )
    am_services.clear_caches()
    for role in ("viewer", "on_call"):
        page = json.dumps(
            callback_values(
                call_callback(
                    client_as(role), dash_app, "alerts-table.children", [1, None, 0], [None]
                )
            )
        )
        assert "(ops-person: nightly import)" in page
        assert page.count("ops-person") == 1  # TaskBacklog only; the app's own one is not listed

    env = cli_env(pg_server, {"ALERTMANAGER_URL": alertmanager.url})
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "taskmaster-dash"), "alerts", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    backlog = next(line for line in lines if line.startswith("TaskBacklog"))
    assert "silenced in Alertmanager until" in backlog
    assert len([line for line in lines if line and not line.startswith("(")]) == len(load_rules())


def test_with_alertmanager_down_state_stays_right_and_the_page_says_so(
    services, clean_alerts, clean_data, owner_engine, dash_app, client_as
):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sender = AlertmanagerSender(AlertmanagerClient([dead], timeout=1), interval=1)
    try:
        insert_pending_tasks(owner_engine, 101)
        evaluator = AlertEvaluator(
            rules=[rule("TaskBacklog", for_seconds=0)], alertmanager=sender, clock=Clock()
        )
        for _ in range(2):
            assert evaluator.evaluate_once()[0].state == "firing"
        assert sender.flush()
    finally:
        sender.close()
    assert table_rows(owner_engine, "SELECT state, value FROM alert_states") == [("firing", 101)]
    page = json.dumps(
        callback_values(
            call_callback(
                client_as("viewer"), dash_app, "alerts-table.children", [1, None, 0], [None]
            )
        )
    )
    assert f"Notifications to {dead} are failing: connection refused or unreachable" in page
    assert "last attempt" in page


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "on_call", "viewer"])
def test_alerts_page_shows_alertmanager_silences_in_the_browser(
    dash_duo, dash_app, users, am_services, alertmanager, owner_engine, role
):
    firing_alert(owner_engine, "HighErrorRate")
    silence_in_alertmanager(
        alertmanager,
        {"name": "alertname", "value": "HighErrorRate", "isRegex": False},
        1,
        "failover drill",
    )
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/alerts")
    dash_duo.wait_for_contains_text(
        "#alert-row-HighErrorRate .alert-am-silence", "ops-person: failover drill", timeout=15
    )
    assert count_elements(dash_duo, "#alerts-notify-failing") == 0
    assert dash_duo.get_logs() == []


def test_an_ha_pair_gets_every_alert_and_one_down_is_reported(
    am_services, alertmanager, tmp_path, hook, clean_data, dash_app, client_as
):
    second = LocalAlertmanager(tmp_path / "second", am_config(hook.url))
    second.start()
    dead = f"http://127.0.0.1:{free_port()}"
    client = AlertmanagerClient([alertmanager.url, second.url, dead], timeout=1)
    pair = AlertmanagerSender(client, interval=1)
    try:
        evaluator = AlertEvaluator(rules=[always("TaskBacklog")], alertmanager=pair, clock=Clock())
        assert evaluator.evaluate_once()[0].state == "firing"
        until(lambda: all("TaskBacklog" in am_alerts(s) for s in (alertmanager, second)), 15)
        assert pair.flush()
    finally:
        pair.close()
        second.stop()
    page = json.dumps(
        callback_values(
            call_callback(
                client_as("viewer"), dash_app, "alerts-table.children", [1, None, 0], [None]
            )
        )
    )
    assert f"Notifications to {dead} are failing" in page
    assert alertmanager.url not in page and second.url not in page


def test_each_instance_arrives_with_its_labels_and_is_silenced_on_its_own(
    am_services, alertmanager, sender, hook, clean_data, owner_engine, dash_app, client_as
):
    from taskmaster_dash.alerts.rules import instance_anchor, parse_rule
    from tests.test_alert_instances import entry, insert_errors

    by_service = parse_rule(
        entry(group_by=["service_name"], labels={"team": "payments"}, threshold=1), 0
    )
    insert_errors(owner_engine, {"api": 30, "worker": 10})
    notifications = Notifications(hook)
    clock = Clock()
    evaluator = AlertEvaluator(rules=[by_service], alertmanager=sender, clock=clock)
    assert {r.state for r in evaluator.evaluate_once()} == {"firing"}

    def by_instance() -> dict[str, dict]:
        answer = requests.get(f"{alertmanager.url}/api/v2/alerts", timeout=5).json()
        return {a["labels"].get("service_name", ""): a for a in answer}

    until(lambda: set(by_instance()) == {"api", "worker"}, timeout=15)
    api = by_instance()["api"]
    assert api["labels"] == {
        "alertname": "ErrorsByService",
        "severity": "warning",
        "service": "taskmaster-dash",
        "team": "payments",
        "service_name": "api",
    }
    assert api["annotations"]["value"] == "6"
    anchor = instance_anchor("ErrorsByService", "service_name=api")
    assert api["generatorURL"] == f"{EXTERNAL}/alerts#{anchor}"
    until(lambda: len(notifications.collect()) >= 1, timeout=15)

    # A silence of one instance on /alerts: an Alertmanager silence on that instance's labels.
    with am_services.using(rules=(*am_services.rules, by_service)):
        target = {"rule": "ErrorsByService", "action": "silence", "instance": "service_name=api"}
        said = acted(
            call_callback(
                client_as("on_call"),
                dash_app,
                "alert-action-message.children",
                [1],
                [target, "fixing api", 60, 0],
            )
        )
        assert "Silenced ErrorsByService (service_name=api) for 1 hour" in said
        (made,) = [s for s in am_silences(alertmanager) if s["status"]["state"] == "active"]
        assert {(m["name"], m["value"]) for m in made["matchers"]} == {
            ("alertname", "ErrorsByService"),
            ("severity", "warning"),
            ("service", "taskmaster-dash"),
            ("team", "payments"),
            ("service_name", "api"),
        }
        clock.tick()
        evaluator.evaluate_once()
        until(lambda: by_instance()["api"]["status"]["state"] == "suppressed", timeout=15)
        assert by_instance()["worker"]["status"]["state"] == "active"

        # One made in Alertmanager for the worker shows on the worker's row only.
        silence_in_alertmanager(
            alertmanager,
            {"name": "service_name", "value": "worker", "isRegex": False},
            2,
            "worker redeploy",
        )
        am_services.clear_caches()
        table = callback_values(
            call_callback(
                client_as("viewer"), dash_app, "alerts-table.children", [1, None, 0], [None]
            )
        )["alerts-table"]["children"]
        rows = {
            r["props"]["id"]: json.dumps(r)
            for r in _table_rows(table)
            if "ErrorsByService" in r["props"]["id"]
        }
        worker = rows[instance_anchor("ErrorsByService", "service_name=worker")]
        assert "ops-person: worker redeploy" in worker
        api_row = rows[anchor]
        assert "ops-person" not in api_row and "(test-on-call)" in api_row


def _table_rows(children) -> list[dict]:
    """Every html.Tr in a callback's answer (the rules table)."""
    found = []

    def walk(node):
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            if node.get("type") == "Tr" and isinstance(node.get("props", {}).get("id"), str):
                found.append(node)
            walk(node.get("props", {}).get("children"))

    walk(children)
    return found
