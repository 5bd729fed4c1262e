"""The rule preview: the replay of comparison + for + keep-firing over a series, and over seeded
history read from the rollups, compared with periods computed here from the same seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.alerts.preview import Period, fired_periods
from taskmaster_dash.data.alert_metric_history import NoHistory, promql_history, sql_history
from taskmaster_dash.data.analytics import floor_to, refresh_rollups
from taskmaster_dash.data.prometheus import PrometheusReader
from tests.support.prometheus_history import prometheus_with

T0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=5)


def at(i: int) -> datetime:
    return T0 + STEP * i


def series(values):
    return [(at(i), v) for i, v in enumerate(values)]


def over(threshold):
    return lambda v: v > threshold


def test_fires_after_the_pending_period_and_resolves_at_the_first_sample_below():
    values = [0, 5, 5, 5, 5, 0, 5, 0]
    assert fired_periods(series(values), over(1), for_seconds=600) == [Period(at(3), at(5))]
    # for 0s: fires at once, each breach its own period
    assert fired_periods(series(values), over(1), for_seconds=0) == [
        Period(at(1), at(5)),
        Period(at(6), at(7)),
    ]


def test_keep_firing_bridges_short_gaps_and_ongoing_periods_end_at_the_history_end():
    values = [5, 0, 5, 0, 0, 0, 5, 5]
    assert fired_periods(series(values), over(1), 0, keep_firing_seconds=600) == [
        Period(at(0), at(4)),
        Period(at(6), at(7), ongoing=True),
    ]
    end = at(9)
    assert fired_periods(series(values), over(1), 0, 600, end=end)[-1] == Period(
        at(6), end, ongoing=True
    )


@pytest.mark.parametrize(
    "state, expected",
    [
        ("no_data", [Period(at(0), at(1)), Period(at(3), at(3), ongoing=True)]),
        ("normal", [Period(at(0), at(1)), Period(at(3), at(3), ongoing=True)]),
        ("alerting", [Period(at(0), at(3), ongoing=True)]),
        ("keep_last", [Period(at(0), at(3), ongoing=True)]),
    ],
)
def test_no_data_follows_the_rules_no_data_state(state, expected):
    values = [5, None, None, 5]
    assert fired_periods(series(values), over(1), 0, no_data_state=state) == expected


# ------------------------------------------------------------------ over seeded history


def periods_from_breaches(grid, breached, step_s, for_s, keep_s, end):
    """Independently of the app: breaches grouped into runs of consecutive steps; a run fires
    `for` after it starts; runs closer than keep-firing are one period."""
    runs, start = [], None
    for i, b in enumerate([*breached, False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            runs.append((start, i - 1))
            start = None
    periods: list[list] = []  # [fired index, last breach index]
    for a, b in runs:
        if periods and (a - periods[-1][1]) * step_s < keep_s:
            periods[-1][1] = b  # still firing when this run begins
            continue
        fire = a + -(-for_s // step_s)
        if fire <= b:
            periods.append([fire, b])
    out = []
    for fire, b in periods:
        resolve = b + max(1, -(-keep_s // step_s))
        ongoing = resolve >= len(grid)
        out.append(Period(grid[fire], end if ongoing else grid[resolve], ongoing))
    return out


def expected_periods(errors, service, end, window_minutes, threshold, for_s, keep_s):
    """Errors per minute over the window before each 5-minute step of the last 7 days, counted
    from the seeded timestamps, then periods_from_breaches."""
    last = floor_to(end, STEP)
    grid = [last - STEP * k for k in range(7 * 24 * 12, -1, -1)]
    stamps = sorted(t for s, t in errors if s == service)
    window = timedelta(minutes=window_minutes)
    breached = [
        sum(1 for t in stamps if g - window <= t < g) / window_minutes > threshold for g in grid
    ]
    return periods_from_breaches(grid, breached, 300, for_s, keep_s, end)


def seed_errors(owner_engine, end: datetime) -> list[tuple[str, datetime]]:
    rng = random.Random(15)
    errors = []
    for service in ("api", "worker", "billing"):
        # background noise, about one error every 20 minutes
        for _ in range(7 * 24 * 3):
            errors.append((service, end - timedelta(seconds=rng.uniform(1, 7 * 86400))))
        # bursts of 15-60 errors within a few minutes, two of them close together
        for _ in range(6 if service != "billing" else 0):
            start = end - timedelta(seconds=rng.uniform(600, 7 * 86400 - 3600))
            for start_at in (start, start + timedelta(minutes=rng.choice([10, 15, 40]))):
                for _ in range(rng.randint(15, 60)):
                    errors.append((service, start_at + timedelta(seconds=rng.uniform(0, 240))))
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO error_logs (error_code, error_category, error_severity,
                       error_message, service_name, created_at, first_occurred_at)
                   VALUES ('E1', 'system', 'high', 'seeded', :s, :t, :t)"""
            ),
            [{"s": s, "t": t} for s, t in errors],
        )
    refresh_rollups(None)
    return errors


