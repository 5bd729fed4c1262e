"""Triage of error groups (issue 14): the grid's rows are the groups an SQL query lists, with
their sparkline, services and versions; the Regressed and Escalating filters and the escalating
sort against SQL; "other errors with this code" lists groups; the Overview counts regressed
groups; and in Chromium, every role that may read errors sees the badges with a clean console
and a hostile service name as text."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from taskmaster_dash.data.db import PoolName
from taskmaster_dash.data.error_ingest import ErrorEvent, ingest_error
from taskmaster_dash.data.errors.filters import ErrorFilter
from taskmaster_dash.data.errors.listing import error_page
from taskmaster_dash.pages._timerange import parse_query
from taskmaster_dash.pages._ui import when
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_values, render_page
from tests.support.events import DB_TIMEOUT

ROWS = "triage-grid.getRowsResponse"
COUNT = "triage-count.children"
OPEN = "resolution_status IN ('unresolved', 'investigating')"
REGRESSED = f"(regressed_at IS NOT NULL AND {OPEN})"
ESCALATING = f"(escalating_since IS NOT NULL AND {OPEN})"
HOSTILE_SERVICE = '<img src=x onerror="window.__xss=1">svc'
EVENT = DB_TIMEOUT


@dataclass(frozen=True)
class Groups:
    now: datetime
    timeout: str  # DB_TIMEOUT in task-api: 3 occurrences, 2 versions
    regressed: str  # resolved, then it came back
    escalating: str
    hostile: str  # a service name made of HTML
    resolved: str  # resolved and quiet: not in the default list


@pytest.fixture
def groups(database, users, owner_engine, clean_data) -> Groups:
    """Groups made the way POST /api/v1/errors makes them (ingest_error, as on-call)."""
    actor = users.actor("on_call")
    with owner_engine.connect() as conn:
        now = conn.scalar(text("SELECT now()"))

    def post(event: ErrorEvent, ago: timedelta, **changes) -> str:
        with database.transaction(PoolName.WRITE, actor) as conn:
            return ingest_error(conn, replace(event, occurred_at=now - ago, **changes)).error_id

    def owner(sql: str, **params) -> None:
        with owner_engine.begin() as conn:
            conn.execute(text(sql), params)

    timeout = post(EVENT, timedelta(hours=3))
    post(EVENT, timedelta(hours=2), service_version="1.5.0")
    post(EVENT, timedelta(minutes=10), service_version="1.5.0")
    auth = replace(EVENT, error_code="AUTH_FAIL", error_category="authentication")
    regressed = post(auth, timedelta(hours=5))
    owner("UPDATE error_logs SET resolution_status = 'resolved' WHERE id = :id", id=regressed)
    assert post(auth, timedelta(minutes=30)) == regressed
    queue = replace(EVENT, error_code="QUEUE_FULL", error_message="queue full")
    escalating = post(queue, timedelta(minutes=20))
    # Escalation itself is ingest's rule (tests/test_error_ingest.py); here only its mark.
    owner("UPDATE error_logs SET escalating_since = now() WHERE id = :id", id=escalating)
    hostile = post(
        replace(EVENT, error_code="XSS_SVC", service_name=HOSTILE_SERVICE), timedelta(minutes=40)
    )
    quiet = replace(EVENT, error_code="QUIET", error_message="gone quiet")
    resolved = post(quiet, timedelta(hours=6))
    owner("UPDATE error_logs SET resolution_status = 'resolved' WHERE id = :id", id=resolved)
    return Groups(now, timeout, regressed, escalating, hostile, resolved)


def sql_ids(engine, where: str, order: str = "last_occurred_at DESC, id DESC") -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalars(text(f"SELECT id::text FROM error_logs WHERE {where} ORDER BY {order}"))
        )


def grid_rows(client, app, view: dict, sort=None, start: int = 0, end: int = 100) -> dict:
    request: dict[str, Any] = {
        "startRow": start,
        "endRow": end,
        "sortModel": sort or [],
        "filterModel": {},
    }
    values = callback_values(call_callback(client, app, ROWS, [request], [view]))
    return values["triage-grid"]["getRowsResponse"]


def test_the_grid_rows_are_the_groups_with_counts_badges_and_times(
    dash_app, client_as, groups, owner_engine
):
    got = grid_rows(client_as("on_call"), dash_app, {"page": "errors"})
    expected = sql_ids(owner_engine, OPEN)
    assert [r["id"] for r in got["rowData"]] == expected and len(expected) == 4
    with owner_engine.connect() as conn:
        stored = {
            r.id: r
            for r in conn.execute(
                text(
                    f"""SELECT id::text, occurrence_count, first_occurred_at, last_occurred_at,
                               {REGRESSED} AS regressed, {ESCALATING} AS escalating,
                               (SELECT sum(occurrences) FROM error_occurrence_hourly h
                                WHERE h.error_id = e.id) AS hourly
                        FROM error_logs e"""
                )
            )
        }
    for row in got["rowData"]:
        group = stored[row["id"]]
        assert row["occurrence_count"] == group.occurrence_count
        assert sum(row["sparkline"]) == group.hourly == group.occurrence_count
        assert len(row["sparkline"]) == 24  # the default view is the last 24 hours
        assert (row["regressed"], row["escalating"]) == (group.regressed, group.escalating)
        assert row["first_occurred_at"] == when(group.first_occurred_at, seconds=True)
        assert row["last_occurred_at"] == when(group.last_occurred_at, seconds=True)
    by_id = {r["id"]: r for r in got["rowData"]}
    assert by_id[groups.timeout]["occurrence_count"] == 3
    assert by_id[groups.timeout]["seen_in"] == "task-api 1.5.0, 1.4.0"
    assert by_id[groups.regressed]["regressed"] and not by_id[groups.timeout]["regressed"]
    assert by_id[groups.escalating]["escalating"] and by_id[groups.escalating]["escalating_since"]
    assert by_id[groups.hostile]["seen_in"] == f"{HOSTILE_SERVICE} 1.4.0"
    week = grid_rows(client_as("on_call"), dash_app, {"page": "errors", "range": "7d"})
    assert {len(r["sparkline"]) for r in week["rowData"]} == {7 * 24}


def test_the_sparkline_is_the_hourly_table(users, groups, owner_engine):
    """Each hour's count, oldest first and the current hour last, as SQL reads the table."""
    rows = error_page(users.actor("viewer"), ErrorFilter(), None, 0, 100, 24, now=groups.now)
    with owner_engine.connect() as conn:
        expected = dict(
            conn.execute(
                text(
                    """SELECT e.id::text, array_agg(COALESCE(h.occurrences, 0) ORDER BY s.b)
                       FROM error_logs e
                       CROSS JOIN generate_series(date_trunc('hour', :now) - interval '23 hours',
                                                  date_trunc('hour', :now), interval '1 hour') s(b)
                       LEFT JOIN error_occurrence_hourly h ON h.error_id = e.id AND h.bucket = s.b
                       GROUP BY e.id"""
                ),
                {"now": groups.now},
            ).all()
        )
    assert {r["id"]: r["sparkline"] for r in rows} == {r["id"]: expected[r["id"]] for r in rows}
    timeout = next(r for r in rows if r["id"] == groups.timeout)
    assert timeout["sparkline"][-4:].count(1) >= 2  # three occurrences, in separate hours


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ({"regressed": "yes"}, REGRESSED),
        ({"regressed": "no"}, f"{OPEN} AND NOT {REGRESSED}"),
        ({"escalating": "yes"}, ESCALATING),
        ({"escalating": "no", "status": "any"}, f"NOT {ESCALATING}"),
        ({"regressed": "yes", "escalating": "yes"}, f"{REGRESSED} AND {ESCALATING}"),
    ],
    ids=["regressed", "not-regressed", "escalating", "not-escalating-any-status", "both"],
)
def test_regressed_and_escalating_filters_match_sql(
    dash_app, client_as, groups, owner_engine, query, where
):
    view = {"page": "errors", **query}
    expected = sql_ids(owner_engine, where)
    got = grid_rows(client_as("viewer"), dash_app, view)
    assert [r["id"] for r in got["rowData"]] == expected
    count = callback_values(call_callback(client_as("viewer"), dash_app, COUNT, [view, None]))
    said = count["triage-count"]["children"]
    assert said == (
        f"{len(expected)} error{'s' if len(expected) != 1 else ''} match."
        if expected
        else "No errors match these filters."
    )


