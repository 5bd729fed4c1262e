"""Maintenance windows: open inside and not outside (one-off, weekly, across midnight and
daylight-saving changes; the clock is passed in), which alert instances they mute, what a bad
window is told, the store with its RLS and audit, the /alerts callbacks and the timeline bands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.alerts.maintenance import (
    FORM_FIELDS,
    Matcher,
    Window,
    WindowError,
    is_active,
    muting_window,
    next_occurrence,
    occurrences,
    parse_matchers,
    validate_window,
)
from taskmaster_dash.data import maintenance as store
from taskmaster_dash.pages._maintenance import FORM_INPUTS, add_maintenance_bands
from tests.support.auth import browser_sign_in
from tests.support.callbacks import call_callback, callback_output, callback_values
from tests.support.maintenance import save_one_off_window
from tests.support.sql import all_rows, count_rows
from tests.test_alerts import run_cli

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def weekly(days, start, end, tz="UTC", matchers=()):
    return Window(
        name="w",
        kind="weekly",
        time_zone=tz,
        days=tuple(days),
        start_time=start,
        end_time=end,
        matchers=tuple(matchers),
    )


def once(start, end, matchers=()):
    return Window(name="o", kind="once", starts_at=start, ends_at=end, matchers=tuple(matchers))


# ------------------------------------------------------------------------------ when open


def test_a_one_off_window_is_open_from_its_start_until_its_end():
    w = once(utc(2026, 3, 25, 10), utc(2026, 3, 25, 11))
    assert not is_active(w, utc(2026, 3, 25, 9, 59, 59))
    assert is_active(w, utc(2026, 3, 25, 10))  # the start is inside
    assert is_active(w, utc(2026, 3, 25, 10, 59, 59))
    assert not is_active(w, utc(2026, 3, 25, 11))  # the end is not
    assert next_occurrence(w, utc(2026, 3, 25, 9)) == (w.starts_at, w.ends_at)
    assert next_occurrence(w, utc(2026, 3, 25, 11)) is None  # over


def test_a_weekly_window_across_midnight_runs_into_the_next_day():
    sat_night = weekly([5], time(22), time(2))  # Sat 22:00 - Sun 02:00 UTC
    inside = [
        utc(2026, 3, 28, 22),
        utc(2026, 3, 28, 23, 59),
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1, 59),
    ]
    outside = [
        utc(2026, 3, 28, 21, 59),
        utc(2026, 3, 29, 2),
        utc(2026, 3, 29, 22, 30),  # Sunday night is not Saturday night
        utc(2026, 3, 27, 23),  # nor is Friday's
        utc(2026, 3, 28, 1),  # Saturday early morning belongs to Friday night: not listed
    ]
    assert [is_active(sat_night, t) for t in inside] == [True] * len(inside)
    assert [is_active(sat_night, t) for t in outside] == [False] * len(outside)
    # Asked from Sunday morning, the open occurrence is Saturday's.
    assert next_occurrence(sat_night, utc(2026, 3, 29, 1)) == (
        utc(2026, 3, 28, 22),
        utc(2026, 3, 29, 2),
    )
    assert next_occurrence(sat_night, NOW) == (utc(2026, 3, 28, 22), utc(2026, 3, 29, 2))
    # Every week, and only on Saturdays.
    found = occurrences(sat_night, utc(2026, 3, 2), utc(2026, 4, 1))
    assert [s.weekday() for s, _ in found] == [5] * 4
    assert all(e - s == timedelta(hours=4) for s, e in found)


def test_weekly_windows_keep_their_wall_clock_hours_across_daylight_saving():
    # Berlin: 29 March 2026 the clocks jump 02:00 -> 03:00; 25 October they go back 03:00 -> 02:00.
    night = weekly([6], time(1), time(4), "Europe/Berlin")
    march = occurrences(night, utc(2026, 3, 21), utc(2026, 4, 6))
    assert march == [
        (utc(2026, 3, 22, 0), utc(2026, 3, 22, 3)),  # CET: 3 hours
        (utc(2026, 3, 29, 0), utc(2026, 3, 29, 2)),  # the short night: 2 hours
        (utc(2026, 4, 4, 23), utc(2026, 4, 5, 2)),  # CEST: 3 hours
    ]
    (october,) = occurrences(night, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert october == (utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))  # the long night: 4 hours
    assert is_active(night, utc(2026, 10, 25, 2, 30)) and not is_active(night, utc(2026, 10, 25, 3))

    # New York office hours are 14-22 UTC in winter and 13-21 UTC in summer.
    office = weekly(range(5), time(9), time(17), "America/New_York")
    assert is_active(office, utc(2026, 3, 6, 14)) and not is_active(office, utc(2026, 3, 6, 13, 30))
    assert is_active(office, utc(2026, 3, 9, 13)) and not is_active(office, utc(2026, 3, 9, 21, 30))


def test_a_start_the_clocks_skip_opens_when_they_jump():
    w = weekly([6], time(2, 30), time(5), "Europe/Berlin")
    (short,) = occurrences(w, utc(2026, 3, 29), utc(2026, 3, 30))
    assert short == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 3))  # 03:00 to 05:00 CEST
    assert not is_active(w, utc(2026, 3, 29, 0, 59)) and is_active(w, utc(2026, 3, 29, 1))


def test_a_whole_day_window():
    sundays = weekly([6], time(0), time(0), "Europe/Berlin")
    (day,) = occurrences(sundays, utc(2026, 4, 1), utc(2026, 4, 8))
    assert day == (utc(2026, 4, 4, 22), utc(2026, 4, 5, 22))


# ------------------------------------------------------------------------------ what it mutes

LABELS = {
    "alertname": "HighErrorRate",
    "severity": "critical",
    "service": "taskmaster-dash",
    "service_name": "billing",
}


@pytest.mark.parametrize(
    ("matchers", "mutes"),
    [
        ([], True),  # no matchers: every rule
        (["service_name=billing"], True),
        (['service_name="billing"', "severity=critical"], True),
        (["service_name=billing", "severity=warning"], False),  # all must match
        (["service_name!=billing"], False),
        (["service_name!=search"], True),
        (["service_name=~bill.*"], True),
        (["service_name=~bill"], False),  # anchored, as in Alertmanager
        (["service_name!~bill.*"], False),
        (['alertname=~"High.*|Slow.*"'], True),
        (["team="], True),  # a missing label is ""
        (["team=db"], False),
    ],
)
def test_which_instances_a_window_mutes(matchers, mutes):
    w = once(utc(2026, 3, 25, 11), utc(2026, 3, 25, 13), parse_matchers(matchers))
    assert (muting_window([w], LABELS, NOW) is w) is mutes


def test_muting_window_is_the_first_open_one_that_covers_the_labels():
    closed = once(utc(2026, 3, 24), utc(2026, 3, 25))  # all rules, but over
    other = once(utc(2026, 3, 25), utc(2026, 3, 26), [Matcher("service_name", "=", "search")])
    billing = weekly([2], time(11), time(13), matchers=[Matcher("service_name", "=", "billing")])
    windows = [closed, other, billing]
    assert muting_window(windows, LABELS, NOW) is billing
    assert muting_window(windows, LABELS, NOW + timedelta(hours=1)) is None  # 13:00: closed
    assert muting_window(windows, {**LABELS, "service_name": "search"}, NOW) is other
    assert muting_window([], LABELS, NOW) is None


# ------------------------------------------------------------------------------ validation


def form(**changes):
    values = {
        "name": "Nightly import",
        "kind": "weekly",
        "time_zone": "Europe/Berlin",
        "days": ["Sat"],
        "start_time": "22:00",
        "end_time": "02:00",
        "matchers": "service_name=billing\nseverity=~warning|critical",
        "note": "",
        "now": NOW,
    }
    return {**values, **changes}


def one_off(starts_at: str | None, ends_at: str) -> dict:
    """The form's changes for a one-off window from `starts_at` to `ends_at`, as typed."""
    return {"kind": "once", "starts_at": starts_at, "ends_at": ends_at}


