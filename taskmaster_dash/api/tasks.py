"""Tasks, their contexts and dependencies: /api/v1/tasks...

Bodies use the spec's column names. PUT changes the fields it is given (the others stay); send
the `updated_at` you read to be refused with 409 if someone changed the task since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from taskmaster_dash.api.fields import (
    CommaList,
    JsonArray,
    JsonObject,
    LongText,
    Name50,
    Name255,
    Text255,
    Uuid,
)
from taskmaster_dash.api.framework import (
    ApiError,
    Body,
    ListQuery,
    Page,
    api_route,
    conflict,
    not_found,
)
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_tasks
from taskmaster_dash.data.api_common import Filters
from taskmaster_dash.data.errors import parse_uuid

TaskStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]
ContextType = Literal[
    "requirement",
    "codebase",
    "ai_interaction",
    "validation",
    "workflow",
    "status_change",
    "completion",
    "dependency_parent",
    "dependency_child",
    "error",
    "performance",
]
DependencyType = Literal["blocks", "depends_on", "related"]
Hours = Field(None, ge=0, le=999_999.99)
# Columns that are NOT NULL (or whose null has no meaning) in tasks.
NOT_NULL = (
    "title",
    "type",
    "status",
    "priority",
    "complexity_score",
    "affected_files",
    "requirements",
    "acceptance_criteria",
    "tags",
    "metadata",
)


# --- models --------------------------------------------------------------------------------------


class TaskFields(Body):
    """The writable columns of a task."""

    title: Name255
    description: LongText | None = None
    type: Name50 = "general"
    status: TaskStatus = "pending"
    priority: int = Field(0, ge=0, le=10, description="0-10, 10 is highest")
    complexity_score: int = Field(5, ge=1, le=10)
    affected_files: JsonArray = []
    requirements: JsonArray = []
    acceptance_criteria: JsonArray = []
    parent_task_id: Uuid | None = Field(None, description="a task id")
    assigned_to: Text255 | None = Field(None, description="a username or e-mail; null: nobody")
    tags: JsonArray = []
    estimated_hours: float | None = Hours
    actual_hours: float | None = Hours
    completed_at: datetime | None = None
    metadata: JsonObject = {}


class TaskCreate(TaskFields):
    pass


class TaskUpdate(Body):
    """Any of the task's columns; those not sent keep their value."""

    title: Name255 | None = None
    description: LongText | None = None
    type: Name50 | None = None
    status: TaskStatus | None = None
    priority: int | None = Field(None, ge=0, le=10)
    complexity_score: int | None = Field(None, ge=1, le=10)
    affected_files: JsonArray | None = None
    requirements: JsonArray | None = None
    acceptance_criteria: JsonArray | None = None
    parent_task_id: Uuid | None = None
    assigned_to: Text255 | None = None
    tags: JsonArray | None = None
    estimated_hours: float | None = Hours
    actual_hours: float | None = Hours
    completed_at: datetime | None = None
    metadata: JsonObject | None = None
    updated_at: datetime | None = Field(
        None, description="the updated_at you read: 409 if the task changed since"
    )

    @field_validator(*NOT_NULL)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # null is refused only when sent; leaving the field out keeps the task's value
        if value is None:
            raise ValueError("may not be null")
        return value


class Task(BaseModel):
    id: str
    title: str
    description: str | None
    type: str
    status: str
    priority: int | None
    complexity_score: int | None
    affected_files: Any
    requirements: Any
    acceptance_criteria: Any
    parent_task_id: str | None
    assigned_to: str | None
    tags: Any
    estimated_hours: float | None
    actual_hours: float | None
    created_at: datetime | None
    updated_at: datetime | None
    completed_at: datetime | None
    metadata: Any


class TaskContext(BaseModel):
    id: str
    task_id: str
    context_type: str
    context_data: Any
    metadata: Any
    created_at: datetime | None
    updated_at: datetime | None