def test_escalating_sorts_first_in_both_directions_and_pages_like_sql(
    dash_app, client_as, groups, owner_engine
):
    client = client_as("on_call")
    with owner_engine.begin() as conn:  # three escalating groups, so pages cross the boundary
        conn.execute(
            text(
                """UPDATE error_logs SET escalating_since = now() - interval '1 hour'
                   WHERE id IN (CAST(:a AS uuid), CAST(:b AS uuid))"""
            ),
            {"a": groups.timeout, "b": groups.resolved},
        )
    view = {"page": "errors", "status": "any"}
    for direction in ("desc", "asc"):
        sort = [{"colId": "escalating_since", "sort": direction}]
        order = (
            f"escalating_since {direction} NULLS LAST, last_occurred_at {direction}, id {direction}"
        )
        expected = sql_ids(owner_engine, "true", order)
        assert len(expected) == 5
        got = grid_rows(client, dash_app, view, sort)
        assert [r["id"] for r in got["rowData"]] == expected
        for start, end in ((0, 2), (1, 4), (3, 5), (4, 6)):
            page = grid_rows(client, dash_app, view, sort, start, end)
            assert [r["id"] for r in page["rowData"]] == expected[start:end], (start, end)


def test_the_flags_are_url_keys_of_the_view_state():
    view = parse_query({"regressed": "yes", "escalating": "no"}, "errors")
    assert view.query()["regressed"] == "yes" and view.query()["escalating"] == "no"
    flt = view.error_filter()
    assert (flt.regressed, flt.escalating) == (True, False)
    assert parse_query({}, "errors").error_filter().regressed is None
    hostile = parse_query({"regressed": "1; DROP TABLE error_logs", "escalating": "x"}, "errors")
    assert hostile.error_filter().regressed is None and hostile.error_filter().escalating is None
    assert "Ignored an unknown regressed." in hostile.problems
    assert "regressed" not in parse_query({}, "errors").query()


