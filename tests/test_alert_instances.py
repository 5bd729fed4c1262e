"""Rules with labels and instances: the rule model's new keys, the metric catalogue's grouped
queries against SQL counted independently here, and the evaluator's per-instance states."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.alerts.evaluator import AlertEvaluator, Reading, decide
from taskmaster_dash.alerts.notify import WebhookNotifier
from taskmaster_dash.alerts.rules import (
    RuleError,
    alert_labels,
    instance_anchor,
    instance_key,
    load_rules,
    parse_rule,
)
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.alert_metrics import CATALOGUE, read_current
from taskmaster_dash.data.analytics import compact_headline_counts
from tests.support.auth import browser_sign_in
from tests.support.browser import choose_option
from tests.support.callbacks import call_callback, callback_values
from tests.support.sql import execute
from tests.test_alerts import (
    Clock,
    Receiver,
    clean_alerts,
    confirm_alert_action,
    count_elements,
    table_rows,
)

__all__ = ["clean_alerts"]  # a fixture, used by name


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def entry(**changes):
    base = {
        "name": "ErrorsByService",
        "title": "Errors per service",
        "severity": "warning",
        "source": {"sql": "errors_per_minute"},
        "comparison": ">",
        "threshold": 1,
        "for": "0s",
        "description": "Errors per minute of one service.",
        "link": "/errors",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_the_new_keys_parse_with_defaults_that_keep_todays_rules():
    rule = parse_rule(
        entry(
            group_by=["service_name"],
            params={"window_minutes": 10},
            keep_firing_for="5m",
            no_data="keep_last",
            on_error="alerting",
        ),
        0,
    )
    assert rule.group_by == ("service_name",)
    assert rule.param_values == {"window_minutes": 10.0}
    assert rule.keep_firing_seconds == 300
    assert (rule.no_data_state, rule.error_state, rule.origin) == ("keep_last", "alerting", "file")
    plain = parse_rule(entry(), 0)
    assert plain.group_by == () and plain.param_values == {"window_minutes": 5.0}
    assert (plain.keep_firing_seconds, plain.no_data_state, plain.error_state) == (
        0,
        "no_data",
        "error",
    )
    assert parse_rule(entry(), 0, origin="app").origin == "app"
    # The shipped seven (and the Watchdog) do not group: one instance each, as before.
    assert all(r.group_by == () for r in load_rules())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"group_by": ["colour"]}, "cannot be grouped by 'colour'; it offers service_name"),
        ({"group_by": "x" * 500}, "cannot be grouped by"),
        ({"group_by": [1]}, "group_by must be a list"),
        ({"group_by": ["service_name", "service_name"]}, "names a column twice"),
        ({"source": {"sql": "watchdog"}, "group_by": ["pool"]}, "none (it does not group)"),
        ({"params": {"window_minutes": 0}}, "between 1 and 1440, got 0"),
        ({"params": {"window_minutes": "5; DROP TABLE tasks"}}, "must be a number"),
        ({"params": {"window_minutes": True}}, "must be a number"),
        ({"params": {"depth": 3}}, "has no parameter depth; it takes window_minutes"),
        ({"params": [1]}, "params must be a mapping"),
        ({"source": {"promql": "up"}, "params": {"w": 1}}, "params apply to sql metrics only"),
        ({"source": {"promql": "up"}, "group_by": ["severity"]}, "not alertname, severity"),
        ({"source": {"promql": "up"}, "group_by": ["a-b"]}, "must be a Prometheus label name"),
        ({"keep_firing_for": "forever"}, "keep_firing_for: expected a duration"),
        ({"no_data": "panic"}, "no_data must be one of no_data, alerting, normal, keep_last"),
        ({"on_error": 3}, "on_error must be one of error, alerting, normal, keep_last"),
    ],
)
def test_bad_new_keys_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(RuleError) as caught:
        parse_rule(entry(**changes), 0)
    assert message in str(caught.value)
    assert "rule ErrorsByService" in str(caught.value)


def test_instance_keys_and_alert_labels():
    assert instance_key({}) == ""
    assert instance_key({"service_name": "api", "priority": "3"}) == "priority=3,service_name=api"
    rule = parse_rule(entry(labels={"team": "payments"}, group_by=["service_name", "severity"]), 0)
    labels = alert_labels(rule, {"service_name": "api", "severity": "high"})
    assert labels == {
        "alertname": "ErrorsByService",
        "severity": "warning",
        "service": "taskmaster-dash",
        "team": "payments",
        "service_name": "api",
        "exported_severity": "high",  # never replaces the rule's severity
    }


def test_every_catalogue_metric_offers_what_the_contract_lists():
    assert set(CATALOGUE) == {
        "watchdog",
        "slow_query_seconds",
        "connection_failures",
        "pending_tasks",
        "oldest_pending_task_age_seconds",
        "errors_per_minute",
        "validation_failure_share",
        "mean_validation_score",
        "open_errors",
        "regressed_errors",
        "escalating_errors",
    }
    assert CATALOGUE["errors_per_minute"].group_by == ("service_name", "severity", "error_type")
    assert CATALOGUE["validation_failure_share"].params["window_minutes"].maximum == 10080


def insert_errors(owner_engine, spec: dict[str, int], minutes_ago: float = 1) -> None:
    with owner_engine.begin() as conn:
        for service, count in spec.items():
            conn.execute(
                text(
                    """INSERT INTO error_logs (error_code, error_category, error_severity,
                           error_message, service_name, created_at)
                       SELECT 'E' || n, 'system', 'high', 'boom', :service,
                              now() - make_interval(secs => :ago * 60)
                       FROM generate_series(1, :n) n"""
                ),
                {"service": service, "n": count, "ago": minutes_ago},
            )


def independent_counts(owner_engine, minutes: int) -> dict[str, float]:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                """SELECT COALESCE(service_name, ''), count(*) FROM error_logs
                   WHERE created_at >= now() - make_interval(mins => :m) GROUP BY 1"""
            ),
            {"m": minutes},
        ).all()
    return {f"service_name={service}": n / minutes for service, n in rows}


def test_errors_by_service_give_one_instance_per_service_equal_to_sql(
    database, clean_data, owner_engine
):
    insert_errors(owner_engine, {"api": 30, "worker": 5, "billing": 12})
    insert_errors(owner_engine, {"api": 7}, minutes_ago=40)  # outside 5 minutes, inside 60
    # Hours back: the long windows read whole hours from the hourly rollup, 5-minute steps
    # around them and raw rows at their edges.
    for ago in (117, 151, 238, 242, 401, 598):
        insert_errors(owner_engine, {"billing": 3, "api": 1}, minutes_ago=ago)
    with owner_engine.begin() as conn:
        conn.execute(text("SELECT analytics_refresh(NULL)"))  # the long window reads the rollup
    insert_errors(owner_engine, {"worker": 4}, minutes_ago=0.1)  # after the rollup's end
    for minutes in (5, 60, 150, 240, 600):
        rule = parse_rule(entry(group_by=["service_name"], params={"window_minutes": minutes}), 0)
        found = read_current(rule)
        assert {k: v for k, (_labels, v) in found.items()} == pytest.approx(
            independent_counts(owner_engine, minutes)
        )
        assert found["service_name=api"][0] == {"service_name": "api"}
    ungrouped = read_current(parse_rule(entry(), 0))
    assert ungrouped == {"": ({}, pytest.approx((30 + 5 + 12 + 4) / 5))}


def test_validation_metrics_by_type_equal_sql_over_windows_of_hours(
    database, clean_data, owner_engine
):
    """Whole 5-minute steps from the trigger-kept counts (097), raw runs at the edges."""
    execute(
        owner_engine,
        "INSERT INTO tasks (title) VALUES ('v')",
        """INSERT INTO validation_results (task_id, validation_type, validation_status,
               validation_score, created_at)
           SELECT (SELECT id FROM tasks), (ARRAY['syntax', 'security'])[1 + g % 2],
                  (ARRAY['passed', 'failed', 'error', 'warning'])[1 + g % 4],
                  CASE WHEN g % 3 = 0 THEN NULL ELSE g % 97 END,
                  now() - make_interval(secs => g * 97)
           FROM generate_series(1, 300) g""",
    )
    compact_headline_counts()
    # a delta row after the compaction
    execute(
        owner_engine,
        "UPDATE validation_results SET validation_status = 'failed' WHERE random() < 0.2",
    )
    for minutes in (5, 61, 240, 600):
        with owner_engine.connect() as conn:
            counted = {
                f"validation_type={kind}": (share, score)
                for kind, share, score in conn.execute(
                    text(
                        """SELECT validation_type,
                                  avg((validation_status IN ('failed', 'error'))::int),
                                  avg(validation_score)
                           FROM validation_results
                           WHERE created_at >= now() - make_interval(mins => :m) GROUP BY 1"""
                    ),
                    {"m": minutes},
                )
            }
        for metric, column in (("validation_failure_share", 0), ("mean_validation_score", 1)):
            rule = parse_rule(
                entry(
                    source={"sql": metric},
                    group_by=["validation_type"],
                    params={"window_minutes": minutes},
                ),
                0,
            )
            found = {k: v for k, (_labels, v) in read_current(rule).items()}
            expected = {k: float(v[column]) for k, v in counted.items() if v[column] is not None}
            assert found == pytest.approx(expected), (metric, minutes)


def test_every_catalogue_metric_reads_grouped_and_ungrouped(database, clean_data, owner_engine):
    insert_errors(owner_engine, {"api": 2})
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (title, status, assigned_to, priority) VALUES "
                "('a', 'pending', 'ann', 3), ('b', 'pending', NULL, 3), ('c', 'pending', 'ann', 1)"
            )
        )
        conn.execute(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status,
                       validation_score)
                   SELECT id, 'syntax', s, sc FROM tasks,
                          (VALUES ('passed', 90), ('failed', 30)) v(s, sc) WHERE title = 'a'"""
            )
        )
    pending = parse_rule(entry(source={"sql": "pending_tasks"}, group_by=["assigned_to"]), 0)
    assert {k: v for k, (_l, v) in read_current(pending).items()} == {
        "assigned_to=ann": 2,
        "assigned_to=": 1,
    }
    share = parse_rule(
        entry(source={"sql": "validation_failure_share"}, group_by=["validation_type"]), 0
    )
    assert read_current(share) == {"validation_type=syntax": ({"validation_type": "syntax"}, 0.5)}
    score = parse_rule(entry(source={"sql": "mean_validation_score"}), 0)
    assert read_current(score) == {"": ({}, 60.0)}
    opened = parse_rule(entry(source={"sql": "open_errors"}, group_by=["severity"]), 0)
    assert read_current(opened) == {"severity=high": ({"severity": "high"}, 2.0)}
    for name, metric in CATALOGUE.items():
        rule = parse_rule(entry(source={"sql": name}, group_by=list(metric.group_by)), 0)
        assert all(isinstance(v, float) for _l, v in read_current(rule).values())
        ungrouped = read_current(parse_rule(entry(source={"sql": name}), 0))
        assert set(ungrouped) <= {""}


