"""Security headers on every response: pages, the sign-in form, the API, assets.

The Content-Security-Policy allows scripts from this server and Dash's own inline scripts (by
hash, `app.csp_hashes()`), nothing else: no inline script an attacker could inject, no plugins,
no <base> rewriting, no framing by another site. Styles may be inline: Dash components and
Plotly set them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import Flask, request

HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(script_hashes: Sequence[str]) -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def init_security_headers(server: Flask, script_hashes: Callable[[], Sequence[str]]) -> None:
    """`script_hashes` is asked once, at the first response, when every inline script is known."""
    policy: list[str] = []

    @server.after_request
    def add_security_headers(response):
        if not policy:
            policy.append(content_security_policy(script_hashes()))
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy[0])
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # same-origin keeps the Referer that Flask-WTF checks on HTTPS form posts.
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
