"""The spec's health checks: /api/v1/health and /api/v1/health/detailed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.data.db import get_database, user_message
from taskmaster_dash.data.prometheus import get_prometheus

SLOW_DATABASE_MS = 1000
MAX_WAITING = 5  # the original's warning: more than 5 clients waiting for a connection
STARTED_AT = time.time()
VERSION = "0.1.0"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def basic_health(environment: str) -> tuple[dict[str, Any], int]:
    """The spec's basic check: 503 when the database is unreachable or slower than 1 s."""
    try:
        response_ms = get_database().ping()
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


def detailed_health(environment: str) -> tuple[dict[str, Any], int]:
    """Database, each pool, warnings and errors; unhealthy -> 503, degraded -> 200."""
    database = get_database()
    body, _ = basic_health(environment)
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
    for name in database.engines:
        stats = database.stats[name]
        spec = database.specs[name]
        try:
            database.ping(name)
            healthy = True
            problem = None
        except SQLAlchemyError as exc:
            healthy, problem = False, user_message(exc)
        stats.healthy = healthy
        pool = database.pool(name)
        pools[name.value] = {
            "healthy": healthy,
            "error": problem,
            "max": spec.max_size,
            "checkedOut": pool.checkedout(),
            "waiting": getattr(pool, "waiting", 0),
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
        if pools[name.value]["waiting"] > MAX_WAITING:
            warnings.append(f"pool {name.value}: {pools[name.value]['waiting']} clients waiting")
    checks["pools"] = pools
    checks["prometheus"] = prometheus_check()
    if checks["prometheus"]["status"] == "unreachable":
        warnings.append(f"prometheus unreachable at {checks['prometheus']['url']}")
    status = "unhealthy" if errors else "degraded" if warnings else "healthy"
    body.update(status=status, checks=checks, warnings=warnings, errors=errors)
    return body, 503 if errors else 200


def prometheus_check() -> dict[str, Any]:
    """Prometheus on its own: disabled, up or unreachable (never an error: pages degrade)."""
    reader = get_prometheus()
    if reader is None:
        return {"status": "disabled", "url": None}
    return {"status": "up" if reader.healthy() else "unreachable", "url": reader.url}
