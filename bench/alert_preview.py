"""Benchmark: the 7-day preview of one rule (history from the rollups, then the replay), as
the /alerts editor's Preview button runs it, for a few catalogue metrics grouped by a column.
Target: under 1 s.

    .venv/bin/python bench/alert_preview.py [--scale small|medium|large] [--rounds 10]

Starts a throwaway embedded PostgreSQL, loads demo data, refreshes the rollups, and prints the
median and p95 of each preview. Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskmaster_dash.alerts.preview import replay_rule
from taskmaster_dash.alerts.rules import parse_rule
from taskmaster_dash.data.alert_metric_history import rule_history
from taskmaster_dash.data.analytics import refresh_rollups
from taskmaster_dash.data.config import load_settings
from taskmaster_dash.data.db import Database
from taskmaster_dash.data.embedded import start_embedded
from taskmaster_dash.data.runtime import migrate
from taskmaster_dash.data.seed import SCALES, seed_demo_data
from taskmaster_dash.services import Services, install

RULES = [
    ("errors_per_minute", {"window_minutes": 5}, ["service_name"], 1),
    ("errors_per_minute", {"window_minutes": 60}, ["service_name", "severity"], 0.5),
    ("validation_failure_share", {"window_minutes": 60}, ["validation_type"], 0.2),
    ("open_errors", {}, ["severity"], 100),
]


def timed(func, rounds: int) -> tuple[float, float, object]:
    result = func()  # warm-up (plans, pools), not counted
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], result


def preview(metric: str, params: dict, group_by: list[str], threshold: float):
    rule = parse_rule(
        {
            "name": "BenchPreview",
            "title": "bench",
            "severity": "warning",
            "source": {"sql": metric},
            "params": params,
            "group_by": group_by,
            "comparison": ">",
            "threshold": threshold,
            "for": "10m",
            "keep_firing_for": "5m",
            "description": "bench",
            "link": "/alerts",
        },
        0,
        origin="app",
    )

    def run():
        history = rule_history("sql", metric, rule.param_values, rule.group_by)
        return replay_rule(rule, history)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    embedded = start_embedded(
        Path(tempfile.mkdtemp(prefix="tmdash-bench-")) / "pgdata", delete_on_stop=True
    )
    try:
        migrate(embedded.owner_url, embedded.app_url)
        seed_demo_data(embedded.owner_url, SCALES[args.scale])
        database = Database(embedded.app_url)
        install(Services.build(load_settings(), database))
        refresh_rollups(None)
        for metric, params, group_by, threshold in RULES:
            median, p95, previews = timed(preview(metric, params, group_by, threshold), args.rounds)
            fired = sum(p.fired for p in previews)  # type: ignore[attr-defined]
            print(
                f"7-day preview of {metric} by {', '.join(group_by)} ({args.scale}): "
                f"median {median:.0f} ms, p95 {p95:.0f} ms "
                f"({len(previews)} instances, fired {fired} times)"  # type: ignore[arg-type]
            )
        install(None)
        database.dispose()
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