class TaskDetail(Task):
    contexts: list[TaskContext] = Field(description=f"the latest {api_tasks.RECENT_CONTEXTS}")
    context_count: int
    child_task_count: int = Field(description="dependencies where this task is the parent")
    dependency_count: int = Field(description="dependencies where this task is the child")


class TaskDependency(BaseModel):
    id: str
    parent_task_id: str
    child_task_id: str
    dependency_type: str
    metadata: Any
    created_at: datetime | None
    updated_at: datetime | None


class TaskQuery(ListQuery):
    status: CommaList[TaskStatus] | None = None
    type: CommaList[Name50] | None = None
    priority: int | None = Field(None, ge=0, le=10)
    priority_min: int | None = Field(None, ge=0, le=10)
    assigned_to: CommaList[Text255] | None = None
    parent_task_id: Uuid | None = None
    created_from: datetime | None = Field(None, description="created at or after (ISO 8601)")
    created_to: datetime | None = Field(None, description="created before (ISO 8601)")


class ContextCreate(Body):
    context_type: ContextType
    context_data: JsonObject = {}
    metadata: JsonObject = {}


class ContextQuery(ListQuery):
    context_type: ContextType | None = None


class DependencyCreate(Body):
    child_task_id: Uuid = Field(description="the task that this one (the parent) blocks")
    dependency_type: DependencyType = "blocks"
    metadata: JsonObject = {}


class DependencyQuery(ListQuery):
    dependency_type: DependencyType | None = None


# --- helpers -------------------------------------------------------------------------------------


def task_id_or_404(raw: str) -> str:
    canonical = parse_uuid(raw)
    if canonical is None:
        raise not_found("task")
    return canonical


def _page(rows: list[dict], total: int, model: type[BaseModel], query: ListQuery) -> Page:
    return Page([model.model_validate(r) for r in rows], total, query.limit, query.offset)


def _task_values(body: Body, fields: set[str]) -> dict[str, Any]:
    return {name: getattr(body, name) for name in fields if name != "updated_at"}


# --- routes --------------------------------------------------------------------------------------


@api_route(
    "/tasks",
    permission="tasks:read",
    tag="tasks",
    summary="List tasks",
    query=TaskQuery,
    response=Task,
    paginated=True,
)
def list_tasks(user: SessionUser, query: TaskQuery) -> Page:
    """Newest first. A developer sees only their own and unassigned tasks."""
    filters = (
        Filters()
        .any_of("status", query.status)
        .any_of("type", query.type)
        .equal("priority", query.priority)
        .at_least("priority", query.priority_min)
        .any_of("assigned_to", query.assigned_to)
        .equal("parent_task_id", query.parent_task_id)
        .at_least("created_at", query.created_from)
        .before("created_at", query.created_to)
    )
    rows, total = api_tasks.list_tasks(user.actor(), filters, query.limit, query.offset)
    return _page(rows, total, Task, query)


@api_route(
    "/tasks",
    "POST",
    permission="tasks:write",
    tag="tasks",
    summary="Create a task",
    body=TaskCreate,
    response=Task,
    status=201,
    errors=(400, 413),
)
def create_task(user: SessionUser, body: TaskCreate) -> Task:
    values = _task_values(body, set(TaskCreate.model_fields))
    return Task.model_validate(api_tasks.create_task(user.actor(), values))


@api_route(
    "/tasks/<task_id>",
    permission="tasks:read",
    tag="tasks",
    summary="One task, with its latest contexts and dependency counts",
    response=TaskDetail,
    errors=(404,),
)
def get_task(user: SessionUser, task_id: str) -> TaskDetail:
    row = api_tasks.get_task(user.actor(), task_id_or_404(task_id))
    if row is None:
        raise not_found("task")
    return TaskDetail.model_validate(row)


