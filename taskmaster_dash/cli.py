"""`taskmaster-dash`: serve, demo, migrate, seed-demo, create-user, api-key, simulate."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

# Only light modules at import time: `--help` and a mistyped argument answer at once. pandas,
# SQLAlchemy and Dash are imported by the commands that use them.

if TYPE_CHECKING:
    from dash import Dash

    from taskmaster_dash.data.config import Settings
    from taskmaster_dash.data.local_alertmanager import LocalAlertmanager
    from taskmaster_dash.data.local_prometheus import LocalPrometheus, LocalServer
    from taskmaster_dash.data.runtime import OpenedDatabase
    from taskmaster_dash.data.seed import DemoLogin
    from taskmaster_dash.data.simulate import WorkloadCounts


Server = TypeVar("Server", bound="LocalServer")


class CliError(Exception):
    """A problem to report in one line, with a non-zero exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _whole(low: int, high: int, noun: str, rule: str) -> Callable[[str], int]:
    """An argument type: a whole number from `low` to `high`, refused in one line otherwise."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{rule}, got {number}")
        return number

    return parse


_port = _whole(1, 65535, "a port number", "port must be 1-65535")
_count = _whole(1, 64, "a whole number", "must be 1-64")
_seconds = _whole(1, 86_400, "a whole number of seconds", "duration must be 1-86400 seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="taskmaster-dash", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser(
        "serve", help="serve the dashboard (configuration from the environment)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=_port, default=8050, help="port (default 8050)")
    serve.add_argument(
        "--workers",
        type=_count,
        default=os.cpu_count() or 1,
        help="gunicorn worker processes (default: one per CPU)",
    )
    serve.add_argument(
        "--threads",
        type=_count,
        default=1,
        help="threads per worker (default 1: sync workers; more: gthread)",
    )

    demo = commands.add_parser(
        "demo", help="embedded PostgreSQL + demo data + dashboard, printing one login per role"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=8050)
    demo.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    demo.add_argument(
        "--no-prometheus",
        action="store_true",
        help="do not start a Prometheus even when the prometheus binary is on PATH",
    )
    demo.add_argument(
        "--simulate",
        action="store_true",
        help="run a steady workload (new tasks, validations, errors, bursts) in the background",
    )

    simulate = commands.add_parser(
        "simulate",
        help="run a steady realistic workload through the pools, as the system user",
        description="Creates tasks, moves them along, records validation runs, logs errors, "
        "reads and aggregates, with a few failing statements and occasional bursts, so the "
        "dashboard's charts move. Uses the configured database (embedded when none is set).",
    )
    simulate.add_argument(
        "--duration",
        type=_seconds,
        default=300,
        help="stop after this many seconds (default 300, at most 86400)",
    )
    simulate.add_argument(
        "--interval", type=float, default=1.0, help="seconds between rounds (default 1.0)"
    )

    migrate = commands.add_parser(
        "migrate",
        help="bring the database to our schema (an empty one, ours, or an original TaskMaster's)",
        description="Applies pending migrations. On an original TaskMaster database it adopts it "
        "in place, keeping every row, in one transaction; rows our rules would refuse stop it "
        "before anything changes. Back up first.",
    )
    migrate.add_argument(
        "--plan",
        action="store_true",
        help="say what the database holds and every step migrate would take; change nothing",
    )

    seed = commands.add_parser(
        "seed-demo", help="load generated demo data (tasks, validations, errors)"
    )
    seed.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    seed.add_argument("--replace", action="store_true", help="delete existing task data first")

    refresh = commands.add_parser(
        "refresh-analytics", help="bring the analytics rollups up to date (the app does this)"
    )
    refresh.add_argument("--full", action="store_true", help="rebuild them from all rows")
    refresh.add_argument("--hours", type=int, default=3, help="recompute the last N hours")

    group = commands.add_parser(
        "group-errors",
        help="fold error rows written before grouping into one group per fingerprint",
        description="Folds rows without a fingerprint (demo data, an adopted database) into "
        "groups: counts summed, first/last seen kept, each folded row kept in the group's "
        "history. Runs in batches; an interrupted run continues where it stopped.",
    )
    group.add_argument("--batch", type=int, default=5_000, help="rows per transaction")

    create = commands.add_parser("create-user", help="create a user with a role")
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument(
        "--role", required=True, help="admin, developer, viewer, api_client, on_call, ..."
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    api_key = commands.add_parser(
        "api-key",
        help="print a new API key for a user (a service account); their previous key stops working",
        description="Issues a new X-API-Key for the user and prints it once (only its SHA-256 is "
        "stored). The user's previous key, if any, is revoked.",
    )
    api_key.add_argument("--username", required=True)
    api_key.add_argument(
        "--days", type=int, default=90, help="how long the key lasts, 1-365 (default 90)"
    )
    alerts = commands.add_parser(
        "alerts", help="alert rules: check, run, export, import, export-prometheus"
    )
    alert_commands = alerts.add_subparsers(
        dest="alerts_command", required=True, parser_class=_Parser
    )
    alert_commands.add_parser("check", help="evaluate every rule once; print name, state, value")
    alert_commands.add_parser("run", help="run the alert evaluator in the foreground")
    export = alert_commands.add_parser(
        "export-prometheus", help="write the PromQL rules as a Prometheus alerting-rules file"
    )
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.add_argument(
        "--no-overrides",
        action="store_true",
        help="use rules.yaml only, without the admins' overrides (no database needed)",
    )
    rules_out = alert_commands.add_parser(
        "export", help="write every rule (the file's and those written in the app) as YAML"
    )
    rules_out.add_argument("--output", "-o", help="file to write (default: standard output)")
    rules_in = alert_commands.add_parser(
        "import", help="create or replace rules written in the app from a rules file (all or none)"
    )
    rules_in.add_argument("file", help="a rules file, e.g. one `alerts export` wrote")
    rules_in.add_argument("--dry-run", action="store_true", help="check every rule, write nothing")
    from taskmaster_dash.alerts.maintenance_cli import add_parser as add_maintenance_parser

    add_maintenance_parser(alert_commands)
    return parser


def _open(settings: Settings) -> OpenedDatabase:
    from taskmaster_dash.data.runtime import open_database
    from taskmaster_dash.services import Services, install

    opened = open_database(settings)
    install(Services(settings, opened.database))  # what the data functions reach
    return opened


@contextlib.contextmanager
def _opened() -> Iterator[OpenedDatabase]:
    """The configured database, open for one command, closed after it."""
    from taskmaster_dash.data.config import load_settings

    opened = _open(load_settings())
    try:
        yield opened
    finally:
        opened.close()


def _serve(app: Dash, host: str, port: int, threads: int) -> None:
    """`demo`'s server: one process, where its embedded PostgreSQL lives (`serve` is gunicorn)."""
    from waitress import serve

    # Waitress would drop X-Forwarded-* before the app sees them; the app decides instead which
    # to believe (TRUSTED_PROXY_COUNT, werkzeug's ProxyFix), the same under gunicorn.
    serve(
        app.server,
        host=host,
        port=port,
        threads=threads,
        ident="taskmaster-dash",
        clear_untrusted_proxy_headers=False,
    )


