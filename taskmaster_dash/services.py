"""The services object: what the app shares between requests and threads, built once by
`create_app` (or by a CLI command) and reached through one accessor, `current()`.

It holds the settings, the database, the Prometheus reader, the alert rules, the caches and the
background workers. Data functions take no database argument: they call
`data.db.get_database()`, which is `current().database`. One per process: gunicorn workers each
build their own (after the fork), and the background workers elect one leader among them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskmaster_dash.data.cache import Cache

if TYPE_CHECKING:
    from taskmaster_dash.alerts.alertmanager import AlertmanagerClient
    from taskmaster_dash.alerts.rules import Rule
    from taskmaster_dash.data.config import Settings
    from taskmaster_dash.data.db import Database
    from taskmaster_dash.data.leader import ElectedLoop
    from taskmaster_dash.data.prometheus import PrometheusReader

log = logging.getLogger(__name__)

# How long each shared answer is kept (seconds).
BANNER_CACHE_SECONDS = 5.0  # firing alerts: the banner polls every 15 s in every session
TASK_COUNTS_CACHE_SECONDS = 15.0  # a 1 s scrape interval must not become a 1 s query interval
ALERTMANAGER_SILENCES_CACHE_SECONDS = 10.0  # /alerts polls every 15 s in every session
PANEL_CACHE_ENTRIES = 2048  # (data, drawing) x panels x views x visibilities: _panel_cache.py


def read_setting_files(settings: Settings) -> tuple[Rule, ...]:
    """The files the settings name, read now so a bad one stops the start, not a page: the
    alert rules (returned) and PROMQL_CONFIG (checked). SettingsError names the variable."""
    from taskmaster_dash.alerts.rules import load_rules
    from taskmaster_dash.data.config import SettingsError
    from taskmaster_dash.data.prometheus import load_promql

    try:
        rules = tuple(load_rules(settings.alerts_rules_file))
    except ValueError as exc:
        raise SettingsError(f"ALERTS_RULES_FILE: {' '.join(str(exc).split())}") from None
    if settings.promql_config is not None:
        try:
            load_promql(settings.promql_config)
        except ValueError as exc:
            raise SettingsError(f"PROMQL_CONFIG: {' '.join(str(exc).split())}") from None
    return rules


@dataclass
class Caches:
    banner: Cache = field(default_factory=lambda: Cache(BANNER_CACHE_SECONDS, maxsize=1))
    task_counts: Cache = field(default_factory=lambda: Cache(TASK_COUNTS_CACHE_SECONDS, maxsize=1))
    alertmanager_silences: Cache = field(
        default_factory=lambda: Cache(ALERTMANAGER_SILENCES_CACHE_SECONDS, maxsize=1)
    )
    # PANEL_CACHE_SECONDS (Services.build); cleared by every rollup refresh in this process
    panels: Cache = field(default_factory=lambda: Cache(60.0, maxsize=PANEL_CACHE_ENTRIES))
    sessions: Cache = field(default_factory=lambda: Cache(0))  # SESSION_CACHE_SECONDS

    def clear(self) -> None:
        self.sessions.clear()
        self.banner.clear()
        self.task_counts.clear()
        self.alertmanager_silences.clear()
        self.panels.clear()


@dataclass
class Services:
    settings: Settings
    database: Database
    prometheus: PrometheusReader | None = None
    rules: tuple[Rule, ...] = ()
    caches: Caches = field(default_factory=Caches)
    workers: list[ElectedLoop] = field(default_factory=list)
    alertmanager: AlertmanagerClient | None = None  # ALERTMANAGER_URL: silences go there too

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        prometheus: PrometheusReader | None = None,
    ) -> Services:
        from taskmaster_dash.alerts.alertmanager import AlertmanagerClient

        rules = read_setting_files(settings)
        if settings.session_cache_seconds:
            database.share_revocations(settings.redis_url)  # other hosts learn of sign-outs
        return cls(
            settings,
            database,
            prometheus,
            rules,
            caches=Caches(
                panels=Cache(settings.panel_cache_seconds, maxsize=PANEL_CACHE_ENTRIES),
                sessions=Cache(settings.session_cache_seconds, maxsize=10_000),
            ),
            alertmanager=AlertmanagerClient.from_settings(settings),
        )

    def clear_caches(self) -> None:
        self.caches.clear()
        if self.prometheus is not None:
            self.prometheus.clear_cache()

    # -- the background workers' lifecycle ------------------------------------------------------

    def start_workers(self, *, refresher: bool = True, evaluator: bool | None = None) -> None:
        """Start the rollup refresher and the alert evaluator (by default unless ALERTS_EVALUATOR
        is off). Each runs in every process but works only where it holds its advisory lock,
        so N gunicorn workers run one of each. They stop before the database is disposed (a
        running save would fail otherwise), the last started first."""
        from taskmaster_dash.alerts.evaluator import evaluator_from_settings
        from taskmaster_dash.data.analytics import RollupRefresher

        if self.workers:
            return
        if refresher:
            self.workers.append(RollupRefresher(self.settings.analytics_refresh_seconds))
        if self.settings.alerts_evaluator if evaluator is None else evaluator:
            self.workers.append(evaluator_from_settings(self.settings))
            if self.alertmanager is not None:  # maintenance windows' silences, made ahead
                from taskmaster_dash.alerts.maintenance_sync import MaintenanceSync

                self.workers.append(MaintenanceSync(self.alertmanager))
        else:
            log.info("alerts: evaluator not started (ALERTS_EVALUATOR is off)")
        for worker in self.workers:
            worker.start()
        self.database.stop_before_dispose(self.stop_workers)

    def stop_workers(self) -> None:
        while self.workers:
            self.workers.pop().stop()  # the last started stops first

    @contextmanager
    def using(self, **changes: Any) -> Iterator[Services]:
        """These services with some parts replaced (tests: another database or reader), put
        back afterwards; the caches start and end empty."""
        saved = {name: getattr(self, name) for name in changes}
        for name, value in changes.items():
            setattr(self, name, value)
        self.clear_caches()
        try:
            yield self
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
            self.clear_caches()


_current: Services | None = None


def install(services: Services | None) -> None:
    """Make `services` the process's current services (None: none)."""
    global _current
    _current = services


def current() -> Services:
    """The process's services; RuntimeError before `create_app` (or a CLI command) built them."""
    if _current is None:
        raise RuntimeError("the services are not built (create_app or services.install first)")
    return _current
