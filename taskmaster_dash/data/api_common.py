"""Paged, filtered reads for the REST API: one place that builds the WHERE clause from a
resource's known columns and counts the total, in the caller's transaction (so RLS applies to
the page and the total alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from taskmaster_dash.data.db import Actor, PoolName, get_database


class StaleUpdate(Exception):
    """The row changed after the `updated_at` the client sent."""


@dataclass
class Filters:
    """AND-ed conditions on columns named by the code (never by the request); values are bound
    parameters."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def _param(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return name

    def equal(self, column: str, value: Any) -> Filters:
        if value is not None:
            self.clauses.append(f"{column} = :{self._param(value)}")
        return self

    def any_of(self, column: str, values: list[Any] | None) -> Filters:
        if values and len(values) == 1:
            return self.equal(column, values[0])  # `=` lets an index on (column, time) order
        if values:
            self.clauses.append(f"{column} = ANY(:{self._param(list(values))})")
        return self

    def at_least(self, column: str, value: Any) -> Filters:
        if value is not None:
            self.clauses.append(f"{column} >= :{self._param(value)}")
        return self

    def before(self, column: str, value: Any) -> Filters:
        if value is not None:
            self.clauses.append(f"{column} < :{self._param(value)}")
        return self

    def where(self) -> str:
        return ("WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


@dataclass(frozen=True)
class Listing:
    """One resource's list: the columns it answers with, its table and its order (newest
    first unless said)."""

    select: str
    from_: str
    order_by: str = "created_at DESC, id DESC"

    def page(
        self, conn: Connection, filters: Filters, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """(the rows of one page, how many rows match in all)."""
        where = filters.where()
        rows = [
            dict(r)
            for r in conn.execute(
                text(
                    f"SELECT {self.select} FROM {self.from_} {where} ORDER BY {self.order_by}"
                    " LIMIT :page_limit OFFSET :page_offset"
                ),
                {**filters.params, "page_limit": limit, "page_offset": offset},
            ).mappings()
        ]
        if offset == 0 and len(rows) < limit:
            return rows, len(rows)  # the whole result is on this page: no second scan
        total = conn.scalar(text(f"SELECT count(*) FROM {self.from_} {where}"), filters.params)
        return rows, int(total or 0)

    def read(
        self, actor: Actor, filters: Filters, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page as the caller (RLS applies), in its own read transaction."""
        with get_database().transaction(PoolName.READ, actor) as conn:
            return self.page(conn, filters, limit, offset)
