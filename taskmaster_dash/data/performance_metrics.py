"""performance_metrics: the metric series the original TaskMaster API writes (kept when a
database is adopted), averaged per time bucket in SQL and read as the user, so RLS applies."""

from __future__ import annotations

import pandas as pd

from taskmaster_dash.data.db import Actor, PoolName, get_database

MAX_SERIES = 12
POINTS = 120


def metric_series(actor: Actor, minutes: int) -> pd.DataFrame:
    """Columns bucket, series ("type · name"), value (mean), for the busiest series in range."""
    step = max(60, minutes * 60 // POINTS)
    rows = get_database().fetch_rows(
        PoolName.READ,
        actor,
        """WITH recent AS (
               SELECT metric_type || ' · ' || metric_name AS series, metric_value, "timestamp"
               FROM performance_metrics
               WHERE "timestamp" >= now() - make_interval(mins => :minutes)),
           busiest AS (
               SELECT series FROM recent GROUP BY series ORDER BY count(*) DESC, series
               LIMIT :max_series)
           SELECT date_bin(make_interval(secs => :step), "timestamp", TIMESTAMPTZ 'epoch')
                      AS bucket,
                  series, avg(metric_value)::float AS value
           FROM recent JOIN busiest USING (series)
           GROUP BY 1, 2 ORDER BY 1, 2""",
        {"minutes": minutes, "step": step, "max_series": MAX_SERIES},
    )
    return pd.DataFrame(rows, columns=["bucket", "series", "value"])
