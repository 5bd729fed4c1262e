"""Validation runs: /api/v1/validations. PUT changes the fields it is given; with the
`updated_at` you read, 409 if the run changed since."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from taskmaster_dash.api.fields import CommaList, JsonObject, LongText, Name50, Uuid
from taskmaster_dash.api.framework import (
    Body,
    CreatedQuery,
    Resource,
    id_or_404,
    one,
    refuse_null,
    sent_values,
    unchanged_since,
    updated,
)
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_validations
from taskmaster_dash.data.vocabulary import ValidationStatus, ValidationType

INT_MAX = 2_147_483_647


VALIDATIONS_API = Resource(
    __name__, "validations", read="validations:read", write="validations:write"
)


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
    updated_at: datetime | None = unchanged_since("run")

    _not_null = refuse_null(*NOT_NULL)


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


class ValidationQuery(CreatedQuery):
    validation_type: CommaList[ValidationType] | None = None
    validation_status: CommaList[ValidationStatus] | None = None
    task_id: Uuid | None = None
    claude_code_version: Name50 | None = None


VALIDATIONS_API.list_route(
    "list_validations",
    "/validations",
    "List validation runs",
    "Newest first; filter by type, status, task, version and creation time.",
    query=ValidationQuery,
    response=Validation,
    listing=api_validations.VALIDATIONS,
)


@VALIDATIONS_API.creates(
    "/validations", "Record a validation run", body=ValidationCreate, response=Validation
)
def create_validation(user: SessionUser, body: ValidationCreate) -> Validation:
    """404 when the task does not exist or the caller may not see it."""
    values = body.model_dump(exclude_unset=True)  # the database's defaults for the rest
    return one(Validation, api_validations.create_validation(user.actor(), values), "task")


@VALIDATIONS_API.changes(
    "/validations/<validation_id>",
    "Change a validation run (e.g. its status when it finishes)",
    body=ValidationUpdate,
    response=Validation,
)
def update_validation(user: SessionUser, validation_id: str, body: ValidationUpdate) -> Validation:
    canonical = id_or_404(validation_id, "validation run")
    values = sent_values(body)
    return updated(
        Validation,
        "validation run",
        lambda: api_validations.update_validation(user.actor(), canonical, values, body.updated_at),
    )
