"""Benchmark (not a test): how fast the admin grids answer at size.

Starts a throwaway embedded PostgreSQL, migrates it, loads USERS users and AUDIT_ROWS audit rows,
then times the queries behind /admin/users and /admin/audit as an admin (median of 5 runs).

    .venv/bin/python bench/admin_pages.py [audit_rows] [users]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskmaster_dash.data.audit import AuditFilter, audit_page
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import SYSTEM_ACTOR, Database
from taskmaster_dash.data.embedded import start_embedded
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.users import users_page
from taskmaster_dash.services import Services, install

AUDIT_ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
USERS = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000


def load(owner_url: str) -> None:
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # bulk load, no audit
        conn.execute(
            text(
                """INSERT INTO users (username, email, role_id, last_login_at, login_attempts)
                   SELECT 'user' || g, 'user' || g || '@example.com',
                          (SELECT id FROM user_roles WHERE role_name = 'viewer'),
                          now() - g * interval '1 minute', g % 5
                   FROM generate_series(1, :n) g"""
            ),
            {"n": USERS},
        )
        conn.execute(
            text(
                """INSERT INTO audit_logs (entity_type, entity_id, action, old_values, new_values,
                                           username, "timestamp")
                   SELECT (ARRAY['tasks','error_logs','users','validation_results'])[1 + g % 4],
                          gen_random_uuid(),
                          (ARRAY['create','update','status_change','delete'])[1 + g % 4],
                          jsonb_build_object('status', 'pending', 'priority', g % 5),
                          jsonb_build_object('status', 'completed', 'priority', g % 7),
                          'user' || (g % 50), now() - g * interval '2 seconds'
                   FROM generate_series(1, :n) g"""
            ),
            {"n": AUDIT_ROWS},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE users"))
        conn.execute(text("VACUUM ANALYZE audit_logs"))
    engine.dispose()


def median_ms(run) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    embedded = start_embedded(
        Path(tempfile.mkdtemp(prefix="tmdash-bench-")) / "pgdata", delete_on_stop=True
    )
    try:
        migrate(embedded.owner_url, embedded.app_url)
        started = time.perf_counter()
        load(embedded.owner_url)
        took = time.perf_counter() - started
        print(f"loaded {USERS:,} users and {AUDIT_ROWS:,} audit rows in {took:.1f} s")
        database = Database(embedded.app_url)
        install(Services.build(load_settings(), database))
        admin = SYSTEM_ACTOR
        cases = {
            "users: first 100, by username": lambda: users_page(
                admin, {"startRow": 0, "endRow": 100}
            ),
            "users: sorted by last login desc": lambda: users_page(
                admin,
                {
                    "startRow": 0,
                    "endRow": 100,
                    "sortModel": [{"colId": "last_login_at", "sort": "desc"}],
                },
            ),
            "users: e-mail contains '99'": lambda: users_page(
                admin,
                {
                    "startRow": 0,
                    "endRow": 100,
                    "filterModel": {"email": {"type": "contains", "filter": "99"}},
                },
            ),
            "audit: newest 100": lambda: audit_page(admin, AuditFilter(), 0, 100),
            "audit: rows 50,000-50,100": lambda: audit_page(admin, AuditFilter(), 50_000, 100),
            "audit: one user": lambda: audit_page(admin, AuditFilter(username="user7"), 0, 100),
            "audit: table + operation": lambda: audit_page(
                admin, AuditFilter(table="error_logs", action="update"), 0, 100
            ),
            "audit: table + last 1 day": lambda: audit_page(
                admin, AuditFilter.parse(table="tasks", since=time.strftime("%Y-%m-%d")), 0, 100
            ),
        }
        for name, run in cases.items():
            print(f"{name:<36} {median_ms(run):8.1f} ms")
        database.dispose()
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
