"""The AG Grid page object (triage, admin users, audit log): in Chromium, wait for rows, read
cell texts, open and tick rows; server-side, the page of rows the grid's callback returns."""

from __future__ import annotations

from typing import Any

from dash.testing.wait import until
from selenium.webdriver.common.by import By

from tests.support.browser import click_in_view
from tests.support.callbacks import call_callback, callback_values

# Found and ordered in one script: AG Grid redraws rows while data arrives, so reading each
# element's row-index in a later call can meet an element that is already gone.
_ROWS = """
return Array.from(document.querySelectorAll(arguments[0]))
    .sort((a, b) => Number(a.getAttribute("row-index")) - Number(b.getAttribute("row-index")));
"""
_TEXTS = """
const rows = Array.from(document.querySelectorAll(arguments[0]))
    .sort((a, b) => Number(a.getAttribute("row-index")) - Number(b.getAttribute("row-index")));
return rows.map((row) => {
    const part = arguments[1] ? row.querySelector(arguments[1]) : row;
    return part ? part.innerText.trim() : "";
});
"""


class Grid:
    """One grid on the page, found by its component id."""

    def __init__(self, dash_duo, grid_id: str) -> None:
        self.dash_duo = dash_duo
        self.css = f"#{grid_id}"

    def rows(self) -> list:
        """The rows drawn, top to bottom (AG Grid keeps DOM order apart from row order)."""
        return self.dash_duo.driver.execute_script(_ROWS, self._rows_css)

    def wait_for_rows(self, count: int | None = None, timeout: float = 15) -> list:
        """Wait until the grid shows rows (exactly `count` when given); returns them."""
        until(lambda: (n := len(self.rows())) and (count is None or n == count), timeout)
        return self.rows()

    def cell_texts(self, column: str) -> list[str]:
        return self._texts(f"[col-id='{column}']")

    def row_texts(self) -> list[str]:
        return self._texts(None)

    def _texts(self, part_css: str | None) -> list[str]:
        return self.dash_duo.driver.execute_script(_TEXTS, self._rows_css, part_css)

    def wait_for_cell(self, column: str, text: str, row: int = 0, timeout: float = 15) -> None:
        """Wait until row `row`'s cell in `column` reads `text`."""
        self.dash_duo.wait_for_text_to_equal(self._cell_css(column, row), text, timeout=timeout)

    def rows_containing(self, text: str) -> list:
        return [row for row in self.rows() if text in row.text]

    def open(self, text: str, timeout: float = 15) -> None:
        """Click the first cell whose text is exactly `text` (selects its row)."""
        xpath = f"//*[@id='{self.css[1:]}']//div[contains(@class,'ag-cell') and text()='{text}']"
        until(lambda: self.dash_duo.driver.find_elements(By.XPATH, xpath), timeout)
        click_in_view(self.dash_duo, self.dash_duo.driver.find_element(By.XPATH, xpath))

    def click_cell(self, column: str, row: int = 0) -> None:
        click_in_view(self.dash_duo, self.dash_duo.find_element(self._cell_css(column, row)))

    def tick(self, *row_indexes: int) -> None:
        """Tick the selection boxes of these rows."""
        for index in row_indexes:
            box = self.dash_duo.find_element(
                f"{self.css} .ag-row[row-index='{index}'] .ag-checkbox-input"
            )
            click_in_view(self.dash_duo, box)

    def checkboxes(self) -> list:
        return self.dash_duo.driver.find_elements(By.CSS_SELECTOR, f"{self.css} .ag-checkbox-input")

    def scroll_into_view(self) -> None:
        self.dash_duo.driver.execute_script(
            "arguments[0].scrollIntoView()", self.dash_duo.find_element(self.css)
        )

    @property
    def _rows_css(self) -> str:
        return f"{self.css} .ag-center-cols-container .ag-row"

    def _cell_css(self, column: str, row: int) -> str:
        return f"{self.css} .ag-row[row-index='{row}'] [col-id='{column}']"


def grid_page(
    client,
    app,
    grid_id: str,
    state: Any = None,
    start: int = 0,
    end: int = 100,
    sort: list | None = None,
) -> dict[str, Any]:
    """The callback's values for one infinite-grid request (rows `start`..`end`); the rows are
    `[grid_id]["getRowsResponse"]`, beside any message the callback also sets."""
    request = {"startRow": start, "endRow": end, "sortModel": sort or [], "filterModel": {}}
    return callback_values(
        call_callback(client, app, f"{grid_id}.getRowsResponse", [request], state)
    )
