"""`taskmaster-dash alerts check | run | export | import | export-prometheus` (wired into
cli.py)."""

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
from taskmaster_dash.alerts.rule_io import export_yaml, parse_import
from taskmaster_dash.alerts.rules import format_number, load_rules, prometheus_rules_yaml
from taskmaster_dash.data import alerts as store
from taskmaster_dash.data.alert_rule_store import save_rules, with_app_rules
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


def _marks(state: dict, am: list[AmSilence]) -> list[str]:
    """What holds the instance's notifications: app and Alertmanager silences, acknowledgement."""
    marks = []
    if state.get("silenced_until"):
        marks.append(f"silenced in the app until {_utc(state['silenced_until'])}")
    marks += [f"silenced in Alertmanager until {_utc(s.ends_at)}" for s in am]
    if state.get("ack_by") and state.get("ack_active"):
        until = state.get("ack_until")
        marks.append(
            f"acknowledged by {state['ack_by']} "
            + (f"until {_utc(until)}" if until else "until it resolves")
        )
    return marks


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def instance_name(rule_name: str, labels: dict[str, str]) -> str:
    """Prometheus' way to name a series: Rule{label="value",...} (just Rule without labels)."""
    if not labels:
        return rule_name
    return rule_name + "{" + ",".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def check(evaluator: AlertEvaluator) -> list[str]:
    """Evaluate every rule once; store the result only when no other evaluator is running.
    Each line: one instance, its state, value, and whether it is silenced (in the app or in
    Alertmanager) or acknowledged (by whom, until when)."""
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
        am, reading = alertmanager_silences(
            [(r.rule, r.instance, r.labels) for r in results], SYSTEM_ACTOR
        )
    except SQLAlchemyError as exc:
        am, reading = {}, user_message(exc)
    if reading:
        problems.append(f"({reading})")
    lines = []
    for r in results:
        key = (r.rule.name, r.instance)
        line = (
            f"{instance_name(r.rule.name, r.labels):<28} {r.state:<9} {format_number(r.value):>10}"
        )
        details = [
            *([r.message] if r.message else []),
            *_marks(states.get(key, {}), am.get(key, [])),
        ]
        lines.append(line + (f"  ({'; '.join(details)})" if details else ""))
    if not leader:
        lines.append("(another evaluator is running: these results were not stored)")
    return lines + problems


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"Wrote {output}.")
    else:
        sys.stdout.write(text)


def import_rules(path: str, dry_run: bool = False) -> str:
    """Check every rule of `path`, then write them all in one transaction (or none)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    file_rules = effective_rules(list(load_rules(load_settings().alerts_rules_file)))
    plan = parse_import(text, file_rules)
    kept = f"; {len(plan.unchanged_file_rules)} rules of the rules file left as they are"
    if dry_run:
        return f"{path}: {len(plan.rules)} rules are valid (nothing written){kept}."
    created, updated = save_rules(SYSTEM_ACTOR, plan.rules, {r.name for r in file_rules})
    return f"Imported {path}: {created} rules created, {updated} replaced{kept}."


def run(args: argparse.Namespace, open_database: Callable) -> None:
    if args.alerts_command == "maintenance":
        maintenance_cli.run(args, open_database)
        return
    if args.alerts_command in ("export-prometheus", "export"):
        settings = load_settings()
        rules = load_rules(settings.alerts_rules_file)
        if args.alerts_command == "export" or not args.no_overrides:
            opened = open_database(settings)
            try:
                rules = with_app_rules(effective_rules(rules))
            finally:
                opened.close()
        _write(
            prometheus_rules_yaml(rules) if args.alerts_command != "export" else export_yaml(rules),
            args.output,
        )
        return

    opened, settings = _open_with_prometheus(open_database)
    try:
        evaluator = evaluator_from_settings(settings)
        if args.alerts_command == "check":
            print("\n".join(check(evaluator)))
            return
        if args.alerts_command == "import":
            print(import_rules(args.file, args.dry_run))
            return
        print(
            f"Evaluating {len(evaluator.rules)} alert rules every {evaluator.interval:g} s"
            " (Ctrl-C stops).",
            flush=True,
        )
        evaluator.run(threading.Event())
    finally:
        opened.close()
