"""Validation scores (/validations): score over time per type, pass/fail share, score
distribution, execution-time percentiles, retries, Claude Code versions, lowest-scoring runs."""

from __future__ import annotations

from functools import partial
from typing import Any

import dash_ag_grid as dag
import pandas as pd

from taskmaster_dash.data import analytics_validations as q
from taskmaster_dash.pages._figures import bars, series_figure
from taskmaster_dash.pages._panels import analytics_layout, click_to, windowed_panel
from taskmaster_dash.pages._timerange import ViewState
from taskmaster_dash.pages._ui import list_grid, register_page, when

PERMISSION = "validations:read"
register_page(
    __name__,
    path="/validations",
    name="Validations",
    title="Validation scores",
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


RUN_COLUMNS: list[dict[str, Any]] = [
    {"field": "score", "headerName": "Score", "maxWidth": 110},
    {"field": "validation_type", "headerName": "Type"},
    {"field": "validation_status", "headerName": "Status"},
    {"field": "version", "headerName": "Version"},
    {"field": "created_at", "headerName": "When", "minWidth": 150},
    {"field": "task", "headerName": "Task", "cellRenderer": "AppLink", "flex": 2},
]


def runs_table(frame: pd.DataFrame, _view: ViewState) -> dag.AgGrid:
    rows = [
        {
            "id": row["id"],
            "href": f"/tasks/{row['task_id']}",
            "score": f"{row['score']:.1f}",
            "validation_type": row["validation_type"],
            "validation_status": row["validation_status"],
            "version": row["version"] or "—",
            "created_at": when(row["created_at"]),
            "task": row["task_title"] or row["task_id"][:8],
        }
        for row in frame.to_dict("records")
    ]
    return list_grid("validation-runs-rows", RUN_COLUMNS, rows)


# A chart of runs over the view's window: "no data" when no run counts.
_panel = partial(windowed_panel, permission=PERMISSION, step=q.STEP, value_column="runs")


PANELS = [
    _panel(
        "val-score",
        "Mean score over time by validation type",
        q.score_over_time,
        _score_figure,
        click=RUN_CLICK(series_key="type"),
        wide=True,
    ),
    _panel(
        "val-share",
        "Outcome share (pass / warning / fail …)",
        q.status_share,
        _share_figure,
        click=RUN_CLICK(series_key="status"),
        wide=True,
    ),
    _panel("val-distribution", "Score distribution", q.score_distribution, _distribution_figure),
    _panel(
        "val-exec",
        "Execution time percentiles by type (histogram bins, ≤13% high)",
        q.execution_percentiles,
        _percentile_figure,
        click=RUN_CLICK(x_key="type"),
    ),
    _panel(
        "val-retries", "Retries by type", q.retries, _retries_figure, click=RUN_CLICK(x_key="type")
    ),
    _panel("val-version", "Claude Code versions compared", q.by_version, _version_figure),
    windowed_panel(
        "val-lowest",
        "Lowest-scoring runs in this range",
        q.lowest_scoring_runs,
        table=runs_table,
        wide=True,
        permission=PERMISSION,
        step=q.STEP,
    ),
]
layout = analytics_layout(
    "validations",
    PANELS,
    permission=PERMISSION,
    what="validation scores",
    title="Validation scores",
    step=q.STEP,
)