def cmd_serve(args: argparse.Namespace) -> None:
    """gunicorn with sync workers, one per CPU: the callbacks are CPU-bound Python, so processes,
    not threads, use the cores (bench/load.py: 2 sync workers answer about twice the requests a
    second of one process with 8 threads; README "Production")."""
    from taskmaster_dash.app import serving_secret_key
    from taskmaster_dash.data.config import load_settings
    from taskmaster_dash.gunicorn_app import run_gunicorn
    from taskmaster_dash.services import read_setting_files

    settings = load_settings()  # what a worker would stop on, said here once
    serving_secret_key(settings)
    read_setting_files(settings)
    print(f"TaskMaster Dash on http://{args.host}:{args.port}", flush=True)
    run_gunicorn(f"{args.host}:{args.port}", args.workers, args.threads)


def cmd_demo(args: argparse.Namespace) -> None:
    from taskmaster_dash.app import create_app
    from taskmaster_dash.data.embedded import preload_pg_stat_statements
    from taskmaster_dash.data.prometheus import PrometheusReader
    from taskmaster_dash.data.seed import (
        SCALES,
        database_has_tasks,
        ensure_demo_logins,
        seed_demo_data,
    )

    # The demo always runs on the embedded server: demo logins never reach a real database.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("DB_HOST", None)
    from taskmaster_dash.data.config import load_settings

    settings = load_settings()
    print(f"Embedded PostgreSQL data directory: {settings.pgdata}", flush=True)
    opened = _open(settings)
    # once: slow queries on the Pools page (the demo's database is always the embedded one)
    if opened.embedded and preload_pg_stat_statements(opened.embedded):
        opened.close()
        opened = _open(settings)
    with contextlib.ExitStack() as stack:
        stack.callback(opened.close)
        if not database_has_tasks(opened.owner_url):
            print(f"Loading demo data ({args.scale})...", flush=True)
            seed_demo_data(opened.owner_url, SCALES[args.scale])
        _group_demo_errors(opened.owner_url)
        logins = ensure_demo_logins(settings.data_dir)
        secret_key = settings.secret_key or secrets.token_hex(32)
        metrics_token = settings.metrics_token or secrets.token_urlsafe(24)
        prometheus_url = settings.prometheus_url if settings.prometheus_enabled else None
        if prometheus_url is None and not args.no_prometheus:
            local = _demo_prometheus(settings, args, metrics_token)
            if local is not None:
                stack.callback(local.stop)
                prometheus_url = local.url
        if settings.alertmanager_url is None:
            alertmanager = _demo_alertmanager(settings)
            if alertmanager is not None:
                stack.callback(alertmanager.stop)
                external = settings.alerts_external_url or f"http://{args.host}:{args.port}"
                settings = settings.model_copy(
                    update={"alertmanager_url": alertmanager.url, "alerts_external_url": external}
                )
        app = create_app(
            opened.database,
            secret_key=secret_key,
            environment="development",
            prometheus=PrometheusReader(prometheus_url) if prometheus_url else None,
            metrics_token=metrics_token,
            settings=settings,
            workers=True,
        )
        if args.simulate:
            stack.callback(_background_workload())
        print(demo_logins_table(logins))
        if not settings.secret_key:
            print("\nSECRET_KEY was not set: generated one for this run (sessions end on restart).")
        print(f"\nTaskMaster Dash on http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
        _serve(app, args.host, args.port, 8)


def _group_demo_errors(owner_url: str) -> None:
    """The seed writes one row per burst of an error: fold them into groups (once)."""
    from sqlalchemy import create_engine

    from taskmaster_dash.data.error_grouping import group_errors, has_ungrouped_errors

    engine = create_engine(owner_url)
    try:
        if has_ungrouped_errors(engine):
            report = group_errors(engine)
            print(f"Grouped {report.rows_seen:,} demo errors by fingerprint.", flush=True)
    finally:
        engine.dispose()


def demo_logins_table(logins: Sequence[DemoLogin]) -> str:
    """The demo's logins under a header line: sign in with the username column."""
    rows = [("role", "username", "password"), *((x.role, x.username, x.password) for x in logins)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [
        f"  {role:<{widths[0]}}  {name:<{widths[1]}}  {password}" for role, name, password in rows
    ]
    return "\nDemo logins (one per role; demo mode only):\n" + "\n".join(lines)


def _demo_prometheus(
    settings: Settings, args: argparse.Namespace, token: str
) -> LocalPrometheus | None:
    """Start our own Prometheus scraping the demo, or say how to get one."""
    from taskmaster_dash.data.local_prometheus import LocalPrometheus, prometheus_binary

    if prometheus_binary() is None:
        print(
            "\nNo `prometheus` binary on PATH, so the Pools page has no history. To add one: "
            "`sudo apt-get install prometheus` (or put the binary from prometheus.io on PATH) "
            "and run the demo again; or point PROMETHEUS_ENABLED/PROMETHEUS_URL at yours.",
            flush=True,
        )
        return None
    host = "127.0.0.1" if args.host in {"0.0.0.0", "::", ""} else args.host
    host = f"[{host}]" if ":" in host else host  # an IPv6 address in a target needs brackets
    server = LocalPrometheus(settings.data_dir / "prometheus", f"{host}:{args.port}", token=token)
    return _started(
        server,
        "Prometheus",
        f"(scraping the demo every 5 s; data in {server.directory}); the Pools page reads it.",
    )


def _demo_alertmanager(settings: Settings) -> LocalAlertmanager | None:
    """Start our own Alertmanager for the demo's alerts and silences, when the binary is here."""
    from taskmaster_dash.data.local_alertmanager import LocalAlertmanager, alertmanager_binary

    if alertmanager_binary() is None:
        print(
            "\nNo `prometheus-alertmanager` binary on PATH, so alerts stay in the app. To add "
            "one: `sudo apt-get install prometheus-alertmanager`; or set ALERTMANAGER_URL.",
            flush=True,
        )
        return None
    server = LocalAlertmanager(settings.data_dir / "alertmanager")
    return _started(
        server,
        "Alertmanager",
        "(the demo's alerts and silences go there too; its receivers deliver nowhere).",
    )


def _started(server: Server, name: str, about: str) -> Server | None:
    """Start a server of our own for the demo and say where it is; None (said) if it fails."""
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        print(f"\n{name} did not start ({exc}); continuing without it.", flush=True)
        return None
    print(f"\n{name} on {server.url} {about}", flush=True)
    return server


def _background_workload() -> Callable[[], None]:
    """Run the simulator in a daemon thread; returns the function that stops it."""
    import threading

    from taskmaster_dash.data.simulate import run_workload

    stop = threading.Event()
    thread = threading.Thread(
        target=run_workload,
        kwargs={"stop": stop, "interval": 2.0},
        name="simulate",
        daemon=True,
    )
    thread.start()
    print("Simulated workload running in the background (--simulate).", flush=True)

    def halt() -> None:
        stop.set()
        thread.join(10)

    return halt


def cmd_simulate(args: argparse.Namespace) -> None:
    from taskmaster_dash.data.simulate import run_workload

    with _opened():
        print(
            f"Simulating for {args.duration} s (one round every {args.interval:g} s; "
            "Ctrl-C stops it)...",
            flush=True,
        )

        def report(counts: WorkloadCounts) -> None:
            if counts.rounds % 10 == 0:
                print(
                    f"  {counts.rounds} rounds: {counts.tasks_created} tasks, "
                    f"{counts.validations} validations, {counts.errors_logged} errors logged, "
                    f"{counts.failed_statements} failed statements, {counts.bursts} bursts",
                    flush=True,
                )

        counts = run_workload(duration=args.duration, interval=args.interval, report=report)
        print(
            f"Done: {counts.rounds} rounds, {counts.tasks_created} tasks created, "
            f"{counts.validations} validation runs, {counts.errors_logged} errors logged, "
            f"{counts.failed_statements} failed statements, {counts.bursts} bursts."
        )


def cmd_migrate(args: argparse.Namespace) -> None:
    from taskmaster_dash.data.config import load_settings
    from taskmaster_dash.data.runtime import migrate, migration_plan, open_database

    opened = open_database(load_settings(), run_migrations=False)
    try:
        if args.plan:
            print(migration_plan(opened.owner_url))
            return
        applied = migrate(opened.owner_url, opened.app_url, adopt=True)
    finally:
        opened.close()
    print(f"Applied {len(applied)}: {', '.join(applied)}." if applied else "Nothing to do.")
    print("Schema is up to date.")


def cmd_seed_demo(args: argparse.Namespace) -> None:
    from taskmaster_dash.data.seed import (
        SCALES,
        clear_demo_data,
        database_has_tasks,
        seed_demo_data,
    )

    with _opened() as opened:
        if database_has_tasks(opened.owner_url):
            if not args.replace:
                raise CliError(
                    "the database already has tasks; pass --replace to delete them first"
                )
            clear_demo_data(opened.owner_url)
        seed_demo_data(opened.owner_url, SCALES[args.scale])
        print(f"Demo data loaded ({args.scale}).")


def cmd_refresh_analytics(args: argparse.Namespace) -> None:
    from taskmaster_dash.data.analytics import refresh_rollups

    with _opened():
        steps = refresh_rollups(None if args.full else max(1, args.hours))
        print("Rollups refreshed: " + ", ".join(f"{k} {v} steps" for k, v in steps.items()))


def cmd_group_errors(args: argparse.Namespace) -> None:
    from sqlalchemy import create_engine

    from taskmaster_dash.data.config import load_settings
    from taskmaster_dash.data.error_grouping import GroupingReport, group_errors

    if args.batch < 1:
        raise CliError("--batch must be at least 1")

    def progress(report: GroupingReport) -> None:
        print(
            f"\r  batch {report.batches}: {report.rows_seen:,} rows, {report.rows_folded:,} folded",
            end="",
            file=sys.stderr,
            flush=True,
        )

    opened = _open(load_settings())
    engine = create_engine(opened.owner_url)
    try:
        report = group_errors(engine, args.batch, progress)
    finally:
        engine.dispose()
        opened.close()
    if report.batches:
        print(file=sys.stderr)
    print(
        f"Grouped {report.rows_seen:,} rows: {report.rows_folded:,} folded into "
        f"{len(report.groups_touched):,} groups."
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
        return password
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Repeat password: "):
        raise CliError("the two passwords differ")
    return password


def cmd_create_user(args: argparse.Namespace) -> None:
    from taskmaster_dash.data.db import SYSTEM_ACTOR
    from taskmaster_dash.data.users import create_user, validate_new_user

    password = _read_password(args.password_stdin)
    validate_new_user(args.username, args.email, password)  # refuse before starting anything

    with _opened():
        user_id = create_user(SYSTEM_ACTOR, args.username, args.email, args.role, password)
        print(f"Created user {args.username} ({args.role}), id {user_id}.")


def cmd_api_key(args: argparse.Namespace) -> None:
    from datetime import UTC

    from taskmaster_dash.data.db import SYSTEM_ACTOR
    from taskmaster_dash.data.users import issue_api_key, login_record

    with _opened():
        record = login_record(args.username)
        if record is None or record.is_system:
            raise CliError(f"no such user: {args.username!r} (create it with create-user)")
        key, expires = issue_api_key(SYSTEM_ACTOR, record.id, args.days)
        print(key)
        print(
            f"API key for {args.username}, valid until "
            f"{expires.astimezone(UTC):%Y-%m-%d %H:%M} UTC; their previous key no longer works.",
            file=sys.stderr,
        )


def cmd_alerts(args: argparse.Namespace) -> None:
    from taskmaster_dash.alerts import cli as alerts_cli

    alerts_cli.run(args, _open)


COMMANDS = {
    "serve": cmd_serve,
    "demo": cmd_demo,
    "migrate": cmd_migrate,
    "seed-demo": cmd_seed_demo,
    "refresh-analytics": cmd_refresh_analytics,
    "create-user": cmd_create_user,
    "group-errors": cmd_group_errors,
    "api-key": cmd_api_key,
    "alerts": cmd_alerts,
    "simulate": cmd_simulate,
}


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (service managers, `kill`) stops as cleanly as Ctrl-C: the embedded server too.
    signal.signal(signal.SIGTERM, _interrupt)
    from taskmaster_dash.data.config import SettingsError, load_settings

    try:  # every setting, before anything (importing the metrics reads one) starts
        load_settings()
    except SettingsError as exc:
        print(f"taskmaster-dash {args.command}: error: {exc}", file=sys.stderr)
        return 1
    from sqlalchemy.exc import SQLAlchemyError

    from taskmaster_dash.data.db import user_message
    from taskmaster_dash.data.users import UserInputError

    try:
        COMMANDS[args.command](args)
    except (CliError, UserInputError, ValueError) as exc:
        print(f"taskmaster-dash {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"taskmaster-dash {args.command}: error: {user_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
