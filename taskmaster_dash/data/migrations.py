"""The migration runner: what a database holds, what would be done to it, and doing it.

History lives in a table of our own, `taskmaster_dash_migrations`, so a foreign
`schema_migrations` (the original TaskMaster's) is never mistaken for ours and is left as it is.
Versioned files (sql/migrations/NNN_name.sql) run once, in order; their checksums are verified,
so an edited, already-applied file is reported instead of skipped. Repeatable files
(sql/repeatable/*.sql: views and functions whose latest definition lives in one place) run after
them whenever their checksum changes. Every step runs in a transaction under an advisory lock;
an original TaskMaster database is adopted in a single transaction (data/adoption.py), so a
refusal or a failure leaves it exactly as it was. Errors are one line naming file and statement.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import Connection, Engine, text

from taskmaster_dash.resources import shipped

SQL_DIR = shipped("sql")
MIGRATIONS_DIR = SQL_DIR / "migrations"
REPEATABLE_DIR = SQL_DIR / "repeatable"
HISTORY_TABLE = "taskmaster_dash_migrations"
_FILE_PATTERN = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_REPEATABLE_PATTERN = re.compile(r"^([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_310_001  # advisory lock id for migrations
ADOPTION_LOCK_TIMEOUT = "30s"
_HEX_CHECKSUM = re.compile(r"^[0-9a-f]{64}$")

_CREATE_HISTORY = f"""CREATE TABLE {HISTORY_TABLE} (
    version VARCHAR(100) PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    checksum VARCHAR(64) NOT NULL)"""


class MigrationError(ValueError):
    """A migration that cannot or must not run, said in one line."""


@dataclass(frozen=True)
class SqlFile:
    version: str  # "001" for a versioned file, "R:name" for a repeatable one
    description: str
    path: Path

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def _named_files(
    directory: Path, pattern: re.Pattern[str], kind: str, example: str
) -> list[tuple[re.Match[str], Path]]:
    """(name match, path) for each .sql file in `directory`, in name order; a file whose name
    does not match `pattern` is refused."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = pattern.match(path.name)
        if not match:
            raise MigrationError(f"{kind} file name must look like {example}: {path.name}")
        found.append((match, path))
    return found


def available_migrations(directory: Path | None = None) -> list[SqlFile]:
    directory = directory or MIGRATIONS_DIR
    found = [
        SqlFile(match[1], match[2].replace("_", " "), path)
        for match, path in _named_files(directory, _FILE_PATTERN, "migration", "001_name.sql")
    ]
    if not found:
        # Never "up to date" on a database we could not check: an install without its sql/.
        raise MigrationError(
            f"no migration files in {directory}: this installation of taskmaster-dash is "
            "incomplete (its sql/ package data is missing); reinstall it"
        )
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return found


def repeatable_files(directory: Path | None = None) -> list[SqlFile]:
    directory = directory or REPEATABLE_DIR
    return [
        SqlFile(f"R:{match[1]}", match[1].replace("_", " "), path)
        for match, path in _named_files(directory, _REPEATABLE_PATTERN, "repeatable", "name.sql")
    ]


def split_statements(sql: str) -> list[tuple[int, str]]:
    """The statements of a SQL file with the line each starts on; quotes, comments and
    $tag$ bodies are respected, so a `;` inside them does not end a statement."""
    statements: list[tuple[int, str]] = []
    start = 0
    i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            i = sql.find("\n", i)
            i = n if i < 0 else i
        elif c == "/" and sql.startswith("/*", i):
            i = sql.find("*/", i + 2)
            i = n if i < 0 else i + 2
            continue
        elif c in "'\"":
            i = sql.find(c, i + 1)
            i = n if i < 0 else i  # a doubled quote is two strings back to back: same result
        elif c == "$":
            tag = re.match(r"\$[A-Za-z_0-9]*\$", sql[i:])
            if tag and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                end = sql.find(tag[0], i + len(tag[0]))
                i = n if end < 0 else end + len(tag[0])
                continue
        elif c == ";":
            statements.append((start, sql[start : i + 1]))
            start = i + 1
        i += 1
    statements.append((start, sql[start:]))
    result = []
    for offset, statement in statements:
        body = _strip_comments(statement)
        if body:
            lead = len(statement) - len(statement.lstrip())
            result.append((sql.count("\n", 0, offset + lead) + 1, statement.strip()))
    return result


def _strip_comments(statement: str) -> str:
    lines = [line for line in statement.strip().splitlines() if not line.strip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";").strip()


def run_statements(conn: Connection, source: str, sql: str) -> None:
    """Run a file's statements one by one in the caller's transaction. The raw cursor sends each
    as-is: $$ bodies, and no parameter parsing of the % signs in format() strings."""
    cursor = conn.connection.cursor()
    for line, statement in split_statements(sql):
        try:
            cursor.execute(statement)
        except psycopg.Error as exc:
            first = next(s for s in statement.splitlines() if not s.strip().startswith("--"))
            reason = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
            raise MigrationError(
                f"{source}, statement at line {line} ({first.strip()[:70]}): {reason}"
            ) from None