# ------------------------------------------------------------------------------ state machine


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def step(r, previous, reading, seconds, **holds):
    """decide() at T0 + seconds, and the state it would store."""
    d = decide(r, previous, reading, T0 + timedelta(seconds=seconds), **holds)
    fields = store.StoredState.__dataclass_fields__
    return store.StoredState(**{k: d.row[k] for k in fields}), d


def test_keep_firing_for_holds_a_cleared_instance_firing_then_resolves():
    r = replace(parse_rule(entry(keep_firing_for="2m"), 0))
    s, d = step(r, None, Reading(5), 0)
    assert s.state == "firing" and d.notification[0] == "firing"
    s, d = step(r, s, Reading(0), 30)  # cleared: still firing, no resolved yet
    assert (s.state, s.cleared_at, d.notification) == ("firing", T0 + timedelta(seconds=30), None)
    s, d = step(r, s, Reading(5), 60)  # breached again: the clock restarts
    assert (s.state, s.cleared_at) == ("firing", None)
    s, d = step(r, s, Reading(0), 90)
    s, d = step(r, s, Reading(0), 200)
    assert s.state == "firing"  # 110 s after clearing
    s, d = step(r, s, Reading(0), 211)
    assert s.state == "normal" and d.notification[0] == "resolved"
    assert d.transition.to_state == "normal"


