"""`taskmaster-dash group-errors`: fold rows written before grouping (demo data, an adopted
database) into one group per fingerprint, keeping every row's information.

Each batch (one transaction) takes the next rows without a fingerprint, in id order, computes
their fingerprints (data/error_fingerprint.py; a client's fingerprint in metadata.fingerprint is
honoured) and, per fingerprint, keeps one row as the group: an open one first, then the most
recently seen, then the highest id. The others are folded into it: counts summed, first and
last seen widened, the newest row's context kept, each folded row stored whole in
error_group_folds (its history), its hourly and version counts added to the group's, and the row
removed. A legacy row's occurrences go into the hourly table as one at its first hour and the
rest at its last (all we know). An interrupted run loses only its current batch; running again
continues with the same batches, so the result is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from taskmaster_dash.data.error_fingerprint import fingerprint_of
from taskmaster_dash.data.error_ingest import CONTEXT_COLUMNS, OPEN_STATUSES

DEFAULT_BATCH = 5_000


@dataclass
class GroupingReport:
    batches: int = 0
    rows_seen: int = 0
    rows_folded: int = 0
    groups_touched: set[str] = field(default_factory=set)


def _client_fingerprint(metadata: Any) -> str | list[str] | None:
    given = metadata.get("fingerprint") if isinstance(metadata, dict) else None
    if isinstance(given, str) or (
        isinstance(given, list) and all(isinstance(g, str) for g in given)
    ):
        return given or None
    return None


def _rank(row: Any) -> tuple[bool, Any, str]:
    return (row.resolution_status in OPEN_STATUSES, row.last_occurred_at, str(row.id))


_BATCH = text(
    "SELECT id, error_code, error_message, service_name, environment, stack_trace, metadata,"
    " resolution_status, last_occurred_at FROM error_logs"
    " WHERE fingerprint IS NULL AND id > CAST(:after AS uuid) ORDER BY id LIMIT :n FOR UPDATE"
)
_EXISTING = text(
    "SELECT id, fingerprint, resolution_status, last_occurred_at FROM error_logs"
    " WHERE fingerprint = ANY (CAST(:fps AS text[])) FOR UPDATE"
)
_MAP = "unnest(CAST(:folded AS uuid[]), CAST(:targets AS uuid[])) AS m (folded_id, target_id)"
# A legacy row's occurrences, under its group: one at its first hour, the rest at its last.
_LEGACY_HOURS = text(f"""
INSERT INTO error_occurrence_hourly (error_id, bucket, occurrences)
SELECT m.target_id, s.bucket, sum(s.n)
FROM {_MAP}
JOIN error_logs x ON x.id = m.folded_id
CROSS JOIN LATERAL (VALUES
    (date_trunc('hour', x.first_occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1),
    (date_trunc('hour', x.last_occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
     x.occurrence_count - 1)) AS s (bucket, n)
WHERE s.n > 0 AND s.bucket IS NOT NULL
GROUP BY 1, 2
ON CONFLICT (error_id, bucket)
    DO UPDATE SET occurrences = error_occurrence_hourly.occurrences + EXCLUDED.occurrences""")
_LEGACY_VERSIONS = text(f"""
INSERT INTO error_group_versions
    (error_id, service_name, service_version, occurrences, first_seen_at, last_seen_at)
SELECT m.target_id, COALESCE(x.service_name, ''), COALESCE(x.service_version, ''),
       sum(x.occurrence_count), min(COALESCE(x.first_occurred_at, x.created_at, now())),
       max(COALESCE(x.last_occurred_at, x.created_at, now()))
FROM {_MAP} JOIN error_logs x ON x.id = m.folded_id
GROUP BY 1, 2, 3
ON CONFLICT (error_id, service_name, service_version) DO UPDATE SET
    occurrences = error_group_versions.occurrences + EXCLUDED.occurrences,
    first_seen_at = LEAST(error_group_versions.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = GREATEST(error_group_versions.last_seen_at, EXCLUDED.last_seen_at)""")
# A grouped row folded into another group: its counts move with it.
_MOVE = (
    text(f"""
INSERT INTO error_occurrence_hourly (error_id, bucket, occurrences)
SELECT m.target_id, h.bucket, sum(h.occurrences)
FROM {_MAP} JOIN error_occurrence_hourly h ON h.error_id = m.folded_id
GROUP BY 1, 2
ON CONFLICT (error_id, bucket)
    DO UPDATE SET occurrences = error_occurrence_hourly.occurrences + EXCLUDED.occurrences"""),
    text(f"""
INSERT INTO error_group_versions
    (error_id, service_name, service_version, occurrences, first_seen_at, last_seen_at)
SELECT m.target_id, v.service_name, v.service_version, sum(v.occurrences), min(v.first_seen_at),
       max(v.last_seen_at)
FROM {_MAP} JOIN error_group_versions v ON v.error_id = m.folded_id
GROUP BY 1, 2, 3
ON CONFLICT (error_id, service_name, service_version) DO UPDATE SET
    occurrences = error_group_versions.occurrences + EXCLUDED.occurrences,
    first_seen_at = LEAST(error_group_versions.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = GREATEST(error_group_versions.last_seen_at, EXCLUDED.last_seen_at)"""),
    text(f"""
UPDATE error_group_folds f SET error_id = m.target_id
FROM {_MAP} WHERE f.error_id = m.folded_id"""),
)
_KEEP = text(f"""
INSERT INTO error_group_folds (folded_id, error_id, folded_row)
SELECT x.id, m.target_id, to_jsonb(x) FROM {_MAP} JOIN error_logs x ON x.id = m.folded_id
ON CONFLICT (folded_id) DO NOTHING""")
_NEWER = "n.last_occurred_at > t.last_occurred_at"
_WIDEN = text(
    f"""
WITH m AS (SELECT * FROM {_MAP}),
agg AS (
    SELECT m.target_id, sum(x.occurrence_count) AS n, min(x.first_occurred_at) AS first_at,
           max(x.last_occurred_at) AS last_at
    FROM m JOIN error_logs x ON x.id = m.folded_id GROUP BY 1),
newest AS (
    SELECT DISTINCT ON (m.target_id) m.target_id, x.*
    FROM m JOIN error_logs x ON x.id = m.folded_id
    ORDER BY m.target_id, x.last_occurred_at DESC NULLS LAST, x.id DESC)
UPDATE error_logs t SET
    occurrence_count = t.occurrence_count + agg.n,
    first_occurred_at = LEAST(t.first_occurred_at, agg.first_at),
    last_occurred_at = GREATEST(t.last_occurred_at, agg.last_at),
    """
    + ",\n    ".join(f"{c} = CASE WHEN {_NEWER} THEN n.{c} ELSE t.{c} END" for c in CONTEXT_COLUMNS)
    + """
FROM agg JOIN newest n USING (target_id)
WHERE t.id = agg.target_id"""
)
_FORGET = tuple(
    text(f"DELETE FROM {table} WHERE {column} IN (SELECT folded_id FROM {_MAP})")
    for table, column in (
        ("error_occurrence_hourly", "error_id"),
        ("error_group_versions", "error_id"),
        ("error_logs", "id"),
    )
)
_NAME = text(
    "UPDATE error_logs SET fingerprint = f.fp"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:fps AS text[])) AS f (id, fp)"
    " WHERE error_logs.id = f.id AND error_logs.fingerprint IS NULL"
)


_START = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Batch:
    seen: int
    folded: int
    groups: set[str]
    last_id: str


def group_batch(conn: Connection, batch: int = DEFAULT_BATCH, after: str = _START) -> Batch:
    """One batch (the rows after id `after`) in the caller's transaction."""
    rows = conn.execute(_BATCH, {"n": batch, "after": after}).all()
    if not rows:
        return Batch(0, 0, set(), after)
    fps = {row.id: fingerprint_of(row, _client_fingerprint(row.metadata)) for row in rows}
    candidates: dict[str, list[Any]] = {}
    for existing in conn.execute(_EXISTING, {"fps": sorted(set(fps.values()))}).all():
        candidates.setdefault(existing.fingerprint, []).append(existing)
    for row in rows:
        candidates.setdefault(fps[row.id], []).append(row)
    legacy = {row.id for row in rows}
    target_of: dict[Any, Any] = {}
    names: dict[Any, str] = {}
    for fp, group in candidates.items():
        target = max(group, key=_rank)
        names[target.id] = fp
        for member in group:
            target_of[member.id] = target.id
    pairs = [(m, t) for m, t in target_of.items() if m != t]

    def mapping(items: list[tuple[Any, Any]]) -> dict[str, list[str]]:
        return {"folded": [str(m) for m, _ in items], "targets": [str(t) for _, t in items]}

    legacy_pairs = mapping([(m, t) for m, t in target_of.items() if m in legacy])
    moved = mapping([(m, t) for m, t in pairs if m not in legacy])
    folded = mapping(pairs)
    conn.execute(_LEGACY_HOURS, legacy_pairs)
    conn.execute(_LEGACY_VERSIONS, legacy_pairs)
    for statement in _MOVE:
        conn.execute(statement, moved)
    conn.execute(_KEEP, folded)
    conn.execute(_WIDEN, folded)
    for statement in _FORGET:
        conn.execute(statement, folded)
    conn.execute(_NAME, {"ids": [str(i) for i in names], "fps": list(names.values())})
    return Batch(len(rows), len(pairs), {str(t) for t in names}, str(rows[-1].id))


def has_ungrouped_errors(owner_engine: Engine) -> bool:
    with owner_engine.connect() as conn:
        return bool(
            conn.scalar(text("SELECT EXISTS (SELECT 1 FROM error_logs WHERE fingerprint IS NULL)"))
        )


def group_errors(
    owner_engine: Engine,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[GroupingReport], None] | None = None,
    max_batches: int | None = None,
) -> GroupingReport:
    """Fold every row without a fingerprint, batch after batch, until none is left. Runs as the
    owner with triggers off, as the seed does: a maintenance pass, recorded in
    error_group_folds rather than as an audit row per folded row."""
    report = GroupingReport()
    after = _START  # rows before it have their fingerprint: no rescanning them
    while max_batches is None or report.batches < max_batches:
        with owner_engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            done = group_batch(conn, batch, after)
        if not done.seen:
            break
        after = done.last_id
        report.batches += 1
        report.rows_seen += done.seen
        report.rows_folded += done.folded
        report.groups_touched |= done.groups
        if progress:
            progress(report)
    return report