def test_a_valid_window_from_the_form():
    w = validate_window(**form())
    assert w.days == (5,) and w.start_time == time(22) and w.end_time == time(2)
    assert w.describe() == "every Sat 22:00–02:00 (next day) Europe/Berlin"
    assert w.scope() == 'service_name="billing", severity=~"warning|critical"'
    one = validate_window(
        **form(kind="once", starts_at="2026-04-01 22:00", ends_at="2026-04-02T01:30")
    )
    assert (one.starts_at, one.ends_at) == (utc(2026, 4, 1, 20), utc(2026, 4, 1, 23, 30))  # CEST
    assert one.describe() == "2026-04-01 22:00 → 2026-04-02 01:30 Europe/Berlin"
    assert validate_window(**form(days="mon, Wednesday,SUN")).days == (0, 2, 6)


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"name": "  "}, "Name: required."),
        ({"name": "x" * 10_000}, "Name: at most 100 characters"),
        ({"name": 42}, "Name: expected text."),
        ({"kind": "daily"}, "Kind: choose one-off or weekly."),
        ({"kind": ["once"]}, "Kind: choose one-off or weekly."),
        ({"time_zone": "Mars/Olympus_Mons"}, "is not a known IANA time zone"),
        ({"time_zone": "../../etc/passwd"}, "is not a known IANA time zone"),
        ({"time_zone": "x" * 100_000}, "is not a known IANA time zone"),
        ({"time_zone": None}, "Time zone: choose one"),
        ({"days": []}, "Days: choose at least one day"),
        ({"days": ["Funday"]}, "'Funday' is not a day"),
        ({"days": {"a": 1}}, "Days: choose at least one day"),
        ({"days": [7]}, "is not a day"),
        ({"start_time": "25:00"}, "From: expected a time of day as HH:MM"),
        ({"end_time": "2pm"}, "To: expected a time of day as HH:MM"),
        ({"end_time": None}, "To: required."),
        ({"matchers": "service_name"}, "is not a matcher"),
        ({"matchers": "1abc=x"}, "is not a label name"),
        ({"matchers": "a=~(unclosed"}, "is not a valid regex"),
        ({"matchers": "a=~(?=x)"}, "lookarounds and back-references are not supported"),
        ({"matchers": "a=" + "x" * 201}, "longer than 200 characters"),
        ({"matchers": "\n".join(f"l{i}=x" for i in range(21))}, "at most 20 matchers"),
        ({"matchers": "x" * 1_000_000}, "Labels: too long."),
        ({"matchers": {"$ne": 1}}, "Labels: expected text"),
        ({"note": "n" * 2001}, "Note: at most 2000 characters"),
        (one_off("2026-04-02 10:00", "2026-04-02 09:00"), "End: must be after the start."),
        (one_off("2026-04-02 10:00", "2026-04-02 10:00"), "End: must be after the start."),
        (
            one_off("2026-03-01 10:00", "2026-03-02 10:00"),
            "End: this window would already be over.",
        ),
        (one_off("2026-04-01 10:00", "2027-06-01 10:00"), "lasts at most 366 days"),
        (
            one_off("tomorrow", "2026-04-02 10:00"),
            "Start: expected a date and time as YYYY-MM-DD HH:MM.",
        ),
        (one_off("2026-04-01 10:00+02:00", "2026-04-02 10:00"), "Start: leave out the offset"),
        (one_off(None, "2026-04-02 10:00"), "Start: required."),
    ],
)
def test_a_bad_window_is_refused_with_a_clear_message(changes, said):
    with pytest.raises(WindowError) as refused:
        validate_window(**form(**changes))
    assert said in str(refused.value)
    assert len(str(refused.value)) < 200  # a sentence, never the whole input back


