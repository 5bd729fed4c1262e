"""With the database unreachable a signed-in user is told so, stays signed in, and carries on
when it is back. The outage is real: an embedded PostgreSQL of this test's own, stopped and
started again (the session's server stays up for the other tests)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from taskmaster_dash.data.db import DATABASE_UNREACHABLE, SYSTEM_ACTOR, Database
from taskmaster_dash.data.embedded import start_embedded
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.users import create_user
from taskmaster_dash.services import current
from tests.support.auth import ROLE_PASSWORD, browser_sign_in, signed_in_client
from tests.support.callbacks import call_callback, callback_values


class OutageServer:
    """An embedded PostgreSQL that the test may stop and start again on the same data."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tmdash-outage-"))
        self.embedded = start_embedded(self.folder / "pgdata")
        self.running = True

    def stop(self) -> None:
        self.embedded.stop()
        self.running = False

    def start(self) -> None:
        if not self.running:
            self.embedded = start_embedded(self.folder / "pgdata")
            self.running = True

    def remove(self) -> None:
        if self.running:
            self.embedded.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def outage_server():
    server = OutageServer()
    migrate(server.embedded.owner_url, server.embedded.app_url)
    yield server
    server.remove()


@pytest.fixture
def outage(dash_app, database, outage_server):
    """The app reads the outage server during the test, and the session's afterwards."""
    outage_server.start()
    own = Database(outage_server.embedded.app_url)
    try:
        with current().using(database=own):
            yield outage_server
    finally:
        own.dispose()


def _account_page(client, dash_app):
    client.get("/")
    return call_callback(client, dash_app, "_pages_content.children", ["/account", ""])


def test_database_down_says_so_keeps_the_session_and_recovers(dash_app, outage):
    username = f"outage-{uuid.uuid4().hex[:6]}"
    create_user(SYSTEM_ACTOR, username, f"{username}@example.com", "viewer", ROLE_PASSWORD)
    client = signed_in_client(dash_app, username, ROLE_PASSWORD)
    assert username in str(callback_values(_account_page(client, dash_app)))

    outage.stop()

    page = client.get("/tasks")
    text = page.get_data(as_text=True)
    assert page.status_code == 503, (page.status_code, text[:300])
    assert "The database is unreachable" in text and "You stay signed in" in text
    assert page.headers["Retry-After"]
    assert "/login" not in page.headers.get("Location", "")

    refused = _account_page(client, dash_app)
    assert refused.status_code == 503, refused.status_code
    assert refused.get_json() == {"error": DATABASE_UNREACHABLE}
    assert client.get("/api/v1/me").status_code == 503

    outage.start()

    # The same session, without signing in again.
    assert client.get("/tasks").status_code == 200
    assert username in str(callback_values(_account_page(client, dash_app)))
    assert client.get("/api/v1/me").get_json()["username"] == username


def test_a_signed_out_visitor_still_gets_the_sign_in_form(dash_app, outage):
    outage.stop()
    anonymous = dash_app.server.test_client()
    response = anonymous.get("/tasks")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert anonymous.post("/_dash-update-component", json={}).status_code == 401


@pytest.mark.browser
def test_an_open_page_says_the_database_is_unreachable_and_recovers(dash_duo, dash_app, outage):
    username = f"outage-{uuid.uuid4().hex[:6]}"
    create_user(SYSTEM_ACTOR, username, f"{username}@example.com", "viewer", ROLE_PASSWORD)
    browser_sign_in(dash_duo, dash_app, username, path="/account")
    dash_duo.wait_for_contains_text("#account-dl", username, timeout=15)
    assert dash_duo.get_logs() == []

    outage.stop()
    # The banner polls every 15 s; the page keeps what it showed and says it is stale.
    dash_duo.wait_for_contains_text(
        "#database-unreachable", "The database is unreachable", timeout=40
    )
    dash_duo.wait_for_contains_text("#account-dl", username)
    # The only console entries are the refused requests (503) and the renderer reporting them.
    logs = dash_duo.get_logs()
    assert all(
        "status of 503" in entry["message"] or "dash_renderer" in entry["message"] for entry in logs
    ), logs

    outage.start()
    dash_duo.wait_for_no_elements("#database-unreachable", timeout=40)
    # Still signed in: the same page opens again without the sign-in form.
    dash_duo.find_element("#user-name").click()
    dash_duo.wait_for_contains_text("#account-dl", username, timeout=15)
    assert dash_duo.get_logs() == []
