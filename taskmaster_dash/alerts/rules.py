"""Alert rules: the defaults in rules.yaml, parsed and validated, with the admins' overrides."""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from taskmaster_dash.data.refusal import Refused
from taskmaster_dash.resources import shipped

DEFAULT_RULES_FILE = shipped("alerts", "rules.yaml")
# Worst first; "none" is a heartbeat (the Watchdog): never in the banner or the counts.
SEVERITIES = ("critical", "warning", "none")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
MAX_FOR_SECONDS = 7 * 24 * 3600
MAX_THRESHOLD = 1e12
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_DURATION = re.compile(r"^\s*(\d{1,7})\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")  # Prometheus label names
RESERVED_LABELS = frozenset({"alertname", "severity"})
SERVICE_LABEL = "taskmaster-dash"  # the `service` label of every alert the app sends
_OWN_LABELS = RESERVED_LABELS | {"service"}
_FIELDS = {
    "name",
    "title",
    "severity",
    "source",
    "comparison",
    "threshold",
    "for",
    "description",
    "runbook",
    "link",
    "labels",
    "runbook_url",
    "params",
    "group_by",
    "keep_firing_for",
    "no_data",
    "on_error",
}
# What an instance becomes when its source has no data / cannot be read. "alerting" counts as
# firing; "keep_last" keeps the previous state; the defaults show NoData / Error, never normal.
NO_DATA_STATES = ("no_data", "alerting", "normal", "keep_last")
ERROR_STATES = ("error", "alerting", "normal", "keep_last")
ORIGINS = ("file", "app")
MAX_GROUP_BY = 5
MAX_LABEL_VALUE = 200


class RuleError(Refused, ValueError):
    """A rule or an edit that cannot be accepted; the message says which and why."""


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    severity: str
    source_kind: str  # "sql" or "promql"
    source: str  # the named query or the PromQL expression
    comparison: str
    threshold: float
    for_seconds: int
    description: str
    runbook: str
    link: str
    enabled: bool = True
    labels: tuple[tuple[str, str], ...] = ()  # extra Alertmanager labels, e.g. team, receiver
    runbook_url: str = ""
    # SQL: catalogue columns; PromQL: labels of the result vector. One instance per label set.
    group_by: tuple[str, ...] = ()
    params: tuple[tuple[str, float], ...] = ()  # the catalogue metric's parameters, all of them
    keep_firing_seconds: int = 0  # stays firing this long after the condition clears
    no_data_state: str = "no_data"
    error_state: str = "error"
    origin: str = "file"  # "file" (rules.yaml / ALERTS_RULES_FILE) or "app" (written on /alerts)

    def breached(self, value: float) -> bool:
        return COMPARISONS[self.comparison](value, self.threshold)

    @property
    def condition(self) -> str:
        return f"{self.comparison} {exact_number(self.threshold)}"

    @property
    def param_values(self) -> dict[str, float]:
        return dict(self.params)


def instance_key(labels: Mapping[str, str]) -> str:
    """The canonical text of an instance's label set: '' when none, else 'a=1,b=2' by name."""
    return ",".join(f"{name}={labels[name]}" for name in sorted(labels))


def instance_anchor(rule_name: str, instance: str = "") -> str:
    """The id of an instance's row on /alerts (the rule's own id when it does not group)."""
    if not instance:
        return f"alert-row-{rule_name}"
    return f"alert-row-{rule_name}-{hashlib.sha256(instance.encode()).hexdigest()[:12]}"


