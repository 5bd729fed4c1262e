"""Alerts: the rules file, the evaluator's states and history, one evaluator at a time, the
banner, the /alerts page's actions (with their permission checks), webhooks, Prometheus."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from dash.testing import wait
from dash.testing.wait import until
from sqlalchemy import text

from taskmaster_dash.alerts.evaluator import LOCK_KEY, AlertEvaluator, Reading, decide
from taskmaster_dash.alerts.notify import ZERO_TIME, WebhookNotifier
from taskmaster_dash.alerts.rules import (
    DEFAULT_RULES_FILE,
    Override,
    RuleError,
    apply_overrides,
    configured_rules,
    load_rules,
    prometheus_rules_yaml,
)
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.prometheus import PrometheusReader
from tests.support.auth import browser_sign_in
from tests.support.browser import choose_option
from tests.support.callbacks import call_callback, callback_values
from tests.support.processes import free_port

ALERT_TABLES = (
    "alert_states, alert_history, alert_rule_overrides, alert_acknowledgements, alert_silences"
)


def rule(name: str):
    return next(r for r in load_rules() if r.name == name)


@pytest.fixture
def clean_alerts(owner_engine, services):
    """Empty alert tables; the services fixture empties the caches (the banner's answer)."""
    with owner_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALERT_TABLES}, audit_logs"))


