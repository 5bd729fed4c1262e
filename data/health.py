"""The spec's health checks: /api/v1/health and /api/v1/health/detailed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from data.db import Database, user_message

SLOW_DATABASE_MS = 1000
STARTED_AT = time.time()
VERSION = "0.1.0"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def basic_health(database: Database, environment: str) -> tuple[dict[str, Any], int]:
    """The spec's basic check: 503 when the database is unreachable or slower than 1 s."""
    try:
        response_ms = database.ping()
        connected = True
    except (SQLAlchemyError, OSError):
        response_ms, connected = None, False
    healthy = connected and response_ms is not None and response_ms <= SLOW_DATABASE_MS
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": _now(),
        "uptime": round(time.time() - STARTED_AT, 1),
        "version": VERSION,
        "environment": environment,
        "database": "connected" if connected else "disconnected",
        "responseTime": round(response_ms, 1) if response_ms is not None else None,
    }
    return body, 200 if healthy else 503


def detailed_health(database: Database, environment: str) -> tuple[dict[str, Any], int]:
    """Database, each pool, warnings and errors; unhealthy -> 503, degraded -> 200."""
    body, _ = basic_health(database, environment)
    warnings: list[str] = []
    errors: list[str] = []
    checks: dict[str, Any] = {
        "database": {"status": body["database"], "responseTime": body["responseTime"]}
    }
    if body["database"] == "disconnected":
        errors.append("database unreachable")
    elif body["responseTime"] > SLOW_DATABASE_MS:
        warnings.append(f"database answered in {body['responseTime']} ms (over 1 s)")
    pools: dict[str, Any] = {}
    for name, engine in database.engines.items():
        stats = database.stats[name]
        spec = database.specs[name]
        try:
            database.ping(name)
            healthy = True
            problem = None
        except SQLAlchemyError as exc:
            healthy, problem = False, user_message(exc)
        stats.healthy = healthy
        pool = engine.pool
        pools[name.value] = {
            "healthy": healthy,
            "error": problem,
            "max": spec.max_size,
            "checkedOut": pool.checkedout(),
            "statementTimeoutMs": spec.statement_timeout_ms,
            "queries": {
                "total": stats.total,
                "successful": stats.successful,
                "failed": stats.failed,
                "slow": stats.slow,
            },
        }
        if not healthy:
            warnings.append(f"pool {name.value} unhealthy")
    checks["pools"] = pools
    status = "unhealthy" if errors else "degraded" if warnings else "healthy"
    body.update(status=status, checks=checks, warnings=warnings, errors=errors)
    return body, 503 if errors else 200
