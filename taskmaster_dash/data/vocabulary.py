"""The spec's allowed values (the CHECK constraints in sql/migrations/001_schema.sql), kept in one
place: each as a `Literal` type (the REST API's bodies and queries) and as a tuple of its values
(filters, whitelists, generators, adoption checks)."""

from __future__ import annotations

from typing import Literal, get_args

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
StepStatus = Literal["pending", "running", "completed", "failed", "skipped"]
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
Severity = Literal["critical", "high", "medium", "low", "info"]
Category = Literal[
    "database",
    "validation",
    "workflow",
    "integration",
    "authentication",
    "authorization",
    "network",
    "configuration",
    "business_logic",
    "system",
]
ResolutionStatus = Literal["unresolved", "investigating", "resolved", "wont_fix", "duplicate"]
Environment = Literal["production", "staging", "testing", "development"]

TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)
CONTEXT_TYPES: tuple[str, ...] = get_args(ContextType)
DEPENDENCY_TYPES: tuple[str, ...] = get_args(DependencyType)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
VALIDATION_TYPES: tuple[str, ...] = get_args(ValidationType)
VALIDATION_STATUSES: tuple[str, ...] = get_args(ValidationStatus)
SEVERITIES: tuple[str, ...] = get_args(Severity)
CATEGORIES: tuple[str, ...] = get_args(Category)
RESOLUTION_STATUSES: tuple[str, ...] = get_args(ResolutionStatus)
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)
