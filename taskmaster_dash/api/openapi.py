"""The API describes itself: GET /api/v1/openapi.json (OpenAPI 3.1, built from the route
registry and the pydantic models, whose JSON Schema is OpenAPI 3.1's dialect) and a docs page at
/api/v1/docs that renders it, served from this package (no CDN)."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from flask import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from taskmaster_dash.api.framework import (
    PREFIX,
    ROUTES,
    DataEnvelope,
    ErrorEnvelope,
    ListEnvelope,
    Route,
    blueprint,
)
from taskmaster_dash.data.health import VERSION

REF = "#/components/schemas/{model}"
ERROR_WORDS = {
    400: "A bad query or body: `fields` names each wrong field; nothing was written",
    401: "Not signed in (no or a wrong X-API-Key, Bearer token, Access token or session)",
    403: "Signed in without the permission this operation needs",
    404: "No such resource, or the caller may not see it",
    409: "A conflict: a stale update, a dependency cycle, a duplicate",
    413: "The body is over API_MAX_BODY_BYTES",
    415: "The body is not JSON",
    429: "Too many requests for this API key; see Retry-After",
}
SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "a token in the original TaskMaster API's format (JWT_SECRET)",
    },
    "cloudflareAccess": {
        "type": "apiKey",
        "in": "header",
        "name": "Cf-Access-Jwt-Assertion",
        "description": "Cloudflare Access: a user's e-mail, or a service token's common_name "
        "mapped by CF_ACCESS_SERVICE_TOKENS",
    },
    "session": {"type": "apiKey", "in": "cookie", "name": "session"},
}
SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]

# The routes that live outside this blueprint (app.py, auth/login.py), described by hand.
OTHER_ROUTES: list[dict[str, Any]] = [
    {"path": "/health", "summary": "Health for load balancers (public)", "public": True},
    {"path": "/health/detailed", "summary": "Health of the database, pools and Prometheus"},
    {"path": "/me", "summary": "Who the request is signed in as"},
    {"path": "/metrics", "summary": "Prometheus metrics (text format)", "text": True},
    {
        "path": "/analytics/{page}",
        "summary": "The rows behind an analytics page's panels (overview, tasks, validations, "
        "errors)",
        "parameters": [
            {"name": "page", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
    },
]


def openapi_path(rule: str) -> str:
    """/tasks/<task_id> -> /tasks/{task_id}"""
    return re.sub(r"<(?:[a-z]+:)?([A-Za-z_]+)>", r"{\1}", rule)


def _response_model(route: Route) -> type[BaseModel] | None:
    if route.response is None:
        return None
    envelope = ListEnvelope if route.paginated else DataEnvelope
    return envelope[route.response]  # type: ignore[return-value]


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(route: Route, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"<(?:[a-z]+:)?([A-Za-z_]+)>", route.rule)
    ]
    if route.query is not None:
        parameters += _query_parameters(route.query, schemas)
    model = _response_model(route)
    success: dict[str, Any] = {"description": "OK" if route.status != 201 else "Created"}
    if route.status == 204:
        success = {"description": "Done (no body)"}
    elif model is not None:
        success["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
    error = {"application/json": {"schema": refs[(ErrorEnvelope, "serialization")]}}
    codes = sorted({401, 429, *([403] if route.permission else []), *route.errors})
    operation: dict[str, Any] = {
        "operationId": route.endpoint,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": parameters,
        "responses": {
            str(route.status): success,
            **{str(c): {"description": ERROR_WORDS[c], "content": error} for c in codes},
        },
        "security": SECURITY,
    }
    description = route.description
    if route.permission:
        description = f"Needs `{route.permission}`. {description}".strip()
    operation["description"] = description
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    return operation


def _other_operation(entry: dict[str, Any]) -> dict[str, Any]:
    content = (
        {"text/plain": {"schema": {"type": "string"}}}
        if entry.get("text")
        else {"application/json": {"schema": {"type": "object"}}}
    )
    return {
        "operationId": "other_" + re.sub(r"\W+", "_", entry["path"]).strip("_"),
        "summary": entry["summary"],
        "tags": ["service"],
        "parameters": entry.get("parameters", []),
        "responses": {"200": {"description": "OK", "content": content}},
        "security": [] if entry.get("public") else SECURITY,
    }


@cache
def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(ErrorEnvelope, "serialization")]
    for route in ROUTES:
        if route.body is not None:
            models.append((route.body, "validation"))
        model = _response_model(route)
        if model is not None:
            models.append((model, "serialization"))
    refs, definitions = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(openapi_path(route.rule), {})[route.method.lower()] = _operation(
            route, refs, schemas
        )
    for entry in OTHER_ROUTES:
        paths.setdefault(entry["path"], {})["get"] = _other_operation(entry)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TaskMaster Dash API",
            "version": VERSION,
            "description": "The TaskMaster REST API: tasks, validations, errors and workflow "
            "steps. Lists answer `data`, `pagination` and `meta`; errors "
            '`{"error": {"code", "message", "fields"}}`.',
        },
        "servers": [{"url": PREFIX}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": SECURITY,
    }


def _static(name: str, mimetype: str) -> Response:
    body = files("taskmaster_dash.api").joinpath("static", name).read_text(encoding="utf-8")
    return Response(body, mimetype=mimetype)


@blueprint.route("/openapi.json")
def openapi_json() -> Response:
    from flask import jsonify

    return jsonify(openapi_document())


@blueprint.route("/docs")
def docs_page() -> Response:
    return _static("docs.html", "text/html")


@blueprint.route("/docs/docs.js")
def docs_script() -> Response:
    return _static("docs.js", "text/javascript")


@blueprint.route("/docs/docs.css")
def docs_style() -> Response:
    return _static("docs.css", "text/css")
