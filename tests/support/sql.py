"""Reading the database behind the app, as its owner (no RLS), to check what a page shows."""

from __future__ import annotations

from typing import Any

from dash.testing.wait import until
from sqlalchemy import text


def scalar(engine, sql: str, **params) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def column(engine, sql: str, **params) -> list[Any]:
    """The first column of every row, e.g. the ids a query finds, in its order."""
    with engine.connect() as conn:
        return list(conn.scalars(text(sql), params))


def all_rows(engine, sql: str, **params) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def one_row(engine, sql: str, **params) -> dict[str, Any]:
    """The single row `sql` finds (an error when there is not exactly one)."""
    with engine.connect() as conn:
        return dict(conn.execute(text(sql), params).mappings().one())


def count_rows(engine, table: str, where: str = "true", **params) -> int:
    return scalar(engine, f"SELECT count(*) FROM {table} WHERE {where}", **params)


def one_tuple(engine, sql: str, **params) -> tuple[Any, ...]:
    """The values of the single row `sql` finds, for unpacking."""
    with engine.connect() as conn:
        return tuple(conn.execute(text(sql), params).one())


def tuples(engine, sql: str, **params) -> list[tuple[Any, ...]]:
    """Every row `sql` finds, as plain tuples (to compare with a literal list)."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def execute(engine, *statements: str) -> None:
    """Run `statements` (SQL without parameters), in order, in one committed transaction."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def write_row(engine, sql: str, **params) -> Any:
    """Run one statement that writes and RETURNING one row, committed; the row."""
    with engine.begin() as conn:
        return conn.execute(text(sql), params).one()


def terminate_backend(engine, pid: int) -> None:
    """End the server process `pid` from the server's side, as a restart would, and wait until
    it has gone."""
    assert scalar(engine, "SELECT pg_terminate_backend(:pid)", pid=pid)
    until(lambda: count_rows(engine, "pg_stat_activity", "pid = :pid", pid=pid) == 0, 10)
