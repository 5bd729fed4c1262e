"""Errors (/errors): error rates on top (per bucket by severity, category and service, top
errors by occurrence, unresolved over time, time to resolve), the triage list below."""

from __future__ import annotations

from functools import partial

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.permissions import actor_with
from taskmaster_dash.data import analytics_errors as q
from taskmaster_dash.data.errors.listing import service_names
from taskmaster_dash.pages._error_triage import triage_section
from taskmaster_dash.pages._figures import bars, series_figure
from taskmaster_dash.pages._panels import Panel, analytics_layout, click_to, windowed_panel
from taskmaster_dash.pages._timerange import ViewState, describe
from taskmaster_dash.pages._ui import register_page

PERMISSION = "errors:read"
register_page(
    __name__,
    path="/errors",
    name="Errors",
    order=3,
    permission=PERMISSION,
)
ERROR_CLICK = partial(click_to, "errors", step=q.STEP)


def _per(view: ViewState) -> str:
    return f"errors per {describe(view.window(q.STEP).bucket)}"


def _rate_figure(frame: pd.DataFrame, view: ViewState):
    return series_figure(frame, "bucket", "errors", "series", kind="bar", y_title=_per(view))


def _top_figure(frame: pd.DataFrame, _view: ViewState):
    return bars(
        frame, "error_code", {"occurrences": "occurrences"}, horizontal=True, showlegend=False
    )


def _unresolved_figure(frame: pd.DataFrame, _view: ViewState):
    return series_figure(frame, "bucket", "unresolved", "series", kind="area", y_title="unresolved")


def _resolve_figure(frame: pd.DataFrame, _view: ViewState):
    return series_figure(frame, "bucket", "hours", "series", y_title="mean hours to resolve")


_panel = partial(windowed_panel, permission=PERMISSION, step=q.STEP)


def rate_panel(panel_id: str, by: str, title: str, *, wide: bool = False) -> Panel:
    return _panel(
        panel_id,
        title,
        partial(q.error_rate, by=by),
        _rate_figure,
        click=ERROR_CLICK(series_key=by),
        value_column="errors",
        wide=wide,
    )


PANELS = [
    rate_panel("errors-by-severity", "severity", "Error rate by severity", wide=True),
    rate_panel("errors-by-category", "category", "Error rate by category"),
    rate_panel("errors-by-service", "service", "Error rate by service"),
    _panel(
        "errors-top",
        "Top errors by occurrence",
        q.top_errors,
        _top_figure,
        click=ERROR_CLICK(x_key="code"),
        value_column="occurrences",
    ),
    _panel(
        "errors-unresolved",
        "Unresolved errors over time (by severity)",
        q.unresolved_over_time,
        _unresolved_figure,
        click=ERROR_CLICK(series_key="severity"),
        value_column="unresolved",
    ),
    _panel(
        "errors-mttr",
        "Mean time to resolve (errors resolved per bucket)",
        q.time_to_resolve,
        _resolve_figure,
        click=ERROR_CLICK(series_key="severity"),
        value_column="resolved",
    ),
]


def _service_names() -> list[str]:
    try:
        return service_names(actor_with(PERMISSION))
    except SQLAlchemyError:
        return []  # the field still takes the names in the URL


layout = analytics_layout(
    "errors",
    PANELS,
    permission=PERMISSION,
    what="errors",
    title="Errors",
    step=q.STEP,
    section="Error rates",
    below=[triage_section],
    choices=lambda: {"service": _service_names()},
)