# --- What a database holds ----------------------------------------------------------------

# The tables that tell a TaskMaster database, ours or the original's (a test's fixture adds what
# only the original has).
TASKMASTER_TABLES = (
    "tasks",
    "task_contexts",
    "task_dependencies",
    "workflow_states",
    "validation_results",
    "error_logs",
    "user_roles",
    "users",
    "audit_logs",
)


@dataclass
class Found:
    kind: str  # empty | ours | ours_old_history | original | unrecognised
    summary: str
    history: dict[str, str] = field(default_factory=dict)  # version -> recorded checksum


def _table_exists(conn: Connection, name: str) -> bool:
    return bool(conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": f"public.{name}"}))


def _column_type(conn: Connection, table: str, column: str) -> str | None:
    return conn.scalar(
        text(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = :t AND column_name = :c"
        ),
        {"t": table, "c": column},
    )


def inspect_database(conn: Connection) -> Found:
    if _table_exists(conn, HISTORY_TABLE):
        history: dict[str, str] = dict(
            conn.execute(text(f"SELECT version, checksum FROM {HISTORY_TABLE}")).all()
        )
        latest = max((v for v in history if not v.startswith("R:")), default="none")
        return Found("ours", f"a TaskMaster Dash database at version {latest}", history)
    present = [t for t in TASKMASTER_TABLES if _table_exists(conn, t)]
    legacy: dict[str, str] = {}
    if _table_exists(conn, "schema_migrations"):
        legacy = dict(
            conn.execute(
                text("SELECT version, COALESCE(checksum, '') FROM schema_migrations")
            ).all()
        )
    ours_format = bool(legacy) and all(_HEX_CHECKSUM.match(c) for c in legacy.values())
    if ours_format and _column_type(conn, "audit_logs", "username"):
        return Found(
            "ours_old_history",
            f"a TaskMaster Dash database at version {max(legacy)}, its history still in "
            "schema_migrations (recorded by an earlier version of this runner)",
            legacy,
        )
    if (
        {"tasks", "audit_logs", "users", "user_roles"} <= set(present)
        and _column_type(conn, "audit_logs", "user_id") == "character varying"
        and not _column_type(conn, "audit_logs", "username")
    ):
        versions = ", ".join(sorted(legacy)) or "none recorded"
        return Found(
            "original",
            f"an original TaskMaster schema (its schema_migrations: {versions})",
            legacy,
        )
    if not present and not legacy:
        return Found("empty", "an empty database")
    what = ", ".join(present) or "a schema_migrations table"
    return Found(
        "unrecognised",
        f"something unrecognised ({what}, but neither a TaskMaster Dash history nor the "
        "original TaskMaster shape)",
    )


# --- What would be done ----------------------------------------------------------------------


@dataclass
class Step:
    description: str
    run: Callable[[Connection], None]
    records: list[SqlFile] = field(default_factory=list)


@dataclass
class Plan:
    found: Found
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each one stops the migration
    single_transaction: bool = False

    def render(self) -> str:
        lines = [f"Found {self.found.summary}."]
        lines += [f"Note: {note}" for note in self.notes]
        if self.problems:
            lines.append("Cannot migrate until these are fixed (nothing was changed):")
            lines += [f"  - {problem}" for problem in self.problems]
        if not self.steps:
            lines.append("Nothing to do: the schema is up to date.")
            return "\n".join(lines)
        how = "in one transaction" if self.single_transaction else "each in its own transaction"
        lines.append(f"Steps ({how}):")
        lines += [f"  {i}. {step.description}" for i, step in enumerate(self.steps, 1)]
        return "\n".join(lines)

    def refusal(self) -> str:
        return "cannot migrate: " + "; ".join(self.problems)


def _file_step(file: SqlFile, verb: str = "apply") -> Step:
    return Step(
        f"{verb} {file.name}", lambda conn: run_statements(conn, file.name, file.sql), [file]
    )


def pending_steps(history: dict[str, str], plan: Plan) -> list[Step]:
    """Versioned files not yet applied, then repeatable files that are new or changed; edited
    applied files become problems."""
    files = available_migrations()
    known = {f.version for f in files}
    steps = []
    for file in files:
        recorded = history.get(file.version)
        if recorded is None:
            steps.append(_file_step(file))
        elif recorded != file.checksum:
            plan.problems.append(
                f"{file.name} was edited after it was applied (recorded checksum "
                f"{recorded[:12]}..., file {file.checksum[:12]}...): restore the applied "
                "version and put the change in a new numbered migration"
            )
    for gone in sorted(v for v in history if not v.startswith("R:") and v not in known):
        plan.notes.append(f"version {gone} is recorded but has no file any more (left as is)")
    for file in repeatable_files():
        recorded = history.get(file.version)
        if recorded != file.checksum:
            steps.append(_file_step(file, "apply" if recorded is None else "re-apply (changed)"))
    return steps


def create_history(conn: Connection) -> None:
    conn.execute(text(_CREATE_HISTORY))


def _carry_over_history(legacy: dict[str, str]) -> Callable[[Connection], None]:
    """Our old runner's schema_migrations becomes taskmaster_dash_migrations (same rows, same
    RLS policy and grants); checksums it recorded are replaced by the current files' checksums,
    since it never verified them and nothing is re-applied."""

    def run(conn: Connection) -> None:
        conn.execute(text(f"ALTER TABLE schema_migrations RENAME TO {HISTORY_TABLE}"))
        conn.execute(text(f"ALTER INDEX schema_migrations_pkey RENAME TO {HISTORY_TABLE}_pkey"))
        conn.execute(text(f"ALTER TABLE {HISTORY_TABLE} ALTER COLUMN version TYPE VARCHAR(100)"))
        conn.execute(
            text(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_policies WHERE policyname = "
                f"'schema_migrations_select' AND tablename = '{HISTORY_TABLE}') THEN "
                f"ALTER POLICY schema_migrations_select ON {HISTORY_TABLE} "
                f"RENAME TO {HISTORY_TABLE}_select; END IF; END $$"
            )
        )
        for file in available_migrations():
            if file.version in legacy and legacy[file.version] != file.checksum:
                conn.execute(
                    text(f"UPDATE {HISTORY_TABLE} SET checksum = :c WHERE version = :v"),
                    {"c": file.checksum, "v": file.version},
                )

    return run


def plan_migrations_on(conn: Connection) -> Plan:
    found = inspect_database(conn)
    plan = Plan(found)
    if found.kind == "unrecognised":
        plan.problems.append(
            "this is neither an empty database, ours, nor an original TaskMaster one; "
            "point DATABASE_URL at the right database"
        )
    elif found.kind == "empty":
        plan.steps.append(Step(f"create the history table {HISTORY_TABLE}", create_history))
        plan.steps += pending_steps({}, plan)
    elif found.kind == "ours":
        plan.steps += pending_steps(found.history, plan)
    elif found.kind == "ours_old_history":
        files = {f.version: f for f in available_migrations()}
        stale = sorted(v for v, c in found.history.items() if v in files and files[v].checksum != c)
        description = (
            f"move our history from schema_migrations to {HISTORY_TABLE} "
            f"({len(found.history)} versions, nothing re-applied)"
        )
        if stale:
            description += f"; record today's checksums of {', '.join(stale)}"
        plan.steps.append(Step(description, _carry_over_history(found.history)))
        carried = {v: files[v].checksum if v in files else c for v, c in found.history.items()}
        plan.steps += pending_steps(carried, plan)
    else:
        from taskmaster_dash.data.adoption import plan_adoption

        plan_adoption(conn, plan)
    return plan


def plan_migrations(owner_engine: Engine) -> Plan:
    """What migrate would do; reads the catalog and counts rows, changes nothing."""
    with owner_engine.connect() as conn, conn.begin():
        conn.execute(text("SET TRANSACTION READ ONLY"))
        return plan_migrations_on(conn)


def _record(conn: Connection, file: SqlFile, description: str | None = None) -> None:
    conn.execute(
        text(
            f"INSERT INTO {HISTORY_TABLE} (version, description, checksum) VALUES (:v, :d, :c) "
            "ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, "
            "description = EXCLUDED.description, applied_at = now()"
        ),
        {"v": file.version, "d": description or file.description, "c": file.checksum},
    )


def _run_step(conn: Connection, step: Step) -> None:
    step.run(conn)
    for file in step.records:
        _record(conn, file)


def apply_migrations(owner_engine: Engine, *, adopt: bool = False) -> list[str]:
    """Bring the database to our schema; return the names of the files applied now. An original
    TaskMaster database is adopted only when asked (`migrate`), never as a side effect of
    starting the app."""
    applied: list[str] = []
    with owner_engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
        conn.commit()
        try:
            with conn.begin():
                plan = plan_migrations_on(conn)
            if plan.problems:
                raise MigrationError(plan.refusal())
            if plan.found.kind == "original" and not adopt:
                raise MigrationError(
                    "this is an original TaskMaster database: run `taskmaster-dash migrate "
                    "--plan`, back it up, then `taskmaster-dash migrate` to adopt it"
                )
            if plan.single_transaction:
                with conn.begin():
                    # Waiting behind a service's long transaction would queue every other query
                    # behind our lock request: give up instead, and say so.
                    conn.execute(text(f"SET LOCAL lock_timeout = '{ADOPTION_LOCK_TIMEOUT}'"))
                    for step in plan.steps:
                        _run_step(conn, step)
            else:
                for step in plan.steps:
                    with conn.begin():
                        _run_step(conn, step)
            applied = [file.name for step in plan.steps for file in step.records]
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
            conn.commit()
    return applied
