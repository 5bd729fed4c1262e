"""The REST API's framework: one blueprint, the spec's response envelope and error format,
typed request bodies and queries (pydantic), pagination, and the route registry that the
OpenAPI document is built from (api/openapi.py).

A resource module declares each route once with `api_route(...)`: its permission, query model,
body model and response model. The wrapper checks the permission (server-side, 403), parses and
validates the query and the body (400 naming every wrong field, before anything is written),
calls the handler with the signed-in user, and wraps what it returns in the envelope:

    {"data": ..., "pagination": {"total", "limit", "offset", "hasMore"}, "meta": {...}}

Errors, wherever they come from (the sign-in gate's 401, the throttle's 429, a missing row, the
database refusing a value), answer as {"error": {"code", "message", "fields"}} plus `meta`.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, get_args

import psycopg.errors
from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from taskmaster_dash.auth.permissions import SessionUser, signed_in_user
from taskmaster_dash.data.api_common import Filters, Listing, StaleUpdate
from taskmaster_dash.data.db import DATABASE_UNREACHABLE, user_message
from taskmaster_dash.data.errors.filters import parse_uuid

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
DEFAULT_MAX_BODY_BYTES = 1_048_576  # API_MAX_BODY_BYTES

blueprint = Blueprint("api_v1", __name__)

T = TypeVar("T")


# --- the envelope ------------------------------------------------------------------------------


class Meta(BaseModel):
    requestId: str = Field(description="also sent as the X-Request-Id header")
    timestamp: datetime


class Pagination(BaseModel):
    total: int = Field(description="rows matching the filters (that the caller may see)")
    limit: int
    offset: int
    hasMore: bool


class DataEnvelope(BaseModel, Generic[T]):
    data: T
    meta: Meta


class ListEnvelope(BaseModel, Generic[T]):
    data: list[T]
    pagination: Pagination
    meta: Meta


class ErrorDetail(BaseModel):
    code: str = Field(
        description="bad_request, validation_failed, unauthorized, forbidden, not_found, "
        "conflict, payload_too_large, unsupported_media_type, too_many_requests, unavailable"
    )
    message: str
    fields: dict[str, str] = Field(
        default_factory=dict, description="each wrong field (dotted path) and what is wrong"
    )


class ErrorEnvelope(BaseModel):
    error: ErrorDetail
    meta: Meta


@dataclass(frozen=True)
class Page(Generic[T]):
    """What a list handler returns: one page of rows and how many match in all."""

    items: Sequence[T]
    total: int
    limit: int
    offset: int


class ApiError(Exception):
    """An answer other than success, in the spec's error format."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No such {what} (or you may not see it).")


def id_or_404(raw: str, what: str) -> str:
    """A path's id in its canonical form; 404 naming `what` when it is not a UUID."""
    canonical = parse_uuid(raw)
    if canonical is None:
        raise not_found(what)
    return canonical


def conflict(message: str, fields: dict[str, str] | None = None) -> ApiError:
    return ApiError(409, "conflict", message, fields)


def _request_id() -> str:
    if "api_request_id" not in g:
        g.api_request_id = f"req_{uuid.uuid4().hex[:16]}"
    return g.api_request_id


def _meta() -> dict[str, str]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"requestId": _request_id(), "timestamp": now}


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":"), default=str),
        status=status,
        mimetype="application/json",
    )
    response.headers["X-Request-Id"] = _request_id()
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: ApiError) -> Response:
    detail = {"code": error.code, "message": error.message, "fields": error.fields}
    return _json({"error": detail, "meta": _meta()}, error.status, error.headers)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


