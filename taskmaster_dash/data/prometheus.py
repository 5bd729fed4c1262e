"""Reading the Prometheus HTTP API (prometheus-api-client), with short timeouts and a brief cache.

Callers get plain values or DataFrames, or PrometheusUnavailable with the URL that was tried,
so a page can say plainly what is unreachable instead of showing "all clear".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import requests
import yaml
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from taskmaster_dash.data.cache import Cache
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.resources import shipped
from taskmaster_dash.services import current as current_services

MAX_POINTS = 1000


class PrometheusUnavailable(Exception):
    """Prometheus could not answer (disabled, unreachable, timed out, or refused the query)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Prometheus at {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def step_seconds(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> int:
    """A range-query step that keeps a series under `max_points` points (at least 15 s)."""
    span = max((end - start).total_seconds(), 1)
    return max(15, math.ceil(span / max_points))


class PrometheusReader:
    def __init__(self, url: str, *, timeout: float = 3.0, cache_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.cache_seconds = cache_seconds
        # No retries: a dashboard should say "unreachable" quickly, not hang on backoff.
        self._client = PrometheusConnect(
            url=self.url, disable_ssl=True, timeout=timeout, retry=Retry(total=0)
        )
        self._cache = Cache(cache_seconds)

    def _cached(self, key: tuple, fetch):
        def checked():
            try:
                return fetch()
            except (requests.RequestException, PrometheusApiClientException, ValueError) as exc:
                raise PrometheusUnavailable(self.url, _reason(exc)) from exc

        return self._cache.get(key, checked)

    def clear_cache(self) -> None:
        self._cache.clear()

    def instant(self, promql: str) -> list[Sample]:
        def fetch() -> list[Sample]:
            return [
                Sample(dict(item.get("metric", {})), float(item["value"][1]))
                for item in self._client.custom_query(promql)
            ]

        return self._cached(("instant", promql), fetch)

    def scalar(self, promql: str) -> float | None:
        """The single value of an instant query; None when the query returns no series."""
        samples = self.instant(promql)
        if not samples:
            return None
        return sum(s.value for s in samples) if len(samples) > 1 else samples[0].value

    def range(self, promql: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Columns: time, value, then one column per label. Empty frame when there is no data."""
        step = step_seconds(start, end)
        bucket = int(end.timestamp()) // max(step, int(self.cache_seconds) or 1)

        def fetch() -> pd.DataFrame:
            rows = []
            for series in self._client.custom_query_range(promql, start, end, f"{step}s"):
                labels = dict(series.get("metric", {}))
                for timestamp, value in series.get("values", []):
                    rows.append(
                        {
                            "time": pd.to_datetime(timestamp, unit="s", utc=True),
                            "value": float(value),
                            **labels,
                        }
                    )
            return pd.DataFrame(rows, columns=None if rows else ["time", "value"])

        return self._cached(("range", promql, int(start.timestamp()), bucket, step), fetch)

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).ok
        except requests.RequestException:
            return False


def _reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host unreachable"
    return str(exc)[:200]


def get_prometheus() -> PrometheusReader | None:
    """The current services' reader, or None when PROMETHEUS_ENABLED is off."""
    return current_services().prometheus


# --- the PromQL behind the panels (data/promql.yaml, overridable with PROMQL_CONFIG) ---------

DEFAULT_PROMQL_FILE = shipped("data", "promql.yaml")


def load_promql(path: str | Path | None = None) -> dict[str, str]:
    """The shipped queries, with those of `path` (or $PROMQL_CONFIG) laid over them."""
    queries = _read_promql(DEFAULT_PROMQL_FILE)
    override = path or load_settings().promql_config
    if override:
        extra = _read_promql(Path(override))
        unknown = sorted(set(extra) - set(queries))
        if unknown:
            raise ValueError(f"{override}: unknown panel query name(s): {', '.join(unknown)}")
        queries.update(extra)
    return queries


def _read_promql(path: Path) -> dict[str, str]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the PromQL configuration {path}: {exc}") from exc
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in loaded.items()
    ):
        raise ValueError(f"{path}: expected 'name: PromQL query' lines")
    return {k: v.strip() for k, v in loaded.items()}


def rate_window(step: int) -> str:
    """The rate() window for a range query with this step: two steps, at least a minute."""
    return f"{max(60, 2 * step)}s"


def promql(name: str, step: int = 15, queries: dict[str, str] | None = None) -> str:
    """The configured PromQL for panel `name`, with {window} filled in for this step."""
    return (queries or load_promql())[name].replace("{window}", rate_window(step))