@pytest.mark.parametrize(
    ("key", "reading", "default"),
    [
        ("no_data", Reading(None, "nothing"), "no_data"),
        ("on_error", Reading(None, "down", error=True), "error"),
    ],
)
@pytest.mark.parametrize("choice", ["default", "alerting", "normal", "keep_last"])
def test_no_data_and_error_states_follow_the_rules_choice(key, reading, default, choice):
    r = parse_rule(entry(**({} if choice == "default" else {key: choice})), 0)
    normal, _d = step(r, None, Reading(0), 0)
    firing, _d = step(r, None, Reading(5), 0)
    # What each choice makes of a normal instance, a firing one, and one never seen before.
    expected = {
        "default": (default, default, default),
        "alerting": ("firing", "firing", "firing"),
        "normal": ("normal", "normal", "normal"),
        "keep_last": ("normal", "firing", default),
    }[choice]
    from_normal = step(r, normal, reading, 10)[0]
    from_firing, d = step(r, firing, reading, 10)
    first = step(r, None, reading, 10)[0]
    assert (from_normal.state, from_firing.state, first.state) == expected
    if from_firing.state != "normal":
        assert d.notification is None  # an unknown value never sends "resolved"
    else:
        assert d.notification[0] == "resolved"
    if choice == "keep_last":
        assert from_firing.value == 5  # the last value is kept with the state