# ------------------------------------------------------------------------------ the store


@pytest.fixture
def clean_windows(owner_engine, services):
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE maintenance_windows, maintenance_window_silences, audit_logs"))


def test_windows_are_stored_listed_audited_and_deleted(clean_windows, users, owner_engine):
    admin = users.actor("admin")
    now = datetime.now(UTC)
    sql_looking = "'; DROP TABLE maintenance_windows; --"
    made = store.create_window(
        admin,
        validate_window(
            **form(name=sql_looking, note="quarterly", now=now, matchers='team=~"db|ops"')
        ),
    )
    gone_soon = save_one_off_window(
        admin, "Deploy", now - timedelta(minutes=5), now + timedelta(hours=1), now
    )
    assert made.name == sql_looking and made.username == "test-admin" and made.id
    assert made.matchers == (Matcher("team", "=~", "db|ops"),)
    listed = store.list_windows(users.actor("viewer"))  # every signed-in user may read them
    assert [w.id for w in listed] == [gone_soon.id, made.id]
    assert listed[1] == made
    row = all_rows(
        owner_engine,
        "SELECT days, start_time, time_zone FROM maintenance_windows WHERE id = :id",
        id=made.id,
    )[0]
    assert row == {"days": [5], "start_time": time(22), "time_zone": "Europe/Berlin"}

    # The evaluator's question: which are open now (the deploy window is).
    assert [w.id for w in store.active_windows(now)] == [gone_soon.id]

    deleted = store.delete_window(admin, gone_soon.id)
    assert deleted.name == "Deploy"
    audit = all_rows(
        owner_engine,
        "SELECT action, username FROM audit_logs WHERE entity_type = 'maintenance_windows' "
        'ORDER BY "timestamp"',
    )
    assert audit == [
        {"action": "create", "username": "test-admin"},
        {"action": "create", "username": "test-admin"},
        {"action": "delete", "username": "test-admin"},
    ]
    for unknown in (gone_soon.id, "not-a-uuid", "x" * 10_000):
        with pytest.raises(store.UnknownWindow, match="no longer exists"):
            store.delete_window(admin, unknown)
    assert count_rows(owner_engine, "maintenance_windows") == 1


