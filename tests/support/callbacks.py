"""Call a Dash callback the way the browser does (POST /_dash-update-component), naming its
inputs and state by component id rather than by position."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Values = list[Any] | Mapping[str, Any]


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


def _by_position(specs: list[dict], values: Values | None, changed: str, kind: str) -> list:
    """`values` in the callback's order. A mapping is keyed by "component-id" or, where one id
    has several properties, "component-id.property"; what it leaves out (all of it for None)
    the browser would send as None, except the input that fired (`changed`): one click."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        return list(values)
    names = [(s["id"], f"{s['id']}.{s['property']}") for s in specs]
    known = {n for pair in names for n in pair}
    unknown = set(values) - known
    assert not unknown, f"the callback has no {kind} {sorted(unknown)}; it has {sorted(known)}"
    out = []
    for component, full in names:
        if full in values:
            out.append(values[full])
        elif component in values:
            out.append(values[component])
        else:
            out.append(1 if full == changed else None)
    return out


def call_callback(
    client,
    app,
    output: str,
    inputs: Values | None = None,
    state: Values | None = None,
    changed: str | None = None,
):
    """POST /_dash-update-component the way the browser would for the callback with `output`
    ("component-id.property"); returns the Flask response. `changed` ("button-id.n_clicks")
    names the input that fired, for callbacks with several (default: the first). `inputs` and
    `state` are lists in the callback's order or mappings keyed by component id."""
    key, spec = _find_callback(app, output)
    outputs = []
    for part in key.strip(".").split("..."):
        out_id, _, prop = part.rpartition(".")
        outputs.append({"id": _parse_id(out_id), "property": prop})
    changed = changed or f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"
    input_values = _by_position(spec["inputs"], inputs, changed, "input")
    state_values = _by_position(spec.get("state", []), state, changed, "state")
    input_specs = [{**i, "id": _parse_id(i["id"])} for i in spec["inputs"]]
    state_specs = [{**s, "id": _parse_id(s["id"])} for s in spec.get("state", [])]
    payload = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": [_slot(i, v) for i, v in zip(input_specs, input_values, strict=True)],
        "state": [_slot(s, v) for s, v in zip(state_specs, state_values, strict=True)],
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", json=payload)


def callback_values(response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, (
        response.status_code,
        response.get_data(as_text=True)[:300],
    )
    return response.get_json()["response"]


def callback_output(response, output: str) -> Any:
    """One output ("component-id.property") of a callback's 200 response."""
    component, _, prop = output.rpartition(".")
    return callback_values(response)[component][prop]


def render_page(client, app, path: str, search: str = ""):
    """The component tree the page router returns for `path` and `search`, for this client."""
    client.get("/")  # Dash registers its page router on the first request
    values = callback_values(call_callback(client, app, "_pages_content.children", [path, search]))
    return values["_pages_content"]["children"]


def find_component(tree: Any, component_id: Any) -> dict[str, Any] | None:
    """The props of the component with that id in a component tree (a layout, or what a
    callback returned), or None."""
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if props.get("id") == component_id:
            return props
        for value in list(props.values()) + list(tree.values()):
            found = find_component(value, component_id)
            if found:
                return found
    elif isinstance(tree, list):
        for item in tree:
            found = find_component(item, component_id)
            if found:
                return found
    return None


def find_all(tree: Any, component_type: str) -> list[dict[str, Any]]:
    """The props of every component of that type ("Graph", "Tr") in a component tree."""
    found = []
    if isinstance(tree, dict):
        if tree.get("type") == component_type:
            found.append(tree.get("props", {}))
        for value in tree.get("props", {}).values():
            found.extend(find_all(value, component_type))
    elif isinstance(tree, list):
        for item in tree:
            found.extend(find_all(item, component_type))
    return found
