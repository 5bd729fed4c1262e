"""The one guard between what a client sends and the callbacks (not a page: Dash skips files
starting with _).

A callback is a public endpoint that receives whatever a client posts. Callbacks parse their own
input (pages/_input.py, data/grid.py); this module is the fallback for the rest:

- a body Dash cannot dispatch (not a JSON object, no such callback, inputs that do not match the
  callback, absurd size or nesting) gets HTTP 400 with a sentence, before Dash reads it;
- an exception a callback raises becomes a message in the page (and no update), through Dash's
  `on_error`; one raised by Dash itself around the callback becomes HTTP 400 JSON.

Either way the server logs where it happened (exception type and frames, never the values sent,
which may hold passwords) and the client never sees a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import dash
from dash import ClientsideFunction, Dash, Input, Output, clientside_callback, html
from dash.exceptions import PreventUpdate
from flask import jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from taskmaster_dash.auth.permissions import PermissionDenied
from taskmaster_dash.data.db import user_message
from taskmaster_dash.data.refusal import Refused
from taskmaster_dash.pages._ui import message

log = logging.getLogger(__name__)

MESSAGE_ID = "request-message"
MAX_BODY_BYTES = 1_000_000
MAX_DEPTH = 64
BAD_INPUT = (
    "Part of this page could not be updated: it was sent a value of the wrong kind. "
    "Nothing was changed. Reload the page if this keeps happening."
)
BAD_BODY = "This request is not a callback the dashboard can answer."
TOO_LARGE = "The request is too large."


def message_area() -> html.Div:
    """Where a refused callback says so; the shell puts it above every page."""
    return html.Div(id=MESSAGE_ID, className="request-message", role="status")


# A new page starts without the previous page's message.
clientside_callback(
    ClientsideFunction("guard", "clearMessage"),  # assets/clientside.js
    Output(MESSAGE_ID, "children"),
    Input("_pages_location", "pathname"),
    prevent_initial_call=True,
)


def _where(exc: BaseException) -> str:
    """The exception's type and innermost frames: enough to fix it, without any value."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    return f"{type(exc).__name__} at " + " < ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)
    )


def _output_name() -> str:
    body = request.get_json(silent=True)
    return str(body.get("output", "?"))[:120] if isinstance(body, dict) else "?"


def callback_failed(exc: Exception) -> None:
    """Dash's `on_error`: the callback raised. Refusals stay refusals (403); anything else is
    logged and answered with a message in the page and no update of the callback's outputs."""
    if isinstance(exc, PermissionDenied):
        raise exc
    if isinstance(exc, SQLAlchemyError):
        text = user_message(exc)
        log.warning("callback %s: database error %s", _output_name(), _where(exc))
    else:
        text = BAD_INPUT
        log.warning("callback %s failed on its input: %s", _output_name(), _where(exc))
    dash.set_props(MESSAGE_ID, {"children": message(text, "error")})


F = TypeVar("F", bound=Callable[..., Any])


def failure_message(
    *,
    outputs: int = 1,
    at: int = 0,
    database: str = "{}",
    refused: str = "{}",
    failed: Mapping[int, Any] | None = None,
) -> Callable[[F], F]:
    """For a callback (or a layout part) whose output `at` of `outputs` is a message: a
    Refused becomes that message (its sentence, its kind) and a database error the standard
    sentence for it (data.db.user_message), with a log line. `database` and `refused` word it
    for the place ("{}" stands for the sentence); the other outputs are not updated, or take
    the value `failed` gives them. Put it under @require_permission: refusing comes first."""

    def answer(shown: html.Div) -> Any:
        if outputs == 1:
            return shown
        values: list[Any] = [dash.no_update] * outputs
        for index, value in (failed or {}).items():
            values[index] = value
        values[at] = shown
        return tuple(values)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Refused as exc:
                return answer(message(refused.replace("{}", str(exc), 1), exc.kind))
            except SQLAlchemyError as exc:
                log.warning("%s: database error %s", function.__qualname__, _where(exc))
                return answer(message(database.replace("{}", user_message(exc), 1), "error"))

        return run  # type: ignore[return-value]

    return decorate


def _depth_within(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _is_wildcard(component_id: str) -> bool:
    """ALL / ALLSMALLER ids arrive as a list of components; MATCH as one."""
    if not component_id.startswith("{"):
        return False
    values = json.loads(component_id).values()
    return any(isinstance(v, list) and v != ["MATCH"] for v in values)


def _slots_match(sent: Any, registered: list[dict]) -> bool:
    if not isinstance(sent, list) or len(sent) != len(registered):
        return False
    for item, spec in zip(sent, registered, strict=True):
        parts = item if _is_wildcard(spec["id"]) else [item]
        if not isinstance(parts, list) or not all(
            isinstance(p, dict) and "id" in p and isinstance(p.get("property"), str) for p in parts
        ):
            return False
    return True


def dispatch_problem(body: bytes, callback_map: dict) -> str | None:
    """Why Dash could not dispatch this body, or None when it can."""
    if len(body) > MAX_BODY_BYTES:
        return TOO_LARGE
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return "The request is not valid JSON."
    if not isinstance(data, dict) or not _depth_within(data, MAX_DEPTH):
        return BAD_BODY
    key = data.get("output")
    if not isinstance(key, str):
        return BAD_BODY
    spec = callback_map.get(key)
    if spec is None or "callback" not in spec:  # unknown, or a browser-side callback
        return BAD_BODY
    if not _slots_match(data.get("inputs"), spec["inputs"]):
        return BAD_BODY
    if not _slots_match(data.get("state", []), spec.get("state", [])):
        return BAD_BODY
    changed = data.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return BAD_BODY
    outputs = data.get("outputs")
    multi = key.startswith("..")
    n_outputs = len(key.strip(".").split("..."))
    if spec.get("no_output"):
        return None
    if multi and not (isinstance(outputs, list) and len(outputs) == n_outputs):
        return BAD_BODY
    if not multi and not isinstance(outputs, dict | list):
        return BAD_BODY
    for output in outputs if isinstance(outputs, list) else [outputs]:
        parts = output if isinstance(output, list) else [output]
        if not all(isinstance(p, dict) and "id" in p and "property" in p for p in parts):
            return BAD_BODY
    return None


def install(app: Dash) -> None:
    """Check dispatch bodies before Dash reads them, and turn what escapes Dash into a 400."""
    server = app.server
    path = app.config.routes_pathname_prefix + "_dash-update-component"
    endpoint = next(rule.endpoint for rule in server.url_map.iter_rules() if rule.rule == path)

    @server.before_request
    def refuse_undispatchable():
        if request.path != path or request.method != "POST":
            return None
        problem = dispatch_problem(request.get_data(cache=True), app.callback_map)
        if problem is None:
            return None
        return jsonify(error=problem), 413 if problem == TOO_LARGE else 400

    view = server.view_functions[endpoint]

    @functools.wraps(view)
    def guarded_dispatch(*args: Any, **kwargs: Any):
        try:
            return view(*args, **kwargs)
        except (PreventUpdate, PermissionDenied, HTTPException):
            raise  # 204, 403 and Flask's own answers are answers
        except SQLAlchemyError as exc:
            log.warning("dispatch %s: database error %s", _output_name(), _where(exc))
            return jsonify(error=user_message(exc)), 503
        except Exception as exc:  # the fallback: never a 500 with a traceback
            log.warning("dispatch %s failed: %s", _output_name(), _where(exc))
            return jsonify(error=BAD_INPUT), 400

    server.view_functions[endpoint] = guarded_dispatch
