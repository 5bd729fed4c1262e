"""gunicorn settings, shipped in the package so an installed wheel has them:
`gunicorn -c python:taskmaster_dash.gunicorn_conf -w 2 -b 0.0.0.0:8050 taskmaster_dash.app:server`
(in a checkout, `-c gunicorn.conf.py` reads the same).

With PROMETHEUS_MULTIPROC_DIR set (an empty directory, wiped at each deploy), every worker writes
its metrics there and any worker answers /api/v1/metrics with the sum; this hook drops a dead
worker's live gauges (pool state) while keeping its counts.

Every worker starts the rollup refresher and the alert evaluator; each works only in the worker
holding its PostgreSQL advisory lock, so N workers run one of each (data/leader.py).
"""

# gunicorn would believe X-Forwarded-Proto from loopback whatever TRUSTED_PROXY_COUNT says; the
# app alone decides which proxy headers to believe (werkzeug's ProxyFix).
forwarded_allow_ips = ""


def child_exit(server, worker):  # gunicorn's hook signature
    from taskmaster_dash.data.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """A worker stopping (SIGTERM, a restart) ends its background jobs before its pools: a
    leader releases its advisory locks at once, so another worker takes over next interval."""
    import contextlib

    from taskmaster_dash.services import current

    with contextlib.suppress(RuntimeError):  # RuntimeError: the app was never built here
        current().database.dispose()


def on_starting(server):
    """Check every setting once, in the master, before a worker imports the app: a bad value
    stops gunicorn with one line naming it."""
    from taskmaster_dash.data.config import SettingsError, load_settings

    try:
        load_settings()
    except SettingsError as exc:
        raise SystemExit(f"taskmaster-dash: {exc}") from None