@pytest.mark.parametrize(
    "window, threshold, for_s, keep_s", [(5, 2, 0, 0), (10, 1.5, 600, 0), (5, 2, 300, 1200)]
)
def test_preview_over_seeded_history_matches_periods_computed_from_the_seed(
    database, clean_data, owner_engine, window, threshold, for_s, keep_s
):
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    errors = seed_errors(owner_engine, end)
    history = sql_history(
        "errors_per_minute", {"window_minutes": window}, ["service_name"], end=end
    )
    assert [dict(k) for k in history.series] == [
        {"service_name": s} for s in ("api", "billing", "worker")
    ]
    fired_somewhere = False
    for service in ("api", "billing", "worker"):
        got = fired_periods(
            history.points((("service_name", service),)), over(threshold), for_s, keep_s, end=end
        )
        want = expected_periods(errors, service, end, window, threshold, for_s, keep_s)
        assert got == want, service
        fired_somewhere |= bool(got)
    assert fired_somewhere  # the seed's bursts breach the threshold


def test_metrics_without_history_say_so(database):
    with pytest.raises(NoHistory, match="pending_tasks cannot be previewed"):
        sql_history("pending_tasks", {}, [])
    with pytest.raises(NoHistory, match="cannot be grouped by pool"):
        sql_history("errors_per_minute", {}, ["pool"])


def test_validation_failure_share_per_type_by_hour(database, clean_data, owner_engine):
    end = floor_to(datetime.now(UTC), timedelta(hours=1)) + timedelta(minutes=7)
    with owner_engine.begin() as conn:
        task = conn.execute(
            text("INSERT INTO tasks (title, type) VALUES ('t', 'feature') RETURNING id")
        ).scalar_one()
        rows = []
        for hours_ago, kind, status in [
            (3, "syntax", "failed"),
            (3, "syntax", "passed"),
            (3, "security", "passed"),
            (2, "syntax", "failed"),
        ]:
            t = end - timedelta(hours=hours_ago, minutes=30)
            rows.append({"task": task, "kind": kind, "status": status, "t": t})
        conn.execute(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status,
                       validation_score, created_at)
                   VALUES (:task, :kind, :status, 50, :t)"""
            ),
            rows,
        )
    refresh_rollups(None)
    history = sql_history(
        "validation_failure_share", {"window_minutes": 60}, ["validation_type"], end=end
    )
    syntax = dict(history.points((("validation_type", "syntax"),)))
    last = floor_to(end, timedelta(hours=1))
    # each value covers the hour before it: runs ~3h23m ago are seen 3 hours back
    assert syntax[last - timedelta(hours=3)] == 0.5  # one of two failed
    assert syntax[last - timedelta(hours=2)] == 1.0
    assert syntax[last - timedelta(hours=1)] is None  # no runs in that hour: no data
    security = dict(history.points((("validation_type", "security"),)))
    assert security[last - timedelta(hours=3)] == 0.0


def test_open_errors_walk_back_from_now(database, clean_data, owner_engine):
    end = datetime.now(UTC)
    with owner_engine.begin() as conn:
        for created, resolved in [(90, None), (60, 30), (20, None)]:
            conn.execute(
                text(
                    """INSERT INTO error_logs (error_code, error_category, error_severity,
                           error_message, service_name, created_at, resolved_at,
                           resolution_status)
                       VALUES ('E', 'system', 'low', 'm', 'api', :c, CAST(:r AS timestamptz),
                               CASE WHEN CAST(:r AS timestamptz) IS NULL THEN 'unresolved'
                                ELSE 'resolved' END)"""
                ),
                {
                    "c": end - timedelta(minutes=created),
                    "r": None if resolved is None else end - timedelta(minutes=resolved),
                },
            )
    refresh_rollups(None)
    history = sql_history("open_errors", {}, [], end=end)
    values = dict(history.points(()))
    last = floor_to(end, STEP)
    for minutes_ago in (0, 25, 45, 75, 100):
        moment = floor_to(end - timedelta(minutes=minutes_ago), STEP)
        exact = sum(
            1
            for created, resolved in [(90, None), (60, 30), (20, None)]
            if end - timedelta(minutes=created) < moment
            and (resolved is None or end - timedelta(minutes=resolved) >= moment)
        )
        assert values[moment] == exact, minutes_ago
    assert values[last] == 2


def test_open_errors_per_group_walk_back_from_the_kept_counts(database, clean_data, owner_engine):
    """Open now comes from the counts kept by trigger (095) per severity, category and service;
    errors not created before the end (a later one, one without created_at) are not open then."""
    end = datetime.now(UTC) - timedelta(minutes=30)
    seeded = [  # (service, category, severity, created minutes before end, resolved ...)
        ("api", "system", "low", 90, None),
        ("api", "network", "low", 60, 30),
        ("api", "network", "high", 20, None),
        (None, "system", "high", 40, None),
        ("worker", "system", "low", 70, 10),
        ("worker", "system", "low", -10, None),  # created after the end
        ("worker", "network", "high", None, None),  # no created_at
    ]
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO error_logs (error_code, error_category, error_severity,
                       error_message, service_name, created_at, resolved_at, resolution_status)
                   VALUES ('E', :category, :severity, 'm', :service, :c,
                           CAST(:r AS timestamptz),
                           CASE WHEN CAST(:r AS timestamptz) IS NULL THEN 'unresolved'
                            ELSE 'resolved' END)"""
            ),
            [
                {
                    "service": service,
                    "category": category,
                    "severity": severity,
                    "c": None if created is None else end - timedelta(minutes=created),
                    "r": None if resolved is None else end - timedelta(minutes=resolved),
                }
                for service, category, severity, created, resolved in seeded
            ],
        )
        # a status change moves the error between the kept counts' keys
        conn.execute(
            text(
                "UPDATE error_logs SET resolution_status = 'investigating'"
                " WHERE service_name = 'api' AND resolution_status = 'unresolved'"
            )
        )
    refresh_rollups(None)
    labels_of = {
        "service_name": lambda e: e[0] or "",
        "error_type": lambda e: e[1],
        "severity": lambda e: e[2],
    }
    for group_by in (["service_name"], ["error_type", "severity"], ["severity", "service_name"]):
        history = sql_history("open_errors", {}, group_by, end=end)
        for labels, values in history.series.items():
            moments = dict(zip(history.times, values, strict=True))
            for minutes_ago in (0, 15, 35, 65, 95):
                moment = floor_to(end - timedelta(minutes=minutes_ago), STEP)
                exact = sum(
                    1
                    for e in seeded
                    if tuple((g, labels_of[g](e)) for g in sorted(group_by)) == labels
                    and e[3] is not None
                    and end - timedelta(minutes=e[3]) < moment
                    and (e[4] is None or end - timedelta(minutes=e[4]) >= moment)
                )
                assert moments[moment] == exact, (group_by, labels, minutes_ago)
        open_then = {
            tuple((g, labels_of[g](e)) for g in sorted(group_by))
            for e in seeded
            if e[3] is not None and e[3] > 0
        }
        assert set(history.series) == open_then, group_by


