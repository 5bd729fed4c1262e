"""Analytics charts equal independent SQL over the raw tables: through the rollups (admin) and
through the RLS-filtered fallback (developer); a developer never sees other people's tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from taskmaster_dash.data import analytics_errors as errs
from taskmaster_dash.data import analytics_tasks as tasks
from taskmaster_dash.data import analytics_validations as vals
from taskmaster_dash.data.analytics import Filters, Window, refresh_rollups

NOW = datetime.now(UTC)
WEEK = Window.last(timedelta(days=7), NOW)  # 1 h buckets: read from the rollups
DAY = Window.last(timedelta(hours=24), NOW)  # 5 min buckets: raw rows for tasks
ASSIGNEES = [None, "alice", "test-developer", "bob"]


@pytest.fixture
def known_data(owner_engine, clean_data, database, users):
    """60 tasks, 90 validation runs and 80 errors spread over ten days."""
    with owner_engine.begin() as conn:
        for i in range(60):
            created = NOW - timedelta(hours=3 * i, minutes=7)
            status = ("pending", "in_progress", "completed", "failed")[i % 4]
            done = created + timedelta(hours=i % 5 + 1) if i % 4 >= 2 else None
            if done and done > NOW:
                done = NOW - timedelta(minutes=1)
            conn.execute(
                text(
                    """INSERT INTO tasks (id, title, status, type, priority, assigned_to, tags,
                           estimated_hours, actual_hours, created_at, completed_at)
                       VALUES (md5('t' || :i)::uuid, 'task ' || :i, :status, :type, :i % 11,
                           :who, jsonb_build_array(CAST(:tag AS text)), :est, :act, :created,
                           :done)"""
                ),
                {
                    "i": i,
                    "status": status,
                    "type": ("feature", "bugfix")[i % 2],
                    "who": ASSIGNEES[i % 4 if i % 7 else 0],
                    "tag": ("api", "db", "ui")[i % 3],
                    "est": 2 + i % 4,
                    "act": 1 + i % 6 if status == "completed" else None,
                    "created": created,
                    "done": done,
                },
            )
        for i in range(90):
            status = ("passed", "failed", "warning", "skipped", "error", "passed")[i % 6]
            conn.execute(
                text(
                    """INSERT INTO validation_results (task_id, validation_type,
                           validation_status, validation_score, claude_code_version,
                           execution_time_ms, retry_count, created_at)
                       VALUES (md5('t' || (:i % 60))::uuid, :type, :status, :score, :version,
                               :ms, :retries, :created)"""
                ),
                {
                    "i": i,
                    "type": ("syntax", "security", "testing")[i % 3],
                    "status": status,
                    "score": None if status == "skipped" else (i * 37) % 101,
                    "version": ("1.0.31", "1.0.33", None)[i % 3],
                    "ms": 100 + i * 97,
                    "retries": i % 3,
                    "created": NOW - timedelta(hours=2 * i, minutes=3),
                },
            )
        for i in range(80):
            created = NOW - timedelta(hours=2 * i + 1, minutes=11)
            resolved = created + timedelta(hours=1 + i % 4) if i % 3 == 0 else None
            conn.execute(
                text(
                    """INSERT INTO error_logs (error_code, error_category, error_severity,
                           error_message, service_name, occurrence_count, resolution_status,
                           resolved_at, first_occurred_at, created_at)
                       VALUES (:code, :category, :severity, 'm', :service, :occ, :state,
                               :resolved, :first, :created)"""
                ),
                {
                    "code": f"E{i % 6}",
                    "category": ("network", "database", "system")[i % 3],
                    "severity": ("critical", "high", "medium", "low", "info")[i % 5],
                    "service": ("task-api", "validator", None)[i % 3],
                    "occ": 1 + i % 5,
                    "state": "resolved" if resolved else "unresolved",
                    "resolved": resolved if resolved and resolved < NOW else None,
                    "first": created - timedelta(minutes=10),
                    "created": created,
                },
            )
    refresh_rollups(None)


def sql_df(engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(text(sql), params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def as_dict(frame: pd.DataFrame, keys: list[str], value: str) -> dict:
    """{(key values): value} without zero rows, timestamps compared in UTC."""
    out = {}
    for row in frame.to_dict("records"):
        if not row[value]:
            continue
        key = tuple(
            pd.Timestamp(row[k]).tz_convert("UTC") if isinstance(row[k], datetime) else row[k]
            for k in keys
        )
        out[key] = float(row[value])
    return out


DEV_VISIBLE = (
    "(assigned_to IS NULL OR assigned_to IN ('test-developer', 'test-developer@example.com'))"
)
DEV_OPEN = f"status IN ('pending', 'in_progress') AND {DEV_VISIBLE}"


def assert_unresolved_matches_sql(chart: pd.DataFrame, owner_engine) -> None:
    """The unresolved-errors chart over WEEK counts, per bucket and severity, what SQL counts."""
    truth = sql_df(
        owner_engine,
        """SELECT b AS bucket, error_severity AS series, count(e.id) AS unresolved
           FROM generate_series(CAST(:start AS timestamptz), :until, :bucket) AS b
           JOIN error_logs e ON e.created_at < b + :bucket
                AND (e.resolved_at IS NULL OR e.resolved_at >= b + :bucket)
           WHERE b < :until GROUP BY 1, 2""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    key = ["bucket", "series"]
    assert as_dict(chart, key, "unresolved") == as_dict(truth, key, "unresolved")


