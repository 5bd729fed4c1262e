"""Errors written straight into error_logs as the owner, as a service logs them, for the tests
that need a history behind a chart or a rule's preview."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, text

from taskmaster_dash.data.analytics import refresh_rollups


def log_errors(owner_engine: Engine, logged: Iterable[tuple[str, datetime]]) -> None:
    """One error E1 (system, high, "burst") per (service name, time logged), then the analytics
    rollups refreshed (the app's refresher would, within a minute): what the charts and the
    rule previews read."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO error_logs (error_code, error_category, error_severity,
                       error_message, service_name, created_at)
                   VALUES ('E1', 'system', 'high', 'burst', :s, :t)"""
            ),
            [{"s": service, "t": at} for service, at in logged],
        )
    refresh_rollups(None)