@pytest.mark.parametrize("role", ["viewer", "on_call", "developer"])
def test_rls_refuses_writes_without_alerts_manage(clean_windows, users, owner_engine, role):
    made = store.create_window(users.actor("admin"), validate_window(**form()))
    with pytest.raises(SQLAlchemyError):
        store.create_window(users.actor(role), validate_window(**form()))
    with pytest.raises(store.UnknownWindow):  # RLS hides the row from a delete
        store.delete_window(users.actor(role), made.id)
    assert count_rows(owner_engine, "maintenance_windows") == 1


def test_active_windows_across_midnight_from_the_store(clean_windows, users):
    store.create_window(
        users.actor("admin"),
        validate_window(**form(time_zone="UTC", matchers="", now=NOW)),
    )
    assert [w.name for w in store.active_windows(utc(2026, 3, 29, 1, 30))] == ["Nightly import"]
    assert store.active_windows(utc(2026, 3, 29, 2)) == []
    assert store.active_windows(utc(2026, 3, 28, 21, 59)) == []


# ------------------------------------------------------------------------------ /alerts


CREATE = "maint-message.children"


def create(client, dash_app, **values):
    state = {
        "maint-name": "Nightly import",
        "maint-kind": "weekly",
        "maint-tz": "Europe/Berlin",
        "maint-days": ["Sat", "Sun"],
        "maint-from": "22:00",
        "maint-to": "02:00",
        "maint-matchers": "service_name=billing",
        "maint-note": "",
        **values,
    }
    return call_callback(client, dash_app, CREATE, [1], state)


def delete(client, dash_app, window_id):
    key = {"type": "maint-delete", "window": window_id}
    output = "maint-delete-message.children"
    payload = {
        "output": output,
        "outputs": {"id": "maint-delete-message", "property": "children"},
        "inputs": [[{"id": key, "property": "n_clicks", "value": 1}]],
        "changedPropIds": [json.dumps(key, separators=(",", ":")) + ".n_clicks"],
    }
    return client.post("/_dash-update-component", json=payload)


