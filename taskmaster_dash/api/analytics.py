"""GET /api/v1/analytics/<page>: the rows behind every analytics panel of a page, as JSON.

The same panels the pages draw (pages/_panels.py PAGE_PANELS), each checked against its own
permission and queried as the signed-in user, so RLS applies here as on the page.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from taskmaster_dash.auth.permissions import actor_with, has_permission
from taskmaster_dash.data.db import user_message
from taskmaster_dash.pages._panels import PAGE_PANELS
from taskmaster_dash.pages._timerange import parse_query


def panels_as_json(page: str, query: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(body, HTTP status) for GET /api/v1/analytics/<page>: the rows behind every panel of the
    page the signed-in user may read, for the range and filters in `query` (the page's own URL
    keys; values it does not accept fall back to the defaults, and `view` says what was used).
    A panel whose query fails carries its message; the others are still answered."""
    meta = {"requestId": f"req_{uuid.uuid4().hex[:16]}", "timestamp": _iso(datetime.now(UTC))}
    panels = PAGE_PANELS.get(page)
    if panels is None:
        known = ", ".join(sorted(PAGE_PANELS))
        return {"error": f"No analytics named {page!r}; there are: {known}.", "meta": meta}, 404
    readable = [p for p in panels if has_permission(p.permission)]
    if not readable:
        return {"error": "Not permitted.", "meta": meta}, 403
    view = parse_query(query, page)
    window = view.window()
    answered: dict[str, Any] = {}
    for panel in readable:
        try:
            frame = panel.fetch(actor_with(panel.permission), view)
        except SQLAlchemyError as exc:
            answered[panel.id] = {"title": panel.title, "error": user_message(exc)}
            continue
        rows = json.loads(frame.to_json(orient="records", date_format="iso"))
        answered[panel.id] = {"title": panel.title, "rows": rows}
    data = {
        "view": view.query(),
        "window": {"start": _iso(window.start), "end": _iso(window.end)},
        "panels": answered,
    }
    return {"data": data, "meta": meta}, 200


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
