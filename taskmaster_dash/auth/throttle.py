"""The per-client throttle (flask-limiter): failed sign-ins and wrong API keys per client address,
and API requests per key. Over a limit the answer is 429 with Retry-After, before any password or
key is checked.

Counts live in memory (one process), or in Redis when REDIS_URL is set, so that every worker and
host shares them. The client address is request.remote_addr, which honours TRUSTED_PROXY_COUNT.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit

from taskmaster_dash.data.config import Settings

FAILURES = "auth-failures"
API_REQUESTS = "api-requests"
TOO_MANY_SIGN_INS = "Too many failed sign-ins from your address. Try again in {seconds} seconds."


@dataclass(frozen=True)
class ThrottlePolicy:
    failures_per_minute: int  # failed sign-ins and wrong API keys, per client address
    api_requests_per_minute: int  # per API key
    storage_uri: str = "memory://"

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        """THROTTLE_FAILURES_PER_MINUTE, THROTTLE_API_REQUESTS_PER_MINUTE and REDIS_URL."""
        return cls(
            settings.throttle_failures_per_minute,
            settings.throttle_api_requests_per_minute,
            settings.redis_url or cls.storage_uri,
        )


def _policy() -> ThrottlePolicy:
    return current_app.config["THROTTLE_POLICY"]


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _api_key() -> str | None:
    """The X-API-Key of an API request (the only place keys are accepted)."""
    if not request.path.startswith(current_app.config["ROUTES_PREFIX"] + "api/v1/"):
        return None
    return request.headers.get("X-API-Key") or None


def _is_sign_in() -> bool:
    return request.method == "POST" and request.endpoint == "auth.login"


def _api_key_bucket() -> str:
    return hashlib.sha256((_api_key() or "").encode()).hexdigest()


def _refuse(limit: RequestLimit) -> Response:
    seconds = max(1, math.ceil(limit.window.reset_time - time.time()))
    if _is_sign_in():
        response = current_app.config["THROTTLE_SIGN_IN_PAGE"](
            TOO_MANY_SIGN_INS.format(seconds=seconds), 429
        )
    else:
        response = jsonify(error="too many requests", retryAfter=seconds)
        response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


limiter = Limiter(
    key_func=_client_address,
    application_limits=[
        # Only answers of 401 count: a client may sign in or call the API as often as it
        # likes, but may guess only so often.
        ApplicationLimit(
            lambda: f"{_policy().failures_per_minute}/minute",
            key_function=_client_address,
            scope=FAILURES,
            exempt_when=lambda: not (_is_sign_in() or _api_key()),
            deduct_when=lambda response: response.status_code == 401,
        ),
        ApplicationLimit(
            lambda: f"{_policy().api_requests_per_minute}/minute",
            key_function=_api_key_bucket,
            scope=API_REQUESTS,
            exempt_when=lambda: not _api_key(),
        ),
    ],
    strategy="moving-window",
    on_breach=_refuse,
)


def init_throttle(
    server: Flask, policy: ThrottlePolicy, sign_in_page: Callable[[str, int], Response]
) -> None:
    """`sign_in_page(message, status)`: the sign-in form a throttled sign-in is answered with."""
    server.config["THROTTLE_POLICY"] = policy
    server.config["THROTTLE_SIGN_IN_PAGE"] = sign_in_page
    server.config["RATELIMIT_STORAGE_URI"] = policy.storage_uri
    # Redis away: keep throttling in this process rather than failing every request.
    server.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = policy.storage_uri != "memory://"
    limiter.init_app(server)


def reset_throttle() -> None:
    """Forget every count (tests, which all come from one address)."""
    if limiter.initialized:
        limiter.reset()