# ------------------------------------------------------------------ over Prometheus history

SAMPLE_EVERY = 240  # seconds: always a sample in Prometheus's 5-minute lookback


@pytest.fixture(scope="module")
def pool_history(tmp_path_factory):
    """A Prometheus holding 7 days of taskmaster_db_pool_in_use per pool: mostly 2, with
    random bursts of 9 (the read pool more often)."""
    rng = random.Random(91)
    now = int(datetime.now(UTC).timestamp())
    samples = {}
    for pool, bursts in (("read", 8), ("write", 3)):
        busy = []
        for _ in range(bursts):
            start = now - rng.randint(3600, 7 * 86400 - 7200)
            busy.append((start, start + rng.choice([600, 1500, 3600, 7200])))
        samples[pool] = [
            (t, 9.0 if any(a <= t < b for a, b in busy) else 2.0)
            for t in range(now - 7 * 86400 + 900, now - 120, SAMPLE_EVERY)
        ]
    with prometheus_with(
        tmp_path_factory.mktemp("prom-history"), "taskmaster_db_pool_in_use", samples
    ) as server:
        yield PrometheusReader(server.url, timeout=10, cache_seconds=0), samples


@pytest.mark.prometheus
@pytest.mark.parametrize("for_s, keep_s", [(0, 0), (1200, 0), (0, 1800)])
def test_promql_preview_matches_periods_computed_from_the_backfilled_samples(
    pool_history, for_s, keep_s
):
    reader, samples = pool_history
    end = datetime.now(UTC)
    history = promql_history(reader, "taskmaster_db_pool_in_use", ["pool"], end)
    assert [dict(k) for k in history.series] == [{"pool": "read"}, {"pool": "write"}]
    step = int(history.step.total_seconds())
    fired = 0
    for pool in ("read", "write"):
        points = history.points((("pool", pool),))
        got = fired_periods(points, over(5), for_s, keep_s, end=end)
        # the value at each step: the last sample at or before it (within the lookback)
        values = []
        for t in history.times:
            seen = [v for at, v in samples[pool] if 0 <= t.timestamp() - at < 300]
            values.append(seen[-1] if seen else None)
        assert [v for _, v in points] == values
        grid = history.times
        want = periods_from_breaches(
            grid, [v is not None and v > 5 for v in values], step, for_s, keep_s, end
        )
        assert got == want, pool
        fired += len(got)
    assert fired  # the bursts breach the threshold
