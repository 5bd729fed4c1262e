"""Errors: /api/v1/errors. A posted error is one occurrence: it joins the group of its
fingerprint (counted, no new row), reopens a resolved group as regressed, or starts a group
(data/error_ingest.py); the answer's `outcome` says which."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from taskmaster_dash.api.fields import CommaList, JsonObject, LongText, Name50, Name100, Text255
from taskmaster_dash.api.framework import Body, ListQuery, Resource, id_or_404, one
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_errors
from taskmaster_dash.data.api_common import Filters
from taskmaster_dash.data.error_ingest import ErrorEvent, Outcome
from taskmaster_dash.data.errors import parse_uuid
from taskmaster_dash.data.vocabulary import Category, Environment, ResolutionStatus, Severity

FingerprintPart = Annotated[str, Field(min_length=1, max_length=255)]
MAX_FUTURE = timedelta(minutes=5)  # clock skew allowed in occurred_at


ERRORS_API = Resource(__name__, "errors", read="errors:read", write="errors:write")


class ErrorCreate(Body):
    """One occurrence of an error, with the spec's column names."""

    error_code: Name50
    error_category: Category
    error_severity: Severity
    error_message: Annotated[LongText, Field(min_length=1)]
    error_details: JsonObject = {}
    stack_trace: LongText | None = None
    context_data: JsonObject = {}
    service_name: Name100 | None = None
    service_version: Name50 | None = None
    environment: Environment = "production"
    user_id: Text255 | None = None
    session_id: Text255 | None = None
    ip_address: str | None = Field(None, max_length=45, description="IPv4 or IPv6")
    user_agent: Annotated[str, Field(max_length=2000)] | None = None
    task_id: str | None = Field(None, description="a task id (UUID)")
    validation_result_id: str | None = Field(None, description="a validation result id (UUID)")
    workflow_state_id: str | None = Field(None, description="a workflow step id (UUID)")
    metadata: JsonObject = {}
    fingerprint: (
        FingerprintPart
        | Annotated[list[FingerprintPart], Field(min_length=1, max_length=20)]
        | None
    ) = Field(
        None,
        description="your own grouping key (a string or a list of strings); by default "
        "the code, service, environment, normalized message and top in-app stack frames",
    )
    occurred_at: datetime | None = Field(None, description="when it happened (default: now)")

    @field_validator("ip_address")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("not an IPv4 or IPv6 address") from None
        return value

    @field_validator("task_id", "validation_result_id", "workflow_state_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        canonical = parse_uuid(value)
        if canonical is None:
            raise ValueError("not a UUID")
        return canonical

    @field_validator("occurred_at")
    @classmethod
    def _when(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-12-02T10:00:00Z)")
        if value > datetime.now(UTC) + MAX_FUTURE:
            raise ValueError("is in the future")
        return value


class Error(BaseModel):
    """An error group: one row however many times it occurred."""

    id: str
    error_code: str
    error_category: str
    error_severity: str
    error_message: str = Field(description="the newest occurrence's message")
    error_details: Any
    stack_trace: str | None
    context_data: Any = Field(description="the newest occurrence's context")
    resolution_status: str
    resolution_notes: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    occurrence_count: int | None
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    user_id: str | None
    session_id: str | None
    ip_address: str | None
    user_agent: str | None
    environment: str | None
    service_name: str | None
    service_version: str | None
    metadata: Any
    created_at: datetime | None
    updated_at: datetime | None
    task_id: str | None
    validation_result_id: str | None
    workflow_state_id: str | None
    fingerprint: str | None = Field(description="the group's key; null for rows not grouped yet")
    regressed_at: datetime | None = Field(description="last time it came back after resolution")
    escalating_since: datetime | None
    escalating: bool = Field(description="its hourly rate is far above its own baseline")


class ErrorPosted(Error):
    outcome: Outcome = Field(
        description="created: a new group; grouped: counted on a known group; "
        "regressed: a resolved group came back and is unresolved again"
    )


class HourlyCount(BaseModel):
    bucket: datetime
    occurrences: int


class SeenIn(BaseModel):
    service_name: str | None
    service_version: str | None
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime


class ErrorDetail(Error):
    hourly: list[HourlyCount] = Field(description="occurrences per hour, the last 7 days")
    seen_in: list[SeenIn]
    folded_count: int = Field(description="rows folded into this group by group-errors")
    folded_ids: list[str] = Field(description=f"the latest {api_errors.MAX_FOLDED_IDS} of them")


class ErrorQuery(ListQuery):
    columns: ClassVar[dict[str, str | None]] = {
        "severity": "error_severity",
        "category": "error_category",
        "service": "service_name",
        "status": "resolution_status",
        "escalating": None,
        "regressed": None,
        "last_seen_from": None,
        "last_seen_to": None,
    }
    severity: CommaList[Severity] | None = None
    category: CommaList[Category] | None = None
    service: CommaList[Name100] | None = Field(None, description="service_name")
    status: CommaList[ResolutionStatus] | None = Field(None, description="resolution_status")
    error_code: CommaList[Name50] | None = None
    environment: CommaList[Environment] | None = None
    escalating: bool | None = None
    regressed: bool | None = Field(None, description="true: came back after resolution")
    last_seen_from: datetime | None = Field(None, description="last occurred at or after")
    last_seen_to: datetime | None = Field(None, description="last occurred before")

    def filters(self) -> Filters:
        filters = (
            super()
            .filters()
            .at_least("last_occurred_at", self.last_seen_from)
            .before("last_occurred_at", self.last_seen_to)
        )
        if self.escalating is not None:
            filters.clauses.append(f"escalating_since IS {'NOT ' if self.escalating else ''}NULL")
        if self.regressed is not None:
            filters.clauses.append(f"regressed_at IS {'NOT ' if self.regressed else ''}NULL")
        return filters


ERRORS_API.list_route(
    "list_errors",
    "/errors",
    "List error groups",
    "Most recently seen first; one row per group.",
    query=ErrorQuery,
    response=Error,
    listing=api_errors.ERRORS,
)


@ERRORS_API.creates(
    "/errors",
    "Record an occurrence of an error",
    body=ErrorCreate,
    response=ErrorPosted,
    errors=(400, 413),
)
def post_error(user: SessionUser, body: ErrorCreate) -> ErrorPosted:
    """Grouped by fingerprint: an open group counts it, a resolved one regresses, wont_fix
    counts and stays ignored, a duplicate counts on the error it duplicates."""
    event = ErrorEvent(**body.model_dump())
    result, row = api_errors.record_error(user.actor(), event)
    return ErrorPosted.model_validate(row | {"outcome": result.outcome})


@ERRORS_API.reads(
    "/errors/<error_id>",
    "One error group, with its hourly occurrences and where it was seen",
    ErrorDetail,
)
def get_error(user: SessionUser, error_id: str) -> ErrorDetail:
    row = api_errors.get_error(user.actor(), id_or_404(error_id, "error"))
    return one(ErrorDetail, row, "error")
