"""The admin pages in Chromium: what a viewer and an admin actually see."""

from __future__ import annotations

import uuid

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By

from tests.support.auth import ROLE_PASSWORD, browser_sign_in, sign_in
from tests.support.browser import choose_option, click_in_view
from tests.support.grid import Grid


@pytest.mark.browser
def test_a_viewer_sees_no_admin_links_and_is_not_permitted_by_url(dash_duo, dash_app, users):
    browser_sign_in(dash_duo, dash_app, "test-viewer")
    dash_duo.wait_for_element("#nav-overview")
    links = [
        a.get_attribute("id") for a in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".nav a")
    ]
    assert not {"nav-admin_users", "nav-admin_roles", "nav-admin_audit"} & set(links)
    for path in ("/admin/users", "/admin/roles", "/admin/audit"):
        dash_duo.driver.get(dash_duo.server.url.rstrip("/") + path)
        dash_duo.wait_for_contains_text("#not-permitted", "Not permitted", timeout=10)
        assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, ".ag-root")
    assert dash_duo.get_logs() == []


@pytest.mark.browser
def test_an_admin_creates_a_user_who_signs_in_and_the_audit_log_shows_it(dash_duo, dash_app, users):
    name = f"aaa-{uuid.uuid4().hex[:8]}"  # sorts first in the users grid
    browser_sign_in(dash_duo, dash_app, "test-admin", path="/admin/users")
    users_grid, audit_grid = Grid(dash_duo, "au-grid"), Grid(dash_duo, "aa-grid")
    users_grid.wait_for_rows()
    dash_duo.find_element("#au-new-username").send_keys(name)
    dash_duo.find_element("#au-new-email").send_keys(f"{name}@example.com")
    dash_duo.find_element("#au-new-password").send_keys(ROLE_PASSWORD)
    dash_duo.find_element("#au-create").click()
    dash_duo.wait_for_text_to_equal("#au-create-message", f"Created {name} (viewer).", timeout=10)
    assert dash_duo.find_element("#au-create-message .message-success")
    # The form is empty again for the next user.
    for field in ("#au-new-username", "#au-new-email", "#au-new-password"):
        until(lambda field=field: dash_duo.find_element(field).get_attribute("value") == "", 10)
    assert dash_duo.find_element("#au-new-role").text == "viewer"
    # The grid asks the server again and shows the new user.
    dash_duo.wait_for_contains_text("#au-grid", name, timeout=10)

    assert sign_in(dash_app.server.test_client(), name, ROLE_PASSWORD).status_code == 302

    # Select them in the grid and issue an API key: shown once, then the grid shows its expiry.
    users_grid.open(name)
    dash_duo.wait_for_contains_text("#au-selected", name, timeout=10)
    assert dash_duo.find_element("#au-selected").text.endswith(" · viewer")
    choose_option(dash_duo, "#au-role-select", "on_call")
    dash_duo.find_element("#au-role-apply").click()
    dash_duo.wait_for_contains_text("#au-action-message", "now has the role on_call", timeout=10)
    dash_duo.wait_for_text_to_equal(
        "#au-selected", f"{name} · {name}@example.com · on_call", timeout=10
    )
    dash_duo.find_element("#au-key-issue").click()
    dash_duo.wait_for_contains_text("#au-api-key", "tmk_", timeout=10)
    key = dash_duo.find_element("#au-api-key").text
    assert (
        dash_app.server.test_client()
        .get("/api/v1/me", headers={"X-API-Key": key})
        .get_json()["username"]
        == name
    )

    dash_duo.find_element("#nav-admin_audit").click()
    dash_duo.wait_for_contains_text("#aa-grid", f"username: {name}", timeout=15)
    created = audit_grid.rows_containing(f"username: {name}")
    assert len(created) == 1 and "test-admin" in created[0].text and "create" in created[0].text
    click_in_view(dash_duo, created[0].find_element(By.CSS_SELECTOR, ".ag-cell"))
    dash_duo.wait_for_contains_text("#aa-detail", f"email: {name}@example.com", timeout=10)
    # The role change names the roles; the sign-in is the user's own event.
    dash_duo.wait_for_contains_text("#aa-grid", "role: viewer → on_call", timeout=10)
    own = [text for text in audit_grid.row_texts() if "signed in" in text and name in text]
    assert len(own) == 1 and "system" not in own[0]
    assert dash_duo.get_logs() == []