def test_an_acknowledgement_holds_notifications_and_they_resume_when_it_runs_out():
    r = parse_rule(entry(), 0)
    s, d = step(r, None, Reading(5), 0)
    assert d.notification[0] == "firing"
    s, d = step(r, s, Reading(5), 15, acknowledged=True)
    assert (s.held, d.notification) == (True, None)
    s, d = step(r, s, Reading(5), 30, acknowledged=True)
    assert d.notification is None
    # The acknowledgement ran out while it still fires: it notifies again, once.
    s, d = step(r, s, Reading(5), 45)
    assert d.notification == ("firing", T0, None) and not s.held
    s, d = step(r, s, Reading(5), 60)
    assert d.notification is None
    # Acknowledged, then resolved while held: the receiver hears it resolved; nothing held.
    s, d = step(r, s, Reading(5), 75, acknowledged=True)
    s, d = step(r, s, Reading(0), 90, acknowledged=True)
    assert s.state == "normal" and d.notification[0] == "resolved" and not s.held
    # Held by an acknowledgement, then silenced when it runs out: still quiet until the
    # silence ends too.
    s, d = step(r, s, Reading(5), 100)
    s, d = step(r, s, Reading(5), 110, acknowledged=True)
    s, d = step(r, s, Reading(5), 120, silenced=True)
    assert d.notification is None and s.held
    s, d = step(r, s, Reading(5), 130)
    assert d.notification[0] == "firing"


# ------------------------------------------------------------------------------ evaluation


def errors_rule(**changes):
    return parse_rule(entry(group_by=["service_name"], threshold=1, **changes), 0)