def backlog_truth(engine, window: Window, visible: str = "true") -> dict:
    frame = sql_df(
        engine,
        f"""SELECT b AS bucket,
                   CASE WHEN status IN ('pending', 'in_progress') THEN status
                        ELSE 'closed since' END AS series,
                   count(t.id) AS open
            FROM generate_series(CAST(:start AS timestamptz), :until, :bucket) AS b
            JOIN tasks t ON t.created_at < b + :bucket
                 AND (t.completed_at IS NULL OR t.completed_at >= b + :bucket)
            WHERE b < :until AND {visible}
            GROUP BY 1, 2""",
        start=window.start,
        until=window.end,
        bucket=window.bucket,
    )
    return as_dict(frame, ["bucket", "series"], "open")


def test_rollups_were_built(known_data, owner_engine):
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT rollup, covered_until FROM analytics_rollup_state ORDER BY rollup")
        ).all()
        assert conn.scalar(text("SELECT sum(created_n) FROM analytics_task_hourly")) > 50
    assert all(covered > NOW - timedelta(hours=1) for _, covered in rows)


@pytest.mark.parametrize("window", [WEEK, DAY], ids=["rollup-7d", "raw-24h"])
def test_backlog_over_time_counts_open_tasks_at_each_bucket_end(
    known_data, users, owner_engine, window
):
    chart = tasks.backlog_over_time(users.actor("admin"), window, Filters())
    assert as_dict(chart, ["bucket", "series"], "open") == backlog_truth(owner_engine, window)


