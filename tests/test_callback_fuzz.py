"""Every registered callback, sent wrong-typed values for every input and state, as an admin and
as a viewer, plus bodies Dash cannot dispatch: nothing answers 500 or shows a traceback.

The callback list is the app's own (`app.callback_map` after create_app), so a new callback is
fuzzed without touching this file. Each case posts one callback with one slot set to a hostile
value (the other slots empty, buttons and timers as if they fired), then every slot at once.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from taskmaster_dash.data.db import DATABASE_UNREACHABLE, SYSTEM_ACTOR
from taskmaster_dash.data.grid import MAX_PAGE, MAX_START, grid_query, parse_grid_request
from taskmaster_dash.data.users import create_user
from taskmaster_dash.pages._guard import BAD_INPUT, MESSAGE_ID
from taskmaster_dash.pages._input import choice, whole_number
from tests.support.auth import ROLE_PASSWORD, signed_in_client
from tests.support.callbacks import call_callback

DISPATCH = "/_dash-update-component"
INF = math.inf
NAN = math.nan

# Wrong types and shapes for any slot (json.dumps writes Infinity/NaN, as a hostile client can).
HOSTILE: list[Any] = [
    None,
    [],
    {},
    "",
    "x" * 100_000,
    -1,
    1e308,
    INF,
    NAN,
    True,
    "' OR 1=1; DROP TABLE users; --\x00<script>alert(1)</script>",
    [[[[[[[[[[["deep"]]]]]]]]]], None, {"__proto__": {}}],
]
# A slot seen before (the same component property feeding another callback) gets these.
CORE: list[Any] = [None, [], {}, "x" * 100_000, INF, [[[[["deep"]]]], None]]
# And all slots of a callback at once.
EVERY_SLOT = [None, "x" * 100_000, [[[[["deep"]]]], None]]
# Shapes aimed at what a property usually holds.
BY_PROPERTY: dict[str, list[Any]] = {
    "clickData": [
        {"points": [{"customdata": []}]},
        {"points": [{"customdata": None, "x": None, "y": INF}]},
        {"points": [{"customdata": [[], {}], "x": [], "label": {}}]},
        {"points": "x"},
        {"points": [None]},
        {"points": []},
    ],
    "getRowsRequest": [
        {"startRow": INF, "endRow": NAN, "sortModel": [], "filterModel": {}},
        {"startRow": -5, "endRow": 10**30},
        {"startRow": "0", "endRow": "1e9", "sortModel": {"colId": "x"}, "filterModel": []},
        {"startRow": 0, "endRow": 100, "sortModel": [{"colId": ["username"], "sort": {}}]},
        {"startRow": 0, "endRow": 100, "sortModel": [None, "x", {"colId": None}]},
        {
            "startRow": 0,
            "endRow": 100,
            "filterModel": {
                "username": {"filterType": "text", "type": [], "filter": {}},
                "email": {"conditions": "x", "operator": []},
                "role_name": {"conditions": [None, {"type": "contains", "filter": ["x"]}]},
                "x' OR 1=1": {"type": "contains", "filter": "x"},
            },
        },
    ],
    "selectedRows": [
        [{"id": "' OR 1=1", "username": [], "role_name": {}}],
        [{"id": None}],
        [{"id": str(uuid.uuid4()), "updated_at": INF}],
        ["x"],
    ],
}
# Bodies the dispatch route cannot turn into a callback call.
JUNK_BODIES: list[bytes] = [
    b"[]",
    b"{}",
    b"null",
    b'"x"',
    b"1e400",
    b"{",
    b"\xff\xfe not json",
    b"[" * 100_000 + b"]" * 100_000,
    json.dumps({"output": 5}).encode(),
    json.dumps({"output": "no-such.children", "inputs": []}).encode(),
    json.dumps({"output": "_pages_content.children", "inputs": "x"}).encode(),
    json.dumps({"output": "_pages_content.children", "inputs": [1, 2]}).encode(),
    json.dumps({"output": "_pages_content.children"}).encode(),
    json.dumps({"output": "au-grid-purged.data", "inputs": [], "outputs": {}}).encode(),
    json.dumps(
        {"output": "_pages_content.children", "outputs": [], "inputs": [{}, {}], "state": {}}
    ).encode(),
    json.dumps({"output": "x" * 100_000, "inputs": [], "changedPropIds": [[]]}).encode(),
]


def _id(raw: str) -> Any:
    return json.loads(raw) if raw.startswith("{") else raw


def _concrete(component_id: Any) -> Any:
    """A pattern-matching id with its wildcards replaced by a value a client could send."""
    if not isinstance(component_id, dict):
        return component_id
    return {k: ("x" if isinstance(v, list) else v) for k, v in component_id.items()}


def _has_wildcard(component_id: Any) -> bool:
    return isinstance(component_id, dict) and any(
        isinstance(v, list) for v in component_id.values()
    )


def _slot(spec: dict, value: Any) -> Any:
    """One input or state as the renderer sends it (a list of them for an ALL wildcard)."""
    component_id = _id(spec["id"])
    if _has_wildcard(component_id):
        return [{"id": _concrete(component_id), "property": spec["property"], "value": value}]
    return {"id": component_id, "property": spec["property"], "value": value}


def _resting(spec: dict) -> Any:
    """What a slot holds when it is not the one under test: empty, or fired for triggers."""
    return 1 if spec["property"] in ("n_clicks", "n_intervals") else None


def _body(key: str, spec: dict, values: list[Any]) -> dict:
    slots = [*spec["inputs"], *spec.get("state", [])]
    outputs = []
    for part in key.strip(".").split("..."):
        out_id, _, prop = part.rpartition(".")
        outputs.append({"id": _concrete(_id(out_id)), "property": prop})
    first = spec["inputs"][0]
    n_inputs = len(spec["inputs"])
    return {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": [_slot(s, v) for s, v in zip(slots[:n_inputs], values[:n_inputs], strict=True)],
        "state": [_slot(s, v) for s, v in zip(slots[n_inputs:], values[n_inputs:], strict=True)],
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


def fuzz_cases(callback_map: dict) -> Iterator[tuple[str, str, bytes]]:
    """(callback, what was sent, body) for every slot of every registered callback: the whole
    HOSTILE list where a component property appears first, part of CORE where it appears again
    (the panels share their view and timer inputs), the property's own shapes everywhere, then
    EVERY_SLOT in all slots at once."""
    seen: dict[tuple[str, str], int] = {}
    for key, spec in callback_map.items():
        slots = [*spec["inputs"], *spec.get("state", [])]
        resting = [_resting(s) for s in slots]
        for index, slot in enumerate(slots):
            times = seen.get((slot["id"], slot["property"]), 0)
            seen[(slot["id"], slot["property"])] = times + 1
            # Seen before: three of CORE, a different three each time round.
            again = [CORE[(times + k) % len(CORE)] for k in range(3)]
            values_here = (again if times else HOSTILE) + BY_PROPERTY.get(slot["property"], [])
            for turn, value in enumerate(values_here):
                values = list(resting)
                values[index] = value
                body = _body(key, spec, values)
                # The input that fired: this one, or (for a state) each input in turn, so every
                # button of a callback with several reads the state.
                fired = (
                    slot
                    if index < len(spec["inputs"])
                    else spec["inputs"][turn % len(spec["inputs"])]
                )
                body["changedPropIds"] = [f"{fired['id']}.{fired['property']}"]
                yield (
                    key,
                    f"{slot['id']}.{slot['property']}={value!r:.60}",
                    json.dumps(body).encode(),
                )
        for value in EVERY_SLOT:
            body = _body(key, spec, [value] * len(slots))
            yield key, f"every slot={value!r:.60}", json.dumps(body).encode()


@pytest.fixture(scope="module")
def fuzz_clients(dash_app, database):
    """An admin and a viewer of their own, so a lockout or change here touches nobody else."""
    clients = {}
    for role in ("admin", "viewer"):
        username = f"fuzz-{role}-{uuid.uuid4().hex[:6]}"
        create_user(SYSTEM_ACTOR, username, f"{username}@example.com", role, ROLE_PASSWORD)
        clients[role] = signed_in_client(dash_app, username, ROLE_PASSWORD)
        clients[role].get("/")  # Dash sets up its callbacks on the first request
    return clients


def _failure(response) -> str | None:
    text = response.get_data(as_text=True)
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {text[:200]}"
    if "Traceback" in text or 'File "' in text:
        return f"a traceback in HTTP {response.status_code}"
    return None


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_no_callback_answers_500_to_wrong_typed_values(dash_app, fuzz_clients, role):
    client = fuzz_clients[role]
    failures: dict[str, list[str]] = {}
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    count = 0
    for key, sent, body in fuzz_cases(dash_app.callback_map):
        response = client.post(DISPATCH, data=body, content_type="application/json")
        count += 1
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        problem = _failure(response)
        if problem:
            failures.setdefault(key.split("@")[0][:80], []).append(f"{sent}: {problem}")
    elapsed = time.perf_counter() - started
    print(f"\n{role}: {count} requests in {elapsed:.1f} s, statuses {sorted(statuses.items())}")
    for key, problems in failures.items():
        print(f"  {key}: {len(problems)} failures, e.g. {problems[0]}")
    assert not failures, f"{sum(map(len, failures.values()))} failures in {len(failures)} callbacks"
    assert 401 not in statuses, "a signed-in client was treated as signed out"


def test_bodies_dash_cannot_dispatch_get_400(fuzz_clients):
    client = fuzz_clients["admin"]
    for body in JUNK_BODIES:
        response = client.post(DISPATCH, data=body, content_type="application/json")
        assert _failure(response) is None, (body[:80], _failure(response))
        assert response.status_code == 400, (body[:80], response.status_code)
        assert response.get_json()["error"], body[:80]


# -- the fallback, for what the callbacks' own parsing misses ---------------------------------


def _role_permissions_call(client, dash_app):
    """The role form's loader (pages/admin_roles.py, imported by Dash's page loader)."""
    return call_callback(client, dash_app, "ar-permissions.value", ["admin"])


def test_a_callback_that_raises_answers_with_a_message_and_no_update(
    dash_app, fuzz_clients, monkeypatch, caplog
):
    def broken(_actor):
        raise TypeError("hunter2-secret-value")

    monkeypatch.setattr(sys.modules["taskmaster_dash.pages.admin_roles"], "roles", broken)
    caplog.set_level(logging.WARNING, logger="taskmaster_dash.pages._guard")
    response = _role_permissions_call(fuzz_clients["admin"], dash_app)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answer = response.get_json()
    assert "ar-permissions" not in answer.get("response", {})  # the outputs keep what they had
    shown = json.dumps(answer["sideUpdate"][MESSAGE_ID])
    assert BAD_INPUT in shown and "Traceback" not in shown and "hunter2" not in shown
    logged = caplog.text
    assert "TypeError" in logged and "admin_roles.py" in logged
    assert "hunter2" not in logged  # what the client sent or the error says stays out of the log


def test_a_database_error_in_a_page_says_what_failed(dash_app, fuzz_clients, monkeypatch):
    def unreachable():
        raise OperationalError("SELECT password_hash FROM users", {}, psycopg.OperationalError())

    # The roles page reads the permission catalogue while it is laid out.
    monkeypatch.setattr(
        sys.modules["taskmaster_dash.pages.admin_roles"], "known_permissions", unreachable
    )
    client = fuzz_clients["admin"]
    response = call_callback(client, dash_app, "_pages_content.children", ["/admin/roles", ""])
    assert response.status_code == 200
    shown = json.dumps(response.get_json()["sideUpdate"][MESSAGE_ID])
    assert DATABASE_UNREACHABLE in shown and "password_hash" not in shown


def test_a_refusal_stays_a_refusal(dash_app, fuzz_clients):
    assert _role_permissions_call(fuzz_clients["viewer"], dash_app).status_code == 403


# -- the shared parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "start", "end"),
    [
        ({"startRow": 100, "endRow": 200}, 100, 200),
        ({"startRow": INF, "endRow": NAN}, 0, 100),
        ({"startRow": "5", "endRow": [7]}, 0, 100),
        ({"startRow": -5, "endRow": 10**30}, 0, MAX_PAGE),
        ({"startRow": True, "endRow": 3.0}, 0, 3),
        ({"startRow": 10**30}, MAX_START, MAX_START + 100),
        ("x", 0, 100),
        (None, 0, 100),
    ],
)
def test_grid_requests_are_clamped(sent, start, end):
    parsed = parse_grid_request(sent)
    assert (parsed.start, parsed.end) == (start, end)


def test_grid_sort_and_filters_of_the_wrong_shape_are_dropped():
    sent = {
        "sortModel": [{"colId": ["username"]}, None, {"colId": "email", "sort": {}}],
        "filterModel": {
            "username": {"type": [], "filter": "x"},
            "email": {"conditions": [None, {"type": "contains", "filter": "a'b"}]},
            "role_name": {"type": "contains", "filter": {"x": 1}},
            "x' OR 1=1": {"type": "contains", "filter": "x"},
        },
    }
    query = grid_query(
        sent, {"email": "u.email"}, {"username": "u.username", "email": "u.email"}, "u.id"
    )
    assert query.order_by == "u.email ASC NULLS LAST, u.id"
    assert query.where == ["(position(lower(:f0) in lower(u.email)) > 0)"]
    assert query.params == {"f0": "a'b"}  # a bound parameter, never in the SQL text


def test_input_helpers_take_only_the_expected_type():
    assert choice("15m", {"15m": 1}) == "15m"
    assert choice(["15m"], {"15m": 1}, "1h") == "1h"
    assert choice(True, {1: "x"}) is None and choice(1.0, {1: "x"}) is None
    assert whole_number(30.0, 1, 365) == 30
    assert [whole_number(v, 1, 365) for v in (INF, NAN, 0, 366, 1.5, "30", True)] == [None] * 7