@api_route(
    "/tasks/<task_id>",
    "PUT",
    permission="tasks:write",
    tag="tasks",
    summary="Change a task",
    body=TaskUpdate,
    response=Task,
    errors=(400, 404, 409, 413),
)
def update_task(user: SessionUser, task_id: str, body: TaskUpdate) -> Task:
    """Only the fields sent change. With `updated_at` (as read), 409 if the task changed since."""
    canonical = task_id_or_404(task_id)
    values = _task_values(body, body.model_fields_set)
    if values.get("parent_task_id") == canonical:
        raise ApiError(
            400,
            "validation_failed",
            "A task cannot be its own parent.",
            {"parent_task_id": "the task itself"},
        )
    try:
        row = api_tasks.update_task(user.actor(), canonical, values, body.updated_at)
    except api_tasks.StaleUpdate:
        raise conflict(
            "The task changed after the updated_at you sent; read it again.",
            {"updated_at": "stale"},
        ) from None
    if row is None:
        raise not_found("task")
    return Task.model_validate(row)


@api_route(
    "/tasks/<task_id>",
    "DELETE",
    permission="tasks:write",
    tag="tasks",
    summary="Delete a task (its contexts, dependencies and validations go with it)",
    status=204,
    errors=(404,),
)
def delete_task(user: SessionUser, task_id: str) -> None:
    if not api_tasks.delete_task(user.actor(), task_id_or_404(task_id)):
        raise not_found("task")


@api_route(
    "/tasks/<task_id>/contexts",
    permission="tasks:read",
    tag="tasks",
    summary="A task's contexts",
    query=ContextQuery,
    response=TaskContext,
    paginated=True,
    errors=(404,),
)
def list_contexts(user: SessionUser, task_id: str, query: ContextQuery) -> Page:
    filters = Filters().equal("context_type", query.context_type)
    found = api_tasks.list_contexts(
        user.actor(), task_id_or_404(task_id), filters, query.limit, query.offset
    )
    if found is None:
        raise not_found("task")
    return _page(*found, TaskContext, query)


@api_route(
    "/tasks/<task_id>/contexts",
    "POST",
    permission="tasks:write",
    tag="tasks",
    summary="Add a context to a task",
    body=ContextCreate,
    response=TaskContext,
    status=201,
    errors=(400, 404, 413),
)
def add_context(user: SessionUser, task_id: str, body: ContextCreate) -> TaskContext:
    row = api_tasks.add_context(user.actor(), task_id_or_404(task_id), body.model_dump())
    if row is None:
        raise not_found("task")
    return TaskContext.model_validate(row)


@api_route(
    "/tasks/<task_id>/dependencies",
    permission="tasks:read",
    tag="tasks",
    summary="A task's dependencies (it is the parent or the child)",
    query=DependencyQuery,
    response=TaskDependency,
    paginated=True,
    errors=(404,),
)
def list_dependencies(user: SessionUser, task_id: str, query: DependencyQuery) -> Page:
    filters = Filters().equal("dependency_type", query.dependency_type)
    found = api_tasks.list_dependencies(
        user.actor(), task_id_or_404(task_id), filters, query.limit, query.offset
    )
    if found is None:
        raise not_found("task")
    return _page(*found, TaskDependency, query)


@api_route(
    "/tasks/<task_id>/dependencies",
    "POST",
    permission="tasks:write",
    tag="tasks",
    summary="Make this task (the parent) block another (child_task_id)",
    body=DependencyCreate,
    response=TaskDependency,
    status=201,
    errors=(400, 404, 409, 413),
)
def add_dependency(user: SessionUser, task_id: str, body: DependencyCreate) -> TaskDependency:
    """409 when the child already leads back to this task (a cycle), or the same dependency
    exists."""
    parent = task_id_or_404(task_id)
    child = body.child_task_id
    if child == parent:
        raise ApiError(
            400,
            "validation_failed",
            "A task cannot depend on itself.",
            {"child_task_id": "the task itself"},
        )
    try:
        row = api_tasks.add_dependency(
            user.actor(), parent, child, body.dependency_type, body.metadata
        )
    except api_tasks.DependencyCycle:
        raise conflict(
            "That dependency would make a cycle: the child already leads back to this task.",
            {"child_task_id": "would make a cycle"},
        ) from None
    if row is None:
        raise not_found("task")
    return TaskDependency.model_validate(row)