def test_created_vs_completed_per_bucket(known_data, users, owner_engine):
    chart = tasks.created_vs_completed(users.actor("admin"), WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT analytics_bin(:bucket, created_at) AS bucket, count(*) AS n FROM tasks
           WHERE created_at >= :start AND created_at < :until GROUP BY 1""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    done = sql_df(
        owner_engine,
        """SELECT analytics_bin(:bucket, completed_at) AS bucket, count(*) AS n FROM tasks
           WHERE status = 'completed' AND completed_at >= :start AND completed_at < :until
           GROUP BY 1""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    assert as_dict(chart, ["bucket"], "created") == as_dict(truth, ["bucket"], "n")
    assert as_dict(chart, ["bucket"], "completed") == as_dict(done, ["bucket"], "n")
    assert len(chart) == 7 * 24 + 1  # zero-filled, one row per hour bucket


def test_admin_and_developer_read_the_rollup_and_a_developer_only_their_rows(
    known_data, users, owner_engine
):
    """Skew the rollup behind the app's back: alice's rows and the all-assignee totals show in
    the admin's chart only; the developer's own rows show in theirs (they read the rollup)."""
    hour = "(SELECT max(bucket) FROM analytics_task_hourly WHERE bucket < now() - interval '2 h')"
    truth = sql_df(
        owner_engine,
        f"""SELECT analytics_bin(:bucket, created_at) AS bucket, count(*) AS n FROM tasks
            WHERE created_at >= :start AND created_at < :until AND {DEV_VISIBLE} GROUP BY 1""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    developer = tasks.created_vs_completed(users.actor("developer"), WEEK, Filters())
    assert as_dict(developer, ["bucket"], "created") == as_dict(truth, ["bucket"], "n")
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                f"""UPDATE analytics_task_hourly SET created_n = created_n + 1000
                    WHERE bucket = {hour} AND (level IN (1, 3) OR assignee = 'alice')"""
            )
        )
        conn.execute(
            text(
                f"""INSERT INTO analytics_task_hourly (level, bucket, status, type, assignee,
                        created_n, closed_n, completed_n, estimated_sum, actual_sum, hours_n)
                    SELECT 2, {hour}, 'pending', '', 'test-developer', 7, 0, 0, 0, 0, 0
                    ON CONFLICT (level, bucket, status, type, assignee)
                    DO UPDATE SET created_n = analytics_task_hourly.created_n + 7"""
            )
        )
    admin = tasks.created_vs_completed(users.actor("admin"), WEEK, Filters())
    developer = tasks.created_vs_completed(users.actor("developer"), WEEK, Filters())
    assert admin["created"].sum() > 1000
    assert developer["created"].sum() == sum(as_dict(truth, ["bucket"], "n").values()) + 7


def test_developer_charts_hold_only_their_tasks(known_data, users, owner_engine):
    developer = users.actor("developer")
    chart = tasks.backlog_over_time(developer, WEEK, Filters())
    assert as_dict(chart, ["bucket", "series"], "open") == backlog_truth(
        owner_engine, WEEK, DEV_VISIBLE
    )
    by_assignee = tasks.open_breakdown(developer, "assignee", Filters())
    assert set(by_assignee["key"]) <= {"test-developer", "(unassigned)"}
    listed = tasks.task_list(developer, None, Filters(status=("completed",)), size=100)
    assert set(listed["assignee"]) <= {"test-developer", ""}


def test_incremental_refresh_follows_a_completed_task(known_data, users, owner_engine, database):
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """UPDATE tasks SET status = 'completed', completed_at = now() - interval '90 min',
                       updated_at = now() WHERE title = 'task 40'"""
            )
        )
    refresh_rollups(3)
    chart = tasks.backlog_over_time(users.actor("admin"), WEEK, Filters())
    assert as_dict(chart, ["bucket", "series"], "open") == backlog_truth(owner_engine, WEEK)