def alert_labels(rule: Rule, instance_labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels of one instance's alert: alertname, severity, service, the rule's labels and
    the instance's. An instance label that would replace one of the first three goes out as
    exported_<name> (as Prometheus does when a scraped label clashes)."""
    labels = {
        "alertname": rule.name,
        "severity": rule.severity,
        "service": SERVICE_LABEL,
        **dict(rule.labels),
    }
    for name, value in (instance_labels or {}).items():
        labels[f"exported_{name}" if name in _OWN_LABELS else name] = value
    return labels


def format_number(value: float | None) -> str:
    """A value for people: whole numbers as such, others to four significant digits."""
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def exact_number(value: float) -> str:
    """A threshold exactly as entered (also valid PromQL)."""
    return f"{value:.0f}" if float(value).is_integer() else repr(float(value))


def parse_duration(value: Any, what: str = "for") -> int:
    """Seconds from 90, "90", "90s", "5m", "1h", "1d"; RuleError for anything else."""
    if isinstance(value, bool):
        raise RuleError(f"{what}: expected a duration such as 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if not match:
            raise RuleError(
                f"{what}: expected a duration such as 30s, 5m or 1h, got {str(value)[:40]!r}"
            )
        seconds = int(match[1]) * _UNITS[match[2]]
    if not 0 <= seconds <= MAX_FOR_SECONDS:
        raise RuleError(f"{what}: must be between 0s and 7d, got {seconds}s")
    return seconds


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_threshold(value: Any) -> float:
    if isinstance(value, bool):
        raise RuleError(f"threshold: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuleError(f"threshold: expected a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise RuleError("threshold: must be a finite number")
    if number < 0:
        raise RuleError(f"threshold: must not be negative, got {format_number(number)}")
    if number > MAX_THRESHOLD:
        raise RuleError("threshold: too large")
    return number


def parse_comparison(value: Any) -> str:
    if not isinstance(value, str) or value.strip() not in COMPARISONS:
        shown = str(value)[:20]
        raise RuleError(f"comparison: unknown {shown!r}; use one of {' '.join(COMPARISONS)}")
    return value.strip()


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise RuleError(f"{where}: {key} must be a non-empty text")
    return " ".join(value.split())


def _labels(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise RuleError(f"{where}: labels must be a mapping of name: value")
    labels = []
    for name, text in value.items():
        if not isinstance(name, str) or not _LABEL.match(name) or name in RESERVED_LABELS:
            raise RuleError(
                f"{where}: label {str(name)[:40]!r} must be letters, digits and underscores, "
                "and not alertname or severity"
            )
        if not isinstance(text, (str, int, float)) or isinstance(text, bool) or not str(text):
            raise RuleError(f"{where}: label {name} must have a text value")
        labels.append((name, str(text)[:200]))
    return tuple(sorted(labels))


def _choice(entry: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    value = entry.get(key, allowed[0])
    if value not in allowed:
        raise RuleError(
            f"{where}: {key} must be one of {', '.join(allowed)}, got {str(value)[:40]!r}"
        )
    return str(value)


def _group_by(value: Any, kind: str, query: str, where: str) -> tuple[str, ...]:
    """The grouping columns: for SQL those the catalogue metric offers, for PromQL label names."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: group_by must be a list of column or label names")
    if len(value) > MAX_GROUP_BY:
        raise RuleError(f"{where}: group_by takes at most {MAX_GROUP_BY} names")
    if len(set(value)) != len(value):
        raise RuleError(f"{where}: group_by names a column twice")
    if kind == "sql":
        from taskmaster_dash.data.alert_metrics import CATALOGUE

        offered = CATALOGUE[query].group_by
        for name in value:
            if name not in offered:
                choices = ", ".join(offered) if offered else "none (it does not group)"
                raise RuleError(
                    f"{where}: metric {query} cannot be grouped by {name[:40]!r}; "
                    f"it offers {choices}"
                )
    else:
        for name in value:
            if not _LABEL.match(name) or name in RESERVED_LABELS or name == "service":
                raise RuleError(
                    f"{where}: group_by label {name[:40]!r} must be a Prometheus label name "
                    "(letters, digits, underscores), not alertname, severity or service"
                )
    return tuple(value)


