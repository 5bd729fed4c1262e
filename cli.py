"""`taskmaster-dash`: serve, demo, migrate, seed-demo, create-user."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import signal
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from data.config import Settings, load_settings
from data.db import SYSTEM_ACTOR, configure_database, user_message
from data.users import UserInputError


class CliError(Exception):
    """A problem to report in one line, with a non-zero exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port


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
    serve.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")

    demo = commands.add_parser(
        "demo", help="embedded PostgreSQL + demo data + dashboard, printing one login per role"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=8050)
    demo.add_argument("--scale", choices=["small", "medium", "large"], default="small")

    commands.add_parser("migrate", help="apply pending schema migrations")

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

    create = commands.add_parser("create-user", help="create a user with a role")
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument(
        "--role", required=True, help="admin, developer, viewer, api_client, on_call, ..."
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    return parser


def _open(settings: Settings):
    from data.runtime import open_database

    opened = open_database(settings)
    configure_database(opened.database)
    return opened


def _serve(app, host: str, port: int, threads: int) -> None:
    from waitress import serve

    serve(app.server, host=host, port=port, threads=threads, ident="taskmaster-dash")


def cmd_serve(args: argparse.Namespace) -> None:
    from app import app_from_environment

    app = app_from_environment()
    print(f"TaskMaster Dash on http://{args.host}:{args.port}", flush=True)
    _serve(app, args.host, args.port, args.threads)


def cmd_demo(args: argparse.Namespace) -> None:
    from app import create_app
    from data.seed import SCALES, database_has_tasks, ensure_demo_logins, seed_demo_data

    # The demo always runs on the embedded server: demo logins never reach a real database.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("DB_HOST", None)
    settings = load_settings(demo_mode=True)
    print(f"Embedded PostgreSQL data directory: {settings.pgdata}", flush=True)
    opened = _open(settings)
    try:
        if not database_has_tasks(opened.owner_url):
            print(f"Loading demo data ({args.scale})...", flush=True)
            seed_demo_data(opened.owner_url, SCALES[args.scale])
        logins = ensure_demo_logins(settings.data_dir)
        secret_key = settings.secret_key or secrets.token_hex(32)
        app = create_app(opened.database, secret_key=secret_key, environment="development")
        print("\nDemo logins (one per role; demo mode only):")
        for role, password in logins.items():
            print(f"  {role.replace('_', '-'):<11} {password}")
        if not settings.secret_key:
            print("\nSECRET_KEY was not set: generated one for this run (sessions end on restart).")
        print(f"\nTaskMaster Dash on http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
        _serve(app, args.host, args.port, 8)
    finally:
        opened.close()


def cmd_migrate(_args: argparse.Namespace) -> None:
    _open(load_settings()).close()  # opening applies pending migrations
    print("Schema is up to date.")


def cmd_seed_demo(args: argparse.Namespace) -> None:
    from data.seed import SCALES, clear_demo_data, database_has_tasks, seed_demo_data

    opened = _open(load_settings())
    try:
        if database_has_tasks(opened.owner_url):
            if not args.replace:
                raise CliError(
                    "the database already has tasks; pass --replace to delete them first"
                )
            clear_demo_data(opened.owner_url)
        seed_demo_data(opened.owner_url, SCALES[args.scale])
        print(f"Demo data loaded ({args.scale}).")
    finally:
        opened.close()


def cmd_refresh_analytics(args: argparse.Namespace) -> None:
    from data.analytics import refresh_rollups

    opened = _open(load_settings())
    try:
        steps = refresh_rollups(opened.database, None if args.full else max(1, args.hours))
        print("Rollups refreshed: " + ", ".join(f"{k} {v} steps" for k, v in steps.items()))
    finally:
        opened.close()


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
    from data.users import create_user, validate_new_user

    password = _read_password(args.password_stdin)
    validate_new_user(args.username, args.email, password)  # refuse before starting anything
    opened = _open(load_settings())
    try:
        user_id = create_user(SYSTEM_ACTOR, args.username, args.email, args.role, password)
        print(f"Created user {args.username} ({args.role}), id {user_id}.")
    finally:
        opened.close()


COMMANDS = {
    "serve": cmd_serve,
    "demo": cmd_demo,
    "migrate": cmd_migrate,
    "seed-demo": cmd_seed_demo,
    "refresh-analytics": cmd_refresh_analytics,
    "create-user": cmd_create_user,
}


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (service managers, `kill`) stops as cleanly as Ctrl-C: the embedded server too.
    signal.signal(signal.SIGTERM, _interrupt)
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