def test_task_filters_and_breakdowns(known_data, users, owner_engine):
    admin = users.actor("admin")
    chart = tasks.open_breakdown(admin, "priority", Filters(type=("bugfix",)))
    truth = sql_df(
        owner_engine,
        """SELECT priority::text AS key, status, count(*) AS tasks FROM tasks
           WHERE status IN ('pending', 'in_progress') AND type = 'bugfix' GROUP BY 1, 2""",
    )
    assert as_dict(chart, ["key", "status"], "tasks") == as_dict(truth, ["key", "status"], "tasks")
    tags = tasks.open_breakdown(admin, "tag", Filters())
    assert tags["tasks"].sum() == 30  # every open task has one tag
    hours = tasks.estimated_vs_actual(admin, WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT type, round(avg(actual_hours), 2)::float AS actual
           FROM tasks WHERE status = 'completed' AND completed_at >= :s GROUP BY type""",
        s=WEEK.start,
    )
    assert as_dict(hours, ["type"], "actual") == as_dict(truth, ["type"], "actual")
    age = tasks.open_task_age(admin, Filters())
    assert age["tasks"].sum() == 30
    links = tasks.open_task_links(admin, Filters())
    assert links.loc[links["links"] == 0, "children"].iloc[0] == 30


@pytest.mark.parametrize("window", [WEEK, DAY], ids=["rollup-7d", "rollup-24h-5min"])
def test_error_rate_by_severity(known_data, users, owner_engine, window):
    chart = errs.error_rate(users.actor("viewer"), window, Filters(), "severity")
    truth = sql_df(
        owner_engine,
        """SELECT analytics_bin(:bucket, created_at) AS bucket, error_severity AS series,
                  count(*) AS errors FROM error_logs
           WHERE created_at >= :start AND created_at < :until GROUP BY 1, 2""",
        start=window.start,
        until=window.end,
        bucket=window.bucket,
    )
    assert as_dict(chart, ["bucket", "series"], "errors") == as_dict(
        truth, ["bucket", "series"], "errors"
    )
    assert not chart.empty


def test_error_panels_match_sql(known_data, users, owner_engine):
    viewer = users.actor("viewer")
    top = errs.top_errors(viewer, WEEK, Filters(service=("task-api",)))
    truth = sql_df(
        owner_engine,
        """SELECT error_code, sum(occurrence_count) AS occurrences FROM error_logs
           WHERE created_at >= :s AND service_name = 'task-api' GROUP BY 1""",
        s=WEEK.start,
    )
    assert as_dict(top, ["error_code"], "occurrences") == as_dict(
        truth, ["error_code"], "occurrences"
    )
    unresolved = errs.unresolved_over_time(viewer, WEEK, Filters())
    assert_unresolved_matches_sql(unresolved, owner_engine)
    mttr = errs.time_to_resolve(viewer, WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT analytics_bin(:bucket, resolved_at) AS bucket, error_severity AS series,
                  round((avg(extract(epoch FROM resolved_at - first_occurred_at)) / 3600)::numeric,
                        2)::float AS hours
           FROM error_logs WHERE resolved_at >= :start AND resolved_at < :until GROUP BY 1, 2""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    assert as_dict(mttr, ["bucket", "series"], "hours") == as_dict(
        truth, ["bucket", "series"], "hours"
    )


def test_validation_panels_match_sql(known_data, users, owner_engine):
    viewer = users.actor("viewer")
    scores = vals.score_over_time(viewer, WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT analytics_bin(:bucket, created_at) AS bucket, validation_type AS series,
                  round(avg(validation_score), 2)::float AS score
           FROM validation_results WHERE created_at >= :start AND created_at < :until
           GROUP BY 1, 2 HAVING count(validation_score) > 0""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    assert as_dict(scores, ["bucket", "series"], "score") == as_dict(
        truth, ["bucket", "series"], "score"
    )
    versions = vals.by_version(viewer, WEEK, Filters(type=("security",)))
    truth = sql_df(
        owner_engine,
        """SELECT COALESCE(claude_code_version, '(unknown)') AS version, count(*) AS runs,
                  round(100.0 * count(*) FILTER (WHERE validation_status = 'passed')
                        / count(*), 2)::float AS passed_percent
           FROM validation_results WHERE created_at >= :s AND validation_type = 'security'
           GROUP BY 1""",
        s=WEEK.start,
    )
    assert as_dict(versions, ["version"], "passed_percent") == as_dict(
        truth, ["version"], "passed_percent"
    )
    distribution = vals.score_distribution(viewer, WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT (LEAST(floor(validation_score / 10), 9) * 10)::int AS score_from,
                  count(*) AS runs FROM validation_results
           WHERE created_at >= :s AND validation_score IS NOT NULL GROUP BY 1""",
        s=WEEK.start,
    )
    assert as_dict(distribution, ["score_from"], "runs") == as_dict(truth, ["score_from"], "runs")
    retries = vals.retries(viewer, WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT validation_type, sum(retry_count) AS retries FROM validation_results
           WHERE created_at >= :s GROUP BY 1""",
        s=WEEK.start,
    )
    assert as_dict(retries, ["validation_type"], "retries") == as_dict(
        truth, ["validation_type"], "retries"
    )
    share = vals.status_share(viewer, WEEK, Filters())
    assert share.groupby("bucket")["percent"].sum().round(0).eq(100).all()


def test_execution_percentiles_are_the_histogram_bin_holding_the_exact_one(
    known_data, users, owner_engine
):
    chart = vals.execution_percentiles(users.actor("viewer"), WEEK, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT validation_type,
                  percentile_disc(0.5) WITHIN GROUP (ORDER BY execution_time_ms) AS p50,
                  percentile_disc(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95
           FROM validation_results WHERE created_at >= :s GROUP BY 1""",
        s=WEEK.start,
    ).set_index("validation_type")
    assert len(chart) == 3
    for row in chart.itertuples():
        for reported, exact in (
            (row.p50_ms, truth.p50[row.validation_type]),
            (row.p95_ms, truth.p95[row.validation_type]),
        ):
            assert exact <= reported <= exact * 1.14 + 1