def respond(result: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The envelope around a handler's result (None: 204 without a body)."""
    if result is None:
        response = Response(status=204)
        response.headers["X-Request-Id"] = _request_id()
        return response
    if isinstance(result, Page):
        body: dict[str, Any] = {
            "data": _dump(list(result.items)),
            "pagination": {
                "total": result.total,
                "limit": result.limit,
                "offset": result.offset,
                "hasMore": result.offset + len(result.items) < result.total,
            },
        }
    else:
        body = {"data": _dump(result)}
    body["meta"] = _meta()
    return _json(body, status, headers)


# --- request models ----------------------------------------------------------------------------


class Body(BaseModel):
    """Base of every request body: unknown fields are refused (and named) and types are strict
    (no "5" for 5). The string and JSON types of api/fields.py add what PostgreSQL refuses."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=1_000_000)


class ListQuery(BaseModel):
    """Paging for every list: `limit` (1-500, default 50) and `offset`. Every other field
    filters the column of its name (a list: any of its values), unless `columns` names
    another column, or None for a field the handler applies itself."""

    model_config = ConfigDict(extra="forbid")
    columns: ClassVar[dict[str, str | None]] = {}
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"at most {MAX_LIMIT}")
    offset: int = Field(0, ge=0, le=10_000_000)

    def filters(self) -> Filters:
        filters = Filters()
        columns: dict[str, str | None] = {}
        for cls in reversed(type(self).__mro__):  # a subclass's `columns` add to its base's
            columns |= vars(cls).get("columns", {})
        for name in type(self).model_fields:
            column = columns.get(name, name)
            if name in ("limit", "offset") or column is None:
                continue
            value = getattr(self, name)
            if isinstance(value, list):
                filters.any_of(column, value)
            else:
                filters.equal(column, value)
        return filters


class CreatedQuery(ListQuery):
    """A list that can also be narrowed to the rows created in a time range."""

    columns: ClassVar[dict[str, str | None]] = {"created_from": None, "created_to": None}
    created_from: datetime | None = Field(None, description="created at or after (ISO 8601)")
    created_to: datetime | None = Field(None, description="created before (ISO 8601)")

    def filters(self) -> Filters:
        return (
            super()
            .filters()
            .at_least("created_at", self.created_from)
            .before("created_at", self.created_to)
        )


def accepts_none(annotation: Any) -> bool:
    """Whether a field's type lets it be null (`X | None`)."""
    return annotation is None or type(None) in get_args(annotation)


def refuse_null(*names: str) -> Any:
    """A validator for an update body: null is refused only when sent, as leaving the field
    out keeps the row's value. Assign it in the class: `_not_null = refuse_null(...)`."""

    def check(cls: type[BaseModel], value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    return field_validator(*names)(classmethod(check))  # type: ignore[arg-type]


def unchanged_since(what: str) -> Any:
    """An update body's `updated_at` field: the precondition that `updated` answers with 409 when
    the row (`what`) changed after it; `sent_values` leaves it out of the columns written."""
    return Field(None, description=f"the updated_at you read: 409 if the {what} changed since")


def sent_values(body: BaseModel, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The columns to write: the fields sent (or `names`), less the `updated_at` precondition."""
    chosen = body.model_fields_set if names is None else names
    return {name: getattr(body, name) for name in chosen if name != "updated_at"}


@dataclass(frozen=True)
class Resource:
    """One resource module's routes: the module (`__name__`, which names the endpoints), their
    OpenAPI tag, and the permission that reads (GET) and the one that writes (every other
    method)."""

    module: str
    tag: str
    read: str
    write: str

    def route(
        self, method: str, rule: str, summary: str, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """`api_route` with this resource's tag and permission; `options` as there."""
        permission = self.read if method == "GET" else self.write
        return api_route(
            rule, method, permission=permission, tag=self.tag, summary=summary, **options
        )

    def reads(
        self, rule: str, summary: str, response: type[BaseModel]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A GET of one row: 404 when it is missing or the caller may not see it."""
        return self.route("GET", rule, summary, response=response, errors=(404,))

    def lists(
        self, rule: str, summary: str, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A paginated GET (the handler returns a Page)."""
        return self.route("GET", rule, summary, paginated=True, **options)

    def creates(
        self, rule: str, summary: str, errors: Sequence[int] = (400, 404, 413), **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A POST that answers 201 with what it made; by default 404 when what it belongs to is
        missing."""
        return self.route("POST", rule, summary, status=201, errors=errors, **options)

    def changes(
        self, rule: str, summary: str, body: type[BaseModel], response: type[BaseModel]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A PUT of the fields sent (the handler answers with `updated`): 404 when the row is
        missing, 409 when it changed after the `updated_at` the client sent."""
        return self.route(
            "PUT", rule, summary, body=body, response=response, errors=(400, 404, 409, 413)
        )

    def list_route(
        self,
        name: str,
        rule: str,
        summary: str,
        description: str,
        *,
        query: type[ListQuery],
        response: type[BaseModel],
        listing: Listing,
    ) -> None:
        """The usual top-level list: the rows the query's filters match that the caller may
        see, one page of `response`. `name` is the handler's (its endpoint and operationId)."""

        def handler(user: SessionUser, query: ListQuery) -> Page:
            return list_page(response, listing, user, query.filters(), query)

        handler.__module__, handler.__name__, handler.__qualname__ = self.module, name, name
        handler.__doc__ = description
        self.lists(rule, summary, query=query, response=response)(handler)


# --- what handlers return ----------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def as_page(
    model: type[BaseModel], query: ListQuery, found: tuple[list[dict], int] | None, what: str = ""
) -> Page:
    """A Page of `model`; 404 naming `what` when the list's owner was not found (None)."""
    if found is None:
        raise not_found(what)
    rows, total = found
    return Page([model.model_validate(r) for r in rows], total, query.limit, query.offset)


def list_page(
    model: type[BaseModel], listing: Listing, user: SessionUser, filters: Filters, query: ListQuery
) -> Page:
    """One page of a top-level resource, read as the caller."""
    return as_page(model, query, listing.read(user.actor(), filters, query.limit, query.offset))


def one(model: type[M], row: dict[str, Any] | None, what: str) -> M:
    """The row as `model`; 404 naming `what` when there is none (or the caller may not see it)."""
    if row is None:
        raise not_found(what)
    return model.model_validate(row)


def updated(model: type[M], what: str, write: Callable[[], dict[str, Any] | None]) -> M:
    """The row `write` changed; 409 when it changed after the `updated_at` the client sent."""
    try:
        row = write()
    except StaleUpdate:
        raise conflict(
            f"The {what} changed after the updated_at you sent; read it again.",
            {"updated_at": "stale"},
        ) from None
    return one(model, row, what)


def _field_problems(exc: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path = ".".join(str(p) for p in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "not a field of this resource"
        problems.setdefault(path, message)
    return problems


def parse_query(model: type[BaseModel]) -> BaseModel:
    # Repeated keys are refused rather than silently using one of them.
    args = request.args
    repeated = sorted(k for k in args if len(args.getlist(k)) > 1)
    if repeated:
        fields = {k: "given more than once" for k in repeated}
        raise ApiError(400, "bad_request", "Each query parameter may be given once.", fields)
    try:
        return model.model_validate(args.to_dict())
    except ValidationError as exc:
        raise ApiError(
            400, "bad_request", "Some query parameters are not valid.", _field_problems(exc)
        ) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # a chunked body is cut at the limit rather than refused: reading on refuses it
        request.stream.read(1)  # RequestEntityTooLarge (413) when there is more
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = _field_problems(exc)
        if any(e["type"] in ("json_invalid", "model_type") for e in exc.errors()):
            raise ApiError(
                400, "bad_request", "The body is not a JSON object.", {"body": "not a JSON object"}
            ) from None
        raise ApiError(
            400, "validation_failed", "Some fields are not valid; nothing was saved.", problems
        ) from None


# --- routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One API operation, as the OpenAPI document describes it."""

    rule: str  # Flask rule under /api/v1, e.g. /tasks/<task_id>
    method: str
    endpoint: str
    summary: str
    description: str
    tag: str
    permission: str | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: Any  # a model (the `data` of the envelope), or None for 204
    status: int
    paginated: bool
    errors: tuple[int, ...] = field(default_factory=tuple)


ROUTES: list[Route] = []


def current_api_user(permission: str | None) -> SessionUser:
    """The signed-in caller (the sign-in gate has already refused anonymous requests), refused
    with 403 unless they hold `permission`."""
    user = signed_in_user()
    if user is None:
        raise ApiError(401, "unauthorized", "Sign in, or send X-API-Key or a Bearer token.")
    if not user.has(permission):
        raise ApiError(
            403,
            "forbidden",
            f"Your role does not have the {permission} permission.",
            {"permission": permission or ""},
        )
    return user


def api_route(
    rule: str,
    method: str = "GET",
    *,
    permission: str | None,
    tag: str,
    summary: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    paginated: bool = False,
    errors: Sequence[int] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare one operation. The handler is called as handler(user, **path_args[, query=...]
    [, body=...]) and returns the `data` (a model or list of models), a Page, or None (204)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        endpoint = f"{func.__module__.rsplit('.', 1)[-1]}_{func.__name__}"

        @functools.wraps(func)
        def view(**path_args: Any) -> Response:
            user = current_api_user(permission)
            kwargs: dict[str, Any] = {}
            if query is not None:
                kwargs["query"] = parse_query(query)
            if body is not None:
                kwargs["body"] = parse_body(body)
            return respond(func(user, **path_args, **kwargs), status)

        blueprint.add_url_rule(rule, endpoint, view, methods=[method])
        doc = (func.__doc__ or "").strip()
        # in Route's field order: each is the declared value of the same name
        route = Route(rule, method, endpoint, summary, doc, tag, permission, query, body,
                      response, status, paginated, tuple(errors))  # fmt: skip
        ROUTES.append(route)
        return func

    return decorate


# --- errors from anywhere, in one format -------------------------------------------------------

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


@blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return error_response(exc)


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Response:
    limit = request.max_content_length
    return error_response(
        ApiError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
    )


def database_error(exc: SQLAlchemyError) -> ApiError:
    """What a refused or failed statement means to the caller: never a 500 for input."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    message = user_message(exc)
    if isinstance(orig, psycopg.errors.InsufficientPrivilege):
        return ApiError(403, "forbidden", message)
    if isinstance(orig, psycopg.errors.UniqueViolation):
        return conflict(message)
    if isinstance(orig, psycopg.errors.ForeignKeyViolation):
        return ApiError(400, "validation_failed", message)
    if isinstance(orig, psycopg.errors.DataError | psycopg.errors.IntegrityError):
        return ApiError(400, "validation_failed", message)
    if isinstance(orig, psycopg.errors.RaiseException):
        return ApiError(400, "validation_failed", message)
    if message == DATABASE_UNREACHABLE or isinstance(orig, psycopg.errors.QueryCanceled):
        return ApiError(503, "unavailable", message, headers={"Retry-After": "10"})
    log.exception("API request failed in the database")
    return ApiError(503, "unavailable", message, headers={"Retry-After": "10"})


@blueprint.errorhandler(SQLAlchemyError)
def _database_failed(exc: SQLAlchemyError) -> Response:
    return error_response(database_error(exc))


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    if exc.response is not None:  # the throttle's 429 carries its answer (with Retry-After)
        return exc.response  # type: ignore[return-value]  # _uniform_errors reshapes it
    status = exc.code or 500
    return error_response(ApiError(status, _CODES.get(status, "error"), exc.description or ""))


@blueprint.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("API request failed")
    return error_response(ApiError(500, "internal", "Something went wrong; nothing was saved."))


@blueprint.before_request
def _limit_body() -> None:
    # Flask 3.1: a per-request limit; reading a larger body raises RequestEntityTooLarge.
    request.max_content_length = current_app.config.get(
        "API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES
    )
    if request.content_length is not None and request.content_length > request.max_content_length:
        raise RequestEntityTooLarge()


@blueprint.after_request
def _uniform_errors(response: Response) -> Response:
    """The sign-in gate (401), the throttle (429) and the database-down answer (503) run before
    this blueprint and answer {"error": "<words>"}: give API callers the spec's format."""
    if response.status_code < 400 or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return response
    status = response.status_code
    message = body["error"]
    if status == 401:
        message = "Sign in, or send a valid X-API-Key or Bearer token."
    elif status == 429 and "retryAfter" in body:
        message = f"Too many requests; try again in {body['retryAfter']} seconds."
    rewritten = error_response(ApiError(status, _CODES.get(status, "error"), message))
    for name in ("Retry-After", "WWW-Authenticate"):
        if name in response.headers:
            rewritten.headers[name] = response.headers[name]
    return rewritten


# The resource modules whose routes make up the API (each registers on import).
RESOURCE_MODULES: list[str] = [
    "taskmaster_dash.api.tasks",
    "taskmaster_dash.api.validations",
    "taskmaster_dash.api.errors",
    "taskmaster_dash.api.workflows",
    "taskmaster_dash.api.openapi",
]


@blueprint.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def _no_such_route(unknown: str) -> Response:
    raise ApiError(404, "not_found", f"No API route {PREFIX}/{unknown}; see {PREFIX}/docs.")


def init_api(server: Any, prefix: str = "/", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Register the API (every resource module) on the Flask server under {prefix}api/v1."""
    for module in RESOURCE_MODULES:
        importlib.import_module(module)
    server.config["API_MAX_BODY_BYTES"] = max_body_bytes
    server.register_blueprint(blueprint, url_prefix=prefix.rstrip("/") + PREFIX)
