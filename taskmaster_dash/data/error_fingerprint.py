"""An error's fingerprint: what makes two occurrences "the same error" (issue 14).

The client's own `fingerprint` wins when given (a string or a list of strings, as in Sentry).
Otherwise it is a hash of the error code, service, environment, the message with its variable
parts (numbers, uuids, hex ids, quoted values) replaced by placeholders, and the top in-app
frames of the stack trace as file and function, never line numbers: a deploy that moves code
by a few lines, or the same failure for another task id, stays in its group, while the same
code failing in another function is another group.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

TOP_FRAMES = 5
_SEPARATOR = "\x1f"

# Order matters: quoted values first (they may hold numbers), then ids, then bare numbers.
_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`"), "<str>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    # A hex id: 8+ hex characters with at least one digit and one letter (not a plain word).
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:[.,]\d+)*"), "<n>"),
)
_SPACES = re.compile(r"\s+")

# Stack frames: Python `File "a/b.py", line 3, in func`; JavaScript `at func (a/b.js:3:7)` or
# `at a/b.js:3:7`; Java `at pkg.Class.method(Class.java:3)`.
_PYTHON_FRAME = re.compile(r'File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')
_JS_FRAME = re.compile(r"^\s*at (?:(?P<func>[^\s(]+) \()?(?P<file>[^\s()]+?)(?::\d+){1,2}\)?\s*$")
_JAVA_FRAME = re.compile(r"^\s*at (?P<func>[\w$.<>]+)\((?P<file>[^:)]+)(?::\d+)?\)\s*$")
_NOT_IN_APP = re.compile(
    r"(site-packages|dist-packages|node_modules|/lib/python\d|<frozen |^internal/|^node:"
    r"|^java\.|^javax\.|^sun\.|^jdk\.)"
)


@dataclass(frozen=True)
class Frame:
    file: str
    function: str

    @property
    def in_app(self) -> bool:
        return not (_NOT_IN_APP.search(self.file) or _NOT_IN_APP.search(self.function))


def normalize_message(message: str) -> str:
    """The message with its variable parts replaced: `task 42 'abc' failed` -> `task <n> <str>
    failed`."""
    for pattern, placeholder in _PLACEHOLDERS:
        message = pattern.sub(placeholder, message)
    return _SPACES.sub(" ", message).strip()


def _short_path(path: str) -> str:
    """The last two parts of a path: the same file deployed under another root stays the same."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    return "/".join(parts[-2:])


def stack_frames(stack_trace: str | None) -> list[Frame]:
    """The frames of a trace, innermost (where it failed) first."""
    if not stack_trace:
        return []
    python = [Frame(m["file"], m["func"]) for m in _PYTHON_FRAME.finditer(stack_trace)]
    if python:
        return python[::-1]  # Python prints the innermost frame last
    frames = []
    for line in stack_trace.splitlines():
        match = _JAVA_FRAME.match(line) or _JS_FRAME.match(line)
        if match:
            frames.append(Frame(match["file"], match["func"] or "<anonymous>"))
    return frames


def top_frames(stack_trace: str | None, limit: int = TOP_FRAMES) -> list[str]:
    """The innermost in-app frames as `file:function` (all frames when none is in-app)."""
    frames = stack_frames(stack_trace)
    chosen = [f for f in frames if f.in_app] or frames
    return [f"{_short_path(f.file)}:{f.function}" for f in chosen[:limit]]


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256(_SEPARATOR.join(parts).encode()).hexdigest()


def fingerprint(
    *,
    error_code: str,
    error_message: str,
    service_name: str | None = None,
    environment: str | None = None,
    stack_trace: str | None = None,
    client_fingerprint: str | Sequence[str] | None = None,
) -> str:
    """64 hex characters naming the error's group."""
    if client_fingerprint:
        given = [client_fingerprint] if isinstance(client_fingerprint, str) else client_fingerprint
        return _digest(["client", *given])
    return _digest(
        [
            "v1",
            error_code,
            service_name or "",
            environment or "production",
            normalize_message(error_message),
            *top_frames(stack_trace),
        ]
    )


class ErrorText(Protocol):
    """The columns a fingerprint reads: an ErrorEvent being ingested, or an error_logs row."""

    @property
    def error_code(self) -> str: ...
    @property
    def error_message(self) -> str: ...
    @property
    def service_name(self) -> str | None: ...
    @property
    def environment(self) -> str | None: ...
    @property
    def stack_trace(self) -> str | None: ...


def fingerprint_of(error: ErrorText, client_fingerprint: str | Sequence[str] | None) -> str:
    """`error`'s fingerprint. Ingest and the grouping of older rows both take it from here, so
    that they name the same group for the same error."""
    return fingerprint(
        error_code=error.error_code,
        error_message=error.error_message,
        service_name=error.service_name,
        environment=error.environment,
        stack_trace=error.stack_trace,
        client_fingerprint=client_fingerprint,
    )
