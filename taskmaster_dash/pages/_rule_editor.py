"""The rule editor on /alerts (alerts:manage): write a rule from a catalogue metric or PromQL,
preview it over the last 7 days, save or delete it. Shown only to alerts:manage, and every
callback refuses anyone else (HTTP 403) before reading anything. Everything the form sends is
checked on the server (alerts/rule_io.py validate_entry: the parser of the rules file and more);
a refused rule is never saved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html

from taskmaster_dash.alerts.preview import InstancePreview, replay_rule
from taskmaster_dash.alerts.rule_io import validate_entry
from taskmaster_dash.alerts.rules import (
    COMPARISONS,
    ERROR_STATES,
    NO_DATA_STATES,
    SEVERITIES,
    Rule,
    RuleError,
    configured_rules,
    format_duration,
    format_number,
)
from taskmaster_dash.auth.permissions import actor_with, has_permission, require_permission
from taskmaster_dash.data import alert_rule_store as rule_store
from taskmaster_dash.data.alert_metric_history import SPAN, rule_history
from taskmaster_dash.data.alert_metrics import CATALOGUE
from taskmaster_dash.data.db import PoolName
from taskmaster_dash.pages._figures import chart, empty_figure
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._input import choice, pressed
from taskmaster_dash.pages._ui import (
    CHART_CONFIG,
    data_table,
    field,
    form_row,
    message,
    text_input,
    when,
)

MANAGE = "alerts:manage"
NEW = "__new__"
PROMQL = "promql"
# One input per parameter name any catalogue metric takes; each shows for the metrics that
# take it.
PARAMS = sorted({name for m in CATALOGUE.values() for name in m.params})
PARAM_IDS = {name: f"rule-ed-param-{name}" for name in PARAMS}
NO_DATA_LABELS = {
    "no_data": "show NoData",
    "alerting": "alert",
    "normal": "treat as normal",
    "keep_last": "keep the last state",
}
ERROR_LABELS = {**NO_DATA_LABELS, "error": "show Error"}
FIRING = "#e5484d"
# The form, in the order the save, preview and fill callbacks list it.
FORM = (
    "rule-ed-name",
    "rule-ed-title",
    "rule-ed-severity",
    "rule-ed-metric",
    "rule-ed-promql",
    "rule-ed-group-by",
    "rule-ed-group-labels",
    "rule-ed-cmp",
    "rule-ed-threshold",
    "rule-ed-for",
    "rule-ed-keep",
    "rule-ed-no-data",
    "rule-ed-on-error",
    "rule-ed-labels",
    "rule-ed-description",
    "rule-ed-runbook-url",
    "rule-ed-link",
    "rule-ed-enabled",
    *PARAM_IDS.values(),
)


def _metric_options() -> list[dict[str, str]]:
    return [{"label": f"{m.title} ({m.name})", "value": m.name} for m in CATALOGUE.values()] + [
        {"label": "PromQL expression", "value": PROMQL}
    ]


def _link_options() -> list[str]:
    return sorted(
        {
            p["path"]
            for p in dash.page_registry.values()
            if not p.get("path_template") and p["path"] != "/404"
        }
    )


def _state_field(
    label: str, component_id: str, states: Sequence[str], labels: Mapping[str, str]
) -> html.Label:
    """The state a rule takes when its query has no data (or fails): the first of `states`,
    the rule file's default, unless chosen."""
    options = [{"label": labels[s], "value": s} for s in states]
    return field(label, dcc.Dropdown(options, states[0], id=component_id, clearable=False))