class Clock:
    """The evaluator's clock, moved forward by the test: a pending period passes at once."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def table_rows(owner_engine, sql: str, params=None) -> list[tuple]:
    with owner_engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params or {})]


class Receiver:
    """An Alertmanager-style webhook receiver on loopback; answers 500 `failures` times first.
    While `hold` is clear, requests wait (a slow receiver)."""

    def __init__(self, failures: int = 0) -> None:
        self.payloads: queue.Queue = queue.Queue()
        self.attempts = 0
        self.arrived = threading.Event()
        self.hold = threading.Event()
        self.hold.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.arrived.set()
                outer.hold.wait(30)
                outer.attempts += 1
                if outer.attempts <= failures:
                    self.send_response(500)
                else:
                    outer.payloads.put(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout: float = 15) -> dict:
        return self.payloads.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(failures=1)  # the first delivery fails: the notifier must retry
    yield r
    r.close()


def insert_pending_tasks(owner_engine, count: int) -> None:
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (title, status) "
                "SELECT 'backlog ' || n, 'pending' FROM generate_series(1, :n) n"
            ),
            {"n": count},
        )


# ------------------------------------------------------------------------------ rules file


def test_the_shipped_rules_are_the_specs_seven_and_the_watchdog():
    rules = {r.name: r for r in load_rules()}
    assert len(rules) == 8 and rules.pop("Watchdog").severity == "none"
    critical = {n for n, r in rules.items() if r.severity == "critical"}
    assert critical == {
        "DatabaseConnectionFailures",
        "HighErrorRate",
        "HighMemoryUsage",
        "HighDiskUsage",
    }
    assert rules["HighErrorRate"].source == "errors_per_minute"  # per minute, not per second
    assert (rules["HighErrorRate"].comparison, rules["HighErrorRate"].threshold) == (">", 10)
    assert rules["TaskBacklog"].threshold == 100 and rules["TaskBacklog"].link == "/tasks"
    assert rules["HighErrorRate"].link == "/errors"
    assert rules["HighPoolUtilisation"].threshold == 80
    assert rules["HighPoolUtilisation"].link == "/pools"
    assert rules["SlowQueries"].threshold == 1
    assert rules["HighMemoryUsage"].threshold == rules["HighDiskUsage"].threshold == 95


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("severity: warning", "severity: loud"), "severity must be one of"),
        (("threshold: 100", "threshold: -5"), "must not be negative"),
        (('comparison: ">"\n    threshold: 100', 'comparison: "=~"\n    threshold: 100'), "=~"),
        (("for: 10m", "for: soon"), "expected a duration"),
        (("sql: pending_tasks", "sql: drop_tables"), "unknown sql source 'drop_tables'"),
        (("name: TaskBacklog", "name: HighErrorRate"), "defined twice"),
        (("    link: /tasks\n", "    colour: red\n"), "unknown field(s) colour"),
    ],
)
def test_a_bad_rules_file_is_refused_with_a_clear_message(tmp_path, change, message):
    shipped = DEFAULT_RULES_FILE.read_text()
    backlog = shipped.index("name: TaskBacklog")
    old, new = change
    assert old in shipped[backlog - 10 :]
    path = tmp_path / "rules.yaml"
    path.write_text(shipped[: backlog - 10] + shipped[backlog - 10 :].replace(old, new, 1))
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_export_prometheus_writes_rules_promtool_accepts(tmp_path):
    rules = apply_overrides(
        load_rules(),
        {
            "HighPoolUtilisation": Override(threshold=85.5, for_seconds=120),
            "HighDiskUsage": Override(enabled=False),
        },
    )
    out = tmp_path / "taskmaster.rules.yml"
    out.write_text(prometheus_rules_yaml(rules))
    checked = subprocess.run(
        [shutil.which("promtool") or "/usr/bin/promtool", "check", "rules", str(out)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 2 rules found" in checked.stdout
    exported = out.read_text()
    assert "> 85.5" in exported and "for: 2m" in exported and "HighDiskUsage" not in exported


@pytest.mark.parametrize(
    ("args", "code"),
    [(["alerts", "--help"], 0), (["alerts", "check", "--help"], 0), (["alerts", "mute"], 2)],
)
def test_alerts_command_help_and_bad_arguments(capsys, args, code):
    from taskmaster_dash.cli import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == code
    out, err = capsys.readouterr()
    if code:
        assert len(err.strip().splitlines()) == 1 and "invalid choice" in err
    else:
        assert "usage: taskmaster-dash alerts" in out


def test_export_prometheus_command(tmp_path):
    from taskmaster_dash.cli import main

    out = tmp_path / "rules.yml"
    assert main(["alerts", "export-prometheus", "--no-overrides", "--output", str(out)]) == 0
    checked = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True)
    assert checked.returncode == 0


# ------------------------------------------------------------------------------ state machine


def _step(r, previous, reading, at, silenced=False):
    decision = decide(r, previous, reading, at, silenced)
    row = decision.row
    stored = store.StoredState(
        r.name,
        row["state"],
        row["value"],
        row["message"],
        row["since"],
        row["fired_at"],
        row["notified"],
    )
    return stored, decision.notification


def test_unknown_is_not_resolved_and_silences_hold_notifications():
    r = replace(rule("TaskBacklog"), for_seconds=60)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    s, note = _step(r, None, Reading(150), t0)
    assert (s.state, note) == ("pending", None)
    s, note = _step(r, s, Reading(150), t0 + timedelta(seconds=59))
    assert s.state == "pending" and s.since == t0
    s, note = _step(r, s, Reading(150), t0 + timedelta(seconds=60))
    assert s.state == "firing" and note[0] == "firing"
    # The source fails: state error, and no "resolved" is sent for an unknown value.
    s, note = _step(r, s, Reading(None, "down", error=True), t0 + timedelta(seconds=75))
    assert (s.state, note, s.notified) == ("error", None, True)
    s, note = _step(r, s, Reading(None, "no series"), t0 + timedelta(seconds=80))
    assert (s.state, note) == ("no_data", None)
    s, note = _step(r, s, Reading(10), t0 + timedelta(seconds=90))
    assert s.state == "normal" and note[0] == "resolved" and not s.notified
    # Silenced: it fires, but nothing is sent until the silence ends.
    r0 = replace(r, for_seconds=0)
    s, note = _step(r0, s, Reading(150), t0 + timedelta(seconds=100), silenced=True)
    assert (s.state, note, s.notified) == ("firing", None, False)
    s, note = _step(r0, s, Reading(150), t0 + timedelta(seconds=115))
    assert note == ("firing", t0 + timedelta(seconds=100), None)
    # Disabling a firing rule resolves it at the receiver.
    s, note = _step(replace(r0, enabled=False), s, Reading(None), t0 + timedelta(seconds=130))
    assert s.state == "disabled" and note[0] == "resolved"


@pytest.mark.parametrize(
    ("comparison", "value", "breached"),
    [(">", 100, False), (">", 101, True), (">=", 100, True), ("<", 5, True), ("!=", 100, False)],
)
def test_comparisons(comparison, value, breached):
    assert replace(rule("TaskBacklog"), comparison=comparison).breached(value) is breached


# ------------------------------------------------------------------------------ evaluation


def test_backlog_goes_pending_firing_then_resolves_with_webhooks(
    services, users, clean_data, clean_alerts, owner_engine, receiver, dash_app, client_as
):
    insert_pending_tasks(owner_engine, 101)
    # A short pending period, set the way an admin would: the override wins over the file.
    store.save_override(users.actor("admin"), "TaskBacklog", 100, ">", 1, True)
    notifier = WebhookNotifier(receiver.url, backoff_seconds=0.2, external_url="http://dash")
    clock = Clock()
    evaluator = AlertEvaluator(rules=[rule("TaskBacklog")], notifier=notifier, clock=clock)
    try:
        (first,) = evaluator.evaluate_once()
        assert (first.state, first.value) == ("pending", 101)
        assert receiver.payloads.empty()
        clock.advance(1.1)  # past the 1 s pending period
        (second,) = evaluator.evaluate_once()
        assert second.state == "firing"

        fired = receiver.next()
        assert receiver.attempts == 2  # the first delivery failed and was retried
        assert fired["version"] == "4" and fired["status"] == "firing"
        assert fired["receiver"] == "taskmaster-dash"
        assert fired["groupLabels"] == {"alertname": "TaskBacklog"}
        assert fired["commonLabels"]["severity"] == "warning"
        (alert,) = fired["alerts"]
        assert alert["status"] == "firing" and alert["endsAt"] == ZERO_TIME
        assert alert["labels"]["alertname"] == "TaskBacklog"
        assert alert["annotations"]["value"] == "101"
        assert alert["generatorURL"] == "http://dash/tasks"
        assert len(alert["fingerprint"]) == 16 and alert["startsAt"].endswith("Z")

        # Every signed-in user sees it in the banner, linking to the tasks page.
        services.clear_caches()
        shown = callback_values(
            call_callback(client_as("viewer"), dash_app, "alert-banner.children", [1, 0], [None])
        )["alert-banner"]["children"]
        assert "Task backlog over 100 pending: 101" in json.dumps(shown)
        link = shown[0]["props"]["children"][0]  # the entry: its link, then its buttons
        assert link["props"]["href"] == "/tasks"

        evaluator.evaluate_once()  # still firing: no second notification
        with owner_engine.begin() as conn:
            conn.execute(text("UPDATE tasks SET status = 'completed', completed_at = now()"))
        (last,) = evaluator.evaluate_once()
        assert (last.state, last.value) == ("normal", 0)
        resolved = receiver.next()
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["startsAt"] == alert["startsAt"]
        assert resolved["alerts"][0]["endsAt"] != ZERO_TIME
        assert receiver.payloads.empty()
    finally:
        notifier.close()

    history = table_rows(
        owner_engine,
        "SELECT from_state, to_state, value FROM alert_history ORDER BY created_at",
    )
    assert history == [(None, "pending", 101), ("pending", "firing", 101), ("firing", "normal", 0)]
    assert table_rows(owner_engine, "SELECT state, notified FROM alert_states") == [
        ("normal", False)
    ]
    services.clear_caches()
    cleared = callback_values(
        call_callback(client_as("viewer"), dash_app, "alert-banner.children", [1, 0], [None])
    )
    assert cleared["alert-banner"]["children"] is None


def test_a_slow_receiver_never_holds_up_evaluation(database, clean_alerts, receiver):
    receiver.hold.clear()  # the receiver accepts the connection and then hangs
    notifier = WebhookNotifier(receiver.url, backoff_seconds=0.1)
    slow_rule = replace(rule("DatabaseConnectionFailures"), comparison=">=", for_seconds=0)
    evaluator = AlertEvaluator(rules=[slow_rule], notifier=notifier)
    try:
        (result,) = evaluator.evaluate_once()
        assert result.state == "firing"  # 0 failing pools >= 0
        assert receiver.arrived.wait(10)
        # Evaluation goes on while the first delivery is still waiting for an answer.
        assert evaluator.evaluate_once()[0].state == "firing"
        assert notifier.delivered == 0 and receiver.payloads.empty()
        receiver.hold.set()
        assert notifier.flush(15)
        assert receiver.next()["status"] == "firing" and notifier.delivered == 1
    finally:
        receiver.hold.set()
        notifier.close()


def test_the_services_start_the_evaluator_unless_switched_off(services, clean_alerts, owner_engine):
    off = services.settings.model_copy(update={"alerts_evaluator": False})
    with services.using(settings=off):
        services.start_workers(refresher=False)
        assert services.workers == []
    on = services.settings.model_copy(update={"alerts_interval_seconds": 1.0})
    with services.using(settings=on):
        services.start_workers(refresher=False)
        try:
            assert [w.thread_name for w in services.workers] == ["alert-evaluator"]
            wait.until(
                lambda: (
                    table_rows(owner_engine, "SELECT count(*) FROM alert_states")
                    == [(len(load_rules()),)]
                ),
                30,
            )
        finally:
            services.stop_workers()
    # Stopping released the lock (its session ends), so the next evaluator can take over.
    wait.until(
        lambda: (
            table_rows(
                owner_engine,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k",
                {"k": LOCK_KEY},
            )
            == [(0,)]
        ),
        10,
    )
    successor = AlertEvaluator(rules=[rule("TaskBacklog")])
    assert successor.lead()
    successor.release()


def test_state_survives_a_restart(database, clean_data, clean_alerts, owner_engine, users):
    insert_pending_tasks(owner_engine, 101)
    store.save_override(users.actor("admin"), "TaskBacklog", 100, ">", 1, True)
    clock = Clock()
    AlertEvaluator(rules=[rule("TaskBacklog")], clock=clock).evaluate_once()
    clock.advance(1.1)
    # A new evaluator (a restarted process) continues from the stored pending state.
    (result,) = AlertEvaluator(rules=[rule("TaskBacklog")], clock=clock).evaluate_once()
    assert result.state == "firing"


def test_prometheus_down_is_an_error_not_all_clear(
    database, clean_alerts, owner_engine, dash_app, client_as
):
    closed = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout=1)
    evaluator = AlertEvaluator(rules=[rule("HighPoolUtilisation")], prometheus=lambda: closed)
    (result,) = evaluator.evaluate_once()
    assert result.state == "error"
    assert "unavailable" in result.message and result.value is None
    assert table_rows(owner_engine, "SELECT state FROM alert_states") == [("error",)]
    shown = callback_values(
        call_callback(client_as("viewer"), dash_app, "alert-banner.children", [1, 0], [None])
    )
    assert "Cannot evaluate" in json.dumps(shown)
    # Prometheus switched off by configuration is "no data", also not "normal".
    (off,) = AlertEvaluator(
        rules=[rule("HighPoolUtilisation")], prometheus=lambda: None
    ).evaluate_once()
    assert off.state == "no_data"


def test_a_disabled_rule_is_not_evaluated(database, users, clean_alerts, clean_data, owner_engine):
    insert_pending_tasks(owner_engine, 150)
    store.save_override(users.actor("admin"), "TaskBacklog", 100, ">", 0, False)
    (result,) = AlertEvaluator(rules=[rule("TaskBacklog")]).evaluate_once()
    assert result.state == "disabled" and result.value is None


def test_the_rules_table_tells_on_call_what_to_do(dash_app, client_as, clean_alerts):
    table = callback_values(
        call_callback(client_as("viewer"), dash_app, "alerts-table.children", [1, None, 0], [None])
    )["alerts-table"]["children"]
    shown = json.dumps(table)
    for configured in configured_rules():
        assert configured.runbook and json.dumps(configured.runbook)[1:-1] in shown
        assert json.dumps(configured.description)[1:-1] in shown


def test_the_banner_and_rules_table_redraw_only_when_what_they_show_changed(
    dash_app, client_as, owner_engine, clean_alerts, services
):
    firing_alert(owner_engine)
    on_call = client_as("on_call")
    for output, inputs in (
        ("alert-banner.children", [1, 0]),
        ("alerts-table.children", [1, None, 0]),
    ):
        first = callback_values(call_callback(on_call, dash_app, output, inputs, [None]))
        shown = next(v["data"] for k, v in first.items() if k.endswith("-shown"))
        # Nothing changed: no redraw (the buttons keep any click in flight).
        assert call_callback(on_call, dash_app, output, inputs, [shown]).status_code == 204
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE alert_states SET value = 43"))
    services.clear_caches()
    again = callback_values(
        call_callback(on_call, dash_app, "alert-banner.children", [2, 0], [shown])
    )
    assert "More than 10 errors per minute: 43" in json.dumps(again)


def test_timeline_chart_draws_each_rules_states_clipped_to_the_range(
    dash_app, client_as, owner_engine, clean_alerts
):
    viewer = client_as("viewer")

    def figure(hours) -> dict:
        return callback_values(
            call_callback(viewer, dash_app, "alerts-timeline-chart.figure", [1, hours])
        )["alerts-timeline-chart"]["figure"]

    def bands(hours) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """{(state, rule title): [(minutes ago it started, minutes it lasted)]} as drawn."""
        drawn_figure = figure(hours)
        now = table_rows(owner_engine, "SELECT now()")[0][0]
        drawn: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for trace in drawn_figure["data"]:
            for title, base, length in zip(trace["y"], trace["base"], trace["x"], strict=True):
                ago = (now - datetime.fromisoformat(base)).total_seconds() / 60
                drawn.setdefault((trace["name"], title), []).append((ago, length / 60_000))
        return drawn

    assert "No transitions in this range." in json.dumps(figure(24))

    history = [  # (rule, state, minutes ago)
        ("TaskBacklog", "normal", 30 * 60),
        ("TaskBacklog", "pending", 120),
        ("TaskBacklog", "firing", 110),
        ("HighErrorRate", "error", 180),
    ]
    with owner_engine.begin() as conn:
        for name, state, ago in history:
            conn.execute(
                text(
                    "INSERT INTO alert_history (rule_name, to_state, created_at) "
                    "VALUES (:n, :s, now() - make_interval(mins => :ago))"
                ),
                {"n": name, "s": state, "ago": ago},
            )
    titles = {r.name: r.title for r in configured_rules()}
    backlog, errors = titles["TaskBacklog"], titles["HighErrorRate"]

    def close(drawn, expected) -> bool:
        return drawn.keys() == expected.keys() and all(
            len(drawn[k]) == len(expected[k])
            and all(
                abs(a - b) < 1 and abs(c - d) < 1
                for (a, c), (b, d) in zip(drawn[k], expected[k], strict=True)
            )
            for k in expected
        )

    day = bands(24)
    # The normal state began 30 h ago: the 24 h window opens with it.
    assert close(
        day,
        {
            ("normal", backlog): [(24 * 60, 24 * 60 - 120)],
            ("pending", backlog): [(120, 10)],
            ("firing", backlog): [(110, 110)],
            ("error", errors): [(180, 180)],
        },
    ), day
    hour = bands(1)
    assert close(hour, {("firing", backlog): [(60, 60)], ("error", errors): [(60, 60)]}), hour
    # Anything but an offered range (a hand-made request) draws the default 24 h.
    assert close(bands("1; DROP TABLE alert_history"), day)
    assert table_rows(owner_engine, "SELECT count(*) FROM alert_history") == [(4,)]


# ------------------------------------------------------------------------------ one evaluator


def test_only_one_evaluator_runs_and_another_takes_over(database, clean_alerts):
    rules = [rule("TaskBacklog")]
    first = AlertEvaluator(rules=rules, interval=0.1)
    second = AlertEvaluator(rules=rules, interval=0.1)
    stop_first, stop_second = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=first.run, args=(stop_first,), daemon=True),
        threading.Thread(target=second.run, args=(stop_second,), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        wait.until(lambda: first.evaluations + second.evaluations >= 5, 10, poll=0.05)
        assert (first.evaluations == 0) != (second.evaluations == 0)
        leader, stop_leader, other, stop_other = (
            (first, stop_first, second, stop_second)
            if first.evaluations
            else (second, stop_second, first, stop_first)
        )
        stop_leader.set()
        threads[0 if leader is first else 1].join(5)
        # the lock was released and the other took over
        wait.until(lambda: other.evaluations > 0, 10, poll=0.05)
    finally:
        stop_first.set()
        stop_second.set()
        for t in threads:
            t.join(5)


def run_cli(args, pg_server=None, extra_env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taskmaster_dash.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(pg_server, extra_env),
        timeout=120,
    )


def cli_env(pg_server, extra_env=None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ALERT_WEBHOOK_URL", None)
    if pg_server is not None:
        env["DATABASE_URL"] = pg_server.app_url
        env["OWNER_DATABASE_URL"] = pg_server.owner_url
    env.update(extra_env or {})
    return env


def test_two_processes_one_evaluator(pg_server, database, owner_engine, clean_alerts):
    """The web app (`serve`, which starts the evaluator in a thread) and `alerts run`: one
    evaluates, the other stands by, and takes over when the first stops."""
    # TASKMASTER_ENV=testing keeps the analytics refresher out of `serve`: not what this tests.
    env = cli_env(
        pg_server,
        {"ALERTS_INTERVAL_SECONDS": "1", "SECRET_KEY": "x" * 40, "TASKMASTER_ENV": "testing"},
    )
    evaluator_sessions = """
        SELECT count(DISTINCT a.pid) FILTER (WHERE l.granted), count(DISTINCT a.pid)
        FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid
             AND l.locktype = 'advisory' AND l.objid = :key
        WHERE a.application_name LIKE 'taskmaster_alert_evaluator (pid %'"""

    def start(*command: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "taskmaster_dash.cli", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for(holders: int, sessions: int, evaluated_after: datetime | None = None) -> tuple:
        """Poll until (lock holders, evaluator sessions, rules evaluated since) is as expected."""
        seen: tuple = ()
        deadline = time.monotonic() + 120  # a cold Python start on a loaded 2-core machine
        while time.monotonic() < deadline:
            seen = (
                *table_rows(owner_engine, evaluator_sessions, {"key": LOCK_KEY})[0],
                table_rows(
                    owner_engine,
                    "SELECT count(*) FROM alert_states WHERE last_evaluated_at > :t",
                    {"t": evaluated_after or datetime.min.replace(tzinfo=UTC)},
                )[0][0],
            )
            if seen == (holders, sessions, len(load_rules())):
                break
            time.sleep(0.2)
        return seen

    web = start("serve", "--port", str(free_port()), "--workers", "1")
    procs = [web]
    try:
        assert wait_for(1, 1) == (1, 1, len(load_rules())), (
            web.poll()
        )  # the web app evaluated every rule
        procs.append(start("alerts", "run"))
        # Both are connected; still exactly one holds the lock.
        assert wait_for(1, 2) == (1, 2, len(load_rules())), [p.poll() for p in procs]
        web.send_signal(signal.SIGTERM)
        web.communicate(timeout=20)
        stopped_at = table_rows(owner_engine, "SELECT now()")[0][0]
        # The standby took the lock and evaluated every rule after the web app had stopped.
        assert wait_for(1, 1, stopped_at) == (1, 1, len(load_rules())), procs[1].poll()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.communicate(timeout=20)
    assert all(p.returncode == 0 for p in procs)


def test_alerts_check_prints_every_rule(pg_server, database, clean_alerts, owner_engine):
    result = run_cli(["alerts", "check"], pg_server)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(load_rules())
    backlog = next(line for line in lines if line.startswith("TaskBacklog"))
    pending = table_rows(owner_engine, "SELECT count(*) FROM tasks WHERE status = 'pending'")[0][0]
    assert backlog.split()[1:3] == ["normal" if pending <= 100 else "pending", str(pending)]
    memory = next(line for line in lines if line.startswith("HighMemoryUsage"))
    assert memory.split()[1] == "no_data" and "PROMETHEUS_ENABLED" in memory
    assert table_rows(owner_engine, "SELECT count(*) FROM alert_states")[0][0] == len(load_rules())


# ------------------------------------------------------------------------------ page actions


def test_rule_edits_are_validated_on_the_server(
    dash_app, client_as, users, clean_alerts, owner_engine
):
    admin = client_as("admin")
    state = ["TaskBacklog", "-5", ">", "10m", ["enabled"]]
    refused = callback_values(
        call_callback(admin, dash_app, "alerts-edit-message.children", [1], state)
    )
    assert "must not be negative" in json.dumps(refused)
    state = ["TaskBacklog", "50", "=~", "10m", ["enabled"]]
    refused = callback_values(
        call_callback(admin, dash_app, "alerts-edit-message.children", [1], state)
    )
    assert "comparison: unknown" in json.dumps(refused)
    for bad in (
        ["TaskBacklog", "50", ">", "forever", []],
        ["'; DROP TABLE tasks; --", "50", ">", "1m", []],
        ["TaskBacklog", "x" * 10_000, ">", "1m", []],
        ["TaskBacklog", {"a": 1}, ">", "1m", "yes"],
    ):
        refused = callback_values(
            call_callback(admin, dash_app, "alerts-edit-message.children", [1], bad)
        )
        assert "Not saved" in json.dumps(refused)
    assert table_rows(owner_engine, "SELECT count(*) FROM alert_rule_overrides") == [(0,)]

    saved = callback_values(
        call_callback(
            admin,
            dash_app,
            "alerts-edit-message.children",
            [1],
            ["TaskBacklog", "150", ">=", "2m", []],
        )
    )
    assert "Saved TaskBacklog" in json.dumps(saved)
    assert table_rows(
        owner_engine,
        "SELECT threshold, comparison, for_seconds, enabled FROM alert_rule_overrides",
    ) == [(150.0, ">=", 120, False)]
    audited = table_rows(
        owner_engine,
        "SELECT username, action FROM audit_logs WHERE entity_type = 'alert_rule_overrides'",
    )
    assert audited == [("test-admin", "create")]


@pytest.mark.parametrize("role", ["viewer", "on_call", "developer"])
def test_roles_without_alerts_manage_cannot_edit_rules(
    dash_app, client_as, users, clean_alerts, owner_engine, role
):
    state = ["TaskBacklog", "1", ">", "0s", ["enabled"]]
    response = call_callback(client_as(role), dash_app, "alerts-edit-message.children", [1], state)
    assert response.status_code == 403
    assert table_rows(owner_engine, "SELECT count(*) FROM alert_rule_overrides") == [(0,)]


def act(client, dash_app, rule_name, action: str, note: str | None = "", minutes=60):
    """Confirm the acknowledge / silence form for `rule_name`, as the browser posts it."""
    target = {"rule": rule_name, "action": action}
    return call_callback(
        client, dash_app, "alert-action-message.children", [1], [target, note, minutes, 0]
    )


def acted(response) -> str:
    """The message the form shows (an error) or the page shows (what was done)."""
    values = callback_values(response)
    return json.dumps(values.get("alert-action-message") or values)


@pytest.mark.parametrize("role", ["viewer", "developer", "api_client"])
def test_roles_without_alerts_ack_are_refused_and_nothing_is_written(
    dash_app, client_as, users, clean_alerts, owner_engine, role
):
    firing_alert(owner_engine)
    client = client_as(role)
    for action, note in (("ack", "mine"), ("silence", "quiet"), ("unsilence", "")):
        assert act(client, dash_app, "HighErrorRate", action, note).status_code == 403, action
    counts = table_rows(
        owner_engine,
        """SELECT (SELECT count(*) FROM alert_acknowledgements),
                  (SELECT count(*) FROM alert_silences),
                  (SELECT count(*) FROM audit_logs WHERE entity_type LIKE 'alert%')""",
    )
    assert counts == [(0, 0, 0)]
    # Nor can they open the form (a hand-made click answers nothing).
    assert open_form(client, dash_app, "HighErrorRate", "ack").status_code == 204


def open_form(client, dash_app, rule_name: str, action: str):
    """Click the banner's button for `rule_name` and `action`, as the browser posts it."""
    key = {
        "action": action,
        "instance": "",
        "place": "banner",
        "rule": rule_name,
        "type": "alert-act",
    }
    output = next(k for k in dash_app.callback_map if "alert-action-target.data" in k)
    outputs = []
    for part in output.strip(".").split("..."):
        component, _, prop = part.rpartition(".")
        outputs.append({"id": component, "property": prop})
    payload = {
        "output": output,
        "outputs": outputs,
        # A pattern-matching input arrives as one entry per matching button.
        "inputs": [
            [{"id": key, "property": "n_clicks", "value": 1}],
            {"id": "alert-action-cancel", "property": "n_clicks", "value": None},
        ],
        "changedPropIds": [json.dumps(key, separators=(",", ":")) + ".n_clicks"],
    }
    return client.post("/_dash-update-component", json=payload)