def text_of(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def listed(client, dash_app) -> str:
    response = call_callback(client, dash_app, "maint-list.children", [1, None, None], [None])
    return json.dumps(callback_values(response), ensure_ascii=False)


def test_an_admin_creates_and_deletes_a_window_on_alerts(
    dash_app, client_as, clean_windows, owner_engine
):
    admin = client_as("admin")
    said = text_of(callback_output(create(admin, dash_app), CREATE))
    assert "Created 'Nightly import': every Sat, Sun 22:00–02:00 (next day)" in said
    assert "message-success" in said
    (row,) = all_rows(owner_engine, "SELECT id, name, days, matchers FROM maintenance_windows")
    assert row["days"] == [5, 6] and row["matchers"] == [
        {"name": "service_name", "op": "=", "value": "billing"}
    ]
    page = listed(admin, dash_app)
    assert "Nightly import" in page and 'service_name=\\"billing\\"' in page
    assert "next: " in page and "maint-delete" in page

    said = text_of(
        callback_output(delete(admin, dash_app, str(row["id"])), "maint-delete-message.children")
    )
    assert "Deleted maintenance window 'Nightly import'." in said
    assert count_rows(owner_engine, "maintenance_windows") == 0
    # A second click (another tab deleted it already) says so.
    said = text_of(
        callback_output(delete(admin, dash_app, str(row["id"])), "maint-delete-message.children")
    )
    assert "no longer exists" in said
    assert "No maintenance windows" in listed(admin, dash_app)


def test_bad_input_is_told_and_nothing_is_saved(dash_app, client_as, clean_windows, owner_engine):
    admin = client_as("admin")
    for values, said in (
        (
            {
                "maint-kind": "once",
                "maint-start": "2030-01-02 10:00",
                "maint-end": "2030-01-02 09:00",
            },
            "End: must be after the start.",
        ),
        ({"maint-tz": "Nowhere/Special"}, "is not a known IANA time zone"),
        ({"maint-days": "'; DROP TABLE users; --"}, "is not a day"),
        ({"maint-matchers": ["a=b", 3]}, "Labels: expected text"),
        ({"maint-name": {"x": 1}}, "Name: expected text."),
    ):
        shown = text_of(callback_output(create(admin, dash_app, **values), CREATE))
        assert "Not saved." in shown and said in shown and "message-error" in shown
    assert count_rows(owner_engine, "maintenance_windows") == 0


@pytest.mark.parametrize("role", ["viewer", "on_call", "developer", "api_client"])
def test_roles_without_alerts_manage_see_windows_but_cannot_change_them(
    dash_app, client_as, users, clean_windows, owner_engine, role
):
    made = store.create_window(users.actor("admin"), validate_window(**form(now=datetime.now(UTC))))
    client = client_as(role)
    assert create(client, dash_app, **{"maint-name": "sneaky"}).status_code == 403
    assert delete(client, dash_app, made.id).status_code == 403
    assert count_rows(owner_engine, "maintenance_windows") == 1
    assert count_rows(owner_engine, "audit_logs", "entity_type = 'maintenance_windows'") == 1
    page = listed(client, dash_app)
    assert "Nightly import" in page and "maint-delete" not in page


def test_the_timeline_shades_maintenance_windows(clean_windows, users):
    now = utc(2026, 3, 29, 3)
    store.create_window(
        users.actor("admin"),
        validate_window(**form(time_zone="UTC", matchers="", now=utc(2026, 3, 1))),
    )
    figure = add_maintenance_bands({"data": [], "layout": {}}, users.actor("viewer"), 24, now)
    bands = figure["layout"]["shapes"]
    assert [(b["x0"], b["x1"]) for b in bands] == [
        (utc(2026, 3, 28, 22).isoformat(), utc(2026, 3, 29, 2).isoformat())
    ]
    assert figure["layout"]["annotations"][0]["text"] == "maintenance: Nightly import"
    # Clipped to the range, and none outside it.
    short = add_maintenance_bands({"data": [], "layout": {}}, users.actor("viewer"), 2, now)
    assert [(b["x0"], b["x1"]) for b in short["layout"]["shapes"]] == [
        (utc(2026, 3, 29, 1).isoformat(), utc(2026, 3, 29, 2).isoformat())
    ]
    later = add_maintenance_bands(
        {"data": [], "layout": {}}, users.actor("viewer"), 6, now + timedelta(hours=12)
    )
    assert later["layout"]["shapes"] == []


def test_the_timeline_callback_draws_an_open_window(
    dash_app, client_as, users, clean_windows, owner_engine
):
    now = datetime.now(UTC)
    with owner_engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO alert_history (rule_name, from_state, to_state, created_at)
                    VALUES ('TaskBacklog', NULL, 'normal', now() - interval '3 hours')""")
        )
    save_one_off_window(
        users.actor("admin"), "Deploy", now - timedelta(hours=1), now + timedelta(hours=1), now
    )
    try:
        figure = callback_output(
            call_callback(client_as("viewer"), dash_app, "alerts-timeline-chart.figure", [1, 24]),
            "alerts-timeline-chart.figure",
        )
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("DELETE FROM alert_history WHERE rule_name = 'TaskBacklog'"))
    assert [s["name"] for s in figure["layout"]["shapes"]] == ["maintenance: Deploy"]


# ------------------------------------------------------------------------------ in the browser


def click(dash_duo, selector: str) -> None:
    element = dash_duo.find_element(selector)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


@pytest.mark.browser
def test_an_admin_creates_a_window_in_the_browser(
    dash_duo, dash_app, users, clean_windows, owner_engine
):
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/alerts")
    dash_duo.wait_for_contains_text("#maint-list", "No maintenance windows", timeout=15)
    dash_duo.find_element("#maint-name").send_keys("Saturday night batch")
    click(dash_duo, "#maint-kind input[value='weekly']")
    click(dash_duo, "#maint-days input[value='Sat']")
    dash_duo.find_element("#maint-from").send_keys("22:00")
    dash_duo.find_element("#maint-to").send_keys("2:00")
    dash_duo.find_element("#maint-matchers").send_keys('service_name="billing"')
    click(dash_duo, "#maint-create")
    dash_duo.wait_for_contains_text("#maint-message", "Created 'Saturday night batch'", 15)
    dash_duo.wait_for_contains_text("#maint-table", "every Sat 22:00–02:00 (next day) UTC", 15)
    assert 'service_name="billing"' in dash_duo.find_element("#maint-table").text
    assert count_rows(owner_engine, "maintenance_windows", "name = 'Saturday night batch'") == 1
    # A bad one is told in the page and not saved.
    click(dash_duo, "#maint-kind input[value='once']")
    dash_duo.find_element("#maint-start").send_keys("2030-01-02 10:00")
    dash_duo.find_element("#maint-end").send_keys("2030-01-02 09:00")
    click(dash_duo, "#maint-create")
    dash_duo.wait_for_contains_text("#maint-message", "End: must be after the start.", 15)
    assert count_rows(owner_engine, "maintenance_windows") == 1
    assert dash_duo.get_logs() == []


@pytest.mark.browser
@pytest.mark.parametrize("role", ["viewer", "on_call"])
def test_roles_without_alerts_manage_see_the_windows_without_the_form(
    dash_duo, dash_app, users, clean_windows, role
):
    store.create_window(users.actor("admin"), validate_window(**form(now=datetime.now(UTC))))
    browser_sign_in(dash_duo, dash_app, users.username(role), path="/alerts")
    dash_duo.wait_for_contains_text("#maint-table", "Nightly import", timeout=15)
    assert "needs the alerts:manage permission" in dash_duo.find_element("#maint-needs").text
    for control in ("#maint-create", "#maint-form", "button[id*='maint-delete']"):
        assert dash_duo.driver.find_elements("css selector", control) == []
    assert dash_duo.get_logs() == []


# ------------------------------------------------------------------------------ the CLI


def test_the_maintenance_commands(pg_server, database, clean_windows, owner_engine):
    added = run_cli(
        [
            "alerts", "maintenance", "add", "--name", "Nightly import", "--days", "sat,sun",
            "--from", "22:00", "--to", "02:00", "--tz", "Europe/Berlin",
            "--match", "service_name=billing", "--match", "severity=~warning|critical",
        ],
        pg_server,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "every Sat, Sun 22:00–02:00 (next day) Europe/Berlin" in added.stdout
    (window_id,) = [
        str(r["id"]) for r in all_rows(owner_engine, "SELECT id FROM maintenance_windows")
    ]
    listed_out = run_cli(["alerts", "maintenance", "list"], pg_server)
    assert window_id in listed_out.stdout
    assert 'mutes service_name="billing", severity=~"warning|critical"' in listed_out.stdout
    assert "(next " in listed_out.stdout or "(open until " in listed_out.stdout

    bad = run_cli(
        ["alerts", "maintenance", "add", "--name", "x", "--start", "2030-01-02 10:00",
         "--end", "2030-01-02 09:00"],
        pg_server,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip() == "taskmaster-dash alerts: error: End: must be after the start."

    deleted = run_cli(["alerts", "maintenance", "delete", window_id], pg_server)
    assert deleted.returncode == 0 and "Deleted 'Nightly import'." in deleted.stdout
    assert count_rows(owner_engine, "maintenance_windows") == 0


def test_the_form_and_the_cli_fill_the_same_window_fields():
    """The /alerts form has one input per field the CLI passes, plus the kind the CLI derives
    from --days: a field added to one and not the other fails here, not for a user."""
    assert set(FORM_INPUTS) == {*FORM_FIELDS, "kind"}
    assert len(set(FORM_INPUTS.values())) == len(FORM_INPUTS)