def test_one_instance_resolving_leaves_the_others_firing(
    services, database, clean_data, clean_alerts, owner_engine, receiver
):
    insert_errors(owner_engine, {"api": 30, "worker": 10, "billing": 12})
    notifier = WebhookNotifier(receiver.url, backoff_seconds=0.1)
    clock = Clock()
    evaluator = AlertEvaluator(rules=[errors_rule()], notifier=notifier, clock=clock)
    try:
        results = {r.instance: r for r in evaluator.evaluate_once()}
        assert {k: (r.state, r.value) for k, r in results.items()} == {
            "service_name=api": ("firing", 6),
            "service_name=billing": ("firing", 2.4),
            "service_name=worker": ("firing", 2),
        }
        assert results["service_name=api"].labels == {"service_name": "api"}
        fired = [receiver.next() for _ in range(3)]
        assert sorted(p["alerts"][0]["labels"]["service_name"] for p in fired) == [
            "api",
            "billing",
            "worker",
        ]
        assert all(p["status"] == "firing" for p in fired)
        assert fired[0]["groupLabels"]["alertname"] == "ErrorsByService"

        with owner_engine.begin() as conn:  # the worker's errors were fixed
            conn.execute(text("DELETE FROM error_logs WHERE service_name = 'worker'"))
        clock.advance(15)
        results = {r.instance: r.state for r in evaluator.evaluate_once()}
        assert results == {
            "service_name=api": "firing",
            "service_name=billing": "firing",
            "service_name=worker": "normal",
        }
        resolved = receiver.next()
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["labels"]["service_name"] == "worker"
        clock.advance(15)
        assert {r.instance for r in evaluator.evaluate_once()} == {
            "service_name=api",
            "service_name=billing",
        }
        assert notifier.flush(10) and receiver.payloads.empty()
    finally:
        notifier.close()
    assert table_rows(
        owner_engine, "SELECT instance, state, labels FROM alert_states ORDER BY instance"
    ) == [
        ("service_name=api", "firing", {"service_name": "api"}),
        ("service_name=billing", "firing", {"service_name": "billing"}),
    ]
    assert table_rows(
        owner_engine,
        "SELECT instance, from_state, to_state, labels FROM alert_history "
        "WHERE instance = 'service_name=worker' ORDER BY created_at",
    ) == [
        ("service_name=worker", None, "firing", {"service_name": "worker"}),
        ("service_name=worker", "firing", "normal", {"service_name": "worker"}),
    ]


def test_a_dead_source_puts_every_instance_in_error_never_normal(
    services, database, clean_data, clean_alerts, owner_engine
):
    insert_errors(owner_engine, {"api": 30, "worker": 10})
    evaluator = AlertEvaluator(rules=[errors_rule()])
    evaluator.evaluate_once()
    with owner_engine.begin() as conn:  # the metric's table cannot be read
        conn.execute(text("REVOKE SELECT ON error_logs FROM taskmaster_app"))
    try:
        results = evaluator.evaluate_once()
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("GRANT SELECT ON error_logs TO taskmaster_app"))
    assert {(r.instance, r.state) for r in results} == {
        ("service_name=api", "error"),
        ("service_name=worker", "error"),
    }
    assert all(r.message for r in results)  # what went wrong, for people


