"""Pools: connection pools (from Prometheus and live), and the health of the database itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.permissions import actor_with, has_permission, require_permission
from taskmaster_dash.data import pool_health as health
from taskmaster_dash.data.db import Actor, user_message
from taskmaster_dash.data.performance_metrics import metric_series
from taskmaster_dash.data.prometheus import PrometheusUnavailable, get_prometheus
from taskmaster_dash.pages._figures import empty_figure
from taskmaster_dash.pages._guard import failure_message
from taskmaster_dash.pages._input import choice
from taskmaster_dash.pages._panels import PageAlerts, page_alerts
from taskmaster_dash.pages._timerange import key_values, search_for, write_url_from
from taskmaster_dash.pages._ui import (
    CHART_CONFIG,
    MessageKind,
    data_table,
    message,
    not_permitted,
    register_page,
    style_figure,
    when,
)

PERMISSION = "pools:read"
register_page(
    __name__,
    path="/pools",
    name="Pools",
    order=60,
    permission=PERMISSION,
)

REFRESH = "pools-refresh"
RANGE = "pools-range"
POOL_ORDER = ["read", "write", "analytics", "background"]
PROMETHEUS_CHARTS = "pools-prom-charts"


URL = "pools-url"
URL_WRITTEN = write_url_from(URL)


def layout(**query: str) -> html.Div:
    if not has_permission(PERMISSION):
        return not_permitted("connection pools and database health")
    return html.Div(
        [
            html.H1("Pools and database health"),
            dcc.Store(id=URL),
            dcc.Store(id=URL_WRITTEN),
            dcc.Interval(id=REFRESH, interval=15_000),
            html.Section(
                [
                    html.Div(
                        [
                            html.H2("Pools over time (Prometheus)"),
                            dcc.Dropdown(
                                id=RANGE,
                                options=[{"label": f"Last {k}", "value": k} for k in health.RANGES],
                                value=key_values(query, "pools")["range"] or "15m",
                                clearable=False,
                                className="pools-range",
                            ),
                        ],
                        className="pools-heading",
                    ),
                    html.Div(id="pools-prom-status"),
                    # Hidden while there is no Prometheus to read: the notice above says why.
                    html.Div(
                        [
                            dcc.Graph(id="pools-utilisation", config=CHART_CONFIG),
                            html.Div(
                                [
                                    dcc.Graph(id="pools-success-rate", config=CHART_CONFIG),
                                    dcc.Graph(id="pools-failure-rate", config=CHART_CONFIG),
                                ],
                                className="pools-two",
                            ),
                            html.H3("Now, per pool (Prometheus)"),
                            html.Div(id="pools-prom-current"),
                        ],
                        id=PROMETHEUS_CHARTS,
                        hidden=True,
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Performance metrics (written by the TaskMaster API)"),
                    dcc.Graph(id="pools-perf-metrics", config=CHART_CONFIG),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("This server's pools (live)"),
                    html.Div(id="pools-own"),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("PostgreSQL"),
                    html.Div(id="pools-pg-message"),
                    html.Div(id="pools-pg-summary", className="stat-grid"),
                    html.H3("Connections by application and state"),
                    html.Div(id="pools-connections"),
                    html.H3("Longest-running queries"),
                    html.Div(id="pools-long-running"),
                    html.H3("Waiting locks"),
                    html.Div(id="pools-locks"),
                    html.H3("Slow queries (pg_stat_statements, by mean time)"),
                    html.Div(id="pools-slow"),
                    html.H3("Largest tables: size, dead tuples, last vacuum"),
                    html.Div(id="pools-tables"),
                ],
                className="panel",
            ),
        ],
        className="pools-page",
    )


# --- Prometheus panels --------------------------------------------------------------------------


def _alerts(window: health.Window) -> PageAlerts:
    """The firing periods of the rules linked to /pools over `window` (its step: one band)."""
    gap = timedelta(seconds=window.step)
    return page_alerts(actor_with(PERMISSION), "/pools", window.start, window.end, gap)


def _series_figure(frame: pd.DataFrame, title: str, percent: bool, meta: dict) -> dict:
    figure = go.Figure()
    if not frame.empty and "pool" in frame:
        for pool in sorted(frame["pool"].unique(), key=_pool_key):
            part = frame[frame["pool"] == pool]
            figure.add_trace(
                go.Scatter(x=part["time"], y=part["value"], name=pool, mode="lines", meta=pool)
            )
    if percent:
        figure.add_hline(
            y=health.UTILISATION_WARNING,
            line_dash="dash",
            line_color="#dc6803",
            annotation_text="80% warning",
            annotation_position="top left",
        )
        figure.update_yaxes(tickformat=".0%", range=[0, 1.05])
    if not figure.data:
        figure.add_annotation(text="No data in this range yet", showarrow=False)
    figure.update_layout(meta=meta, legend_title_text="pool")
    return style_figure(figure, title).to_plotly_json()


def _pool_key(pool: str) -> tuple[int, str]:
    return (POOL_ORDER.index(pool) if pool in POOL_ORDER else 99, pool)


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:,.{digits}f}"


def _current_table(frame: pd.DataFrame) -> html.Table | html.P:
    rows = []
    for record in sorted(frame.to_dict("records"), key=lambda r: _pool_key(r["pool"])):
        maximum = record.get("pool_max")
        in_use = record.get("pool_in_use")
        share = in_use / maximum if maximum and not pd.isna(in_use) else None
        rows.append(
            {
                "pool": record["pool"],
                "in use": _number(in_use),
                "max": _number(maximum),
                "utilisation": "–" if share is None else f"{share:.0%}",
                "waiting": _number(record.get("pool_waiting")),
                "queries (total)": _number(record.get("queries_total")),
                "failed (total)": _number(record.get("queries_failed_total")),
                "_warn": share is not None and share > health.UTILISATION_WARNING,
            }
        )
    return _table(pd.DataFrame(rows), "pools-prom-table", lambda r: r["_warn"])


@callback(
    Output("pools-prom-status", "children"),
    Output("pools-utilisation", "figure"),
    Output("pools-success-rate", "figure"),
    Output("pools-failure-rate", "figure"),
    Output("pools-prom-current", "children"),
    Output(PROMETHEUS_CHARTS, "hidden"),
    Input(REFRESH, "n_intervals"),
    Input(RANGE, "value"),
)
@require_permission(PERMISSION)
def refresh_prometheus(_ticks: int | None, range_key: str | None):
    minutes = health.RANGES[choice(range_key, health.RANGES, "15m")]
    reader = get_prometheus()
    if reader is None:
        disabled = (
            "Prometheus is disabled (PROMETHEUS_ENABLED is not set), so there is no pool history "
            "or query rates. `make demo` runs one when the `prometheus` binary is installed "
            "(`sudo apt-get install prometheus`); or set PROMETHEUS_ENABLED=true and "
            "PROMETHEUS_URL. Everything from PostgreSQL below is live."
        )
        return _prometheus_down(disabled, "info")
    try:
        panels = health.prometheus_panels(reader, minutes)
    except ValueError as exc:  # PROMQL_CONFIG names a file that is missing or malformed
        return _prometheus_down(f"The PromQL configuration is not usable: {exc}")
    except PrometheusUnavailable as exc:
        away = (
            f"Prometheus at {exc.url} is unreachable ({exc.reason}): no pool history or rates "
            "right now. Everything from PostgreSQL below is live; this recovers by itself."
        )
        return _prometheus_down(away)
    window = panels.window
    meta = {"start": window.start.isoformat(), "end": window.end.isoformat(), "step": window.step}
    alerts = _alerts(window)
    status = html.Div(
        [
            html.P(
                f"From Prometheus at {reader.url}: {window.start:%H:%M}–{window.end:%H:%M} UTC, "
                f"one point every {window.step} s.",
                className="muted",
                id="pools-prom-ok",
            ),
            html.Details(
                [
                    html.Summary("PromQL behind these panels (data/promql.yaml, PROMQL_CONFIG)"),
                    html.Ul([html.Li(html.Code(f"{n}: {q}")) for n, q in panels.queries.items()]),
                ],
                className="muted",
            ),
        ]
    )
    return (
        status,
        alerts.on(
            _series_figure(
                panels.series["pool_utilisation"],
                "Pool utilisation (peak in use / max)",
                True,
                meta,
            )
        ),
        alerts.on(
            _series_figure(
                panels.series["query_success_rate"], "Successful queries per second", False, meta
            )
        ),
        alerts.on(
            _series_figure(
                panels.series["query_failure_rate"], "Failed queries per second", False, meta
            )
        ),
        _current_table(panels.current)
        if not panels.current.empty
        else message("Prometheus has no pool series yet: is it scraping /api/v1/metrics?"),
        False,
    )


def _prometheus_down(text: str, kind: MessageKind = "warning"):
    """One compact notice instead of the charts, which stay hidden (and empty)."""
    empty = empty_figure("Prometheus unavailable")
    notice = message(text, kind, id="pools-prom-down")
    return notice, empty, empty, empty, None, True


@callback(
    Output("pools-perf-metrics", "figure"),
    Input(REFRESH, "n_intervals"),
    Input(RANGE, "value"),
)
def refresh_performance_metrics(_ticks: int | None, range_key: str | None) -> go.Figure | dict:
    actor = actor_with(PERMISSION)  # refuses (403) before any query
    minutes = health.RANGES.get(range_key if isinstance(range_key, str) else "", 15)
    try:
        frame = metric_series(actor, minutes)
    except SQLAlchemyError as exc:
        return empty_figure(user_message(exc))
    if frame.empty:
        return empty_figure("No performance metrics in this range (performance_metrics is empty)")
    figure = go.Figure(
        [
            go.Scatter(x=part["bucket"], y=part["value"], name=str(series), mode="lines+markers")
            for series, part in frame.groupby("series", sort=True)
        ]
    )
    figure.update_layout(legend_title_text="type · name")
    figure = style_figure(figure, "Mean value per interval, by metric type and name")
    return _alerts(health.Window.last(minutes)).on(figure.to_plotly_json())


# --- PostgreSQL panels --------------------------------------------------------------------------


def _table(
    frame: pd.DataFrame,
    table_id: str,
    highlight: Callable[[dict], bool] | None = None,
    empty: str = "None right now.",
) -> html.Table | html.P:
    if frame is None or frame.empty:
        return data_table([], [], table_id, empty=empty)
    columns = [c for c in frame.columns if not c.startswith("_")]
    body = [
        html.Tr(
            [html.Td(_cell(record[c])) for c in columns],
            className="row-warning" if highlight and highlight(record) else None,
        )
        for record in frame.to_dict("records")
    ]
    return data_table([c.replace("_", " ") for c in columns], body, table_id)


def _cell(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if isinstance(value, pd.Timestamp):
        return when(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _card(card_id: str, label: str, value: str, warn: bool = False) -> html.Div:
    return html.Div(
        [
            html.Div(label, className="stat-label"),
            html.Div(value, className="stat-value", id=card_id),
        ],
        className="stat-card" + (" stat-warning" if warn else ""),
    )


def slow_queries_view(slow: health.SlowQueries):
    """The statements table (mean over 1 s highlighted), or the note saying why there is none."""
    if slow.frame is None:
        return message(slow.note, "info", id="pools-slow-note")
    return _table(
        slow.frame,
        "pools-slow-table",
        lambda r: r["mean_ms"] > health.SLOW_MEAN_MS,
        "No statements recorded yet.",
    )


@callback(
    Output("pools-own", "children"),
    Output("pools-pg-message", "children"),
    Output("pools-pg-summary", "children"),
    Output("pools-connections", "children"),
    Output("pools-long-running", "children"),
    Output("pools-locks", "children"),
    Output("pools-slow", "children"),
    Output("pools-tables", "children"),
    Input(REFRESH, "n_intervals"),
)
def refresh_postgres(_ticks: int | None):
    actor = actor_with(PERMISSION)  # refuses (403) before any query
    own = health.own_pools()
    own_view = own.assign(
        utilisation=[f"{u:.0%}" for u in own["utilisation"]],
        mean_ms=own["mean_ms"].round(1),
        _warn=own["utilisation"] > health.UTILISATION_WARNING,
    )
    own_table = _table(own_view, "pools-own-table", lambda r: r["_warn"])
    return own_table, *_postgres_panels(actor)


@failure_message(outputs=7, failed=dict.fromkeys(range(1, 7)))
def _postgres_panels(actor: Actor) -> tuple:
    """What PostgreSQL says about itself: (message, cards, and the five tables)."""
    summary = health.database_summary(actor)
    by_state, max_connections = health.connections(actor)
    running = health.long_running_queries(actor)
    locks = health.waiting_locks(actor)
    slow = health.slow_queries(actor)
    tables = health.table_health(actor)
    used = int(by_state["connections"].sum()) if not by_state.empty else 0
    ratio = summary.cache_hit_ratio
    cards = [
        _card(
            "pools-connections-used",
            "Connections / max_connections",
            f"{used} / {max_connections}",
            used > health.UTILISATION_WARNING * max_connections,
        ),
        _card(
            "pools-cache-hit",
            "Cache hit ratio",
            "–" if ratio is None else f"{ratio:.2%}",
            ratio is not None and ratio < 0.9,
        ),
        _card("pools-db-size", "Database size", _bytes(summary.database_bytes)),
    ]
    note = None
    if not summary.sees_all_sessions:
        note = html.P(
            "The app's database role cannot see other roles' query text. Grant it with: "
            "GRANT pg_read_all_stats TO taskmaster_app;",
            className="muted",
        )
    tables_view = tables.assign(
        size=[_bytes(b) if pd.notna(b) else "locked now" for b in tables["bytes"]]
    ).drop(columns="bytes")
    return (
        note,
        cards,
        _table(by_state, "pools-connections-table"),
        _table(running, "pools-long-running-table", lambda r: (r["seconds"] or 0) > 1),
        _table(locks, "pools-locks-table", empty="No lock is being waited for."),
        slow_queries_view(slow),
        _table(tables_view, "pools-tables-table", lambda r: (r["dead_pct"] or 0) > 20),
    )


@callback(Output(URL, "data"), Input(RANGE, "value"), prevent_initial_call=True)
def range_in_url(range_: object) -> str:
    """The range lives in the URL (?range=1h), written from the one view model."""
    return search_for({"range": range_}, "pools")