def firing_alert(owner_engine, rule_name="HighErrorRate") -> None:
    """A firing alert, as the evaluator would store it."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO alert_states (rule_name, title, severity, link, state, value)
                   VALUES (:rule, 'More than 10 errors per minute', 'critical',
                           '/errors', 'firing', 42)"""
            ),
            {"rule": rule_name},
        )


def test_on_call_acknowledges_and_silences_audited_and_visible_to_everyone(
    dash_app, client_as, users, clean_alerts, owner_engine, services
):
    firing_alert(owner_engine)
    on_call = client_as("on_call")
    opened = callback_values(open_form(on_call, dash_app, "HighErrorRate", "silence"))
    assert opened["alert-action-target"]["data"] == {
        "rule": "HighErrorRate",
        "action": "silence",
        "instance": "",
    }
    assert opened["alert-action-form"]["hidden"] is False
    assert opened["alert-action-minutes-field"]["hidden"] is False
    for rule_name, action in (("NoSuchRule", "ack"), ("HighErrorRate", "delete"), (["x"], ["ack"])):
        assert open_form(on_call, dash_app, rule_name, action).status_code == 204
    assert "write a note" in acted(act(on_call, dash_app, "HighErrorRate", "ack", " "))
    for bad in (
        None,
        "x",
        {"rule": "HighErrorRate"},
        {"rule": "HighErrorRate", "action": "drop"},
        {"rule": ["HighErrorRate"], "action": ["ack"]},
        {"rule": "HighErrorRate", "action": {"a": 1}},
    ):
        refused = call_callback(
            on_call, dash_app, "alert-action-message.children", [1], [bad, "n", 60, 0]
        )
        assert "Not " in acted(refused)
    assert "unknown rule" in acted(act(on_call, dash_app, "'; DROP TABLE tasks; --", "ack", "n"))
    assert "longer than" in acted(act(on_call, dash_app, "HighErrorRate", "ack", "x" * 5000))
    assert "must be text" in acted(act(on_call, dash_app, "HighErrorRate", "ack", ["a"]))
    done = callback_values(act(on_call, dash_app, "HighErrorRate", "ack", "on it"))
    assert "Acknowledged HighErrorRate" in json.dumps(done["alert-action-message"])
    assert "message-success" in json.dumps(done["alert-action-message"])
    assert done["alert-acted"]["data"] == 1

    viewer = client_as("viewer")
    shown = json.dumps(
        callback_values(call_callback(viewer, dash_app, "alert-banner.children", [1, 0], [None]))
    )
    assert "More than 10 errors per minute: 42" in shown
    assert "acknowledged by test-on-call" in shown
    page = json.dumps(
        callback_values(
            call_callback(viewer, dash_app, "alerts-table.children", [1, None, 0], [None])
        )
    )
    assert "test-on-call: on it" in page and "acknowledged" in page

    for minutes in (7, True, "60", None, [60], {"m": 60}):
        bad = act(on_call, dash_app, "HighErrorRate", "silence", "", minutes)
        assert "choose a duration" in acted(bad)
    silenced = acted(act(on_call, dash_app, "HighErrorRate", "silence", "deploy", 60))
    assert "Silenced HighErrorRate for 1 hour" in silenced and "message-success" in silenced
    assert table_rows(
        owner_engine,
        "SELECT until > now() + interval '59 minutes', username, note FROM alert_silences",
    ) == [(True, "test-on-call", "deploy")]
    services.clear_caches()
    quiet = callback_values(
        call_callback(viewer, dash_app, "alert-banner.children", [1, 0], [None])
    )
    assert quiet["alert-banner"]["children"] is None  # silenced: not in the banner
    page = json.dumps(
        callback_values(
            call_callback(viewer, dash_app, "alerts-table.children", [1, None, 0], [None])
        )
    )
    assert "(test-on-call)" in page and "silenced until" in page

    audited = table_rows(
        owner_engine,
        "SELECT entity_type, username FROM audit_logs WHERE entity_type LIKE 'alert%' "
        "ORDER BY timestamp",
    )
    assert audited == [
        ("alert_acknowledgements", "test-on-call"),
        ("alert_silences", "test-on-call"),
    ]
    assert "Ended the silence" in acted(act(on_call, dash_app, "HighErrorRate", "unsilence"))
    again = acted(act(on_call, dash_app, "HighErrorRate", "unsilence"))
    assert "was not silenced" in again and "message-warning" in again
    services.clear_caches()
    back = callback_values(call_callback(viewer, dash_app, "alert-banner.children", [1, 0], [None]))
    assert "More than 10 errors" in json.dumps(back)


