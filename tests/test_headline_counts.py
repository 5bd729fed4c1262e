"""The headline counts and 5-minute validation counts kept by trigger (migrations 095, 097)
equal SQL counts of the rows, after every kind of change, with writers at once, and as each role
sees them (RLS)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from taskmaster_dash.data.analytics import compact_headline_counts
from taskmaster_dash.data.db import Actor, PoolName
from taskmaster_dash.data.overview import error_headline, task_counts
from tests.support.callbacks import call_callback, callback_values

KEPT_TASKS = """SELECT level, status, assignee, sum(n) FROM headline_task_counts
                GROUP BY 1, 2, 3 HAVING sum(n) <> 0"""
COUNTED_TASKS = """SELECT GROUPING(assigned_to), status, assigned_to, count(*) FROM tasks
                   GROUP BY GROUPING SETS ((status, assigned_to), (status))"""
KEPT_ERRORS = """SELECT severity, status, regressed, sum(n) FROM headline_error_counts
                 GROUP BY 1, 2, 3 HAVING sum(n) <> 0"""
COUNTED_ERRORS = """SELECT error_severity, resolution_status, regressed_at IS NOT NULL, count(*)
                    FROM error_logs GROUP BY 1, 2, 3"""
# also by category and service (the rule preview's open errors per group)
KEPT_ERROR_GROUPS = """SELECT severity, status, regressed, category, service, sum(n)
                       FROM headline_error_counts GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0"""
COUNTED_ERROR_GROUPS = """SELECT error_severity, resolution_status, regressed_at IS NOT NULL,
                              error_category, service_name, count(*)
                          FROM error_logs GROUP BY 1, 2, 3, 4, 5"""
KEPT_VALIDATIONS = """SELECT bucket, validation_type, sum(runs), sum(failed), sum(score_n),
                             sum(score_sum)
                      FROM validation_counts_5m GROUP BY 1, 2
                      HAVING sum(runs) <> 0 OR sum(score_n) <> 0"""
COUNTED_VALIDATIONS = """SELECT analytics_bin(interval '5 minutes', created_at), validation_type,
                                count(*), count(*) FILTER (WHERE validation_status IN
                                                           ('failed', 'error')),
                                count(validation_score), COALESCE(sum(validation_score), 0)
                         FROM validation_results GROUP BY 1, 2"""
# runs of the tasks there, spread over the last few hours
NEW_VALIDATIONS = """INSERT INTO validation_results (task_id, validation_type, validation_status,
                         validation_score, created_at)
                     SELECT t.id, (ARRAY['syntax', 'testing', 'style'])[1 + g % 3],
                            (ARRAY['passed', 'failed', 'error', 'pending'])[1 + g % 4],
                            CASE WHEN g % 5 = 0 THEN NULL ELSE g % 100 END,
                            now() - make_interval(mins => g * 7)
                     FROM generate_series(1, :n) g,
                          LATERAL (SELECT id FROM tasks ORDER BY id LIMIT 1) t"""
NEW_ERRORS = """INSERT INTO error_logs (error_code, error_category, error_severity,
                    error_message, resolution_status)
                SELECT 'E' || g, 'network', (ARRAY['critical', 'high', 'low'])[1 + g % 3], 'm',
                       (ARRAY['unresolved', 'investigating', 'resolved', NULL])[1 + g % 4]
                FROM generate_series(1, :n) g"""


def grouped(conn, sql: str) -> dict[tuple, int]:
    return {tuple(row[:-1]): int(row[-1]) for row in conn.execute(text(sql))}


def assert_counts_match(engine) -> None:
    with engine.connect() as conn:
        assert grouped(conn, KEPT_TASKS) == grouped(conn, COUNTED_TASKS)
        assert grouped(conn, KEPT_ERRORS) == grouped(conn, COUNTED_ERRORS)
        assert grouped(conn, KEPT_ERROR_GROUPS) == grouped(conn, COUNTED_ERROR_GROUPS)
        assert grouped(conn, KEPT_VALIDATIONS) == grouped(conn, COUNTED_VALIDATIONS)


def new_tasks(conn, n: int, prefix: str = "t") -> None:
    conn.execute(
        text(
            """INSERT INTO tasks (title, status, assigned_to)
               SELECT :p || g, (ARRAY['pending', 'in_progress', 'completed'])[1 + g % 3],
                      (ARRAY['alice', 'bob', NULL, ''])[1 + g % 4]
               FROM generate_series(1, :n) g"""
        ),
        {"n": n, "p": prefix},
    )


def test_counts_follow_inserts_updates_deletes_and_truncate(owner_engine, clean_data, database):
    assert_counts_match(owner_engine)
    steps = [
        (new_tasks, {"n": 40}),
        ("INSERT INTO tasks (title) VALUES ('one')", {}),
        ("UPDATE tasks SET status = 'completed' WHERE status = 'pending' AND title LIKE 't1%'", {}),
        ("UPDATE tasks SET assigned_to = 'carol' WHERE assigned_to IS NULL AND title < 't2'", {}),
        ("UPDATE tasks SET description = 'changes no count'", {}),
        # a parent's delete sets its children's parent_task_id to NULL: an UPDATE by the FK
        (
            "UPDATE tasks SET parent_task_id = (SELECT id FROM tasks WHERE title = 'one')"
            " WHERE title LIKE 't3%'",
            {},
        ),
        ("DELETE FROM tasks WHERE title = 'one' OR title LIKE 't2%'", {}),
        (
            "INSERT INTO tasks (id, title, status) SELECT id, title, 'failed' FROM tasks"
            " WHERE title LIKE 't3%' ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status",
            {},
        ),
        (NEW_ERRORS, {"n": 30}),
        ("UPDATE error_logs SET resolution_status = 'resolved' WHERE error_code LIKE 'E1%'", {}),
        ("UPDATE error_logs SET regressed_at = now() WHERE error_code LIKE 'E2%'", {}),
        (
            "UPDATE error_logs SET service_name = 'api', error_category = 'system'"
            " WHERE error_code LIKE 'E3%'",
            {},
        ),
        ("UPDATE error_logs SET occurrence_count = occurrence_count + 1", {}),
        ("DELETE FROM error_logs WHERE error_severity = 'low'", {}),
        (NEW_VALIDATIONS, {"n": 40}),
        (
            "UPDATE validation_results SET validation_status = 'failed'"
            " WHERE validation_score < 20",
            {},
        ),
        ("UPDATE validation_results SET validation_score = 55 WHERE validation_score IS NULL", {}),
        (
            "UPDATE validation_results SET validation_type = 'style',"
            " created_at = created_at - interval '3 minutes' WHERE validation_type = 'syntax'",
            {},
        ),
        ("UPDATE validation_results SET execution_time_ms = 5", {}),
        ("DELETE FROM validation_results WHERE validation_status = 'pending'", {}),
    ]
    for sql, params in steps:
        with owner_engine.begin() as conn:
            if callable(sql):
                sql(conn, **params)
            else:
                conn.execute(text(sql), params)
        assert_counts_match(owner_engine)

    with owner_engine.connect() as conn, conn.begin():  # rolled back: no count changes
        new_tasks(conn, 10)
        conn.execute(text("DELETE FROM error_logs"))
        conn.execute(text("DELETE FROM validation_results"))
        conn.rollback()
    assert_counts_match(owner_engine)

    compact_headline_counts()
    assert_counts_match(owner_engine)
    with owner_engine.connect() as conn:  # one (folded) row per key after the compaction
        for table, key, folded in (
            ("headline_task_counts", "level, status, assignee", "true"),
            ("validation_counts_5m", "bucket, validation_type", "folded"),
        ):
            rows, keys = conn.execute(
                text(
                    f"SELECT count(*), count(DISTINCT ({key})) FILTER (WHERE {folded}) FROM {table}"
                )
            ).one()
            assert rows == keys > 0, table

    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE error_logs, task_dependencies, task_contexts, tasks CASCADE"))
    with owner_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM headline_task_counts")) == 0
        assert conn.scalar(text("SELECT count(*) FROM headline_error_counts")) == 0
        assert conn.scalar(text("SELECT count(*) FROM validation_counts_5m")) == 0
    with owner_engine.begin() as conn:
        new_tasks(conn, 7)
        conn.execute(text(NEW_ERRORS), {"n": 5})
        conn.execute(text(NEW_VALIDATIONS), {"n": 6})
    assert_counts_match(owner_engine)


def test_bulk_loads_with_triggers_off_are_counted_too(owner_engine, clean_data, database):
    """The seed and group-errors write with session_replication_role = replica."""
    with owner_engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        new_tasks(conn, 12)
        conn.execute(text(NEW_ERRORS), {"n": 9})
        conn.execute(text("DELETE FROM error_logs WHERE error_severity = 'high'"))
        conn.execute(text(NEW_VALIDATIONS), {"n": 9})
    assert_counts_match(owner_engine)


def test_two_connections_writing_at_once(owner_engine, clean_data, database):
    with owner_engine.begin() as conn:
        new_tasks(conn, 12, "old")
        conn.execute(text(NEW_ERRORS), {"n": 12})
    first, second = owner_engine.connect(), owner_engine.connect()
    try:
        first.begin()
        second.begin()
        new_tasks(first, 10, "a")
        new_tasks(second, 5, "b")
        first.execute(text("UPDATE tasks SET status = 'completed' WHERE title LIKE 'old1%'"))
        second.execute(text("UPDATE tasks SET status = 'failed' WHERE title LIKE 'old2%'"))
        second.execute(text("UPDATE error_logs SET resolution_status = 'resolved'"))
        # A compaction meanwhile folds only what is committed: both writers' rows are not.
        compact_headline_counts()
        second.commit()
        compact_headline_counts()
        first.execute(text("DELETE FROM tasks WHERE title LIKE 'b%'"))  # second's, committed
        first.commit()
    finally:
        first.close()
        second.close()
    assert_counts_match(owner_engine)


def test_many_writers_and_compactions_at_once(owner_engine, clean_data, database):
    """Writers on the same keys never wait for each other on a count: all of them finish (no
    lock wait, no deadlock) and the counts are right whatever the interleaving."""
    failures: list[BaseException] = []

    def write(prefix: str) -> None:
        try:
            for i in range(15):
                with owner_engine.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                    new_tasks(conn, 3, f"{prefix}{i}-")
                    conn.execute(text(NEW_ERRORS), {"n": 2})
                    conn.execute(text(NEW_VALIDATIONS), {"n": 2})
                    conn.execute(
                        text(
                            "UPDATE tasks SET status = 'completed'"
                            " WHERE title LIKE :p AND status = 'pending'"
                        ),
                        {"p": f"{prefix}%"},
                    )
                    conn.execute(
                        text("DELETE FROM tasks WHERE title LIKE :p"), {"p": f"{prefix}{i}-1"}
                    )
        except BaseException as exc:
            failures.append(exc)

    def compact() -> None:
        try:
            for _ in range(10):
                compact_headline_counts()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=f, args=a) for f, a in ((write, ("x",)), (write, ("y",)))]
    threads.append(threading.Thread(target=compact))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert_counts_match(owner_engine)


@pytest.fixture
def assigned_tasks(owner_engine, clean_data, users):
    """Tasks of the test developer (by username and by e-mail), someone else's, unassigned and
    assigned to '' (not unassigned: RLS hides it from developers)."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO tasks (title, status, assigned_to)
                   SELECT 'r' || g, (ARRAY['pending', 'in_progress', 'completed'])[1 + g % 3],
                          (ARRAY['test-developer', 'test-developer@example.com', 'bob', NULL,
                                 ''])[1 + g % 5]
                   FROM generate_series(1, 60) g"""
            )
        )
        conn.execute(text(NEW_ERRORS), {"n": 20})
        conn.execute(text("UPDATE error_logs SET regressed_at = now() WHERE error_code = 'E4'"))


def rls_counts(database, actor: Actor) -> dict[str, int]:
    rows = database.fetch_rows(
        PoolName.READ, actor, "SELECT status, count(*) AS n FROM tasks GROUP BY status"
    )
    return {row["status"]: row["n"] for row in rows}


@pytest.mark.parametrize("role", ["admin", "developer", "viewer", "api_client", "on_call"])
def test_each_role_reads_the_counts_rls_gives_it(database, users, assigned_tasks, role):
    actor = users.actor(role)
    assert task_counts(actor) == rls_counts(database, actor)
    with database.transaction(PoolName.READ, actor) as conn:
        errors = conn.scalar(text("SELECT COALESCE(sum(n), 0) FROM headline_error_counts"))
        visible = conn.scalar(text("SELECT count(*) FROM error_logs"))
    assert errors == visible  # api_client (no errors:read): 0 and 0
    if role == "developer":
        assert task_counts(actor) != task_counts(users.actor("admin"))


def test_the_overview_cards_show_the_kept_counts(
    dash_app, client_as, users, assigned_tasks, database
):
    for role in ("admin", "developer"):
        counted = rls_counts(database, users.actor(role))
        expected = counted.get("pending", 0) + counted.get("in_progress", 0)
        values = callback_values(
            call_callback(client_as(role), dash_app, "ov-open-backlog.children", [1])
        )
        assert values["ov-open-backlog"]["children"] == f"{expected:,}"
    headline = error_headline(users.actor("admin"))
    assert (headline.unresolved, headline.regressed) == (10, 1)  # E4 (g=4) is unresolved
    values = callback_values(
        call_callback(client_as("on_call"), dash_app, "ov-open-backlog.children", [1])
    )
    count, note = values["ov-unresolved"]["children"]
    assert count == "10" and note["props"]["children"] == "1 regressed"


def test_only_the_triggers_write_the_counts(database, users):
    sql = text("INSERT INTO headline_error_counts VALUES ('high', 'unresolved', false, 5)")
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        database.transaction(PoolName.WRITE, users.actor("admin")) as conn,
    ):
        conn.execute(sql)