def test_an_acknowledgement_running_out_while_firing_notifies_again(
    services, users, database, clean_data, clean_alerts, owner_engine, receiver
):
    insert_errors(owner_engine, {"api": 30, "worker": 10})
    notifier = WebhookNotifier(receiver.url, backoff_seconds=0.1)
    clock = Clock()
    evaluator = AlertEvaluator(rules=[errors_rule()], notifier=notifier, clock=clock)
    try:
        evaluator.evaluate_once()
        assert {receiver.next()["alerts"][0]["labels"]["service_name"] for _ in "ab"} == {
            "api",
            "worker",
        }
        store.acknowledge(
            users.actor("on_call"), "ErrorsByService", "on it", "service_name=api", 15
        )
        clock.advance(60)
        evaluator.evaluate_once()
        clock.advance(14 * 60)  # 15 minutes after acknowledging: still held
        evaluator.evaluate_once()
        assert notifier.flush(10) and receiver.payloads.empty()
        assert table_rows(
            owner_engine, "SELECT instance, held FROM alert_states ORDER BY instance"
        ) == [("service_name=api", True), ("service_name=worker", False)]
        clock.advance(61)  # it ran out, and api still fires: notified again
        evaluator.evaluate_once()
        again = receiver.next()
        assert again["status"] == "firing"
        assert again["alerts"][0]["labels"]["service_name"] == "api"
        evaluator.evaluate_once()
        assert notifier.flush(10) and receiver.payloads.empty()  # once, not every evaluation
    finally:
        notifier.close()


# ------------------------------------------------------------------------------ /alerts


@pytest.fixture
def errors_by_service(services, database, clean_data, clean_alerts, owner_engine):
    """ErrorsByService configured, evaluated once: api and worker firing."""
    by_service = errors_rule()
    insert_errors(owner_engine, {"api": 30, "worker": 10})
    with services.using(rules=(*services.rules, by_service)):
        AlertEvaluator(rules=[by_service]).evaluate_once()
        yield by_service


def test_acting_on_an_instance_is_checked_on_the_server(
    errors_by_service, dash_app, client_as, owner_engine
):
    def act(client, instance, action="ack", note="on it", minutes=15):
        target = {"rule": "ErrorsByService", "action": action, "instance": instance}
        return call_callback(
            client, dash_app, "alert-action-message.children", [1], [target, note, minutes, 0]
        )

    for role in ("viewer", "developer"):
        assert act(client_as(role), "service_name=api").status_code == 403
    on_call = client_as("on_call")
    for bad in ("service_name=nope", "x" * 600, ["service_name=api"], {"a": 1}, 7):
        assert "unknown alert instance" in json.dumps(callback_values(act(on_call, bad)))
    for hold in (7, "15", True, None):
        said = json.dumps(callback_values(act(on_call, "service_name=api", minutes=hold)))
        assert "choose how long to hold notifications" in said
    assert table_rows(owner_engine, "SELECT count(*) FROM alert_acknowledgements") == [(0,)]
    said = json.dumps(callback_values(act(on_call, "service_name=api", minutes=0)))
    assert "Acknowledged ErrorsByService (service_name=api)" in said
    assert "until it resolves" in said
    said = json.dumps(callback_values(act(on_call, "*", "silence", "maintenance", 60)))
    assert "Silenced every instance of ErrorsByService for 1 hour" in said
    assert table_rows(
        owner_engine,
        "SELECT rule_name, instance, until IS NULL FROM alert_acknowledgements",
    ) == [("ErrorsByService", "service_name=api", True)]
    assert table_rows(owner_engine, "SELECT rule_name, instance FROM alert_silences") == [
        ("ErrorsByService", None)
    ]


def row(rule_name: str, instance: str = "") -> str:
    return "#" + instance_anchor(rule_name, instance)