def test_other_errors_with_this_code_are_groups(
    dash_app, client_as, groups, owner_engine, database, users
):
    # Another group with the code (another service), and two rows of one group not folded yet
    # (same fingerprint): listed once, their occurrences summed.
    with database.transaction(PoolName.WRITE, users.actor("on_call")) as conn:
        other = ingest_error(conn, replace(EVENT, service_name="worker")).error_id
    with owner_engine.begin() as conn:
        legacy = list(
            conn.scalars(
                text(
                    """INSERT INTO error_logs (error_code, error_category, error_severity,
                           error_message, fingerprint, occurrence_count, last_occurred_at,
                           resolution_status)
                       SELECT 'DB_TIMEOUT', 'database', 'low', 'legacy ' || i, 'legacy-fp', i,
                              now() - i * interval '1 day', 'resolved'
                       FROM generate_series(1, 2) i RETURNING id::text"""
                )
            )
        )
    content = json.dumps(render_page(client_as("viewer"), dash_app, f"/errors/{groups.timeout}"))
    assert "2 other error groups with this code" in content
    assert other in content and legacy[0] in content and legacy[1] not in content
    assert "\\u00d73 in 2 rows" in content  # 1 + 2 occurrences, the newest row stands for them
    assert "task-api 1.5.0, 1.4.0" in content  # seen in
    regressed = json.dumps(
        render_page(client_as("viewer"), dash_app, f"/errors/{groups.regressed}")
    )
    assert "badge-regressed" in regressed and "badge-escalating" not in regressed


def test_the_overview_counts_regressed_groups_as_unresolved(
    dash_app, client_as, groups, owner_engine
):
    with owner_engine.connect() as conn:
        unresolved = conn.scalar(text(f"SELECT count(*) FROM error_logs WHERE {OPEN}"))
    values = callback_values(
        call_callback(client_as("on_call"), dash_app, "ov-unresolved.children", [1])
    )
    card = json.dumps(values["ov-unresolved"]["children"])
    assert f'"{unresolved}"' in card and unresolved == 4  # the regressed group among them
    assert "1 regressed" in card


# -- in the browser -------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("role", ["admin", "on_call", "developer", "viewer"])
def test_every_role_that_reads_errors_sees_the_groups_and_badges(
    dash_duo, dash_app, users, groups, role
):
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/errors")
    dash_duo.wait_for_text_to_equal("#triage-count", "4 errors match.", timeout=20)
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView()", dash_duo.find_element("#error-triage")
    )
    grid = "#triage-grid .ag-center-cols-container"
    dash_duo.wait_for_text_to_equal(f"{grid} .badge-regressed", "Regressed", timeout=15)
    dash_duo.wait_for_text_to_equal(f"{grid} .badge-escalating", "Escalating", timeout=15)
    rows = dash_duo.driver.find_elements("css selector", f"{grid} .ag-row")
    assert len(rows) == 4
    sparklines = dash_duo.driver.find_elements("css selector", f"{grid} svg.sparkline")
    assert sorted(int(s.get_attribute("data-total")) for s in sparklines) == [1, 1, 2, 3]
    # The hostile service name is shown as text in "Seen in", never as an element.
    seen = [
        cell.get_attribute("textContent")
        for cell in dash_duo.driver.find_elements("css selector", f"{grid} [col-id='seen_in']")
    ]
    assert f"{HOSTILE_SERVICE} 1.4.0" in seen
    assert dash_duo.driver.find_elements("css selector", "#triage-grid img") == []
    assert dash_duo.driver.execute_script("return window.__xss === undefined")
    assert dash_duo.get_logs() == []
