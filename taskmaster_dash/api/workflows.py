"""Workflow steps (the workflow_states table): /api/v1/workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from taskmaster_dash.api.fields import CommaList, JsonObject, LongText, Name100, Name255, Uuid
from taskmaster_dash.api.framework import (
    Body,
    CreatedQuery,
    Resource,
    one,
)
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_tasks
from taskmaster_dash.data.vocabulary import StepStatus

WORKFLOWS_API = Resource(__name__, "workflows", read="tasks:read", write="tasks:write")


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


class WorkflowQuery(CreatedQuery):
    workflow_id: Name255 | None = None
    task_id: Uuid | None = None
    step: Name100 | None = None
    status: CommaList[StepStatus] | None = None


WORKFLOWS_API.list_route(
    "list_workflow_states",
    "/workflows",
    "List workflow steps",
    "Newest first; filter by workflow, task, step, status and creation time.",
    query=WorkflowQuery,
    response=WorkflowState,
    listing=api_tasks.WORKFLOW_STATES,
)


@WORKFLOWS_API.creates(
    "/workflows", "Record a workflow step", body=WorkflowStateCreate, response=WorkflowState
)
def create_workflow_state(user: SessionUser, body: WorkflowStateCreate) -> WorkflowState:
    """404 when `task_id` names a task that does not exist or the caller may not see."""
    return one(WorkflowState, api_tasks.add_workflow_state(user.actor(), body.model_dump()), "task")
