"""The preview of a rule before it is saved: its condition, pending period (`for`) and
keep-firing period replayed over a metric's history, giving when each instance would have
fired. Pure: the history comes from data/alert_metric_history.py, the drawing from
pages/_rule_editor.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from taskmaster_dash.alerts.rules import Rule, instance_key

if TYPE_CHECKING:
    from taskmaster_dash.data.alert_metric_history import History

# A series: (time, value) in time order; None is a moment without data.
Series = Sequence[tuple[datetime, float | None]]


@dataclass(frozen=True)
class Period:
    """One firing period of an instance: from the sample that made it fire to the sample that
    resolved it (or the end of the history, `ongoing`)."""

    start: datetime
    end: datetime
    ongoing: bool = False

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def fired_periods(
    series: Series,
    breached: Callable[[float], bool],
    for_seconds: int,
    keep_firing_seconds: int = 0,
    no_data_state: str = "no_data",
    end: datetime | None = None,
) -> list[Period]:
    """When a rule would have fired over `series`, evaluated at each sample as the evaluator
    does: a breach starts the pending period; it fires once the breach has lasted `for_seconds`;
    it resolves at the first sample that is not a breach, unless the last breach was less than
    `keep_firing_seconds` before. No data counts as a breach for no_data_state "alerting", as
    the last answer for "keep_last", and otherwise as no breach (NoData is never firing)."""
    periods: list[Period] = []
    pending_since: datetime | None = None
    fired_at: datetime | None = None
    last_breach: datetime | None = None
    previous = False
    for at, value in series:
        if value is None:
            breach = no_data_state == "alerting" or (no_data_state == "keep_last" and previous)
        else:
            breach = breached(value)
        previous = breach
        if breach:
            last_breach = at
            if fired_at is None:
                pending_since = pending_since or at
                if (at - pending_since).total_seconds() >= for_seconds:
                    fired_at = at
            continue
        pending_since = None
        if fired_at is None:
            continue
        assert last_breach is not None
        if (at - last_breach).total_seconds() < keep_firing_seconds:
            continue
        periods.append(Period(fired_at, at))
        fired_at = None
    if fired_at is not None:
        last = end or series[-1][0]
        periods.append(Period(fired_at, max(last, fired_at), ongoing=True))
    return periods


@dataclass(frozen=True)
class InstancePreview:
    instance: str  # the canonical label text ('' for a rule that does not group)
    labels: dict[str, str]
    periods: list[Period]

    @property
    def fired(self) -> int:
        return len(self.periods)

    @property
    def firing_seconds(self) -> float:
        return sum(p.seconds for p in self.periods)


def replay_rule(rule: Rule, history: History, end: datetime | None = None) -> list[InstancePreview]:
    """`rule` over `history` (data/alert_metric_history.py): every instance's firing periods,
    the instances that fired most first, then by name."""
    previews = []
    for labels in history.series:
        points = history.points(labels)
        if not points:
            continue
        periods = fired_periods(
            points,
            rule.breached,
            rule.for_seconds,
            rule.keep_firing_seconds,
            rule.no_data_state,
            end,
        )
        previews.append(InstancePreview(instance_key(dict(labels)), dict(labels), periods))
    return sorted(previews, key=lambda p: (-p.fired, -p.firing_seconds, p.instance))
