"""Workflow steps (the workflow_states table): /api/v1/workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from taskmaster_dash.api.fields import CommaList, JsonObject, LongText, Name100, Name255, Uuid
from taskmaster_dash.api.framework import Body, ListQuery, Page, api_route, not_found
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_tasks
from taskmaster_dash.data.api_common import Filters

StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]


class WorkflowStateCreate(Body):
    workflow_id: Name255 = Field(description="the workflow run this step belongs to")
    task_id: Uuid | None = Field(None, description="the task it works on, if any")
    step: Name100
    status: StepStatus = "pending"
    result: JsonObject = {}
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: LongText | None = None
    retry_count: int = Field(0, ge=0, le=2_147_483_647)
    metadata: JsonObject = {}


class WorkflowState(BaseModel):
    id: str
    workflow_id: str
    task_id: str | None
    step: str
    status: str
    result: Any
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    retry_count: int | None
    metadata: Any
    created_at: datetime | None
    updated_at: datetime | None


class WorkflowQuery(ListQuery):
    workflow_id: Name255 | None = None
    task_id: Uuid | None = None
    step: Name100 | None = None
    status: CommaList[StepStatus] | None = None
    created_from: datetime | None = Field(None, description="created at or after (ISO 8601)")
    created_to: datetime | None = Field(None, description="created before (ISO 8601)")


@api_route(
    "/workflows",
    permission="tasks:read",
    tag="workflows",
    summary="List workflow steps",
    query=WorkflowQuery,
    response=WorkflowState,
    paginated=True,
)
def list_workflow_states(user: SessionUser, query: WorkflowQuery) -> Page:
    """Newest first; filter by workflow, task, step, status and creation time."""
    filters = (
        Filters()
        .equal("workflow_id", query.workflow_id)
        .equal("task_id", query.task_id)
        .equal("step", query.step)
        .any_of("status", query.status)
        .at_least("created_at", query.created_from)
        .before("created_at", query.created_to)
    )
    rows, total = api_tasks.list_workflow_states(user.actor(), filters, query.limit, query.offset)
    return Page([WorkflowState.model_validate(r) for r in rows], total, query.limit, query.offset)


@api_route(
    "/workflows",
    "POST",
    permission="tasks:write",
    tag="workflows",
    summary="Record a workflow step",
    body=WorkflowStateCreate,
    response=WorkflowState,
    status=201,
    errors=(400, 404, 413),
)
def create_workflow_state(user: SessionUser, body: WorkflowStateCreate) -> WorkflowState:
    """404 when `task_id` names a task that does not exist or the caller may not see."""
    values = body.model_dump()
    row = api_tasks.add_workflow_state(user.actor(), values)
    if row is None:
        raise not_found("task")
    return WorkflowState.model_validate(row)