def test_lowest_scoring_runs_link_their_tasks(known_data, users, owner_engine):
    runs = vals.lowest_scoring_runs(users.actor("viewer"), WEEK, Filters(), limit=5)
    truth = sql_df(
        owner_engine,
        """SELECT validation_score::float AS score FROM validation_results
           WHERE created_at >= :s AND validation_score IS NOT NULL
           ORDER BY validation_score LIMIT 5""",
        s=WEEK.start,
    )
    assert list(runs["score"]) == list(truth["score"])
    assert runs["task_title"].notna().all()


def test_an_empty_range_has_no_data(known_data, users):
    old = Window.between(NOW - timedelta(days=300), NOW - timedelta(days=299))
    assert errs.error_rate(users.actor("admin"), old, Filters(), "severity").empty
    assert tasks.created_vs_completed(users.actor("admin"), old, Filters())["created"].sum() == 0


def test_incremental_refresh_follows_resolved_errors(known_data, users, owner_engine, database):
    """One error resolved just now, one back-dated three days: both hours are recomputed."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """UPDATE error_logs SET resolution_status = 'resolved', updated_at = now(),
                       resolved_at = CASE WHEN error_code = 'E1' THEN now() - interval '20 min'
                                          ELSE now() - interval '3 days' END
                   WHERE id IN (SELECT id FROM error_logs WHERE resolved_at IS NULL
                                AND error_code IN ('E1', 'E2')
                                AND created_at < now() - interval '4 days'
                                ORDER BY created_at LIMIT 4)"""
            )
        )
    refresh_rollups(3)
    viewer = users.actor("viewer")
    chart = errs.unresolved_over_time(viewer, WEEK, Filters())
    assert_unresolved_matches_sql(chart, owner_engine)
    with owner_engine.connect() as conn:
        hourly = conn.scalar(text("SELECT sum(resolved_n) FROM analytics_error_hourly"))
        raw = conn.scalar(
            text(
                """SELECT count(*) FROM error_logs WHERE resolved_at <
                   (SELECT date_bin('1 hour', covered_until, '2000-01-01 00:00+00')
                    FROM analytics_rollup_state WHERE rollup = 'errors')"""
            )
        )
    assert hourly == raw


@pytest.fixture
def developer_tasks(known_data, owner_engine, database):
    """Open tasks of the developer too: one by username, one by email."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO tasks (title, status, type, priority, assigned_to, tags, created_at)
                   VALUES ('mine 1', 'pending', 'feature', 3, 'test-developer', '["api"]',
                           now() - interval '30 hours'),
                          ('mine 2', 'in_progress', 'bugfix', 5, 'test-developer@example.com',
                           '["db"]', now() - interval '50 hours')"""
            )
        )
    refresh_rollups(None)


def test_a_developer_reading_the_task_rollups_directly_sees_only_their_rows(
    developer_tasks, users, database, owner_engine
):
    """Hand-written SQL as a developer: only their own and unassigned rows, no all-assignee
    totals, and the sums equal the tasks they may see."""
    from taskmaster_dash.data.db import PoolName

    def rows(role: str, sql: str) -> list[dict]:
        return database.fetch_rows(PoolName.READ, users.actor(role), sql)

    seen = rows("developer", "SELECT DISTINCT level, assignee FROM analytics_task_hourly")
    assert {(r["level"], r["assignee"]) for r in seen} == {
        (level, who)
        for level in (0, 2)
        for who in ("", "test-developer", "test-developer@example.com")
    }
    seen = rows("developer", "SELECT DISTINCT assignee FROM analytics_open_tasks")
    assert {r["assignee"] for r in seen} == {"", "test-developer", "test-developer@example.com"}
    admin_sees = rows("admin", "SELECT DISTINCT assignee FROM analytics_open_tasks")
    assert "alice" in {r["assignee"] for r in admin_sees}
    with owner_engine.connect() as conn:
        covered = conn.scalar(
            text("SELECT covered_until FROM analytics_rollup_state WHERE rollup = 'tasks'")
        )
        created = conn.scalar(
            text(f"SELECT count(*) FROM tasks WHERE created_at < :c AND {DEV_VISIBLE}"),
            {"c": covered},
        )
        open_now = conn.scalar(text(f"SELECT count(*) FROM tasks WHERE {DEV_OPEN}"))
    for level in (0, 2):
        sql = f"SELECT sum(created_n) AS n FROM analytics_task_hourly WHERE level = {level}"
        assert rows("developer", sql)[0]["n"] == created
    sql = "SELECT sum(tasks) AS n FROM analytics_open_tasks WHERE dim = 'type'"
    assert rows("developer", sql)[0]["n"] == open_now
    assert open_now < rows("admin", sql)[0]["n"]
    assert rows("api_client", "SELECT count(*) AS n FROM analytics_error_5m")[0]["n"] == 0
    assert rows("viewer", "SELECT count(*) AS n FROM analytics_error_5m")[0]["n"] > 0


def test_developer_panels_equal_sql_over_the_tasks_they_may_see(
    developer_tasks, users, owner_engine
):
    developer = users.actor("developer")
    for dim, key in [
        ("priority", "priority::text"),
        ("type", "type"),
        ("assignee", "COALESCE(assigned_to, '(unassigned)')"),
    ]:
        chart = tasks.open_breakdown(developer, dim, Filters())
        truth = sql_df(
            owner_engine,
            f"""SELECT {key} AS key, status, count(*) AS tasks FROM tasks
                WHERE status IN ('pending', 'in_progress') AND {DEV_VISIBLE} GROUP BY 1, 2""",
        )
        assert as_dict(chart, ["key", "status"], "tasks") == as_dict(
            truth, ["key", "status"], "tasks"
        ), dim
        assert not chart.empty
    tags = tasks.open_breakdown(developer, "tag", Filters(type=("feature",)))
    truth = sql_df(
        owner_engine,
        f"""SELECT tag AS key, status, count(*) AS tasks
            FROM tasks CROSS JOIN LATERAL jsonb_array_elements_text(tags) AS tag
            WHERE status IN ('pending', 'in_progress') AND type = 'feature' AND {DEV_VISIBLE}
            GROUP BY 1, 2""",
    )
    assert as_dict(tags, ["key", "status"], "tasks") == as_dict(truth, ["key", "status"], "tasks")
    hours = tasks.estimated_vs_actual(developer, WEEK, Filters())
    truth = sql_df(
        owner_engine,
        f"""SELECT type, count(*) AS tasks, round(avg(actual_hours), 2)::float AS actual
            FROM tasks WHERE status = 'completed' AND completed_at >= :s AND completed_at < :u
              AND estimated_hours IS NOT NULL AND actual_hours IS NOT NULL AND {DEV_VISIBLE}
            GROUP BY type""",
        s=WEEK.start,
        u=WEEK.end,
    )
    assert as_dict(hours, ["type"], "actual") == as_dict(truth, ["type"], "actual")
    assert as_dict(hours, ["type"], "tasks") == as_dict(truth, ["type"], "tasks")
    done = tasks.created_vs_completed(developer, WEEK, Filters(type=("bugfix",)))
    truth = sql_df(
        owner_engine,
        f"""SELECT analytics_bin(:bucket, completed_at) AS bucket, count(*) AS n FROM tasks
            WHERE status = 'completed' AND type = 'bugfix' AND completed_at >= :start
              AND completed_at < :until AND {DEV_VISIBLE} GROUP BY 1""",
        start=WEEK.start,
        until=WEEK.end,
        bucket=WEEK.bucket,
    )
    assert as_dict(done, ["bucket"], "completed") == as_dict(truth, ["bucket"], "n")
    age = tasks.open_task_age(developer, Filters())
    links = tasks.open_task_links(developer, Filters())
    with owner_engine.connect() as conn:
        open_now = conn.scalar(text(f"SELECT count(*) FROM tasks WHERE {DEV_OPEN}"))
    assert age["tasks"].sum() == open_now == links["children"].sum()


MONTH = Window.last(timedelta(days=30), NOW, step=vals.STEP)  # 3 h buckets


def test_validation_daily_layer_holds_the_hourly_rows_per_day(known_data, users, owner_engine):
    """The daily layer sums the hourly rollup per UTC day; long ranges read it for whole days
    (a skewed day shows in unbinned panels) but never for buckets shorter than a day."""
    with owner_engine.connect() as conn:
        for daily, hourly in (
            ("analytics_validation_daily", "analytics_validation_hourly"),
            ("analytics_validation_hist_daily", "analytics_validation_hist_hourly"),
        ):
            mismatches = conn.scalar(
                text(
                    f"""SELECT count(*) FROM (
                            SELECT bucket, sum(runs) AS n FROM {daily} GROUP BY 1) d
                        FULL JOIN (
                            SELECT analytics_bin('1 day', bucket) AS bucket, sum(runs) AS n
                            FROM {hourly} GROUP BY 1) h USING (bucket)
                        WHERE d.n IS DISTINCT FROM h.n"""
                )
            )
            assert mismatches == 0, daily
        assert conn.scalar(text("SELECT count(*) FROM analytics_validation_daily")) > 3
    viewer = users.actor("viewer")
    percentiles = vals.execution_percentiles(viewer, MONTH, Filters())
    runs = sql_df(
        owner_engine,
        """SELECT validation_type, count(*) AS runs FROM validation_results
           WHERE created_at >= :s AND execution_time_ms IS NOT NULL GROUP BY 1""",
        s=MONTH.start,
    )
    assert as_dict(percentiles, ["validation_type"], "runs") == as_dict(
        runs, ["validation_type"], "runs"
    )
    scores = vals.score_over_time(viewer, MONTH, Filters())
    mean = vals.mean_score(viewer, MONTH, Filters())
    truth = sql_df(
        owner_engine,
        """SELECT avg(validation_score)::float AS score FROM validation_results
           WHERE created_at >= :s""",
        s=MONTH.start,
    )
    assert mean == pytest.approx(truth["score"][0])
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """UPDATE analytics_validation_daily SET score_n = score_n + 1000
                   WHERE bucket = (SELECT min(bucket) + interval '1 day'
                                   FROM analytics_validation_daily)"""
            )
        )
    assert vals.mean_score(viewer, MONTH, Filters()) < mean  # whole days: the daily layer
    assert vals.score_over_time(viewer, MONTH, Filters()).equals(scores)  # 3 h: hourly rows


def test_lowest_scoring_runs_over_many_ties_are_newest_first(known_data, users, owner_engine):
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO validation_results (task_id, validation_type, validation_status,
                       validation_score, created_at)
                   SELECT md5('t1')::uuid, 'syntax', 'failed', 0,
                          CAST(:end AS timestamptz) - make_interval(mins => 5 * g)
                   FROM generate_series(1, 300) AS g"""
            ),
            # inside the window however long the suite has run since MONTH was made
            {"end": MONTH.end},
        )
    runs = vals.lowest_scoring_runs(users.actor("viewer"), MONTH, Filters(), limit=10)
    truth = sql_df(
        owner_engine,
        """SELECT v.id::text AS id, t.title FROM validation_results v
           JOIN tasks t ON t.id = v.task_id
           WHERE v.created_at >= :s AND v.validation_score IS NOT NULL
           ORDER BY v.validation_score, v.created_at DESC LIMIT 10""",
        s=MONTH.start,
    )
    assert list(runs["id"]) == list(truth["id"])
    assert list(runs["task_title"]) == list(truth["title"])
    assert (runs["task_title"] == "task 1").sum() >= 9
