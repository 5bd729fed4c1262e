"""Fingerprints: stable where an occurrence varies (line numbers, ids), different where the
failure differs (function, code, service)."""

from __future__ import annotations

from taskmaster_dash.data.error_fingerprint import fingerprint, normalize_message, top_frames


def python_trace(line: int, function: str = "save_task") -> str:
    return f"""Traceback (most recent call last):
  File "/srv/app/releases/41/taskmaster/api.py", line {line + 10}, in handle
    return save_task(body)
  File "/srv/app/releases/41/taskmaster/store.py", line {line}, in {function}
    cursor.execute(sql)
  File "/usr/lib/python3.12/site-packages/psycopg/cursor.py", line 732, in execute
    raise ex
psycopg.errors.QueryCanceled: canceling statement due to statement timeout"""


def error(message: str, trace: str, **changes: str) -> str:
    fields = {
        "error_code": "DB_TIMEOUT",
        "error_message": message,
        "service_name": "task-api",
        "environment": "production",
        "stack_trace": trace,
    }
    fields.update(changes)
    return fingerprint(**fields)


def test_stable_across_line_numbers_and_ids_in_the_message() -> None:
    first = error(
        "task 8b1e7c52-3f0a-4c1e-9d2b-1a2b3c4d5e6f timed out after 30 s (query 0x7f3a, 'orders')",
        python_trace(120),
    )
    second = error(
        "task 01234567-89ab-4cde-8f01-23456789abcd timed out after 45 s (query 0x1b2c, 'users')",
        python_trace(131),
    )
    assert first == second
    deployed_elsewhere = error(
        "task 8b1e7c52-3f0a-4c1e-9d2b-1a2b3c4d5e6f timed out after 30 s (query 0x7f3a, 'orders')",
        python_trace(120).replace("/srv/app/releases/41/", "/opt/build/"),
    )
    assert deployed_elsewhere == first


def test_different_function_code_or_service_is_another_group() -> None:
    base = error("timed out after 30 s", python_trace(120))
    assert error("timed out after 30 s", python_trace(120, "load_task")) != base
    assert error("timed out after 30 s", python_trace(120), error_code="DB_LOCK") != base
    assert error("timed out after 30 s", python_trace(120), service_name="worker") != base
    assert error("timed out after 30 s", python_trace(120), environment="staging") != base
    assert error("connection refused", python_trace(120)) != base


def test_frames_are_in_app_innermost_first_without_line_numbers() -> None:
    assert top_frames(python_trace(7)) == [
        "taskmaster/store.py:save_task",
        "taskmaster/api.py:handle",
    ]
    js = (
        "Error: boom\n    at saveTask (/app/src/store.js:10:5)\n    at /app/node_modules/x/y.js:1:2"
    )
    assert top_frames(js) == ["src/store.js:saveTask"]
    java = "java.lang.IllegalStateException\n\tat com.acme.Store.save(Store.java:88)"
    assert top_frames(java) == ["Store.java:com.acme.Store.save"]
    assert top_frames(None) == []


def test_message_placeholders() -> None:
    assert normalize_message('user 42 got "x" at 3.5s, id deadbeef12') == (
        "user <n> got <str> at <n>s, id <hex>"
    )
    # A plain word of hex letters is not an id.
    assert normalize_message("cafe decafbad feed") == "cafe decafbad feed"


def test_the_clients_fingerprint_wins() -> None:
    a = fingerprint(error_code="A", error_message="x", client_fingerprint="checkout-timeout")
    b = fingerprint(error_code="B", error_message="y", client_fingerprint=["checkout-timeout"])
    assert a == b and len(a) == 64
    assert a != fingerprint(error_code="A", error_message="x")
