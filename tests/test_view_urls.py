"""The URL keys of /pools, /alerts and /admin/audit come from the same view model as the
analytics pages: a copied link opens the same view, a changed control writes the URL, and bad
values fall back to the defaults."""

from __future__ import annotations

import pytest

from tests.support.callbacks import call_callback, callback_values, find_component, render_page


@pytest.mark.parametrize(
    ("path", "search", "control", "prop", "expected"),
    [
        ("/pools", "?range=1h", "pools-range", "value", "1h"),
        ("/pools", "?range=<x>", "pools-range", "value", "15m"),
        ("/alerts", "?range=7d", "alerts-timeline-hours", "value", 168),
        ("/alerts", "?range=2y", "alerts-timeline-hours", "value", 24),
        ("/admin/audit", "?operation=update&user=test-admin", "aa-action", "value", "update"),
        ("/admin/audit", "?operation=drop", "aa-action", "value", None),
        ("/admin/audit", "?from=2026-11-01&to=2026-11-30", "aa-dates", "end_date", "2026-11-30"),
    ],
)
def test_a_copied_link_opens_the_same_view(
    dash_app, client_as, path, search, control, prop, expected
):
    page = render_page(client_as("admin"), dash_app, path, search)
    assert find_component(page, control)[prop] == expected


def test_the_audit_filters_are_written_to_the_url(dash_app, client_as):
    values = callback_values(
        call_callback(
            client_as("admin"),
            dash_app,
            "aa-url.data",
            ["test-admin", "users", "update", "2026-11-01T00:00:00", "bogus-date"],
        )
    )
    assert (
        values["aa-url"]["data"] == "?user=test-admin&table=users&operation=update&from=2026-11-01"
    )
    assert values["aa-filters"]["data"]["username"] == "test-admin"


@pytest.mark.parametrize(
    ("output", "inputs", "search"),
    [
        ("pools-url.data", ["6h"], "?range=6h"),
        ("pools-url.data", ["15m"], "?"),  # the default is left out
        ("pools-url.data", [{"$x": 1}], "?"),
        ("alerts-url.data", [168], "?range=7d"),
        ("alerts-url.data", ["24"], "?"),
    ],
)
def test_a_changed_range_is_written_to_the_url(dash_app, client_as, output, inputs, search):
    values = callback_values(call_callback(client_as("admin"), dash_app, output, inputs))
    assert values[output.split(".")[0]]["data"] == search