def test_rls_lets_every_user_read_alerts_but_only_ack_holders_acknowledge(
    database, users, clean_alerts
):
    from sqlalchemy.exc import ProgrammingError

    store.acknowledge(users.actor("admin"), "TaskBacklog", "seen")
    store.acknowledge(users.actor("on_call"), "TaskBacklog", "seen too")
    store.silence(users.actor("on_call"), "TaskBacklog", 15, "")
    assert store.end_silences(users.actor("on_call"), "TaskBacklog").count == 1
    for role in ("viewer", "api_client", "on_call"):
        events = store.alert_history(users.actor(role))
        assert sorted(e["what"] for e in events)[:2] == ["acknowledged until resolved"] * 2
    for role in ("viewer", "developer", "api_client"):
        with pytest.raises(ProgrammingError):
            store.acknowledge(users.actor(role), "TaskBacklog", "sneaky")
        with pytest.raises(ProgrammingError):
            store.silence(users.actor(role), "TaskBacklog", 15, "sneaky")
    for role in ("developer", "on_call"):
        with pytest.raises(ProgrammingError):
            store.save_override(users.actor(role), "TaskBacklog", 1, ">", 0, True)


# ------------------------------------------------------------------------------ browser


def count_elements(dash_duo, selector: str) -> int:
    # No implicit wait: asking for something absent must not take the driver's timeout.
    return dash_duo.driver.execute_script(
        "return document.querySelectorAll(arguments[0]).length", selector
    )


