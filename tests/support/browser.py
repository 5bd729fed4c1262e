"""Acting in Chromium as a user would, where a plain click is not reliable."""

from __future__ import annotations

import dash


def choose_option(dash_duo, dropdown: str, label: str) -> None:
    """Pick a dropdown option by its label. The click goes through JavaScript: while the menu
    settles its search box can sit over the option, which a pointer click would hit instead."""
    from dash.testing.wait import until
    from selenium.webdriver.common.by import By

    dash_duo.find_element(dropdown).click()
    until(lambda: label in dash_duo.find_element(".dash-dropdown-options").text, timeout=10)
    option = next(
        o
        for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
        if o.text == label
    )
    dash_duo.driver.execute_script("arguments[0].click()", option)


def click_in_view(dash_duo, element) -> None:
    """Click a grid cell after centring it: scrolled to the top it would sit under the sticky
    header (taller while alerts fire), which would take the click."""
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def registered_pages(task_id: str, error_id: str) -> list[tuple[str, str | None]]:
    """(path, permission) of every registered page, its path variables filled in with these."""
    ids = {"<task_id>": task_id, "<error_id>": error_id}
    pages = []
    for page in dash.page_registry.values():
        path = page.get("path_template") or page["path"]
        for variable, value in ids.items():
            path = path.replace(variable, value)
        assert "<" not in path, f"no id for {path}"
        pages.append((path, page.get("permission")))
    return pages