def act_on(rule_name: str, instance: str, action: str) -> str:
    key = {
        "action": action,
        "instance": instance,
        "place": "row",
        "rule": rule_name,
        "type": "alert-act",
    }
    return "button[id=" + json.dumps(json.dumps(key, separators=(",", ":"))) + "]"


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "on_call", "viewer", "developer"])
def test_instances_are_listed_under_their_rule_and_acknowledged_one_by_one(
    dash_duo, dash_app, users, errors_by_service, owner_engine, role
):
    api, worker = "service_name=api", "service_name=worker"
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/alerts")
    dash_duo.wait_for_text_to_equal(f"{row('ErrorsByService', api)} td:nth-child(3)", "firing", 15)
    assert dash_duo.find_element(f"{row('ErrorsByService', api)} td:nth-child(1)").text == (
        "service_name=api"
    )
    assert dash_duo.find_element(f"{row('ErrorsByService', api)} td:nth-child(4)").text == "6"
    assert dash_duo.find_element(f"{row('ErrorsByService', worker)} td:nth-child(4)").text == "2"
    summary = dash_duo.find_element(f"{row('ErrorsByService')} td:nth-child(3)").text
    assert summary.startswith("2 instances: 2 firing")
    dash_duo.wait_for_contains_text(
        "#alert-banner", "Errors per service (service_name=api): 6", timeout=15
    )
    buttons = count_elements(dash_duo, "#alerts-rules-table button")
    if role not in ("admin", "on_call"):
        assert buttons == 0
        assert dash_duo.get_logs() == []
        return
    dash_duo.find_element(act_on("ErrorsByService", api, "ack")).click()
    dash_duo.wait_for_text_to_equal(
        "#alert-action-title", "Acknowledge “Errors per service” (service_name=api)", timeout=10
    )
    assert dash_duo.find_element("#alert-action-minutes-label").text == "Hold notifications"
    choose_option(dash_duo, "#alert-action-minutes", "15 minutes")
    confirm_alert_action(dash_duo, "api deploy rolled back")
    dash_duo.wait_for_contains_text(
        "#alert-action-message .message-success",
        "Acknowledged ErrorsByService (service_name=api): notifications held for 15 minutes",
        timeout=10,
    )
    who = users.username(role)
    dash_duo.wait_for_contains_text(
        f"{row('ErrorsByService', api)} td:nth-child(8)",
        f"{who}: api deploy rolled back (until ",
        timeout=10,
    )
    assert dash_duo.find_element(f"{row('ErrorsByService', worker)} td:nth-child(8)").text == ""
    dash_duo.wait_for_contains_text("#alert-banner", f"acknowledged by {who} until", timeout=15)
    assert table_rows(
        owner_engine,
        """SELECT instance, username, until BETWEEN now() + interval '14 minutes'
                                               AND now() + interval '15 minutes'
           FROM alert_acknowledgements""",
    ) == [(api, who, True)]
    assert dash_duo.get_logs() == []


def test_a_maintenance_window_mutes_the_instances_it_matches_only_while_open(
    services, users, database, clean_data, clean_alerts, owner_engine, receiver
):
    from taskmaster_dash.alerts.maintenance import Matcher, Window
    from taskmaster_dash.data import maintenance

    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE maintenance_windows, maintenance_window_silences"))
    insert_errors(owner_engine, {"api": 30, "worker": 10})
    clock = Clock()
    window = Window(
        name="api deploy",
        kind="once",
        starts_at=clock.now - timedelta(minutes=1),
        ends_at=clock.now + timedelta(minutes=10),
        matchers=(Matcher("service_name", "=", "api"),),
    )
    maintenance.create_window(users.actor("admin"), window)
    notifier = WebhookNotifier(receiver.url, backoff_seconds=0.1)
    evaluator = AlertEvaluator(rules=[errors_rule()], notifier=notifier, clock=clock)
    try:
        states = {r.instance: r.state for r in evaluator.evaluate_once()}
        assert states == {"service_name=api": "firing", "service_name=worker": "firing"}
        assert receiver.next()["alerts"][0]["labels"]["service_name"] == "worker"
        assert notifier.flush(10) and receiver.payloads.empty()  # api is in maintenance

        clock.advance(11 * 60)  # the window has closed and api still fires: notified now
        evaluator.evaluate_once()
        assert receiver.next()["alerts"][0]["labels"]["service_name"] == "api"
        assert notifier.flush(10) and receiver.payloads.empty()
    finally:
        notifier.close()
        with owner_engine.begin() as conn:
            conn.execute(text("TRUNCATE maintenance_windows, maintenance_window_silences"))