def _params(value: Any, kind: str, query: str, where: str) -> tuple[tuple[str, float], ...]:
    """The metric's parameters, each checked against its range; defaults fill the rest."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise RuleError(f"{where}: params must be a mapping of name: number")
    if kind != "sql":
        if value:
            raise RuleError(f"{where}: params apply to sql metrics only")
        return ()
    from taskmaster_dash.data.alert_metrics import CATALOGUE

    offered = CATALOGUE[query].params
    unknown = [str(k)[:40] for k in value if k not in offered]
    if unknown:
        known = ", ".join(offered) if offered else "none"
        raise RuleError(
            f"{where}: metric {query} has no parameter {', '.join(unknown)}; it takes {known}"
        )
    params = []
    for name, spec in offered.items():
        given = value.get(name, spec.default)
        if (
            isinstance(given, bool)
            or not isinstance(given, (int, float))
            or not math.isfinite(given)
        ):
            raise RuleError(f"{where}: parameter {name} must be a number, got {str(given)[:40]!r}")
        if not spec.minimum <= given <= spec.maximum:
            raise RuleError(
                f"{where}: parameter {name} must be between {format_number(spec.minimum)} and "
                f"{format_number(spec.maximum)}, got {format_number(float(given))}"
            )
        params.append((name, float(given)))
    return tuple(params)


def parse_rule(
    entry: Any, index: int, sql_sources: frozenset[str] | None = None, *, origin: str = "file"
) -> Rule:
    """One rule from its mapping (the rules file, or a rule written in the app): every field
    checked; RuleError says which and why."""
    if sql_sources is None:
        from taskmaster_dash.data.alert_metrics import CATALOGUE

        sql_sources = frozenset(CATALOGUE)
    if origin not in ORIGINS:
        raise RuleError(f"origin must be one of {', '.join(ORIGINS)}")
    where = f"rule {index + 1}"
    if not isinstance(entry, Mapping):
        raise RuleError(f"{where}: expected a mapping of fields")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(f"{where}: name must be letters, digits and underscores, got {name!r}")
    where = f"rule {name}"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    severity = entry.get("severity")
    if severity not in SEVERITIES:
        raise RuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    source = entry.get("source")
    if not isinstance(source, Mapping) or len(source) != 1:
        raise RuleError(f"{where}: source must be exactly one of sql: NAME or promql: EXPR")
    ((kind, query),) = source.items()
    if kind not in ("sql", "promql") or not isinstance(query, str) or not query.strip():
        raise RuleError(f"{where}: source must be exactly one of sql: NAME or promql: EXPR")
    if kind == "sql" and query not in sql_sources:
        raise RuleError(
            f"{where}: unknown sql source {query!r}; known: {', '.join(sorted(sql_sources))}"
        )
    labels = _labels(entry.get("labels"), where)
    runbook_url = _text(entry, "runbook_url", where, required=False)
    if runbook_url and not runbook_url.startswith(("http://", "https://")):
        raise RuleError(f"{where}: runbook_url must be an http(s) URL")
    link = _text(entry, "link", where)
    if not link.startswith("/"):
        raise RuleError(f"{where}: link must be a path in the app, such as /tasks")
    group_by = _group_by(entry.get("group_by"), kind, query, where)
    params = _params(entry.get("params"), kind, query, where)
    no_data = _choice(entry, "no_data", NO_DATA_STATES, where)
    on_error = _choice(entry, "on_error", ERROR_STATES, where)
    try:
        return Rule(
            name=name,
            title=_text(entry, "title", where),
            severity=severity,
            source_kind=kind,
            source=" ".join(query.split()),
            comparison=parse_comparison(entry.get("comparison")),
            threshold=parse_threshold(entry.get("threshold")),
            for_seconds=parse_duration(entry.get("for", 0)),
            description=_text(entry, "description", where),
            runbook=_text(entry, "runbook", where, required=False),
            link=link,
            labels=labels,
            runbook_url=runbook_url,
            group_by=group_by,
            params=params,
            keep_firing_seconds=parse_duration(entry.get("keep_firing_for", 0), "keep_firing_for"),
            no_data_state=no_data,
            error_state=on_error,
            origin=origin,
        )
    except RuleError as exc:
        raise RuleError(f"{where}: {exc}") from None


def load_rules(path: Path | str | None = None) -> list[Rule]:
    """The rules in `path` (default: alerts/rules.yaml), validated; RuleError says what is wrong."""
    from taskmaster_dash.data.alert_metrics import CATALOGUE

    path = Path(path or DEFAULT_RULES_FILE)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from None
    entries = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{path}: expected a top-level `rules:` list")
    rules: list[Rule] = []
    try:
        for index, entry in enumerate(entries):
            rule = parse_rule(entry, index, frozenset(CATALOGUE))
            if any(r.name == rule.name for r in rules):
                raise RuleError(f"rule {rule.name}: defined twice")
            rules.append(rule)
    except RuleError as exc:
        raise RuleError(f"{path}: {exc}") from None
    return rules


@dataclass(frozen=True)
class Override:
    """An admin's change to a rule, stored in the database; None fields keep the file's value."""

    threshold: float | None = None
    comparison: str | None = None
    for_seconds: int | None = None
    enabled: bool | None = None


def validate_override(threshold: Any, comparison: Any, for_value: Any, enabled: Any) -> Override:
    """The edit form's values, checked on the server; RuleError with a message otherwise."""
    if threshold is None or (isinstance(threshold, str) and not threshold.strip()):
        raise RuleError("threshold: a number is required")
    if not isinstance(enabled, bool):
        raise RuleError("enabled: expected true or false")
    return Override(
        threshold=parse_threshold(threshold),
        comparison=parse_comparison(comparison),
        for_seconds=parse_duration(for_value),
        enabled=enabled,
    )


def apply_overrides(rules: list[Rule], overrides: Mapping[str, Override]) -> list[Rule]:
    """The effective rules: each admin override wins over the file's value."""
    effective = []
    for rule in rules:
        o = overrides.get(rule.name)
        if o is not None:
            rule = replace(
                rule,
                threshold=rule.threshold if o.threshold is None else o.threshold,
                comparison=rule.comparison if o.comparison is None else o.comparison,
                for_seconds=rule.for_seconds if o.for_seconds is None else o.for_seconds,
                enabled=rule.enabled if o.enabled is None else o.enabled,
            )
        effective.append(rule)
    return effective


def prometheus_rules_yaml(rules: list[Rule], group: str = "taskmaster-dash") -> str:
    """The enabled PromQL rules as a Prometheus alerting-rules file (`promtool check rules`)."""
    entries = [
        {
            "alert": rule.name,
            "expr": f"({rule.source}) {rule.condition}",
            "for": format_duration(rule.for_seconds),
            **(
                {"keep_firing_for": format_duration(rule.keep_firing_seconds)}
                if rule.keep_firing_seconds
                else {}
            ),
            "labels": {k: v for k, v in alert_labels(rule).items() if k != "alertname"},
            "annotations": {
                "summary": rule.title,
                "description": rule.description + " Value: {{ $value }}.",
                "runbook": rule.runbook,
            },
        }
        for rule in rules
        if rule.source_kind == "promql" and rule.enabled
    ]
    header = "# Generated by `taskmaster-dash alerts export-prometheus`.\n"
    return header + yaml.safe_dump(
        {"groups": [{"name": group, "rules": entries}]}, sort_keys=False, width=100
    )


def configured_rules() -> tuple[Rule, ...]:
    """The rules the app uses (ALERTS_RULES_FILE, or the shipped defaults): read once, when the
    services are built."""
    from taskmaster_dash.services import current

    return current().rules
