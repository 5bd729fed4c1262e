"""A typical reported error, the base that error tests vary with `dataclasses.replace`."""

from __future__ import annotations

from taskmaster_dash.data.error_ingest import ErrorEvent

DB_TIMEOUT = ErrorEvent(
    error_code="DB_TIMEOUT",
    error_category="database",
    error_severity="high",
    error_message="task 8b1e7c52-3f0a-4c1e-9d2b-1a2b3c4d5e6f timed out after 30 s",
    service_name="task-api",
    service_version="1.4.0",
    stack_trace='File "app/store.py", line 12, in save_task',
)
