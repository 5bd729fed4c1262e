"""The shared panel cache: a panel's data answered once for every caller who may see the same
rows, for PANEL_CACHE_SECONDS at most (and never longer than one bucket of its chart); every
rollup refresh in this process ends it (data/analytics.py refresh_rollups).

A panel's drawing (its figure or table) is kept beside its data under the same key.

The key is the panel, the view (range, filters, paging) and the caller's visibility: what RLS
decides by. That is the role (its name: current_user_sees_all_tasks() in 002 tells a
developer by it; its permissions: user_has_permission()) and, for a role whose rows RLS
filters by user, the user themself (their id, username and e-mail, which tasks_select matches
assigned_to against). The panel's permission is checked before the cache is asked
(pages/_panels.py, api/analytics.py), and only the signed-in user's own queries are cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

from taskmaster_dash.auth.permissions import signed_in_user
from taskmaster_dash.data.db import Actor
from taskmaster_dash.services import current

if TYPE_CHECKING:
    from taskmaster_dash.pages._panels import Panel
    from taskmaster_dash.pages._timerange import ViewState

T = TypeVar("T")
# Roles whose tasks RLS filters by user (002: current_user_sees_all_tasks() is false for them).
USER_FILTERED_ROLES = frozenset({"developer"})


def visibility(actor: Actor) -> Hashable | None:
    """What decides which rows `actor` reads; None (do not share) unless it is the signed-in
    user."""
    user = signed_in_user()
    if user is None or user.id != actor.user_id:
        return None
    record = user.record
    who = (
        (record.id, record.username, record.email)
        if record.role_name in USER_FILTERED_ROLES
        else None
    )
    return record.role_name, record.permissions, who


def shared(name: Hashable, actor: Actor, compute: Callable[[], T], life: float = 3600) -> T:
    """`compute()` for `actor`, shared like a panel's data (for at most `life` seconds too)
    with every caller who sees the same rows: for figures read from the rollups. The caller
    must not change what it gets."""
    cache = current().caches.panels
    seen_as = visibility(actor)
    if seen_as is None or cache.ttl <= 0:
        return compute()
    life = min(cache.ttl, life)
    return cache.get((name, seen_as, int(cache.timer() // life)), compute)


def _panel_key(panel: Panel, actor: Actor, view: ViewState) -> Hashable | None:
    """Where the panel's data for `view`, read as `actor`, is kept; None: not shared."""
    cache = current().caches.panels
    seen_as = visibility(actor)
    if seen_as is None or cache.ttl <= 0:
        return None
    life = min(cache.ttl, view.window(panel.step).bucket.total_seconds())
    slot = int(cache.timer() // life)  # a new key once a bucket has passed
    where = (view.page, view.range, view.start, view.end, view.filters, view.offset)
    return panel.id, where, seen_as, slot


def cached_panel(panel: Panel) -> Panel:
    """`panel` with its fetch answered from the services' panel cache."""
    fetch = panel.fetch

    def cached_fetch(actor: Actor, view: ViewState) -> pd.DataFrame:
        key = _panel_key(panel, actor, view)
        if key is None:
            return fetch(actor, view)
        # a copy: whoever draws it may change the frame, the next caller must get it as computed
        return current().caches.panels.get(key, lambda: fetch(actor, view)).copy()

    return dataclasses.replace(panel, fetch=cached_fetch)


def shared_drawing(panel: Panel, actor: Actor, view: ViewState, draw: Callable[[], T]) -> T:
    """`draw()` (the panel's chart or table, made from its data) shared like the data: the same
    key, so the same callers and lifetime; a cached chart is drawn once, not on every call.
    The caller must not change what it gets."""
    key = _panel_key(panel, actor, view)
    if key is None:
        return draw()
    return current().caches.panels.get(("drawn", key), draw)
