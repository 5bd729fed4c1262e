"""The charts are drawn by plotly.js's basic bundle that `make setup` fetches into the assets
(scripts/fetch_plotly_basic.py): the same plotly.js version as the plotly package bundles, and
the full bundle is never fetched."""

from __future__ import annotations

import pytest
from plotly.offline import get_plotlyjs_version

from scripts.fetch_plotly_basic import TARGET, header_version
from tests.support.auth import browser_sign_in

RESOURCES = "return performance.getEntriesByType('resource').map(entry => entry.name)"


def test_the_fetched_bundle_is_the_version_plotly_bundles():
    if not TARGET.is_file():
        pytest.skip("make setup could not fetch the basic bundle (no network): full bundle in use")
    assert header_version(TARGET) == get_plotlyjs_version()


@pytest.mark.browser
def test_charts_are_drawn_by_the_basic_bundle_alone(dash_duo, dash_app, users):
    if not TARGET.is_file():
        pytest.skip("make setup could not fetch the basic bundle (no network): full bundle in use")
    browser_sign_in(dash_duo, dash_app, "test-viewer", path="/tasks")
    dash_duo.wait_for_element("#tasks-backlog-graph .main-svg", timeout=20)
    assert dash_duo.driver.execute_script("return window.Plotly.version") == get_plotlyjs_version()
    fetched = dash_duo.driver.execute_script(RESOURCES)
    assert any(url.split("?")[0].endswith("/assets/plotly-basic.min.js") for url in fetched)
    assert not any("package_data/plotly.min.js" in url for url in fetched), fetched
    assert dash_duo.get_logs() == []
