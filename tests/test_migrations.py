"""The migration runner: our own history table, carrying over the history an earlier version of
it kept in schema_migrations, verified checksums, repeatable files, one-line errors."""

from __future__ import annotations

import shutil
import signal
import uuid

import pytest
from sqlalchemy import create_engine, text

import taskmaster_dash.data.migrations as migrations
from taskmaster_dash.data.migrations import (
    HISTORY_TABLE,
    MigrationError,
    apply_migrations,
    plan_migrations,
)
from taskmaster_dash.data.runtime import migrate
from tests.test_cli import run_cli


@pytest.fixture
def fresh(pg_server):
    server = pg_server.create_database(f"mig_{uuid.uuid4().hex[:8]}")
    migrate(server.owner_url, server.app_url)
    engine = create_engine(server.owner_url)
    yield server, engine
    engine.dispose()


def test_an_empty_database_is_planned_as_such(pg_server):
    server = pg_server.create_database(f"empty_{uuid.uuid4().hex[:8]}")
    result = run_cli(["migrate", "--plan"], server)
    assert result.returncode == 0, result.stderr
    assert "Found an empty database." in result.stdout
    assert f"create the history table {HISTORY_TABLE}" in result.stdout
    assert "apply migrations/001_schema.sql" in result.stdout
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        tables = conn.scalar(
            text("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        )
    engine.dispose()
    assert tables == 0


def test_history_kept_in_schema_migrations_by_the_old_runner_is_carried_over(fresh):
    server, engine = fresh
    # Put the database back the way the earlier runner left it: its history in schema_migrations,
    # without the files added since, one checksum from an older edit of its file.
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {HISTORY_TABLE} RENAME TO schema_migrations"))
        conn.execute(text(f"ALTER INDEX {HISTORY_TABLE}_pkey RENAME TO schema_migrations_pkey"))
        conn.execute(
            text(
                f"ALTER POLICY {HISTORY_TABLE}_select ON schema_migrations "
                "RENAME TO schema_migrations_select"
            )
        )
        conn.execute(
            text("DELETE FROM schema_migrations WHERE version LIKE 'R:%' OR version = '055'")
        )
        conn.execute(text("DROP TABLE performance_metrics"))
        conn.execute(
            text("UPDATE schema_migrations SET checksum = :c WHERE version = '020'"),
            {"c": "ab" * 32},
        )
        conn.execute(text("ALTER TABLE schema_migrations ALTER COLUMN version TYPE VARCHAR(20)"))
        roles = conn.scalar(text("SELECT count(*) FROM user_roles"))
    plan = plan_migrations(engine).render()
    assert "its history still in schema_migrations" in plan
    assert "record today's checksums of 020" in plan
    assert "001_schema" not in plan  # nothing applied twice

    applied = apply_migrations(engine)

    assert applied == ["migrations/055_performance_metrics.sql", "repeatable/original_views.sql"]
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('schema_migrations')")) is None
        versions = set(conn.scalars(text(f"SELECT version FROM {HISTORY_TABLE}")))
        assert {"001", "002", "020", "055", "R:original_views"} <= versions
        assert conn.scalar(text("SELECT count(*) FROM user_roles")) == roles
        policies = set(
            conn.scalars(
                text("SELECT policyname FROM pg_policies WHERE tablename = :t"),
                {"t": HISTORY_TABLE},
            )
        )
        assert policies == {f"{HISTORY_TABLE}_select"}
    assert apply_migrations(engine) == []


def test_an_edited_applied_migration_is_reported_not_skipped(fresh):
    server, engine = fresh
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE {HISTORY_TABLE} SET checksum = :c WHERE version = '010'"), {"c": "0" * 64}
        )
    plan = run_cli(["migrate", "--plan"], server)
    assert "migrations/010_admin_guards.sql was edited after it was applied" in plan.stdout
    result = run_cli(["migrate"], server)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "010_admin_guards.sql was edited after it was applied" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_statement_is_named_in_one_line_and_its_file_leaves_nothing(
    fresh, tmp_path, monkeypatch
):
    server, engine = fresh
    directory = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, directory)
    (directory / "999_broken.sql").write_text(
        "-- a migration with a mistake\nCREATE TABLE half_done (id int);\n\n"
        "SELECT no_such_column\n  FROM tasks;\n"
    )
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", directory)
    with pytest.raises(MigrationError) as raised:
        apply_migrations(engine)
    message = str(raised.value)
    assert message.startswith(
        "migrations/999_broken.sql, statement at line 4 (SELECT no_such_column): "
    )
    assert "no_such_column" in message and "\n" not in message
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('half_done')")) is None
        assert conn.scalar(text(f"SELECT count(*) FROM {HISTORY_TABLE} WHERE version = '999'")) == 0


def test_a_changed_repeatable_file_is_applied_again(fresh, tmp_path, monkeypatch):
    server, engine = fresh
    directory = tmp_path / "repeatable"
    shutil.copytree(migrations.REPEATABLE_DIR, directory)
    views = directory / "original_views.sql"
    views.write_text(views.read_text() + "\nCOMMENT ON VIEW task_summary IS 'tasks per status';\n")
    monkeypatch.setattr(migrations, "REPEATABLE_DIR", directory)
    assert "re-apply (changed) repeatable/original_views.sql" in plan_migrations(engine).render()
    assert apply_migrations(engine) == ["repeatable/original_views.sql"]
    with engine.connect() as conn:
        comment = conn.scalar(text("SELECT obj_description('task_summary'::regclass)"))
    assert comment == "tasks per status"
    assert apply_migrations(engine) == []


def test_split_statements_keeps_quoted_semicolons_and_function_bodies():
    sql = (
        "-- head\nSELECT 'a;b';\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;"
        '\nDO $body$ BEGIN PERFORM 1; END $body$;\n/* c; */ SELECT "x;y" FROM t'
    )
    statements = migrations.split_statements(sql)
    assert [line for line, _ in statements] == [1, 3, 4, 5]
    assert statements[1][1].endswith("$$ SELECT 1; $$;")
    assert statements[3][1].endswith('SELECT "x;y" FROM t')


def test_plan_on_an_up_to_date_database_of_ours_has_nothing_to_do(fresh):
    server, _engine = fresh
    latest = max(m.version for m in migrations.available_migrations())
    result = run_cli(["migrate", "--plan"], server)
    assert result.returncode == 0, result.stderr
    assert f"Found a TaskMaster Dash database at version {latest}." in result.stdout
    assert "Nothing to do: the schema is up to date." in result.stdout


def test_migrate_without_migration_files_fails_loudly(pg_server, tmp_path, monkeypatch, capsys):
    # An install that lost its sql/ (the first wheels did) must not report "up to date".
    from taskmaster_dash.cli import main

    server = pg_server.create_database(f"nofiles_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("DATABASE_URL", server.app_url)
    monkeypatch.setenv("OWNER_DATABASE_URL", server.owner_url)
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", tmp_path / "missing")
    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own handler
    for args in (["migrate"], ["migrate", "--plan"]):
        try:
            assert main(args) == 1
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        out, err = capsys.readouterr()
        assert "up to date" not in out.lower()
        assert err.startswith(f"taskmaster-dash migrate: error: no migration files in {tmp_path}")
        assert "incomplete" in err and len(err.strip().splitlines()) == 1
    engine = create_engine(server.owner_url)
    with engine.connect() as conn:
        tables = conn.scalar(
            text("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        )
    engine.dispose()
    assert tables == 0  # not even the history table