@pytest.mark.browser
def test_the_banner_shows_a_firing_alert_in_the_browser(
    dash_duo, dash_app, services, users, clean_data, clean_alerts, owner_engine
):
    insert_pending_tasks(owner_engine, 101)
    store.save_override(users.actor("admin"), "TaskBacklog", 100, ">", 1, True)
    clock = Clock()
    evaluator = AlertEvaluator(rules=[rule("TaskBacklog")], clock=clock)
    assert evaluator.evaluate_once()[0].state == "pending"
    browser_sign_in(dash_duo, dash_app, "test-viewer", path="/")
    assert count_elements(dash_duo, "#alert-banner a") == 0
    clock.advance(1.1)
    assert evaluator.evaluate_once()[0].state == "firing"
    services.clear_caches()
    dash_duo.driver.refresh()
    dash_duo.wait_for_contains_text(
        "#alert-banner", "Task backlog over 100 pending: 101", timeout=15
    )
    link = dash_duo.find_element("#alert-banner a")
    assert link.get_attribute("href").endswith("/tasks")
    # The /alerts page lists the rule as firing; a viewer gets no edit form.
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/alerts")
    dash_duo.wait_for_text_to_equal("#alert-row-TaskBacklog td:nth-child(3)", "firing", timeout=15)
    assert count_elements(dash_duo, "#alerts-edit-save") == 0
    # The timeline chart draws the backlog rule's pending and firing bands.
    dash_duo.wait_for_contains_text("#alerts-timeline-chart .legend", "firing", timeout=15)
    assert "pending" in dash_duo.find_element("#alerts-timeline-chart .legend").text


