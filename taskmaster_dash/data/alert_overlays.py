"""Alerts on the charts: when the rules linked to a page were firing, per rule and instance,
over a chart's time range, for pages/_figures.alert_overlay to draw as bands.

One query over alert_history, every read an index probe on (rule_name, instance, created_at
DESC): the rules' instances (a loose index scan: one probe per instance), each instance's state
when the range opens and its first change after it ends, and its changes inside the range.
The firing periods are merged in SQL when one starts within `merge_gap` of the previous one's
end (a rule flapping every five minutes on a month-long chart is one band that says how many
times it fired, not four thousand slivers), clipped to the range and capped at `limit` bands,
the longest kept. Every active user may read alert_history (RLS, migration 050).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from taskmaster_dash.data.db import Actor, PoolName, get_database

MAX_BANDS = 100  # per chart: plenty to read, small to send


@dataclass(frozen=True)
class Band:
    """Firing periods of one rule instance, merged; drawn from `shown_from` to `shown_to`."""

    rule_name: str
    instance: str  # '' for a rule that does not group, else 'name=value,...'
    started: datetime  # when it began firing (may be before the range)
    ended: datetime | None  # when it stopped (after the range, perhaps); None: firing still
    shown_from: datetime  # `started` clipped to the range
    shown_to: datetime  # `ended` clipped to the range
    value: float | None  # the value it fired with
    peak: float | None  # the highest value any merged period fired with
    periods: int  # firing periods merged into this band


@dataclass(frozen=True)
class Bands:
    bands: list[Band]
    hidden: int  # bands over `limit`, not returned


# Per instance (a LATERAL subquery, so each step runs over one instance's rows in time order):
# its transitions from the state the range opens with to its first change after the range;
# periods (a state until the next change); the firing ones in the range; each opening a band
# unless it starts within :gap of the previous one's end; the bands.
_SQL = """
WITH RECURSIVE instances AS (
    SELECT f.rule_name, f.instance
    FROM unnest(CAST(:names AS text[])) AS r(name)
    CROSS JOIN LATERAL (
        SELECT h.rule_name, h.instance FROM alert_history h
        WHERE h.rule_name = r.name ORDER BY h.instance LIMIT 1) f
    UNION ALL
    SELECT n.rule_name, n.instance
    FROM instances i
    CROSS JOIN LATERAL (
        SELECT h.rule_name, h.instance FROM alert_history h
        WHERE h.rule_name = i.rule_name AND h.instance > i.instance
        ORDER BY h.instance LIMIT 1) n
),
bands AS (
    SELECT i.rule_name, i.instance, b.*
    FROM instances i CROSS JOIN LATERAL (
        SELECT min(started) AS started,
               CASE WHEN bool_or(ended IS NULL) THEN NULL ELSE max(ended) END AS ended,
               max(value) FILTER (WHERE opens = 1) AS value, max(value) AS peak,
               count(*) AS periods,
               sum(least(coalesce(ended, :until), :until) - greatest(started, :since)) AS shown
        FROM (
            SELECT *, sum(opens) OVER (ORDER BY started) AS band
            FROM (
                SELECT started, ended, value,
                       CASE WHEN started - lag(ended) OVER (ORDER BY started) <= :gap
                            THEN 0 ELSE 1 END AS opens
                FROM (
                    SELECT to_state, value, created_at AS started,
                           lead(created_at) OVER (ORDER BY created_at) AS ended
                    FROM (
                        (SELECT h.to_state, h.value, h.created_at FROM alert_history h
                         WHERE h.rule_name = i.rule_name AND h.instance = i.instance
                           AND h.created_at < :since
                         ORDER BY h.created_at DESC LIMIT 1)
                        UNION ALL
                        (SELECT h.to_state, h.value, h.created_at FROM alert_history h
                         WHERE h.rule_name = i.rule_name AND h.instance = i.instance
                           AND h.created_at >= :since AND h.created_at < :until
                         ORDER BY h.created_at)
                        UNION ALL
                        (SELECT h.to_state, h.value, h.created_at FROM alert_history h
                         WHERE h.rule_name = i.rule_name AND h.instance = i.instance
                           AND h.created_at >= :until
                         ORDER BY h.created_at LIMIT 1)) transitions
                ) periods
                WHERE to_state = 'firing' AND started < :until
                  AND (ended IS NULL OR ended > :since)
            ) firing
        ) banded
        GROUP BY band) b
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY shown DESC, started) AS rank, count(*) OVER () AS total
    FROM bands
)
SELECT rule_name, instance, started, ended,
       greatest(started, :since) AS shown_from,
       least(coalesce(ended, :until), :until) AS shown_to,
       value, peak, periods, total
FROM ranked
WHERE rank <= :limit
ORDER BY rule_name, instance, started
"""


def firing_bands(
    actor: Actor,
    rule_names: Sequence[str],
    since: datetime,
    until: datetime,
    merge_gap: timedelta = timedelta(0),
    limit: int = MAX_BANDS,
) -> Bands:
    """When each of `rule_names` (each instance) was firing between `since` and `until`."""
    if not rule_names or since >= until:
        return Bands([], 0)
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        _SQL,
        {
            "names": list(rule_names),
            "since": since,
            "until": until,
            "gap": merge_gap,
            "limit": limit,
        },
    )
    total = rows[0].pop("total") if rows else 0
    for row in rows[1:]:
        row.pop("total")
    return Bands([Band(**row) for row in rows], max(0, total - len(rows)))
