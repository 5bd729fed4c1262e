"""Error triage: the list's filters and paging against SQL, the detail, the actions (who may,
what they write, concurrency, all-or-nothing bulk, a failed write keeps the note), and the
browser: the whole flow, and error text shown as text."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from taskmaster_dash.pages._timerange import parse_query
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_values, render_page
from tests.support.grid import Grid, grid_page
from tests.support.sql import all_rows, column, one_row, one_tuple

DEFAULT_VIEW = {"page": "errors"}  # what /errors opens with: the last 24 h, open errors
ROWS = "triage-grid.getRowsResponse"
COUNT = "triage-count.children"
ACT = "err-body.children"
BULK = "triage-bulk-message.children"


@pytest.fixture
def errors(owner_engine, clean_data):
    """250 errors with every combination spread out; row i last occurred i minutes ago."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO error_logs (error_code, error_category, error_severity,
                       error_message, resolution_status, occurrence_count, first_occurred_at,
                       last_occurred_at, environment, service_name, service_version, created_at)
                   SELECT 'E' || lpad((i % 13)::text, 3, '0'),
                          (ARRAY['database','validation','workflow','integration','authentication',
                                 'authorization','network','configuration','business_logic',
                                 'system'])[1 + i % 10],
                          (ARRAY['critical','high','medium','low','info'])[1 + i % 5],
                          'message ' || i
                              || CASE WHEN i % 4 = 0 THEN ' timeout 50%_off' ELSE '' END,
                          (ARRAY['unresolved','investigating','resolved','wont_fix',
                                 'duplicate'])[1 + (i / 5) % 5],
                          1 + (i * 37) % 100,
                          now() - i * interval '1 minute' - (i % 7) * interval '1 hour',
                          now() - i * interval '1 minute',
                          (ARRAY['production','staging','testing','development'])[1 + i % 4],
                          (ARRAY['api','worker','sync'])[1 + i % 3], '1.' || (i % 3),
                          now() - i * interval '1 minute'
                   FROM generate_series(0, 249) AS i"""
            )
        )
    return owner_engine


def ids_from_sql(engine, where: str, order: str, limit: int, offset: int = 0, **params):
    return column(
        engine,
        f"SELECT id::text FROM error_logs e WHERE {where} ORDER BY {order}"
        " LIMIT :limit OFFSET :offset",
        **params,
        limit=limit,
        offset=offset,
    )


def grid_rows(client, app, view, start=0, end=100, sort=None):
    """The rows the grid gets for `view` (the page's tr-view store: the URL's keys)."""
    values = grid_page(client, app, "triage-grid", {"tr-view": view}, start, end, sort)
    return values["triage-grid"]["getRowsResponse"]


def one_error(engine, **columns) -> dict:
    values = {
        "error_code": "E_ONE",
        "error_category": "system",
        "error_severity": "high",
        "error_message": "Something broke",
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    with engine.begin() as conn:
        row = conn.execute(
            text(
                f"INSERT INTO error_logs ({names}) VALUES ({marks}) RETURNING id::text, updated_at"
            ),
            values,
        ).one()
    return {"id": row.id, "updated_at": row.updated_at.isoformat()}


def error_row(engine, error_id: str) -> dict:
    return one_row(
        engine,
        """SELECT resolution_status, resolution_notes, resolved_at, resolved_by,
                  updated_at, metadata FROM error_logs WHERE id = :id""",
        id=error_id,
    )


def audit_rows(engine, error_id: str) -> list[dict]:
    return all_rows(
        engine,
        """SELECT action, username, new_values->>'resolution_status' AS status
           FROM audit_logs WHERE entity_type = 'error_logs' AND entity_id = :id
             AND action <> 'create' ORDER BY "timestamp" """,
        id=error_id,
    )


def act(client, app, action: str, seen: dict, note: str | None, duplicate_of: str | None = None):
    return call_callback(
        client,
        app,
        ACT,
        state={"err-seen": seen, "err-note": note, "err-duplicate-of": duplicate_of},
        changed=f"err-{action}.n_clicks",
    )


def bulk(client, app, action: str, selected: list, note: str | None):
    return call_callback(
        client,
        app,
        BULK,
        state={"triage-grid": selected, "triage-bulk-note": note},
        changed=f"triage-bulk-{action}.n_clicks",
    )


def message_text(values: dict, component: str) -> str:
    return json.dumps(values[component]["children"])


@pytest.fixture
def failing_update(owner_engine):
    """make_fail(id): every UPDATE of that error raises inside the database."""
    made = []

    def make_fail(error_id: str) -> None:
        with owner_engine.begin() as conn:
            conn.execute(
                text(
                    f"""CREATE OR REPLACE FUNCTION test_fail_update() RETURNS trigger
                        LANGUAGE plpgsql AS $$ BEGIN
                        IF NEW.id = '{uuid.UUID(error_id)}' THEN
                            RAISE EXCEPTION 'disk full (test)';
                        END IF; RETURN NEW; END $$;
                        CREATE TRIGGER trg_test_fail BEFORE UPDATE ON error_logs
                        FOR EACH ROW EXECUTE FUNCTION test_fail_update();"""
                )
            )
        made.append(error_id)

    yield make_fail
    if made:
        with owner_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS trg_test_fail ON error_logs"))
            conn.execute(text("DROP FUNCTION IF EXISTS test_fail_update()"))


# -- the list --------------------------------------------------------------------------------


def test_default_list_is_open_errors_newest_first_paged_like_sql(dash_app, client_as, errors):
    client = client_as("on_call")
    where = "resolution_status IN ('unresolved', 'investigating')"
    order = "last_occurred_at DESC, id DESC"
    first = grid_rows(client, dash_app, DEFAULT_VIEW, 0, 60)
    assert [r["id"] for r in first["rowData"]] == ids_from_sql(errors, where, order, 60)
    assert first["rowCount"] is None  # a full page: more may follow
    second = grid_rows(client, dash_app, DEFAULT_VIEW, 60, 120)
    assert [r["id"] for r in second["rowData"]] == ids_from_sql(errors, where, order, 60, 60)
    assert second["rowCount"] == 100  # a short page ends the list: 2 statuses of 5 are open
    row = first["rowData"][0]
    assert row["resolution_status"] in ("unresolved", "investigating")
    assert row["seen_in"] == "api 1.0" and row["updated_at"]
    values = callback_values(call_callback(client, dash_app, COUNT, [DEFAULT_VIEW, None]))
    assert values["triage-count"]["children"] == "100 errors match."
    worst_first = grid_rows(
        client, dash_app, DEFAULT_VIEW, 20, 70, [{"colId": "error_severity", "sort": "desc"}]
    )
    rank = "array_position(ARRAY['info','low','medium','high','critical'], error_severity::text)"
    expected = ids_from_sql(errors, where, f"{rank} DESC, last_occurred_at DESC, id DESC", 50, 20)
    assert [r["id"] for r in worst_first["rowData"]] == expected


@pytest.mark.parametrize("id_limit", [10_000, 5], ids=["few-matches", "many-matches"])
def test_filters_search_and_sort_match_sql(dash_app, client_as, errors, monkeypatch, id_limit):
    # A search with few matches filters by the ids the trigram index found; one with many
    # scans with ILIKE. Both must give the same rows.
    monkeypatch.setattr("taskmaster_dash.data.errors.listing.SEARCH_ID_LIMIT", id_limit)
    client = client_as("on_call")
    filters = {
        "page": "errors",
        "status": "any",
        "severity": "critical,high",
        "environment": "production",
        "q": "TIMEOUT 50%_",
    }
    where = (
        "error_severity IN ('critical', 'high') AND environment = 'production'"
        " AND error_message ILIKE '%timeout 50\\%\\_%'"
    )
    sort = [{"colId": "occurrence_count", "sort": "asc"}]
    order = "occurrence_count ASC, id ASC"
    expected = ids_from_sql(errors, where, order, 100)
    assert 0 < len(expected) < 100
    got = grid_rows(client, dash_app, filters, 0, 100, sort)
    assert [r["id"] for r in got["rowData"]] == expected
    assert got["rowCount"] == len(expected)
    values = callback_values(call_callback(client, dash_app, COUNT, [filters, None]))
    assert values["triage-count"]["children"] == f"{len(expected)} errors match."


def test_a_preset_range_is_the_window_the_charts_draw():
    now = datetime(2026, 11, 30, 9, 7, 30, tzinfo=UTC)
    flt = parse_query({"range": "1h"}, "errors").error_filter(now)
    assert flt.since == datetime(2026, 11, 30, 8, 7, tzinfo=UTC)  # floored to the 1-min bucket
    assert flt.until == now and flt.statuses == ("unresolved", "investigating")


def test_a_custom_window_and_filters_match_sql(dash_app, client_as, errors):
    client = client_as("on_call")
    since, until = one_tuple(
        errors,
        "SELECT to_char(now() - interval '100 minutes', 'YYYY-MM-DD HH24:MI'),"
        " to_char(now() - interval '90 minutes', 'YYYY-MM-DD HH24:MI')",
    )
    window = {
        "page": "errors",
        "range": "custom",
        "from": since,
        "to": until,
        "status": "any",
        "category": "network",
        "service": "api,sync",
    }
    got = grid_rows(client, dash_app, window, 0, 500)
    expected = ids_from_sql(
        errors,
        "last_occurred_at >= CAST(:since AS timestamp) AT TIME ZONE 'UTC'"
        " AND first_occurred_at <= CAST(:until AS timestamp) AT TIME ZONE 'UTC'"
        " AND error_category = 'network' AND service_name IN ('api', 'sync')",
        "last_occurred_at DESC, id DESC",
        500,
        since=since,
        until=until,
    )
    assert [r["id"] for r in got["rowData"]] == expected and expected
    by_code = grid_rows(client, dash_app, {"page": "errors", "code": "E003,E007"}, 0, 500)
    expected = ids_from_sql(
        errors,
        "error_code IN ('E003', 'E007') AND resolution_status IN ('unresolved', 'investigating')",
        "last_occurred_at DESC, id DESC",
        500,
    )
    assert [r["id"] for r in by_code["rowData"]] == expected and expected


def test_hostile_filter_and_sort_values_are_refused_not_run(dash_app, client_as, errors):
    client = client_as("on_call")
    hostile = {
        "page": "errors",
        "status": "resolved'; DROP TABLE error_logs; --",
        "severity": "nope",
        "service": "x" * 5000,
        "range": "2y",
        "from": "yesterday",
        "q": "%' OR 1=1 --",
    }
    sort = [{"colId": "error_message; DROP TABLE error_logs", "sort": "asc; --"}]
    got = grid_rows(client, dash_app, hostile, 0, 100, sort)
    assert got["rowData"] == [] and got["rowCount"] == 1  # never 0: the grid would stall
    values = callback_values(call_callback(client, dash_app, COUNT, [hostile, None]))
    assert values["triage-count"]["children"] == "No errors match these filters."
    said = " ".join(parse_query(hostile, "errors").problems)  # shown under the picker
    assert "unknown status" in said and "unknown time range" in said
    with errors.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM error_logs")) == 250


def test_url_query_becomes_a_filter():
    flt = parse_query(
        {"status": "resolved,wont_fix", "severity": ["high", "bogus"], "range": "24h", "q": " x "},
        "errors",
    )
    assert flt.filters.status == ("resolved", "wont_fix") and flt.filters.severity == ("high",)
    assert flt.filters.q == "x" and flt.problems == ("Ignored an unknown severity.",)
    assert parse_query({}, "errors").error_filter().statuses == ("unresolved", "investigating")
    assert parse_query({"status": "any"}, "errors").error_filter().statuses == ()
    custom = parse_query({"from": "2026-11-01 00:00", "to": "2026-11-02T00:00Z"}, "errors")
    assert custom.range == "custom"
    assert custom.error_filter().since == datetime(2026, 11, 1, tzinfo=UTC)
    assert custom.error_filter().until - custom.error_filter().since == timedelta(days=1)


def test_a_role_without_errors_read_cannot_list(dash_app, client_as, errors):
    request = {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}}
    response = call_callback(client_as("api_client"), dash_app, ROWS, [request], [DEFAULT_VIEW])
    assert response.status_code == 403


# -- the detail -----------------------------------------------------------------------------


def page_content(client, app, path: str) -> str:
    return json.dumps(render_page(client, app, path))


def test_the_pages_are_refused_without_errors_read(dash_app, client_as, clean_data):
    client = client_as("api_client")
    for path in ("/errors", f"/errors/{uuid.uuid4()}"):
        content = page_content(client, dash_app, path)
        assert "Not permitted" in content and "triage-grid" not in content


@pytest.mark.parametrize(
    "path", ["/errors/not-a-uuid", f"/errors/{uuid.uuid4()}", "/errors/'%20OR%201=1"]
)
def test_unknown_or_malformed_error_id_says_no_such_error(dash_app, client_as, clean_data, path):
    assert "No such error" in page_content(client_as("viewer"), dash_app, path)


def test_detail_shows_the_error_its_task_and_same_code(
    dash_app, client_as, owner_engine, clean_data
):
    with owner_engine.begin() as conn:
        task = conn.scalar(
            text(
                "INSERT INTO tasks (title, status) VALUES ('Fix login', 'in_progress')"
                " RETURNING id::text"
            )
        )
    seen = one_error(
        owner_engine,
        task_id=task,
        stack_trace="Traceback:\n  line 1",
        error_details=json.dumps({"pool": "write", "attempt": 2}),
        ip_address="10.0.0.7",
        user_agent="curl/8",
    )
    other = one_error(owner_engine, error_message="Earlier one")
    content = page_content(client_as("viewer"), dash_app, f"/errors/{seen['id']}")
    assert "Something broke" in content and "Fix login" in content and "in_progress" in content
    assert "Traceback:\\n  line 1" in content
    assert (
        json.dumps(json.dumps({"attempt": 2, "pool": "write"}, indent=2, sort_keys=True))[1:-1]
        in content
    )
    assert "10.0.0.7" in content and "curl/8" in content
    assert other["id"] in content and "Earlier one" in content
    assert "err-resolve" not in content  # a viewer gets no action buttons


# -- actions --------------------------------------------------------------------------------


def test_a_viewer_cannot_resolve_and_the_row_is_unchanged(
    dash_app, client_as, owner_engine, clean_data
):
    seen = one_error(owner_engine)
    before = error_row(owner_engine, seen["id"])
    response = act(client_as("viewer"), dash_app, "resolve", seen, "looks fine")
    assert response.status_code == 403
    bulk_response = bulk(client_as("viewer"), dash_app, "resolve", [seen], "looks fine")
    assert bulk_response.status_code == 403
    assert error_row(owner_engine, seen["id"]) == before
    assert audit_rows(owner_engine, seen["id"]) == []


def test_resolve_ignore_duplicate_and_reopen_write_what_the_spec_says(
    dash_app, client_as, owner_engine, clean_data
):
    client = client_as("on_call")
    seen = one_error(owner_engine)
    missing_note = callback_values(act(client, dash_app, "resolve", seen, "   "))
    assert "A note is required" in message_text(missing_note, "err-action-message")
    too_long = callback_values(act(client, dash_app, "resolve", seen, "x" * 5001))
    assert "at most 5,000" in message_text(too_long, "err-action-message")
    assert error_row(owner_engine, seen["id"])["resolution_status"] == "unresolved"

    values = callback_values(
        act(client, dash_app, "resolve", seen, "Restarted the pool <b>now</b>")
    )
    assert "Resolved." in message_text(values, "err-action-message")
    row = error_row(owner_engine, seen["id"])
    assert row["resolution_status"] == "resolved" and row["resolved_by"] == "test-on-call"
    assert row["resolution_notes"] == "Restarted the pool <b>now</b>" and row["resolved_at"]
    assert values["err-changed"]["data"]["ids"] == [seen["id"]]

    fresh = {"id": seen["id"], "updated_at": row["updated_at"].isoformat()}
    callback_values(act(client, dash_app, "reopen", fresh, None))
    row = error_row(owner_engine, seen["id"])
    assert (row["resolution_status"], row["resolved_at"], row["resolved_by"]) == (
        "unresolved",
        None,
        None,
    )

    original = one_error(owner_engine, error_message="the first one")
    fresh = {"id": seen["id"], "updated_at": row["updated_at"].isoformat()}
    callback_values(act(client, dash_app, "ignore", fresh, "same as the first", original["id"]))
    row = error_row(owner_engine, seen["id"])
    assert (
        row["resolution_status"] == "duplicate"
        and row["metadata"]["duplicate_of"] == original["id"]
    )
    other = one_error(owner_engine)
    callback_values(act(client, dash_app, "ignore", other, "expected in maintenance"))
    assert error_row(owner_engine, other["id"])["resolution_status"] == "wont_fix"
    assert [a["status"] for a in audit_rows(owner_engine, seen["id"])] == [
        "resolved",
        "unresolved",
        "duplicate",
    ]
    assert {a["username"] for a in audit_rows(owner_engine, seen["id"])} == {"test-on-call"}


def test_investigating_keeps_an_error_open_and_says_who_took_it(
    dash_app, client_as, owner_engine, clean_data
):
    client = client_as("on_call")
    seen = one_error(owner_engine)
    values = callback_values(act(client, dash_app, "investigate", seen, None))
    assert "Marked investigating." in message_text(values, "err-action-message")
    row = error_row(owner_engine, seen["id"])
    assert (row["resolution_status"], row["resolved_at"], row["resolved_by"]) == (
        "investigating",
        None,
        None,
    )
    fresh = {"id": seen["id"], "updated_at": row["updated_at"].isoformat()}
    again = callback_values(act(client, dash_app, "investigate", fresh, None))
    assert "is investigating and cannot be marked investigating" in message_text(
        again, "err-action-message"
    )
    assert error_row(owner_engine, seen["id"])["updated_at"] == row["updated_at"]
    callback_values(act(client, dash_app, "resolve", fresh, "Fixed the retry"))
    assert error_row(owner_engine, seen["id"])["resolution_status"] == "resolved"

    # Several at once, in one transaction, each audited as the person who took them.
    taken = [one_error(owner_engine), one_error(owner_engine)]
    values = callback_values(bulk(client, dash_app, "investigate", taken, None))
    assert "2 errors marked investigating." in message_text(values, "triage-bulk-message")
    for item in taken:
        assert error_row(owner_engine, item["id"])["resolution_status"] == "investigating"
        assert audit_rows(owner_engine, item["id"]) == [
            {"action": "status_change", "username": "test-on-call", "status": "investigating"}
        ]

    # Without errors:write: refused, nothing written.
    untouched = one_error(owner_engine)
    assert act(client_as("viewer"), dash_app, "investigate", untouched, None).status_code == 403
    assert bulk(client_as("viewer"), dash_app, "investigate", [untouched], None).status_code == 403
    assert error_row(owner_engine, untouched["id"])["resolution_status"] == "unresolved"


def test_two_sessions_resolve_the_same_error_exactly_one_wins(
    dash_app, client_as, owner_engine, clean_data
):
    seen = one_error(owner_engine)
    clients = {"on_call": client_as("on_call"), "admin": client_as("admin")}
    barrier = threading.Barrier(2)
    results: dict[str, dict] = {}

    def resolve(role: str) -> None:
        barrier.wait()
        results[role] = callback_values(
            act(clients[role], dash_app, "resolve", seen, f"fixed by {role}")
        )

    threads = [threading.Thread(target=resolve, args=(role,)) for role in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [role for role, values in results.items() if "err-body" in values]
    assert len(winners) == 1
    winner = winners[0]
    loser = "admin" if winner == "on_call" else "on_call"
    said = message_text(results[loser], "err-action-message")
    assert (
        "Nothing was saved" in said
        and f"test-{winner.replace('_', '-')}" in said
        and "reload" in said
    )
    row = error_row(owner_engine, seen["id"])
    assert row["resolution_notes"] == f"fixed by {winner}"
    assert len(audit_rows(owner_engine, seen["id"])) == 1


def test_a_failed_write_keeps_the_note_and_says_not_saved(
    dash_app, client_as, owner_engine, clean_data, failing_update
):
    seen = one_error(owner_engine)
    failing_update(seen["id"])
    values = callback_values(
        act(client_as("on_call"), dash_app, "resolve", seen, "my careful note")
    )
    assert "err-body" not in values  # the form, with the note in it, stays as it is
    assert "not saved" in message_text(values, "err-action-message")
    assert error_row(owner_engine, seen["id"])["resolution_status"] == "unresolved"


def test_bulk_is_all_or_nothing(dash_app, client_as, owner_engine, clean_data, failing_update):
    client = client_as("on_call")
    rows = [one_error(owner_engine, error_message=f"bulk {i}") for i in range(3)]
    before = {r["id"]: error_row(owner_engine, r["id"]) for r in rows}

    stale = [*rows[:2], {**rows[2], "updated_at": "2020-01-01T00:00:00+00:00"}]
    said = message_text(
        callback_values(bulk(client, dash_app, "resolve", stale, "n")), "triage-bulk-message"
    )
    assert "Nothing was saved" in said and rows[2]["id"][:8] in said
    unknown = [*rows, {"id": str(uuid.uuid4()), "updated_at": rows[0]["updated_at"]}]
    said = message_text(
        callback_values(bulk(client, dash_app, "ignore", unknown, "n")), "triage-bulk-message"
    )
    assert "does not exist" in said
    bad_id = [*rows, {"id": "1; DROP TABLE error_logs", "updated_at": rows[0]["updated_at"]}]
    said = message_text(
        callback_values(bulk(client, dash_app, "resolve", bad_id, "n")), "triage-bulk-message"
    )
    assert "not an error id" in said
    failing_update(rows[1]["id"])
    values = callback_values(bulk(client, dash_app, "resolve", rows, "batch note"))
    assert "not saved" in message_text(values, "triage-bulk-message")
    assert "triage-bulk-note" not in values  # the note stays in the form
    assert {r["id"]: error_row(owner_engine, r["id"]) for r in rows} == before


def test_bulk_resolves_every_selected_error_in_one_go(
    dash_app, client_as, owner_engine, clean_data
):
    rows = [one_error(owner_engine, error_message=f"bulk {i}") for i in range(3)]
    values = callback_values(
        bulk(client_as("on_call"), dash_app, "resolve", rows, "deployed fix 2.3")
    )
    assert "3 errors resolved." in message_text(values, "triage-bulk-message")
    assert values["triage-bulk-note"]["value"] == ""
    for row in rows:
        stored = error_row(owner_engine, row["id"])
        assert (stored["resolution_status"], stored["resolution_notes"], stored["resolved_by"]) == (
            "resolved",
            "deployed fix 2.3",
            "test-on-call",
        )
        assert audit_rows(owner_engine, row["id"]) == [
            {"action": "status_change", "username": "test-on-call", "status": "resolved"}
        ]


# -- in the browser -------------------------------------------------------------------------

HOSTILE = '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2">'


@pytest.mark.browser
def test_error_text_is_shown_as_text_and_never_runs(
    dash_duo, dash_app, users, owner_engine, clean_data
):
    seen = one_error(
        owner_engine,
        error_code="XSS_<b>1</b>",
        error_message=HOSTILE,
        stack_trace=HOSTILE,
        context_data=json.dumps({"html": HOSTILE}),
    )
    browser_sign_in(dash_duo, dash_app, "test-on-call", path="/errors")
    dash_duo.wait_for_text_to_equal("#triage-count", "1 error match.", timeout=15)
    grid = Grid(dash_duo, "triage-grid")
    grid.scroll_into_view()  # the list sits below the rate charts, as a user would scroll to it
    grid.wait_for_cell("error_message", HOSTILE)
    grid.click_cell("error_message")
    dash_duo.wait_for_text_to_equal("#err-message", HOSTILE, timeout=10)
    assert dash_duo.find_element("#err-code").text == "XSS_<b>1</b>"
    assert dash_duo.find_element("#err-stack").text == HOSTILE
    dash_duo.driver.get(f"{dash_duo.server.url.rstrip('/')}/errors/{seen['id']}")
    dash_duo.wait_for_text_to_equal("#err-message", HOSTILE, timeout=10)
    assert (
        dash_duo.driver.find_elements(
            "css selector", "#error-triage img, .error-view img, .error-view b"
        )
        == []
    )
    assert dash_duo.driver.execute_script("return window.__xss === undefined")


@pytest.mark.browser
def test_on_call_filters_opens_resolves_and_sees_the_history(
    dash_duo, dash_app, users, owner_engine, clean_data
):
    target = one_error(owner_engine, error_code="DB_DEADLOCK_42", error_message="Deadlock on tasks")
    for i in range(5):
        one_error(owner_engine, error_message=f"noise {i}")
    browser_sign_in(dash_duo, dash_app, "test-on-call", path="/errors")
    dash_duo.wait_for_text_to_equal("#triage-count", "6 errors match.", timeout=15)
    search = dash_duo.find_element(".triage-filters input[type='search']")
    search.send_keys("deadlock_42\n")
    dash_duo.wait_for_text_to_equal("#triage-count", "1 error match.", timeout=10)
    assert "q=deadlock_42" in dash_duo.driver.current_url
    grid = Grid(dash_duo, "triage-grid")
    grid.wait_for_cell("error_code", "DB_DEADLOCK_42")
    grid.click_cell("error_message")
    dash_duo.wait_for_text_to_equal("#err-message", "Deadlock on tasks", timeout=10)
    dash_duo.find_element("#err-note").send_keys("Added a retry around the status update")
    dash_duo.find_element("#err-resolve").click()
    dash_duo.wait_for_text_to_equal("#err-action-message", "Resolved.", timeout=10)
    dash_duo.wait_for_text_to_equal("#err-status", "resolved")
    dash_duo.wait_for_text_to_equal("#triage-count", "No errors match these filters.", timeout=10)
    assert error_row(owner_engine, target["id"])["resolved_by"] == "test-on-call"
    dash_duo.find_element("#triage-panel-link").click()
    dash_duo.wait_for_contains_text(
        "#err-history", "Added a retry around the status update", timeout=10
    )
    history = dash_duo.find_element("#err-history").text
    assert "test-on-call" in history and "unresolved → resolved" in history
    assert dash_duo.get_logs() == []


@pytest.mark.browser
@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_a_read_only_role_sees_the_triage_list_and_a_clean_console(
    dash_duo, dash_app, users, owner_engine, clean_data, role
):
    """Roles without errors:write get the list without selection boxes (the grid used to fail
    on a null rowSelection: an empty list and a console flooded with errors)."""
    for i in range(3):
        one_error(owner_engine, error_message=f"read only {i}")
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/errors")
    dash_duo.wait_for_text_to_equal("#triage-count", "3 errors match.", timeout=15)
    grid = Grid(dash_duo, "triage-grid")
    grid.scroll_into_view()
    grid.wait_for_cell("error_message", "read only 2")
    assert grid.cell_texts("error_message") == ["read only 2", "read only 1", "read only 0"]
    assert grid.checkboxes() == []
    assert dash_duo.driver.find_elements("css selector", "#triage-bulk-resolve") == []
    assert dash_duo.get_logs() == []