def editor_section() -> html.Section | None:
    """The editor for alerts:manage; nothing for anyone else."""
    if not has_permission(MANAGE):
        return None
    return html.Section(
        [
            html.H2("Write a rule"),
            html.P(
                "Pick a metric or type PromQL, set the condition, preview it over the last "
                "7 days, then save. Rules written here are stored in the database and exported "
                "with `taskmaster-dash alerts export`.",
                className="muted",
            ),
            dcc.Store(id="rule-ed-saved"),
            html.Div(id="rule-ed-list"),
            form_row(
                field(
                    "Rule to edit",
                    dcc.Dropdown(id="rule-ed-existing", value=NEW, clearable=False),
                ),
                field("Name (letters, digits, _)", text_input("rule-ed-name", "ApiErrorBurst")),
                field("Summary", text_input("rule-ed-title", "API errors over 5 a minute")),
                field(
                    "Severity",
                    dcc.Dropdown(list(SEVERITIES), "warning", id="rule-ed-severity"),
                ),
            ),
            form_row(
                field(
                    "Metric",
                    dcc.Dropdown(_metric_options(), "errors_per_minute", id="rule-ed-metric"),
                ),
                *(
                    html.Div(
                        field(f"{name.replace('_', ' ')}", text_input(PARAM_IDS[name])),
                        id=f"{PARAM_IDS[name]}-field",
                    )
                    for name in PARAMS
                ),
                html.Div(
                    field(
                        "Group by",
                        dcc.Dropdown(id="rule-ed-group-by", multi=True, options=[]),
                    ),
                    id="rule-ed-group-by-field",
                ),
            ),
            html.P(id="rule-ed-metric-help", className="muted"),
            form_row(
                field(
                    "PromQL",
                    dcc.Textarea(
                        id="rule-ed-promql",
                        placeholder="100 * max by (pool) (taskmaster_db_pool_in_use / "
                        "taskmaster_db_pool_max)",
                        className="rule-ed-promql",
                    ),
                ),
                field(
                    "Group by labels (comma-separated)", text_input("rule-ed-group-labels", "pool")
                ),
                id="rule-ed-promql-fields",
            ),
            form_row(
                field(
                    "Comparison",
                    dcc.Dropdown(list(COMPARISONS), ">", id="rule-ed-cmp", clearable=False),
                ),
                field("Threshold", text_input("rule-ed-threshold", "5")),
                field("Pending for (30s, 5m)", text_input("rule-ed-for", "5m", value="5m")),
                field("Keep firing for", text_input("rule-ed-keep", "0s", value="0s")),
                _state_field("On no data", "rule-ed-no-data", NO_DATA_STATES, NO_DATA_LABELS),
                _state_field("On error", "rule-ed-on-error", ERROR_STATES, ERROR_LABELS),
            ),
            form_row(
                field(
                    "Description",
                    dcc.Textarea(id="rule-ed-description", placeholder="What it means"),
                ),
                field("Runbook URL", text_input("rule-ed-runbook-url", "https://...")),
                field(
                    "Labels (name=value, one a line)",
                    dcc.Textarea(id="rule-ed-labels", placeholder="team=payments"),
                ),
                field(
                    "Link page",
                    dcc.Dropdown(_link_options(), "/alerts", id="rule-ed-link"),
                ),
                dcc.Checklist(
                    [{"label": " enabled", "value": "enabled"}],
                    ["enabled"],
                    id="rule-ed-enabled",
                ),
            ),
            form_row(
                html.Button("Preview", id="rule-ed-preview", className="button"),
                html.Button("Save rule", id="rule-ed-save", className="button"),
                html.Button("Delete rule", id="rule-ed-delete", className="button"),
            ),
            html.Div(id="rule-ed-message"),
            dcc.Loading(
                [
                    dcc.Graph(
                        id="rule-ed-preview-chart",
                        config=CHART_CONFIG,
                        figure=empty_figure("Preview a rule to see when it would have fired."),
                    ),
                    html.Div(id="rule-ed-preview-counts"),
                ]
            ),
        ],
        className="panel",
        id="rule-editor",
    )


# ---------------------------------------------------------------------------- the form


def _plain(value: Any, what: str) -> str:
    """A text field's value; anything else than text (or nothing) is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RuleError(f"{what}: expected text")
    return value.strip()


def _number_or_text(value: Any) -> Any:
    """A parameter as typed: a number when it reads as one (parse_rule checks the range)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _label_lines(value: Any) -> dict[str, str]:
    labels = {}
    for line in _plain(value, "labels").splitlines():
        if not line.strip():
            continue
        name, sep, text = line.partition("=")
        if not sep:
            raise RuleError(f"labels: write each as name=value, got {line.strip()[:40]!r}")
        labels[name.strip()] = text.strip()
    return labels


