"""gunicorn settings for a checkout: `gunicorn -c gunicorn.conf.py -w 2 taskmaster_dash.app:server`.
The hooks live in the package (taskmaster_dash/gunicorn_conf.py), so an installed wheel has them
too: `gunicorn -c python:taskmaster_dash.gunicorn_conf -w 2 taskmaster_dash.app:server`."""

from taskmaster_dash.gunicorn_conf import child_exit, forwarded_allow_ips, on_starting, worker_exit

# gunicorn takes its settings and hooks from this module's names
__all__ = ["child_exit", "forwarded_allow_ips", "on_starting", "worker_exit"]