@pytest.mark.browser
def test_an_admin_edits_a_rule_in_the_browser(
    dash_duo, dash_app, users, clean_alerts, owner_engine
):
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/alerts")
    dash_duo.wait_for_element("#alerts-edit-save")
    threshold = dash_duo.find_element("#alerts-edit-threshold")
    until(lambda: threshold.get_attribute("value") == "0", timeout=10)  # the first rule's
    dash_duo.select_dcc_dropdown("#alerts-edit-rule", value="Task backlog over 100 pending")
    until(lambda: threshold.get_attribute("value") == "100", timeout=10)
    assert dash_duo.find_element("#alerts-edit-for").get_attribute("value") == "10m"
    dash_duo.clear_input(threshold)
    threshold.send_keys("-1")
    dash_duo.find_element("#alerts-edit-save").click()
    dash_duo.wait_for_contains_text("#alerts-edit-message", "must not be negative", timeout=10)
    assert table_rows(owner_engine, "SELECT count(*) FROM alert_rule_overrides") == [(0,)]
    dash_duo.clear_input(threshold)
    threshold.send_keys("120")
    dash_duo.find_element("#alerts-edit-save").click()
    dash_duo.wait_for_contains_text("#alerts-edit-message", "Saved TaskBacklog", timeout=10)
    dash_duo.wait_for_contains_text("#alert-row-TaskBacklog", "> 120", timeout=10)
    assert table_rows(owner_engine, "SELECT threshold FROM alert_rule_overrides") == [(120.0,)]
    assert dash_duo.get_logs() == []


