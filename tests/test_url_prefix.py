"""The app behind a path prefix (`url_base_pathname="/dash/"`, as behind a proxy that serves it
under /dash/): an admin signs in through the browser, opens every registered page, and every
link on every page starts with /dash/, answers (no 404, no "Page not found") and leaves a clean
console.

The prefixed app runs in its own process: Dash keeps the URL prefix and the page registry in
module globals, so a second app in the test process would change the session's app too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from dash.testing.wait import until
from sqlalchemy import text

from tests.support.auth import ROLE_PASSWORD
from tests.support.browser import registered_pages
from tests.support.processes import free_port
from tests.test_browser_tour import problems_on, settled_state

PREFIX = "/dash/"
STARTUP_SECONDS = 90

SERVE = """
import sys
from taskmaster_dash.app import create_app
from taskmaster_dash.data.db import Database

app = create_app(
    Database(sys.argv[1]),
    secret_key=sys.argv[2],
    environment="testing",
    url_base_pathname=sys.argv[3],
)
app.run(host="127.0.0.1", port=int(sys.argv[4]), debug=False)
"""

LINKS = "return Array.from(document.querySelectorAll('a[href]'), a => a.getAttribute('href'));"


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:<port>, without the prefix
    task_id: str
    error_id: str


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def served(pg_server, owner_engine, users, dash_app, tmp_path_factory) -> Iterator[Served]:
    """The app under /dash/ on the session's database, with one task and one error to open.
    `dash_app` fills this process's page registry, which names the pages to visit."""
    marker = uuid.uuid4().hex[:8]
    with owner_engine.begin() as conn:
        task_id = conn.scalar(
            text("INSERT INTO tasks (title) VALUES (:t) RETURNING id::text"),
            {"t": f"prefix tour {marker}"},
        )
        error_id = conn.scalar(
            text(
                "INSERT INTO error_logs (task_id, error_code, error_category, error_severity,"
                " error_message, service_name) VALUES (CAST(:t AS uuid), 'PFX-1', 'system',"
                " 'high', 'seen under a prefix', 'prefix-tour') RETURNING id::text"
            ),
            {"t": task_id},
        )
    port = free_port()
    log = tmp_path_factory.mktemp("prefixed") / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, pg_server.app_url, uuid.uuid4().hex, PREFIX, str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        until(
            lambda: process.poll() is not None or _answers(f"{base}{PREFIX}api/v1/health"),
            timeout=STARTUP_SECONDS,
            poll=0.1,
        )
        assert process.poll() is None, f"the prefixed app exited:\n{log.read_text()[-3000:]}"
        yield Served(base, task_id, error_id)
    finally:
        process.terminate()
        process.wait(10)
        with owner_engine.begin() as conn:
            conn.execute(
                text("DELETE FROM error_logs WHERE id = CAST(:e AS uuid)"), {"e": error_id}
            )
            conn.execute(text("DELETE FROM tasks WHERE id = CAST(:t AS uuid)"), {"t": task_id})


def page_paths(served: Served) -> list[str]:
    pages = registered_pages(served.task_id, served.error_id)
    return [PREFIX + path.lstrip("/") for path, _ in pages]


def _open(dash_br, url: str) -> tuple[list[str], list[str]]:
    """Open `url`, wait until the page has settled, leave it; what was wrong, in words."""
    dash_br.driver.get(url)
    dash_br.wait_for_element("#_pages_content")
    state = settled_state(dash_br)
    found = []
    content = dash_br.find_element("#_pages_content").text
    if "Page not found" in content and not url.endswith(PREFIX + "404"):
        found.append('says "Page not found"')
    hrefs = dash_br.driver.execute_script(LINKS)
    dash_br.driver.get("about:blank")
    found += problems_on(state, True, dash_br.get_logs())
    return found, hrefs


@pytest.mark.browser
def test_every_link_of_every_page_stays_under_the_prefix(dash_br, served):
    dash_br.driver.get(f"{served.base}{PREFIX}login?next={PREFIX}")
    dash_br.wait_for_element("#username").send_keys("test-admin")
    dash_br.find_element("#password").send_keys(ROLE_PASSWORD)
    dash_br.find_element("#login-button").click()
    dash_br.wait_for_element("#user-name", timeout=15)
    cookies = {c["name"]: c["value"] for c in dash_br.driver.get_cookies()}

    problems: dict[str, list[str]] = {}
    links: dict[str, str] = {}  # href -> the page it was found on
    for path in page_paths(served):
        found, hrefs = _open(dash_br, served.base + path)
        outside = sorted({h for h in hrefs if not h.startswith(PREFIX)})
        if outside:
            found.append(f"links outside {PREFIX}: {', '.join(outside)}")
        if found:
            problems[path] = found
        for href in hrefs:
            links.setdefault(href, path)
    assert problems == {}, problems
    # The pages' own links: the nav, the brand, the account, the overview's cards, the task
    # and error links, the alerts' rule links... far more than the registry's paths.
    assert len(links) > len(page_paths(served)), sorted(links)

    for href, page in sorted(links.items()):
        if not href.startswith(PREFIX):
            continue  # already reported above
        status = requests.get(served.base + href, cookies=cookies, timeout=30).status_code
        found, _ = _open(dash_br, served.base + href)
        if status == 404:
            found.append("answers 404")
        if found:
            problems[f"{href} (linked from {page})"] = found
    assert problems == {}, problems


def test_the_app_answers_under_the_prefix_only(served):
    """The setup itself: the sign-in form is under /dash/; a path outside it is no page of the
    app (the sign-in gate sends it to the prefixed form)."""
    assert requests.get(f"{served.base}{PREFIX}login", timeout=10).status_code == 200
    outside = requests.get(f"{served.base}/tasks", timeout=10, allow_redirects=False)
    assert outside.status_code == 404 or outside.headers["Location"].startswith(PREFIX + "login")
