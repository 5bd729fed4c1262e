"""Helpers shared by the tests: sign in (HTTP or browser) and call a Dash callback directly."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLE_PASSWORD = "Correct-Horse-42"


@dataclass(frozen=True)
class TestUsers:
    ids: dict[str, str]

    @staticmethod
    def username(role: str) -> str:
        return f"test-{role.replace('_', '-')}"

    def actor(self, role: str):
        from taskmaster_dash.data.db import Actor

        return Actor(self.ids[role], self.username(role))


def csrf_token_in(page: str) -> str:
    """The CSRF token of the form in `page` (HTML)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match[1]


def csrf_token(client, path: str = "/login") -> str:
    return csrf_token_in(client.get(path).get_data(as_text=True))


def sign_in(client, username: str, password: str, next_path: str = "/"):
    return client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": username,
            "password": password,
            "next": next_path,
        },
    )


def signed_in_client(app, username: str, password: str):
    client = app.server.test_client()
    response = sign_in(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def _find_callback(app, output: str) -> tuple[str, dict]:
    for key, spec in app.callback_map.items():
        if output in key.strip(".").split("..."):
            return key, spec
    raise KeyError(f"no callback has the output {output}")


def _parse_id(raw: str) -> Any:
    return json.loads(raw) if raw.startswith("{") else raw


def _slot(spec: dict, value: Any) -> Any:
    """One input or state as the browser sends it: an ALL / ALLSMALLER slot is a list of
    components, one per value, each with its own id (the wildcard filled in with its index)."""
    pattern = spec["id"]
    wildcard = isinstance(pattern, dict) and any(
        isinstance(v, list) and v != ["MATCH"] for v in pattern.values()
    )
    if not wildcard or not isinstance(value, list):
        return {**spec, "value": value}
    return [
        {
            "id": {k: str(n) if isinstance(v, list) else v for k, v in pattern.items()},
            "property": spec["property"],
            "value": item,
        }
        for n, item in enumerate(value)
    ]


def call_callback(
    client,
    app,
    output: str,
    inputs: list[Any],
    state: list[Any] | None = None,
    changed: str | None = None,
):
    """POST /_dash-update-component the way the browser would for the callback with `output`
    ("component-id.property"); returns the Flask response. `changed` ("button-id.n_clicks")
    names the input that fired, for callbacks with several (default: the first)."""
    key, spec = _find_callback(app, output)
    outputs = []
    for part in key.strip(".").split("..."):
        out_id, _, prop = part.rpartition(".")
        outputs.append({"id": _parse_id(out_id), "property": prop})
    input_specs = [{**i, "id": _parse_id(i["id"])} for i in spec["inputs"]]
    state_specs = [{**s, "id": _parse_id(s["id"])} for s in spec.get("state", [])]
    payload = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": [_slot(i, v) for i, v in zip(input_specs, inputs, strict=True)],
        "state": [_slot(s, v) for s, v in zip(state_specs, state or [], strict=True)],
        "changedPropIds": [changed or f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"],
    }
    return client.post("/_dash-update-component", json=payload)


def callback_values(response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, (
        response.status_code,
        response.get_data(as_text=True)[:300],
    )
    return response.get_json()["response"]


def render_page(client, app, path: str, search: str = ""):
    """The component tree the page router returns for `path` and `search`, for this client."""
    client.get("/")  # Dash registers its page router on the first request
    values = callback_values(call_callback(client, app, "_pages_content.children", [path, search]))
    return values["_pages_content"]["children"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_sign_in(dash_duo, app, username: str, password: str = ROLE_PASSWORD, path: str = "/"):
    """Start the app, sign in through the real form in Chromium, and wait for the app shell."""
    # A free port, so several test runs on one machine do not collide; navigate=False because
    # "/" redirects to the sign-in form, which is not a Dash page.
    dash_duo.start_server(app, navigate=False, port=free_port())
    base = dash_duo.server.url.rstrip("/")
    dash_duo.driver.get(f"{base}/login?next={path}")
    dash_duo.wait_for_element("#username").send_keys(username)
    dash_duo.find_element("#password").send_keys(password)
    dash_duo.find_element("#login-button").click()
    dash_duo.wait_for_element("#user-name", timeout=15)


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


ROOT = Path(__file__).resolve().parent.parent


def start_demo(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`taskmaster-dash demo ARGS` in a subprocess, and what it printed up to the line saying it
    serves (read line by line: the demo keeps running). The caller stops it."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "taskmaster_dash.cli", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    output = []
    assert demo.stdout is not None
    for line in demo.stdout:
        output.append(line)
        if "TaskMaster Dash on" in line:
            break
    return demo, "".join(output)
