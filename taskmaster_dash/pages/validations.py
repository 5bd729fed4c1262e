"""Validation scores (/validations): score over time per type, pass/fail share, score
distribution, execution-time percentiles, retries, Claude Code versions, lowest-scoring runs."""

from __future__ import annotations

from functools import partial

import dash
import pandas as pd
from dash import html

from taskmaster_dash.data import analytics_validations as q
from taskmaster_dash.pages._figures import bars, series_figure
from taskmaster_dash.pages._panels import Panel, analytics_page, click_to, register
from taskmaster_dash.pages._timerange import ViewState
from taskmaster_dash.pages._ui import data_table, link, when

PERMISSION = "validations:read"
dash.register_page(
    __name__,
    path="/validations",
    name="Validations",
    title="Validation scores · TaskMaster Dash",
    order=2,
    permission=PERMISSION,
)
# Clicking a validation chart narrows this page (and its list of runs) to the clicked point.
RUN_CLICK = partial(click_to, "validations", step=q.STEP)


def _score_figure(frame: pd.DataFrame, _view: ViewState):
    return series_figure(frame, "bucket", "score", "series", y_title="mean score", y_range=[0, 100])


def _share_figure(frame: pd.DataFrame, _view: ViewState):
    return series_figure(frame, "bucket", "percent", "series", kind="bar", y_title="% of runs")


def _distribution_figure(frame: pd.DataFrame, _view: ViewState):
    frame = frame.assign(band=frame["score_from"].map(lambda s: f"{s}–{s + 10}"))
    return bars(frame, "band", {"runs": "runs"})


def _percentile_figure(frame: pd.DataFrame, _view: ViewState):
    ys = {"p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99"}
    return bars(frame, "validation_type", ys, y_title="ms", y_log=True)


def _retries_figure(frame: pd.DataFrame, _view: ViewState):
    return bars(frame, "validation_type", {"retried_percent": "% retried"}, y_title="% retried")


def _version_figure(frame: pd.DataFrame, _view: ViewState):
    return bars(frame, "version", {"score": "mean score", "passed_percent": "% passed"})


def runs_table(frame: pd.DataFrame, _view: ViewState) -> html.Table | html.P:
    header = ["Score", "Type", "Status", "Version", "When", "Task"]
    rows = [
        html.Tr(
            [
                html.Td(f"{row['score']:.1f}"),
                html.Td(row["validation_type"]),
                html.Td(row["validation_status"]),
                html.Td(row["version"] or "—"),
                html.Td(when(row["created_at"])),
                html.Td(link(row["task_title"] or row["task_id"][:8], f"/tasks/{row['task_id']}")),
            ],
            title=row["id"],
        )
        for row in frame.to_dict("records")
    ]
    return data_table(header, rows, "validation-runs-rows")


def _panel(panel_id, title, fetch, figure, **kw) -> Panel:
    return Panel(panel_id, title, PERMISSION, fetch, figure, **kw)


PANELS = [
    _panel(
        "val-score",
        "Mean score over time by validation type",
        lambda a, v: q.score_over_time(a, v.window(q.STEP), v.filters),
        _score_figure,
        click=RUN_CLICK(series_key="type"),
        value_column="runs",
        wide=True,
        step=q.STEP,
    ),
    _panel(
        "val-share",
        "Outcome share (pass / warning / fail …)",
        lambda a, v: q.status_share(a, v.window(q.STEP), v.filters),
        _share_figure,
        click=RUN_CLICK(series_key="status"),
        value_column="runs",
        wide=True,
        step=q.STEP,
    ),
    _panel(
        "val-distribution",
        "Score distribution",
        lambda a, v: q.score_distribution(a, v.window(q.STEP), v.filters),
        _distribution_figure,
        value_column="runs",
    ),
    _panel(
        "val-exec",
        "Execution time percentiles by type (histogram bins, ≤13% high)",
        lambda a, v: q.execution_percentiles(a, v.window(q.STEP), v.filters),
        _percentile_figure,
        click=RUN_CLICK(x_key="type"),
        value_column="runs",
    ),
    _panel(
        "val-retries",
        "Retries by type",
        lambda a, v: q.retries(a, v.window(q.STEP), v.filters),
        _retries_figure,
        click=RUN_CLICK(x_key="type"),
        value_column="runs",
    ),
    _panel(
        "val-version",
        "Claude Code versions compared",
        lambda a, v: q.by_version(a, v.window(q.STEP), v.filters),
        _version_figure,
        value_column="runs",
    ),
    Panel(
        "val-lowest",
        "Lowest-scoring runs in this range",
        PERMISSION,
        lambda a, v: q.lowest_scoring_runs(a, v.window(q.STEP), v.filters),
        table=runs_table,
        wide=True,
    ),
]
register("validations", PANELS)


def layout(**query: str) -> html.Div:
    return analytics_page(
        query,
        permission=PERMISSION,
        what="validation scores",
        title="Validation scores",
        page="validations",
        step=q.STEP,
        panels=PANELS,
    )
