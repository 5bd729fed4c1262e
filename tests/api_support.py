"""Shared by the REST API tests: an API key per role and a client that sends it."""

from __future__ import annotations

from typing import Any

import pytest

from taskmaster_dash.data.db import SYSTEM_ACTOR
from tests.support.sql import count_rows


class Api:
    """The Flask test client with one role's X-API-Key on every request."""

    def __init__(self, app, key: str | None) -> None:
        self.client = app.server.test_client()
        self.key = key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        sent = {"X-API-Key": self.key} if self.key else {}
        return {**sent, **(headers or {})}

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any):
        return self.client.get(
            "/api/v1" + path, query_string=params, headers=self._headers(headers)
        )

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw):
        return self.client.post("/api/v1" + path, json=body, headers=self._headers(headers), **kw)

    def put(self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw):
        return self.client.put("/api/v1" + path, json=body, headers=self._headers(headers), **kw)

    def delete(self, path: str, headers: dict[str, str] | None = None):
        return self.client.delete("/api/v1" + path, headers=self._headers(headers))


@pytest.fixture(scope="session")
def api_keys(users) -> dict[str, str]:
    """A fresh API key for each role's test user (the session's first test issues them)."""
    from taskmaster_dash.data.users import issue_api_key

    return {
        role: issue_api_key(SYSTEM_ACTOR, user_id, 30)[0] for role, user_id in users.ids.items()
    }


@pytest.fixture
def api(dash_app, api_keys):
    """api(role) -> an Api for that role (api(None): no key)."""

    def make(role: str | None) -> Api:
        return Api(dash_app, api_keys[role] if role else None)

    return make


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error", "meta"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    if code:
        assert body["error"]["code"] == code, body
    assert body["meta"]["requestId"].startswith("req_")
    return body["error"]


def assert_fields_refused(response, fields: set[str]) -> None:
    """A 400 validation_failed naming exactly `fields` (each wrong field of the body)."""
    error = assert_error(response, 400, "validation_failed")
    assert set(error["fields"]) == fields, error


def assert_filter_totals(client, path: str, engine, table: str, cases, limit: int) -> None:
    """For each (query parameters, SQL condition) case, the list's page and total are those of
    the rows the condition finds in `table`."""
    for params, where in cases:
        expected = count_rows(engine, table, where)
        page = client.get(path, limit=limit, **params).get_json()
        assert page["pagination"]["total"] == expected, params
        assert len(page["data"]) == min(limit, expected)
        assert page["pagination"]["hasMore"] == (expected > limit)
