"""Who may read /api/v1/metrics: Prometheus with the configured bearer token (METRICS_TOKEN),
or a signed-in user holding pools:read. Without a token configured, only signed-in users."""

from __future__ import annotations

import hmac

from flask import Response, jsonify, request

from taskmaster_dash.auth.permissions import PermissionDenied, signed_in_user

METRICS_PERMISSION = "pools:read"


def bearer_token_matches(expected: str | None) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not supplied.strip():
        return False
    return hmac.compare_digest(supplied.strip().encode(), expected.encode())


def refuse_metrics_request(expected_token: str | None) -> tuple[Response, int] | None:
    """None when the request may read the metrics; otherwise the refusal to send back."""
    if bearer_token_matches(expected_token):
        return None
    user = signed_in_user()
    if user is None:
        response = jsonify(error="sign-in or a bearer token (METRICS_TOKEN) required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response, 401
    if not user.has(METRICS_PERMISSION):
        raise PermissionDenied(METRICS_PERMISSION)
    return None
