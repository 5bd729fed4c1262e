"""Rules written in the app: the /alerts editor's callbacks (validated on the server, refused
without alerts:manage, audited), the store the evaluator reads, YAML export / import and the
Prometheus rule file, and the editor in the browser for each kind of user."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from dash.testing.wait import until
from sqlalchemy import text

from taskmaster_dash.alerts.rule_io import export_yaml, parse_import
from taskmaster_dash.alerts.rules import RuleError, configured_rules, load_rules
from taskmaster_dash.data import alert_rule_store as rule_store
from taskmaster_dash.data.prometheus import PrometheusReader
from taskmaster_dash.pages._rule_editor import FORM, PARAM_IDS
from taskmaster_dash.services import current
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_values
from tests.support.errors import log_errors
from tests.support.prometheus_history import prometheus_with
from tests.support.sql import count_rows, tuples
from tests.test_alerts import run_cli

SAVE = "rule-ed-message.children"
PREVIEW = "rule-ed-preview-counts.children"


@pytest.fixture
def clean_rules(owner_engine, services):
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_rules, alert_rule_overrides, audit_logs"))


def form(**changes):
    """The editor's fields as the browser sends them: an error-rate rule by service."""
    values = {
        "rule-ed-name": "ApiErrorBurst",
        "rule-ed-title": "Errors per service over 2 a minute",
        "rule-ed-severity": "warning",
        "rule-ed-metric": "errors_per_minute",
        "rule-ed-promql": "",
        "rule-ed-group-by": ["service_name"],
        "rule-ed-group-labels": "",
        "rule-ed-cmp": ">",
        "rule-ed-threshold": "2",
        "rule-ed-for": "5m",
        "rule-ed-keep": "10m",
        "rule-ed-no-data": "no_data",
        "rule-ed-on-error": "error",
        "rule-ed-labels": "team=payments",
        "rule-ed-description": "A service logs errors faster than usual.",
        "rule-ed-runbook-url": "https://runbooks.example.com/errors",
        "rule-ed-link": "/errors",
        "rule-ed-enabled": ["enabled"],
        PARAM_IDS["window_minutes"]: "10",
    }
    values.update(changes)
    assert set(values) == set(FORM)
    return values


def save(client, dash_app, values, existing="__new__"):
    return call_callback(
        client,
        dash_app,
        SAVE,
        state={"rule-ed-existing": existing, **values},
        changed="rule-ed-save.n_clicks",
    )


def delete(client, dash_app, name: str):
    return call_callback(
        client,
        dash_app,
        SAVE,
        state={"rule-ed-existing": name, **form()},
        changed="rule-ed-delete.n_clicks",
    )


def shown(response) -> str:
    return json.dumps(callback_values(response))


def test_an_admin_saves_a_rule_read_back_by_the_one_parser_and_audited(
    dash_app, client_as, users, clean_rules, owner_engine
):
    answer = shown(save(client_as("admin"), dash_app, form()))
    assert "Created rule ApiErrorBurst: > 2 for 5m, enabled" in answer
    (rule,) = rule_store.app_rules()
    assert (rule.origin, rule.source, rule.group_by, rule.params) == (
        "app",
        "errors_per_minute",
        ("service_name",),
        (("window_minutes", 10.0),),
    )
    assert (rule.keep_firing_seconds, dict(rule.labels), rule.link) == (
        600,
        {"team": "payments"},
        "/errors",
    )
    stored = tuples(owner_engine, "SELECT name, definition, enabled FROM alert_rules")
    assert stored[0][0] == "ApiErrorBurst" and stored[0][2] is True
    assert stored[0][1]["source"] == {"sql": "errors_per_minute"}
    # Saved again, disabled: one row, replaced; both changes audited as the admin.
    answer = shown(save(client_as("admin"), dash_app, form(**{"rule-ed-enabled": []})))
    assert "Saved rule ApiErrorBurst" in answer and "disabled" in answer
    assert [r.enabled for r in rule_store.app_rules()] == [False]
    assert tuples(
        owner_engine,
        "SELECT username, action FROM audit_logs WHERE entity_type = 'alert_rules'"
        ' ORDER BY "timestamp"',
    ) == [("test-admin", "create"), ("test-admin", "update")]


