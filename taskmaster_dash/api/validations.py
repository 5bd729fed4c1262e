"""Validation runs: /api/v1/validations. PUT changes the fields it is given; with the
`updated_at` you read, 409 if the run changed since."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from taskmaster_dash.api.fields import CommaList, JsonObject, LongText, Name50, Uuid
from taskmaster_dash.api.framework import Body, ListQuery, Page, api_route, conflict, not_found
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_tasks, api_validations
from taskmaster_dash.data.api_common import Filters
from taskmaster_dash.data.errors import parse_uuid

ValidationType = Literal[
    "syntax",
    "security",
    "performance",
    "style",
    "testing",
    "integration",
    "deployment",
    "compliance",
    "documentation",
]
ValidationStatus = Literal["pending", "running", "passed", "failed", "warning", "skipped", "error"]
INT_MAX = 2_147_483_647


class ValidationCreate(Body):
    task_id: Uuid = Field(description="the task validated")
    validation_type: ValidationType
    validation_status: ValidationStatus
    validation_score: float | None = Field(None, ge=0, le=100)
    validation_data: JsonObject = {}
    claude_code_version: Name50 | None = None
    validation_environment: JsonObject = {}
    started_at: datetime | None = None
    completed_at: datetime | None = None
    execution_time_ms: int | None = Field(None, ge=0, le=INT_MAX)
    error_message: LongText | None = None
    error_details: JsonObject | None = None
    retry_count: int = Field(0, ge=0, le=10)
    metadata: JsonObject = {}


NOT_NULL = ("validation_status", "validation_data", "retry_count", "metadata")


class ValidationUpdate(Body):
    """Any of these; those not sent keep their value."""

    validation_status: ValidationStatus | None = None
    validation_score: float | None = Field(None, ge=0, le=100)
    validation_data: JsonObject | None = None
    validation_environment: JsonObject | None = None
    completed_at: datetime | None = None
    execution_time_ms: int | None = Field(None, ge=0, le=INT_MAX)
    error_message: LongText | None = None
    error_details: JsonObject | None = None
    retry_count: int | None = Field(None, ge=0, le=10)
    metadata: JsonObject | None = None
    updated_at: datetime | None = Field(
        None, description="the updated_at you read: 409 if the run changed since"
    )

    @field_validator(*NOT_NULL)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class Validation(BaseModel):
    id: str
    task_id: str
    validation_type: str
    validation_status: str
    validation_score: float | None = None
    validation_data: Any = None
    claude_code_version: str | None = None
    validation_environment: Any = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    execution_time_ms: int | None = None
    error_message: str | None = None
    error_details: Any = None
    retry_count: int | None = None
    metadata: Any = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ValidationQuery(ListQuery):
    validation_type: CommaList[ValidationType] | None = None
    validation_status: CommaList[ValidationStatus] | None = None
    task_id: Uuid | None = None
    claude_code_version: Name50 | None = None
    created_from: datetime | None = Field(None, description="created at or after (ISO 8601)")
    created_to: datetime | None = Field(None, description="created before (ISO 8601)")


@api_route(
    "/validations",
    permission="validations:read",
    tag="validations",
    summary="List validation runs",
    query=ValidationQuery,
    response=Validation,
    paginated=True,
)
def list_validations(user: SessionUser, query: ValidationQuery) -> Page:
    """Newest first; filter by type, status, task, version and creation time."""
    filters = (
        Filters()
        .any_of("validation_type", query.validation_type)
        .any_of("validation_status", query.validation_status)
        .equal("task_id", query.task_id)
        .equal("claude_code_version", query.claude_code_version)
        .at_least("created_at", query.created_from)
        .before("created_at", query.created_to)
    )
    rows, total = api_validations.list_validations(user.actor(), filters, query.limit, query.offset)
    return Page([Validation.model_validate(r) for r in rows], total, query.limit, query.offset)


@api_route(
    "/validations",
    "POST",
    permission="validations:write",
    tag="validations",
    summary="Record a validation run",
    body=ValidationCreate,
    response=Validation,
    status=201,
    errors=(400, 404, 413),
)
def create_validation(user: SessionUser, body: ValidationCreate) -> Validation:
    """404 when the task does not exist or the caller may not see it."""
    values = body.model_dump(exclude_unset=True)  # the database's defaults for the rest
    row = api_validations.create_validation(user.actor(), values)
    if row is None:
        raise not_found("task")
    return Validation.model_validate(row)


@api_route(
    "/validations/<validation_id>",
    "PUT",
    permission="validations:write",
    tag="validations",
    summary="Change a validation run (e.g. its status when it finishes)",
    body=ValidationUpdate,
    response=Validation,
    errors=(400, 404, 409, 413),
)
def update_validation(user: SessionUser, validation_id: str, body: ValidationUpdate) -> Validation:
    canonical = parse_uuid(validation_id)
    if canonical is None:
        raise not_found("validation run")
    values = {name: getattr(body, name) for name in body.model_fields_set if name != "updated_at"}
    try:
        row = api_validations.update_validation(user.actor(), canonical, values, body.updated_at)
    except api_tasks.StaleUpdate:
        raise conflict(
            "The validation run changed after the updated_at you sent; read it again.",
            {"updated_at": "stale"},
        ) from None
    if row is None:
        raise not_found("validation run")
    return Validation.model_validate(row)