def entry_from_form(values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The form's values as a rules.yaml entry, and whether the rule is enabled. Only shapes
    are checked here; validate_entry checks the rule."""
    metric = values["rule-ed-metric"]
    if not isinstance(metric, str) or (metric != PROMQL and metric not in CATALOGUE):
        raise RuleError("metric: choose one from the list, or PromQL")
    enabled = values["rule-ed-enabled"]
    if enabled is not None and not (
        isinstance(enabled, list) and all(isinstance(e, str) for e in enabled)
    ):
        raise RuleError("enabled: expected a list")
    entry: dict[str, Any] = {
        "name": _plain(values["rule-ed-name"], "name"),
        "title": _plain(values["rule-ed-title"], "summary"),
        "severity": values["rule-ed-severity"],
        "comparison": values["rule-ed-cmp"],
        "threshold": _plain(values["rule-ed-threshold"], "threshold") or None,
        "for": _plain(values["rule-ed-for"], "for") or "0s",
        "keep_firing_for": _plain(values["rule-ed-keep"], "keep firing for") or "0s",
        "no_data": values["rule-ed-no-data"],
        "on_error": values["rule-ed-on-error"],
        "description": _plain(values["rule-ed-description"], "description"),
        "link": values["rule-ed-link"] or "/alerts",
    }
    if entry["threshold"] is None:
        raise RuleError("threshold: a number is required")
    url = _plain(values["rule-ed-runbook-url"], "runbook URL")
    if url:
        entry["runbook_url"] = url
    labels = _label_lines(values["rule-ed-labels"])
    if labels:
        entry["labels"] = labels
    if metric == PROMQL:
        entry["source"] = {"promql": _plain(values["rule-ed-promql"], "PromQL")}
        names = [n.strip() for n in _plain(values["rule-ed-group-labels"], "labels").split(",")]
        if any(names):
            entry["group_by"] = [n for n in names if n]
    else:
        entry["source"] = {"sql": metric}
        group = values["rule-ed-group-by"]
        if group:
            entry["group_by"] = group if isinstance(group, list) else [group]
        entry["params"] = {
            name: _number_or_text(values[PARAM_IDS[name]])
            for name in CATALOGUE[metric].params
            if _plain_or_none(values[PARAM_IDS[name]]) is not None
        }
    return entry, "enabled" in (enabled or [])


def _plain_or_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _file_rule_names() -> set[str]:
    return {r.name for r in configured_rules()}


def checked_rule(values: dict[str, Any], *, check_query: bool = True) -> tuple[Rule, bool]:
    entry, enabled = entry_from_form(values)
    return validate_entry(entry, _file_rule_names(), check_query=check_query), enabled


FORM_STATE = [State(i, "value") for i in FORM]


def _values(args: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(FORM, args, strict=True))


# ------------------------------------------------------------------------------ callbacks


@callback(
    Output("rule-ed-group-by", "options"),
    Output("rule-ed-metric-help", "children"),
    Output("rule-ed-promql-fields", "style"),
    Output("rule-ed-group-by-field", "style"),
    *(Output(f"{PARAM_IDS[name]}-field", "style") for name in PARAMS),
    Input("rule-ed-metric", "value"),
)
@require_permission(MANAGE)
def metric_controls(metric: Any):
    """The chosen metric's group-by columns, its description and its parameters."""
    hidden: dict[str, str] = {"display": "none"}
    shown: dict[str, str] = {}
    if metric == PROMQL:
        return (
            [],
            "A PromQL expression read from Prometheus; the threshold applies to each "
            "series it returns.",
            shown,
            hidden,
            *(hidden for _ in PARAMS),
        )
    found = CATALOGUE.get(metric) if isinstance(metric, str) else None
    if found is None:
        raise dash.exceptions.PreventUpdate
    defaults = ", ".join(
        f"{name} {format_number(p.default)} ({format_number(p.minimum)}-{format_number(p.maximum)})"
        for name, p in found.params.items()
    )
    help_text = f"{found.description}" + (f" Unit: {found.unit}." if found.unit else "")
    if defaults:
        help_text += f" Parameters: {defaults}."
    if not found.group_by:
        help_text += " It does not group."
    return (
        list(found.group_by),
        help_text,
        hidden,
        shown if found.group_by else hidden,
        *(shown if name in found.params else hidden for name in PARAMS),
    )


@callback(
    Output("rule-ed-list", "children"),
    Output("rule-ed-existing", "options"),
    Input("rule-ed-saved", "data"),
)
@require_permission(MANAGE)
@failure_message(outputs=2)
def list_app_rules(_saved: Any):
    actor = actor_with(MANAGE)
    rules = rule_store.app_rules(actor, PoolName.READ)
    authors = rule_store.rule_authors(actor)
    rows = [
        html.Tr(
            [
                html.Td(r.name),
                html.Td(r.title),
                html.Td(r.source if r.source_kind == "sql" else f"PromQL: {r.source}"),
                html.Td(", ".join(r.group_by)),
                html.Td(f"{r.condition} for {format_duration(r.for_seconds)}"),
                html.Td("yes" if r.enabled else "no"),
                html.Td(
                    f"{authors.get(r.name, (None, None))[0] or '—'}, "
                    f"{when(authors.get(r.name, (None, None))[1])}"
                ),
            ],
            id=f"rule-ed-row-{r.name}",
        )
        for r in rules
    ]
    table = data_table(
        [
            "Rule written in the app",
            "Summary",
            "Metric",
            "Group by",
            "Condition",
            "Enabled",
            "Changed by",
        ],
        rows,
        "rule-ed-table",
        empty="No rules written in the app yet.",
    )
    options = [{"label": "New rule", "value": NEW}] + [
        {"label": r.name, "value": r.name} for r in rules
    ]
    return table, options


@callback(
    *(Output(i, "value") for i in FORM),
    Input("rule-ed-existing", "value"),
    prevent_initial_call=True,
)
@require_permission(MANAGE)
def fill_form(name: Any):
    """Load a rule written in the app into the form (New rule: keep what is typed)."""
    if not isinstance(name, str) or name == NEW:
        raise dash.exceptions.PreventUpdate
    rule = next(
        (r for r in rule_store.app_rules(actor_with(MANAGE), PoolName.READ) if r.name == name),
        None,
    )
    if rule is None:
        raise dash.exceptions.PreventUpdate
    params = rule.param_values
    sql = rule.source_kind == "sql"
    return (
        rule.name,
        rule.title,
        rule.severity,
        rule.source if sql else PROMQL,
        "" if sql else rule.source,
        list(rule.group_by) if sql else [],
        "" if sql else ", ".join(rule.group_by),
        rule.comparison,
        format_number(rule.threshold)
        if float(rule.threshold).is_integer()
        else str(rule.threshold),
        format_duration(rule.for_seconds),
        format_duration(rule.keep_firing_seconds),
        rule.no_data_state,
        rule.error_state,
        "\n".join(f"{k}={v}" for k, v in rule.labels),
        rule.description,
        rule.runbook_url,
        rule.link,
        ["enabled"] if rule.enabled else [],
        *(format_number(params[n]) if n in params else "" for n in PARAMS),
    )


@callback(
    Output("rule-ed-message", "children"),
    Output("rule-ed-saved", "data"),
    Input("rule-ed-save", "n_clicks"),
    Input("rule-ed-delete", "n_clicks"),
    State("rule-ed-existing", "value"),
    *FORM_STATE,
    prevent_initial_call=True,
)
@require_permission(MANAGE)
@failure_message(outputs=2, refused="Not saved: {}.")
def save_or_delete(_save: Any, _delete: Any, existing: Any, *form: Any):
    actor = actor_with(MANAGE)
    button = pressed(("rule-ed-save", "rule-ed-delete"))
    stamp = datetime.now(UTC).isoformat()
    if button == "rule-ed-delete":
        name = choice(existing, [r.name for r in rule_store.app_rules(actor, PoolName.READ)])
        if name is None:
            raise RuleError("choose a rule written in the app to delete")
        if not rule_store.delete_rule(actor, name):
            raise RuleError(f"rule {name} no longer exists")
        return message(f"Deleted rule {name}.", "success"), stamp
    rule, enabled = checked_rule(_values(form))
    created = rule_store.save_rule(actor, rule, enabled, _file_rule_names())
    return (
        message(
            f"{'Created' if created else 'Saved'} rule {rule.name}: {rule.condition} for "
            f"{format_duration(rule.for_seconds)}, {'enabled' if enabled else 'disabled'}.",
            "success",
        ),
        stamp,
    )


@callback(
    Output("rule-ed-preview-chart", "figure"),
    Output("rule-ed-preview-counts", "children"),
    Input("rule-ed-preview", "n_clicks"),
    *FORM_STATE,
    prevent_initial_call=True,
)
@require_permission(MANAGE)
@failure_message(outputs=2, at=1, refused="Cannot preview: {}.")
def preview(_clicks: Any, *form: Any):
    rule, _ = checked_rule(_values(form))
    end = datetime.now(UTC)
    history = rule_history(rule.source_kind, rule.source, rule.param_values, rule.group_by, end)
    previews = replay_rule(rule, history, end)
    return preview_figure(previews, end), preview_counts(rule, previews, history.note)


def preview_figure(previews: list[InstancePreview], end: datetime) -> Any:
    """One row per instance, a red band per period it would have fired."""
    fired = [p for p in previews if p.periods]
    if not fired:
        return empty_figure("It would not have fired in the last 7 days.")
    names = [p.instance or "(the rule)" for p in fired]
    trace = {
        "type": "bar",
        "orientation": "h",
        "name": "firing",
        "y": [n for p, n in zip(fired, names, strict=True) for _ in p.periods],
        "base": [x.start.isoformat() for p in fired for x in p.periods],
        # at least a minute wide, so a one-step period can be seen and hovered
        "x": [max(x.seconds, 60) * 1000 for p in fired for x in p.periods],
        "customdata": [
            [when(x.start), when(x.end), format_duration(int(x.seconds))]
            for p in fired
            for x in p.periods
        ],
        "hovertemplate": "%{y}<br>%{customdata[0]} → %{customdata[1]} (%{customdata[2]})"
        "<extra></extra>",
        "marker": {"color": FIRING},
    }
    figure = chart([trace], barmode="overlay")
    figure["layout"].update(
        hovermode="closest",
        xaxis={
            **figure["layout"]["xaxis"],
            "type": "date",
            "range": [(end - SPAN).isoformat(), end.isoformat()],
        },
        yaxis={"type": "category", "automargin": True},
        showlegend=False,
        height=max(220, 60 + 32 * len(fired)),
    )
    return figure


def preview_counts(rule: Rule, previews: list[InstancePreview], note: str) -> html.Div:
    total = sum(p.fired for p in previews)
    rows = [
        [
            p.instance or "(the rule)",
            str(p.fired),
            format_duration(int(p.firing_seconds)) if p.fired else "—",
            "yes" if p.periods and p.periods[-1].ongoing else "",
        ]
        for p in previews
    ]
    summary = (
        f"{rule.name} would have fired {total} time{'s' if total != 1 else ''} in the last "
        f"7 days, over {sum(1 for p in previews if p.fired)} of {len(previews)} instance"
        f"{'s' if len(previews) != 1 else ''} ({note})."
    )
    return html.Div(
        [
            html.P(summary, id="rule-ed-preview-summary"),
            data_table(
                ["Instance", "Times fired", "Time firing", "Firing now"],
                rows,
                "rule-ed-preview-table",
                empty="No data for this metric in the last 7 days.",
            ),
        ]
    )
