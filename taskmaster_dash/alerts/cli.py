"""`taskmaster-dash alerts check | run | export-prometheus` (wired into cli.py)."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts import maintenance_cli
from taskmaster_dash.alerts.alertmanager import AmSilence, alertmanager_silences
from taskmaster_dash.alerts.evaluator import (
    AlertEvaluator,
    effective_rules,
    evaluator_from_settings,
)
from taskmaster_dash.alerts.rules import format_number, load_rules, prometheus_rules_yaml
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, user_message
from taskmaster_dash.data.prometheus import PrometheusReader
from taskmaster_dash.services import Services, install


def _open_with_prometheus(open_database: Callable):
    """The database, and the services with the Prometheus reader the rules read."""
    settings = load_settings()
    opened = open_database(settings)
    reader = PrometheusReader(settings.prometheus_url) if settings.prometheus_enabled else None
    install(Services.build(settings, opened.database, reader))
    return opened, settings


def _marks(name: str, state: dict, am: dict[str, list[AmSilence]]) -> list[str]:
    """What holds the rule's notifications: app and Alertmanager silences, acknowledgement."""
    marks = []
    if state.get("silenced_until"):
        marks.append(f"silenced in the app until {_utc(state['silenced_until'])}")
    marks += [f"silenced in Alertmanager until {_utc(s.ends_at)}" for s in am.get(name, [])]
    if state.get("ack_by"):
        marks.append(f"acknowledged by {state['ack_by']}")
    return marks


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def check(evaluator: AlertEvaluator) -> list[str]:
    """Evaluate every rule once; store the result only when no other evaluator is running.
    Each line: rule, state, value, and whether it is silenced (in the app or in
    Alertmanager) or acknowledged."""
    leader = evaluator.lead()
    try:
        results = evaluator.evaluate_once(persist=leader)
    finally:
        evaluator.release()
        if evaluator.notifier is not None:  # deliver what this check sent before exiting
            evaluator.notifier.flush(60)
        if evaluator.alertmanager is not None:
            evaluator.alertmanager.flush(60)
    problems = []
    try:
        states = store.alert_table(SYSTEM_ACTOR)
    except SQLAlchemyError as exc:
        states, problems = {}, [f"(silences and acknowledgements unknown: {user_message(exc)})"]
    try:
        am, reading = alertmanager_silences([r.rule for r in results], SYSTEM_ACTOR)
    except SQLAlchemyError as exc:
        am, reading = {}, user_message(exc)
    if reading:
        problems.append(f"({reading})")
    lines = []
    for r in results:
        line = f"{r.rule.name:<28} {r.state:<9} {format_number(r.value):>10}"
        details = [
            *([r.message] if r.message else []),
            *_marks(r.rule.name, states.get(r.rule.name, {}), am),
        ]
        lines.append(line + (f"  ({'; '.join(details)})" if details else ""))
    if not leader:
        lines.append("(another evaluator is running: these results were not stored)")
    return lines + problems


def run(args: argparse.Namespace, open_database: Callable) -> None:
    if args.alerts_command == "maintenance":
        maintenance_cli.run(args, open_database)
        return
    if args.alerts_command == "export-prometheus":
        settings = load_settings()
        rules = load_rules(settings.alerts_rules_file)
        if not args.no_overrides:
            opened = open_database(settings)
            try:
                rules = effective_rules(rules)
            finally:
                opened.close()
        text = prometheus_rules_yaml(rules)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"Wrote {args.output}.")
        else:
            sys.stdout.write(text)
        return

    opened, settings = _open_with_prometheus(open_database)
    try:
        evaluator = evaluator_from_settings(settings)
        if args.alerts_command == "check":
            print("\n".join(check(evaluator)))
            return
        print(
            f"Evaluating {len(evaluator.rules)} alert rules every {evaluator.interval:g} s"
            " (Ctrl-C stops).",
            flush=True,
        )
        evaluator.run(threading.Event())
    finally:
        opened.close()
