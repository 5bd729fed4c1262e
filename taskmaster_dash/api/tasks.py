"""Tasks, their contexts and dependencies: /api/v1/tasks...

Bodies use the spec's column names. PUT changes the fields it is given (the others stay); send
the `updated_at` you read to be refused with 409 if someone changed the task since.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field

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
    CreatedQuery,
    ListQuery,
    Page,
    Resource,
    accepts_none,
    as_page,
    conflict,
    id_or_404,
    not_found,
    one,
    refuse_null,
    sent_values,
    unchanged_since,
    updated,
)
from taskmaster_dash.auth.permissions import SessionUser
from taskmaster_dash.data import api_tasks
from taskmaster_dash.data.api_common import Filters
from taskmaster_dash.data.vocabulary import ContextType, DependencyType, TaskStatus

Hours = Field(None, ge=0, le=999_999.99)


# --- models --------------------------------------------------------------------------------------


TASKS_API = Resource(__name__, "tasks", read="tasks:read", write="tasks:write")


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


# The columns that are NOT NULL (or whose null has no meaning): those TaskFields does not let be
# null.
NOT_NULL = tuple(
    name for name, info in TaskFields.model_fields.items() if not accepts_none(info.annotation)
)


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
    updated_at: datetime | None = unchanged_since("task")

    _not_null = refuse_null(*NOT_NULL)


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


class TaskQuery(CreatedQuery):
    columns: ClassVar[dict[str, str | None]] = {"priority_min": None}
    status: CommaList[TaskStatus] | None = None
    type: CommaList[Name50] | None = None
    priority: int | None = Field(None, ge=0, le=10)
    priority_min: int | None = Field(None, ge=0, le=10)
    assigned_to: CommaList[Text255] | None = None
    parent_task_id: Uuid | None = None

    def filters(self) -> Filters:
        return super().filters().at_least("priority", self.priority_min)


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


def _task_list(
    rule: str, summary: str, query: type[ListQuery], response: type[BaseModel]
) -> Callable[[Callable[..., Page]], Callable[..., Page]]:
    """A list of what belongs to a task (the handler returns `_task_page`): 404 when the task
    is missing or hidden."""
    return TASKS_API.lists(rule, summary, query=query, response=response, errors=(404,))


def _task_page(
    model: type[BaseModel],
    read: Callable[..., tuple[list[dict], int] | None],
    user: SessionUser,
    task_id: str,
    query: ListQuery,
) -> Page:
    """One page of what belongs to a task; 404 when the task is missing or hidden."""
    canonical = id_or_404(task_id, "task")
    found = read(user.actor(), canonical, query.filters(), query.limit, query.offset)
    return as_page(model, query, found, "task")


# --- routes --------------------------------------------------------------------------------------


TASKS_API.list_route(
    "list_tasks",
    "/tasks",
    "List tasks",
    "Newest first. A developer sees only their own and unassigned tasks.",
    query=TaskQuery,
    response=Task,
    listing=api_tasks.TASKS,
)


@TASKS_API.creates("/tasks", "Create a task", body=TaskCreate, response=Task, errors=(400, 413))
def create_task(user: SessionUser, body: TaskCreate) -> Task:
    values = sent_values(body, TaskCreate.model_fields)
    return Task.model_validate(api_tasks.create_task(user.actor(), values))


@TASKS_API.reads(
    "/tasks/<task_id>", "One task, with its latest contexts and dependency counts", TaskDetail
)
def get_task(user: SessionUser, task_id: str) -> TaskDetail:
    return one(TaskDetail, api_tasks.get_task(user.actor(), id_or_404(task_id, "task")), "task")


@TASKS_API.changes("/tasks/<task_id>", "Change a task", body=TaskUpdate, response=Task)
def update_task(user: SessionUser, task_id: str, body: TaskUpdate) -> Task:
    """Only the fields sent change. With `updated_at` (as read), 409 if the task changed since."""
    canonical = id_or_404(task_id, "task")
    values = sent_values(body)
    if values.get("parent_task_id") == canonical:
        raise ApiError(
            400,
            "validation_failed",
            "A task cannot be its own parent.",
            {"parent_task_id": "the task itself"},
        )
    return updated(
        Task,
        "task",
        lambda: api_tasks.update_task(user.actor(), canonical, values, body.updated_at),
    )


@TASKS_API.route(
    "DELETE",
    "/tasks/<task_id>",
    "Delete a task (its contexts, dependencies and validations go with it)",
    status=204,
    errors=(404,),
)
def delete_task(user: SessionUser, task_id: str) -> None:
    if not api_tasks.delete_task(user.actor(), id_or_404(task_id, "task")):
        raise not_found("task")


@_task_list(
    "/tasks/<task_id>/contexts", "A task's contexts", query=ContextQuery, response=TaskContext
)
def list_contexts(user: SessionUser, task_id: str, query: ContextQuery) -> Page:
    return _task_page(TaskContext, api_tasks.list_contexts, user, task_id, query)


@TASKS_API.creates(
    "/tasks/<task_id>/contexts", "Add a context to a task", body=ContextCreate, response=TaskContext
)
def add_context(user: SessionUser, task_id: str, body: ContextCreate) -> TaskContext:
    row = api_tasks.add_context(user.actor(), id_or_404(task_id, "task"), body.model_dump())
    return one(TaskContext, row, "task")


@_task_list(
    "/tasks/<task_id>/dependencies",
    "A task's dependencies (it is the parent or the child)",
    query=DependencyQuery,
    response=TaskDependency,
)
def list_dependencies(user: SessionUser, task_id: str, query: DependencyQuery) -> Page:
    return _task_page(TaskDependency, api_tasks.list_dependencies, user, task_id, query)


@TASKS_API.creates(
    "/tasks/<task_id>/dependencies",
    "Make this task (the parent) block another (child_task_id)",
    body=DependencyCreate,
    response=TaskDependency,
    errors=(400, 404, 409, 413),
)
def add_dependency(user: SessionUser, task_id: str, body: DependencyCreate) -> TaskDependency:
    """409 when the child already leads back to this task (a cycle), or the same dependency
    exists."""
    parent = id_or_404(task_id, "task")
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
    return one(TaskDependency, row, "task")
