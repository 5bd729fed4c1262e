"""The spec's allowed values (the CHECK constraints in sql/migrations/001_schema.sql), kept in one
place for filters, whitelists and generators."""

from __future__ import annotations

TASK_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
VALIDATION_TYPES = (
    "syntax",
    "security",
    "performance",
    "style",
    "testing",
    "integration",
    "deployment",
    "compliance",
    "documentation",
)
VALIDATION_STATUSES = ("pending", "running", "passed", "failed", "warning", "skipped", "error")
SEVERITIES = ("critical", "high", "medium", "low", "info")
CATEGORIES = (
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
)
RESOLUTION_STATUSES = ("unresolved", "investigating", "resolved", "wont_fix", "duplicate")
ENVIRONMENTS = ("production", "staging", "testing", "development")
