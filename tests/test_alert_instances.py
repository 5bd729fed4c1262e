"""Rules with labels and instances: the rule model's new keys, the metric catalogue's grouped
queries against SQL counted independently here, and the evaluator's per-instance states."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from taskmaster_dash.alerts.rules import (
    RuleError,
    alert_labels,
    instance_key,
    load_rules,
    parse_rule,
)
from taskmaster_dash.data.alert_metrics import CATALOGUE, read_current


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
    with owner_engine.begin() as conn:
        conn.execute(text("SELECT analytics_refresh(NULL)"))  # the long window reads the rollup
    insert_errors(owner_engine, {"worker": 4}, minutes_ago=0.1)  # after the rollup's end
    for minutes in (5, 60):
        rule = parse_rule(entry(group_by=["service_name"], params={"window_minutes": minutes}), 0)
        found = read_current(rule)
        assert {k: v for k, (_labels, v) in found.items()} == pytest.approx(
            independent_counts(owner_engine, minutes)
        )
        assert found["service_name=api"][0] == {"service_name": "api"}
    ungrouped = read_current(parse_rule(entry(), 0))
    assert ungrouped == {"": ({}, pytest.approx((30 + 5 + 12 + 4) / 5))}


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
