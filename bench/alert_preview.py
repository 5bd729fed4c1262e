"""Benchmark: the 7-day preview of one rule (history from the rollups, then the replay), as
the /alerts editor's Preview button runs it, for a few catalogue metrics grouped by a column.
Target: under 1 s.

    .venv/bin/python bench/alert_preview.py [--scale small|medium|large] [--rounds 10]

Starts a throwaway embedded PostgreSQL, loads demo data, refreshes the rollups, and prints the
median and p95 of each preview. Not a test: run it on demand.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import app_services, bench_parser, seeded, timed
from taskmaster_dash.alerts.preview import replay_rule
from taskmaster_dash.alerts.rules import parse_rule
from taskmaster_dash.data.alert_metric_history import rule_history
from taskmaster_dash.data.analytics import refresh_rollups

RULES = [
    ("errors_per_minute", {"window_minutes": 5}, ["service_name"], 1),
    ("errors_per_minute", {"window_minutes": 60}, ["service_name", "severity"], 0.5),
    ("validation_failure_share", {"window_minutes": 60}, ["validation_type"], 0.2),
    ("open_errors", {}, ["severity"], 100),
]


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
    parser = bench_parser(__doc__, "small", rounds=10)
    args = parser.parse_args()
    with seeded(args) as (_, app_url), app_services(app_url):
        refresh_rollups(None)
        for metric, params, group_by, threshold in RULES:
            run = preview(metric, params, group_by, threshold)
            previews = run()  # also the warm-up (plans, pools)
            median, p95 = timed(run, args.rounds, warm=False)
            fired = sum(p.fired for p in previews)
            print(
                f"7-day preview of {metric} by {', '.join(group_by)} ({args.scale}): "
                f"median {median:.0f} ms, p95 {p95:.0f} ms "
                f"({len(previews)} instances, fired {fired} times)"
            )


if __name__ == "__main__":
    main()