@pytest.mark.parametrize(
    "changes, says",
    [
        ({PARAM_IDS["window_minutes"]: "abc"}, "parameter window_minutes must be a number"),
        ({PARAM_IDS["window_minutes"]: "0"}, "must be between 1 and 1440"),
        ({PARAM_IDS["window_minutes"]: "1e9"}, "must be between 1 and 1440"),
        ({"rule-ed-group-by": ["pool"]}, "cannot be grouped by 'pool'"),
        ({"rule-ed-group-by": ["service_name; DROP TABLE tasks"]}, "looks like an SQL statement"),
        ({"rule-ed-group-by": ["service_name, 1"]}, "cannot be grouped by"),
        ({"rule-ed-threshold": "ten"}, "threshold: expected a number"),
        ({"rule-ed-threshold": "NaN"}, "threshold: must be a finite number"),
        ({"rule-ed-threshold": ""}, "threshold: a number is required"),
        ({"rule-ed-title": "x" * 10_000}, "title: at most 200 characters"),
        ({"rule-ed-description": "y" * 100_000}, "description: at most 2000 characters"),
        (
            {"rule-ed-description": "fine'; DROP TABLE tasks; --"},
            "description: looks like an SQL statement",
        ),
        ({"rule-ed-name": "x'; DELETE FROM users; --"}, "looks like an SQL statement"),
        ({"rule-ed-name": "Robert Tables"}, "name must be letters"),
        ({"rule-ed-name": "TaskBacklog"}, "the rules file already has a rule of that name"),
        ({"rule-ed-for": "forever"}, "expected a duration"),
        ({"rule-ed-keep": "9d"}, "keep_firing_for: must be between 0s and 7d"),
        ({"rule-ed-severity": "apocalyptic"}, "severity must be one of"),
        ({"rule-ed-metric": "pg_sleep(10)"}, "metric: choose one from the list"),
        ({"rule-ed-runbook-url": "javascript:alert(1)"}, "runbook_url must be an http(s) URL"),
        ({"rule-ed-labels": "no equals sign"}, "labels: write each as name=value"),
        ({"rule-ed-title": {"a": 1}}, "summary: expected text"),
        ({"rule-ed-enabled": "yes"}, "enabled: expected a list"),
        ({"rule-ed-metric": "promql", "rule-ed-promql": "up"}, "Prometheus is switched off"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message_and_nothing_saved(
    dash_app, client_as, users, clean_rules, owner_engine, changes, says
):
    with current().using(prometheus=None):
        response = save(client_as("admin"), dash_app, form(**changes))
    answer = shown(response)
    assert "Not saved" in answer and says in answer, answer[:400]
    assert count_rows(owner_engine, "alert_rules") == 0


@pytest.fixture(scope="module")
def prometheus_reader(tmp_path_factory):
    now = int(datetime.now(UTC).timestamp())
    points = [(t, 9.0 if (t // 3600) % 24 == 3 else 2.0) for t in range(now - 86400, now, 240)]
    with prometheus_with(
        tmp_path_factory.mktemp("prom-authoring"),
        "taskmaster_db_pool_in_use",
        {"read": points, "write": [(t, 1.0) for t, _ in points]},
    ) as server:
        yield PrometheusReader(server.url, timeout=10, cache_seconds=0)


PROMQL_RULE = {
    "rule-ed-name": "PoolBusy",
    "rule-ed-title": "A pool is busy",
    "rule-ed-metric": "promql",
    "rule-ed-promql": "max by (pool) (taskmaster_db_pool_in_use)",
    "rule-ed-group-by": [],
    "rule-ed-group-labels": "pool",
    "rule-ed-threshold": "5",
    "rule-ed-for": "0s",
    "rule-ed-keep": "0s",
}


@pytest.mark.prometheus
def test_promql_is_checked_against_prometheus_and_exported_for_promtool(
    dash_app, client_as, users, clean_rules, owner_engine, prometheus_reader, tmp_path, pg_server
):
    admin = client_as("admin")
    with current().using(prometheus=prometheus_reader):
        bad = shown(save(admin, dash_app, form(**{**PROMQL_RULE, "rule-ed-promql": "max by ("})))
        assert "Not saved: promql: Prometheus refused the query" in bad
        assert "parse error" in bad  # Prometheus's own words
        assert count_rows(owner_engine, "alert_rules") == 0
        good = shown(save(admin, dash_app, form(**PROMQL_RULE)))
        assert "Created rule PoolBusy" in good
        # The preview reads the history from Prometheus: the read pool's 03:00 hour.
        counts = shown(
            call_callback(
                admin,
                dash_app,
                PREVIEW,
                state=form(**PROMQL_RULE),
                changed="rule-ed-preview.n_clicks",
            )
        )
        assert "pool=read" in counts and "pool=write" in counts
        assert "would have fired 1 time" in counts or "would have fired 2 times" in counts
    out = tmp_path / "prometheus-rules.yml"
    exported_by = run_cli(["alerts", "export-prometheus", "--output", str(out)], pg_server)
    assert exported_by.returncode == 0, exported_by.stderr
    exported = yaml.safe_load(out.read_text())
    (written,) = [r for r in exported["groups"][0]["rules"] if r["alert"] == "PoolBusy"]
    assert written["expr"] == "(max by (pool) (taskmaster_db_pool_in_use)) > 5"
    checked = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_preview_draws_when_each_instance_would_have_fired(
    dash_app, client_as, users, clean_rules, clean_data, owner_engine
):
    now = datetime.now(UTC)
    log_errors(
        owner_engine,
        [("api", now - timedelta(days=2, seconds=i * 5)) for i in range(120)]
        + [("worker", now - timedelta(hours=30))],
    )
    values = form(**{"rule-ed-for": "0s", "rule-ed-keep": "0s"})
    response = call_callback(
        client_as("admin"), dash_app, PREVIEW, state=values, changed="rule-ed-preview.n_clicks"
    )
    out = callback_values(response)
    figure = out["rule-ed-preview-chart"]["figure"]
    (trace,) = figure["data"]
    assert set(trace["y"]) == {"service_name=api"}  # only the burst's service fired
    summary = json.dumps(out["rule-ed-preview-counts"])
    assert "ApiErrorBurst would have fired" in summary and "over 1 of 2 instances" in summary
    assert count_rows(owner_engine, "alert_rules") == 0  # previewing saves nothing
    # A metric without history says so instead of drawing nothing.
    response = call_callback(
        client_as("admin"),
        dash_app,
        PREVIEW,
        state=form(**{"rule-ed-metric": "pending_tasks", "rule-ed-group-by": []}),
        changed="rule-ed-preview.n_clicks",
    )
    assert "Cannot preview: pending_tasks cannot be previewed" in shown(response)


@pytest.mark.parametrize("role", ["viewer", "on_call", "developer", "api_client"])
def test_users_without_alerts_manage_are_refused_every_editor_callback(
    dash_app, client_as, users, clean_rules, owner_engine, role
):
    rule_store.save_rule(users.actor("admin"), _rule("Kept"), True, set())
    client = client_as(role)
    calls = [
        save(client, dash_app, form()),
        delete(client, dash_app, "Kept"),
        call_callback(client, dash_app, PREVIEW, state=form(), changed="rule-ed-preview.n_clicks"),
        call_callback(client, dash_app, "rule-ed-list.children", [1]),
        call_callback(client, dash_app, "rule-ed-name.value", ["Kept"]),
        call_callback(client, dash_app, "rule-ed-group-by.options", ["errors_per_minute"]),
    ]
    assert [r.status_code for r in calls] == [403] * len(calls)
    assert tuples(owner_engine, "SELECT name FROM alert_rules") == [("Kept",)]
    # RLS refuses the write too, whatever the app would let through.
    with pytest.raises(Exception, match="row-level security"):
        rule_store.save_rule(users.actor(role), _rule("Sneaky"), True, set())
    assert not rule_store.delete_rule(users.actor(role), "Kept")
    assert [r.name for r in rule_store.app_rules(users.actor(role))] == ["Kept"]  # may read


def _rule(name: str):
    from taskmaster_dash.alerts.rules import parse_rule

    return parse_rule(
        {
            "name": name,
            "title": f"{name} rule",
            "severity": "warning",
            "source": {"sql": "open_errors"},
            "group_by": ["severity"],
            "comparison": ">",
            "threshold": 3,
            "description": "Too many open errors.",
            "link": "/errors",
        },
        0,
        origin="app",
    )


def test_delete_removes_the_rule_audited(dash_app, client_as, users, clean_rules, owner_engine):
    rule_store.save_rule(users.actor("admin"), _rule("Gone"), True, set())
    assert "Deleted rule Gone" in shown(delete(client_as("admin"), dash_app, "Gone"))
    assert count_rows(owner_engine, "alert_rules") == 0
    assert ("delete",) in tuples(
        owner_engine, "SELECT action FROM audit_logs WHERE entity_type = 'alert_rules'"
    )
    again = delete(client_as("admin"), dash_app, "Gone")
    assert "choose a rule written in the app to delete" in shown(again)


# ------------------------------------------------------------------------- export / import


def test_export_and_import_round_trip_all_or_nothing(
    database, users, clean_rules, tmp_path, pg_server
):
    def main(args):
        return run_cli(args, pg_server).returncode

    rule_store.save_rule(users.actor("admin"), _rule("OpenErrorsBySeverity"), False, set())
    out = tmp_path / "rules.yaml"
    assert main(["alerts", "export", "--output", str(out)]) == 0
    exported = out.read_text()
    # The export is a rules file: the app loads it as ALERTS_RULES_FILE.
    loaded = {r.name: r for r in load_rules(out)}
    assert set(loaded) == {r.name for r in configured_rules()} | {"OpenErrorsBySeverity"}
    assert loaded["OpenErrorsBySeverity"].group_by == ("severity",)
    assert "disabled:\n- OpenErrorsBySeverity" in exported

    # Imported into an empty table: the app rule comes back disabled, file rules untouched.
    rule_store.delete_rule(users.actor("admin"), "OpenErrorsBySeverity")
    assert main(["alerts", "import", str(out)]) == 0
    (back,) = rule_store.app_rules()
    assert (back.name, back.enabled, back.threshold) == ("OpenErrorsBySeverity", False, 3.0)

    # One bad rule among good ones: nothing is written.
    document = yaml.safe_load(exported)
    document["rules"].append({**document["rules"][-1], "name": "Second"})
    document["rules"].append(
        {**document["rules"][-1], "name": "Broken", "params": {"window_minutes": -1}}
    )
    with pytest.raises(RuleError, match="rule Broken: metric open_errors has no parameter"):
        parse_import(yaml.safe_dump(document), configured_rules())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    assert main(["alerts", "import", str(bad)]) == 1
    assert [r.name for r in rule_store.app_rules()] == ["OpenErrorsBySeverity"]
    # A file rule changed in the import is refused, not silently ignored.
    document = yaml.safe_load(exported)
    document["rules"][0]["threshold"] = 12345
    with pytest.raises(RuleError, match="is a rule of the rules file"):
        parse_import(yaml.safe_dump(document), configured_rules())
    for garbage, says in (("rules: 5", "top-level `rules:` list"), ("{", "not valid YAML")):
        with pytest.raises(RuleError, match=says):
            parse_import(garbage, configured_rules())


def test_export_yaml_lists_what_was_written_in_the_app(database, users, clean_rules):
    rule_store.save_rule(users.actor("admin"), _rule("Mine"), True, set())
    text_out = export_yaml(rule_store.with_app_rules(list(configured_rules())))
    assert "# Written in the app: Mine." in text_out
    assert rule_store.with_app_rules(rule_store.app_rules()) == rule_store.app_rules()


# ------------------------------------------------------------------------------ browser


@pytest.mark.browser
def test_an_admin_previews_and_saves_a_rule_in_the_browser(
    dash_duo, dash_app, users, clean_rules, clean_data, owner_engine
):
    now = datetime.now(UTC)
    # 30 minutes of errors, so the 5-minute pending period is met wherever the 5-minute steps
    # fall (a 5-minute burst fired only when it straddled two steps)
    log_errors(owner_engine, [("api", now - timedelta(days=1, seconds=i * 9)) for i in range(200)])
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/alerts")
    dash_duo.wait_for_element("#rule-editor")
    dash_duo.wait_for_contains_text("#rule-ed-list", "No rules written in the app yet", 15)
    dash_duo.wait_for_contains_text("#rule-ed-metric-help", "Errors logged per minute", 10)
    for field_id, value in (
        ("#rule-ed-name", "ApiBurst"),
        ("#rule-ed-title", "API error burst"),
        ("#rule-ed-threshold", "2"),
        (f"#{PARAM_IDS['window_minutes']}", "5"),
        ("#rule-ed-description", "The API logs errors in a burst."),
    ):
        dash_duo.find_element(field_id).send_keys(value)
    dash_duo.select_dcc_dropdown("#rule-ed-group-by", value="service_name")
    dash_duo.find_element("#rule-ed-preview").click()
    dash_duo.wait_for_contains_text(
        "#rule-ed-preview-summary", "ApiBurst would have fired 1 time ", 30
    )
    until(lambda: len(dash_duo.find_elements("#rule-ed-preview-chart .bars path")) >= 1, 10)
    assert "service_name=api" in dash_duo.find_element("#rule-ed-preview-table").text
    assert count_rows(owner_engine, "alert_rules") == 0
    dash_duo.find_element("#rule-ed-save").click()
    dash_duo.wait_for_contains_text("#rule-ed-message", "Created rule ApiBurst", 10)
    dash_duo.wait_for_contains_text("#rule-ed-row-ApiBurst", "API error burst", 10)
    assert tuples(owner_engine, "SELECT name FROM alert_rules") == [("ApiBurst",)]
    assert dash_duo.get_logs() == []


@pytest.mark.browser
def test_users_without_alerts_manage_see_no_editor(dash_duo, dash_app, users, clean_rules):
    browser_sign_in(dash_duo, dash_app, "test-on-call", path="/alerts")
    dash_duo.wait_for_element("#alerts-rules-table", timeout=15)
    dash_duo.wait_for_contains_text("#alerts-needs-manage", "alerts:manage", 10)
    assert dash_duo.find_elements("#rule-editor") == []
    assert dash_duo.get_logs() == []