def act_button(rule_name: str, action: str, place: str) -> str:
    """CSS selector of an Acknowledge / Silence button (Dash writes a dict id as sorted JSON)."""
    key = {"action": action, "instance": "", "place": place, "rule": rule_name, "type": "alert-act"}
    return "button[id=" + json.dumps(json.dumps(key, separators=(",", ":"))) + "]"


def confirm_alert_action(dash_duo, note: str | None = None) -> None:
    form = dash_duo.wait_for_element("#alert-action-form", timeout=10)
    until(form.is_displayed, timeout=10)
    if note is not None:
        dash_duo.find_element("#alert-action-note").send_keys(note)
    dash_duo.find_element("#alert-action-confirm").click()


def message_colour(dash_duo, selector: str) -> str:
    return dash_duo.driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).color", selector
    )


OK_GREEN = "rgb(7, 148, 85)"  # --ok in assets/style.css
CRITICAL_RED = "rgb(217, 45, 32)"  # --critical


@pytest.mark.browser
def test_on_call_acknowledges_and_silences_from_the_banner_and_the_alerts_row(
    dash_duo, dash_app, users, clean_alerts, owner_engine
):
    firing_alert(owner_engine, "HighErrorRate")
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO alert_states (rule_name, title, severity, link, state, value)
                   VALUES ('TaskBacklog', 'Task backlog over 100 pending', 'warning', '/tasks',
                           'firing', 150)"""
            )
        )
    browser_sign_in(dash_duo, dash_app, "test-on-call", path="/tasks")
    dash_duo.wait_for_contains_text("#alert-banner", "More than 10 errors per minute", timeout=15)
    assert count_elements(dash_duo, "#alert-needs-ack") == 0

    # From the banner: the form opens on the firing rule, refuses an empty note, then saves.
    dash_duo.find_element(act_button("HighErrorRate", "ack", "banner")).click()
    confirm_alert_action(dash_duo)
    title = dash_duo.find_element("#alert-action-title").text
    assert title == "Acknowledge “More than 10 errors per minute”"
    dash_duo.wait_for_contains_text("#alert-action-error .message-error", "write a note")
    assert message_colour(dash_duo, "#alert-action-error .message-error") == CRITICAL_RED
    dash_duo.find_element("#alert-action-note").send_keys("on it, looking at the deploy")
    dash_duo.find_element("#alert-action-confirm").click()
    dash_duo.wait_for_contains_text(
        "#alert-action-message .message-success", "Acknowledged HighErrorRate", timeout=10
    )
    assert message_colour(dash_duo, "#alert-action-message .message-success") == OK_GREEN
    until(lambda: not dash_duo.find_element("#alert-action-form").is_displayed(), timeout=10)
    assert table_rows(
        owner_engine, "SELECT rule_name, username, note FROM alert_acknowledgements"
    ) == [("HighErrorRate", "test-on-call", "on it, looking at the deploy")]
    dash_duo.wait_for_contains_text("#alert-banner", "acknowledged by test-on-call", timeout=10)

    dash_duo.find_element(act_button("HighErrorRate", "silence", "banner")).click()
    dash_duo.wait_for_text_to_equal(
        "#alert-action-title", "Silence “More than 10 errors per minute”", timeout=10
    )
    choose_option(dash_duo, "#alert-action-minutes", "4 hours")
    confirm_alert_action(dash_duo, "deploying the fix")
    dash_duo.wait_for_contains_text(
        "#alert-action-message .message-success", "Silenced HighErrorRate for 4 hours", timeout=10
    )
    assert table_rows(
        owner_engine,
        """SELECT rule_name, username, note,
                  until BETWEEN now() + interval '239 minutes' AND now() + interval '241 minutes'
           FROM alert_silences""",
    ) == [("HighErrorRate", "test-on-call", "deploying the fix", True)]
    until(lambda: "More than 10 errors" not in dash_duo.find_element("#alert-banner").text, 10)

    # From the /alerts row of the other firing rule, pre-filled with that rule.
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/alerts")
    dash_duo.wait_for_element(act_button("TaskBacklog", "silence", "row"), timeout=15).click()
    dash_duo.wait_for_text_to_equal(
        "#alert-action-title", "Silence “Task backlog over 100 pending”", timeout=10
    )
    confirm_alert_action(dash_duo)
    dash_duo.wait_for_contains_text(
        "#alert-action-message", "Silenced TaskBacklog for 1 hour", timeout=10
    )
    dash_duo.wait_for_contains_text("#alert-row-TaskBacklog", "(test-on-call)", timeout=10)
    dash_duo.wait_for_element(act_button("TaskBacklog", "ack", "row")).click()
    confirm_alert_action(dash_duo, "backlog from the nightly import")
    dash_duo.wait_for_contains_text(
        "#alert-row-TaskBacklog", "test-on-call: backlog from the nightly import", timeout=10
    )
    assert table_rows(
        owner_engine,
        "SELECT rule_name, username FROM alert_silences ORDER BY created_at",
    ) == [("HighErrorRate", "test-on-call"), ("TaskBacklog", "test-on-call")]
    # Ending a silence from the row brings the alert back to the banner.
    dash_duo.find_element(act_button("HighErrorRate", "unsilence", "row")).click()
    confirm_alert_action(dash_duo)
    dash_duo.wait_for_contains_text("#alert-action-message", "Ended the silence", timeout=10)
    dash_duo.wait_for_contains_text("#alert-banner", "More than 10 errors per minute", timeout=10)
    assert count_elements(dash_duo, "#alerts-edit-save") == 0  # editing rules: alerts:manage
    assert "alerts:manage" in dash_duo.find_element("#alerts-needs-manage").text

    # The Overview counts both firing alerts and says one is silenced, both acknowledged.
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/")
    dash_duo.wait_for_contains_text("#ov-firing-alerts", "1 silenced, 2 acknowledged", timeout=15)
    assert dash_duo.find_element("#ov-firing-alerts").text.splitlines()[0] == "2"
    assert dash_duo.get_logs() == []


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "developer", "viewer", "api_client", "on_call"])
def test_every_role_opens_alerts_with_controls_only_for_alerts_ack(
    dash_duo, dash_app, users, clean_alerts, owner_engine, role
):
    firing_alert(owner_engine)
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/alerts")
    dash_duo.wait_for_text_to_equal("#alert-row-HighErrorRate td:nth-child(3)", "firing", 15)
    dash_duo.wait_for_contains_text("#alert-banner", "More than 10 errors per minute", timeout=15)
    may_act = role in ("admin", "on_call")
    buttons = count_elements(dash_duo, """button[id*='"type":"alert-act"']""")
    if may_act:
        # banner: acknowledge + silence; each row: silence, and acknowledge on the firing one
        assert buttons == 2 + len(configured_rules()) + 1
        assert count_elements(dash_duo, "#alerts-needs-ack, #alert-needs-ack") == 0
    else:
        assert buttons == 0
        for line in ("#alerts-needs-ack", "#alert-needs-ack"):
            assert "needs the alerts:ack permission" in dash_duo.find_element(line).text
    assert count_elements(dash_duo, "#alerts-edit-save") == (1 if role == "admin" else 0)
    assert dash_duo.get_logs() == []


# ------------------------------------------------------------------------------ Prometheus


class MetricsTarget:
    """A /metrics endpoint on loopback whose pool gauges the test sets."""

    def __init__(self) -> None:
        self.in_use = 9
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = (
                    f'taskmaster_db_pool_in_use{{pool="read"}} {outer.in_use}\n'
                    'taskmaster_db_pool_max{pool="read"} 10\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def prometheus_server():
    binary = shutil.which("prometheus")
    if not binary:
        pytest.skip("prometheus is not installed")
    target = MetricsTarget()
    workdir = Path(tempfile.mkdtemp(prefix="tmdash-prom-"))
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: taskmaster\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target.port}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = requests.get(
                    f"{url}/api/v1/query", params={"query": "taskmaster_db_pool_max"}, timeout=1
                ).json()
                if answer["data"]["result"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail("prometheus did not scrape the test target in 30 s")
        yield proc, url, target
    finally:
        proc.terminate()
        proc.wait(10)
        target.server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.prometheus
def test_a_promql_rule_against_a_real_prometheus(prometheus_server, database, users, clean_alerts):
    proc, url, _target = prometheus_server
    store.save_override(users.actor("admin"), "HighPoolUtilisation", 80, ">", 0, True)
    reader = PrometheusReader(url, cache_seconds=0)
    evaluator = AlertEvaluator(rules=[rule("HighPoolUtilisation")], prometheus=lambda: reader)
    (result,) = evaluator.evaluate_once()
    assert (result.state, result.value) == ("firing", 90)
    proc.terminate()
    proc.wait(10)
    (down,) = evaluator.evaluate_once()
    assert down.state == "error"  # Prometheus stopped: unknown, not resolved
