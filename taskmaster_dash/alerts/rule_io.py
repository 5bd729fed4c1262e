"""Rules written in the app, as text: one rule as a rules.yaml entry (what the database keeps
and the editor submits), checked before saving; every rule exported as a rules file; a rules
file imported all or nothing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from taskmaster_dash.alerts.rules import (
    Rule,
    RuleError,
    exact_number,
    format_duration,
    parse_rule,
)
from taskmaster_dash.data.prometheus import PrometheusUnavailable, get_prometheus

MAX_TEXT = 2000  # any one text of a rule (descriptions, PromQL ...)
MAX_TITLE = 200
MAX_RULES = 500  # in one import
MAX_IMPORT_BYTES = 2_000_000
# A rule's text is shown and sent to Alertmanager, never run as SQL; still, text that reads
# like a statement is almost always a paste gone wrong or a probe, so it is refused.
_STATEMENT = re.compile(
    r"\b(drop|alter|truncate)\s+table\b|\bdelete\s+from\b|\binsert\s+into\b"
    r"|\bupdate\s+\w+\s+set\b|\bunion\s+(all\s+)?select\b|;\s*--|'\s*;|\bpg_sleep\s*\(",
    re.IGNORECASE,
)
_PROMETHEUS_ERROR = re.compile(r'"error"\s*:\s*"(.*?)"\s*}')


def rule_entry(rule: Rule) -> dict[str, Any]:
    """The rule as one rules.yaml entry (defaults left out): parse_rule gives it back."""
    entry: dict[str, Any] = {
        "name": rule.name,
        "title": rule.title,
        "severity": rule.severity,
        "source": {rule.source_kind: rule.source},
    }
    if rule.params:
        entry["params"] = {k: int(v) if float(v).is_integer() else v for k, v in rule.params}
    if rule.group_by:
        entry["group_by"] = list(rule.group_by)
    entry["comparison"] = rule.comparison
    entry["threshold"] = float(exact_number(rule.threshold))
    if entry["threshold"].is_integer():
        entry["threshold"] = int(entry["threshold"])
    entry["for"] = format_duration(rule.for_seconds)
    if rule.keep_firing_seconds:
        entry["keep_firing_for"] = format_duration(rule.keep_firing_seconds)
    if rule.no_data_state != "no_data":
        entry["no_data"] = rule.no_data_state
    if rule.error_state != "error":
        entry["on_error"] = rule.error_state
    entry["description"] = rule.description
    if rule.runbook:
        entry["runbook"] = rule.runbook
    if rule.runbook_url:
        entry["runbook_url"] = rule.runbook_url
    entry["link"] = rule.link
    if rule.labels:
        entry["labels"] = dict(rule.labels)
    return entry


def _check_texts(value: Any, where: str = "") -> None:
    """Bounded, statement-free texts everywhere in the entry (nested mappings and lists)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_texts(str(key), where)
            _check_texts(item, str(key))
    elif isinstance(value, list):
        for item in value:
            _check_texts(item, where)
    elif isinstance(value, str):
        limit = MAX_TITLE if where == "title" else MAX_TEXT
        if len(value) > limit:
            raise RuleError(f"{where or 'a field'}: at most {limit} characters")
        if where != "promql" and _STATEMENT.search(value):
            raise RuleError(f"{where or 'a field'}: looks like an SQL statement; not accepted")


def check_promql(rule: Rule) -> None:
    """A PromQL rule's expression is run once on Prometheus: a query it refuses (bad syntax,
    unknown function) is refused here with Prometheus's own message."""
    if rule.source_kind != "promql":
        return
    reader = get_prometheus()
    if reader is None:
        raise RuleError(
            "promql: Prometheus is switched off (PROMETHEUS_ENABLED), so the query cannot be "
            "checked"
        )
    try:
        reader.instant(rule.source)
    except PrometheusUnavailable as exc:
        # The reader shortens its reason; Prometheus's own sentence is in the cause.
        full = str(exc.__cause__ or exc.reason)
        refused = _PROMETHEUS_ERROR.search(full)
        if refused or "bad_data" in full:
            why = refused[1].replace("\\", "") if refused else exc.reason
            raise RuleError(f"promql: Prometheus refused the query: {why[:300]}") from None
        raise RuleError(f"promql: cannot be checked: {exc}") from None


def validate_entry(
    entry: Any, file_rules: Iterable[str], *, check_query: bool = True, index: int = 0
) -> Rule:
    """One rule written in the app, checked as the rules file is and more: bounded texts, a
    name no rule of the file has, PromQL that Prometheus accepts. RuleError says what."""
    if not isinstance(entry, Mapping):
        raise RuleError(f"rule {index + 1}: expected a mapping of fields")
    _check_texts(dict(entry))
    rule = parse_rule(entry, index, origin="app")
    if rule.name in set(file_rules):
        raise RuleError(
            f"rule {rule.name}: the rules file already has a rule of that name; choose another"
        )
    if check_query:
        check_promql(rule)
    return rule


def export_yaml(rules: Iterable[Rule]) -> str:
    """Every rule (the file's with the admins' overrides, then the app's) as a rules file.
    Disabled rules are listed under `disabled:`, which the rules file ignores."""
    rules = list(rules)
    written = [r.name for r in rules if r.origin == "app"]
    document: dict[str, Any] = {"rules": [rule_entry(r) for r in rules]}
    disabled = [r.name for r in rules if not r.enabled]
    if disabled:
        document["disabled"] = disabled
    header = (
        "# Alert rules exported by `taskmaster-dash alerts export` (the rules-file format of\n"
        "# ALERTS_RULES_FILE; `taskmaster-dash alerts import FILE` reads it back).\n"
        f"# Written in the app: {', '.join(written) if written else 'none'}.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


@dataclass(frozen=True)
class ImportPlan:
    """What an import would write: the app rules (with enabled), and the file's rules it left
    alone because they are the same."""

    rules: list[tuple[Rule, bool]]
    unchanged_file_rules: list[str]


def parse_import(text: str, effective_file_rules: Iterable[Rule]) -> ImportPlan:
    """A rules file to import, every rule checked before anything is written. Rules of the
    rules file may appear as exported (they are left alone); changed, they are refused."""
    if len(text.encode("utf-8", "replace")) > MAX_IMPORT_BYTES:
        raise RuleError("the file is too large to import")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"not valid YAML: {str(exc)[:300]}") from None
    entries = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise RuleError("expected a top-level `rules:` list")
    if len(entries) > MAX_RULES:
        raise RuleError(f"at most {MAX_RULES} rules in one import")
    disabled = document.get("disabled") or []
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise RuleError("disabled: expected a list of rule names")
    file_rules = {r.name: r for r in effective_file_rules}
    rules: list[tuple[Rule, bool]] = []
    unchanged: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if isinstance(name, str) and name in file_rules:
            same = rule_entry(file_rules[name]) == rule_entry(parse_rule(entry, index))
            if not same:
                raise RuleError(
                    f"rule {name}: is a rule of the rules file; change it there (or its "
                    "threshold on /alerts), or import it under another name"
                )
            unchanged.append(name)
            continue
        rule = validate_entry(entry, file_rules, index=index)
        if rule.name in seen:
            raise RuleError(f"rule {rule.name}: defined twice")
        seen.add(rule.name)
        rules.append((rule, rule.name not in disabled))
    return ImportPlan(rules, unchanged)
