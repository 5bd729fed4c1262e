"""Benchmark: the alerts drawn on a page's charts (data/alert_overlays.firing_bands, one query
over alert_history) over a month of flapping history, for each preset range of /tasks and
/pools, and the size they add to one figure.

    .venv/bin/python bench/alert_overlays.py [--scale small] [--rounds 20] [--instances 20]

Starts a throwaway embedded PostgreSQL, loads demo data, evaluates the rules once, adds a month
of transitions (every rule flapping every 5 minutes: bench/alerts.py's add_month_of_transitions)
and `--instances` more instances of TaskBacklog flapping the same way, then prints median and
p95 times. Not a test: run it on demand.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alerts import add_month_of_flapping, add_month_of_transitions
from bench.common import app_services, bench_parser, seeded, timed
from taskmaster_dash.alerts.evaluator import AlertEvaluator
from taskmaster_dash.data.alert_overlays import firing_bands
from taskmaster_dash.data.analytics import Window
from taskmaster_dash.data.analytics_tasks import STEP as TASK_STEP
from taskmaster_dash.data.db import SYSTEM_ACTOR
from taskmaster_dash.pages._figures import chart
from taskmaster_dash.pages._panels import page_alerts
from taskmaster_dash.pages._timerange import RANGES


def add_flapping_instances(owner_url: str, rule: str, instances: int) -> int:
    """`instances` instances of `rule` alternating normal/firing every 5 minutes for 30 days."""
    return add_month_of_flapping(
        owner_url,
        """SELECT CAST(:rule AS text) AS rule_name, 'assigned_to=user' || i AS instance,
                  jsonb_build_object('assigned_to', 'user' || i) AS labels, i AS shift
           FROM generate_series(1, :instances) i""",
        {"rule": rule, "instances": instances},
        analyze=True,
    )


def main() -> None:
    parser = bench_parser(__doc__, "small", rounds=20)
    parser.add_argument("--instances", type=int, default=20)
    args = parser.parse_args()
    with seeded(args) as (owner_url, app_url), app_services(app_url):
        evaluator = AlertEvaluator(prometheus=lambda: None)
        evaluator.evaluate_once()  # one alert_states row per rule
        add_month_of_transitions(owner_url, [rule.name for rule in evaluator.rules])
        total = add_flapping_instances(owner_url, "TaskBacklog", args.instances)
        print(
            f"alert_history: {total:,} transitions (every rule, and {args.instances} more "
            "TaskBacklog instances, flapping every 5 min for 30 days)"
        )
        for path in ("/tasks", "/pools"):
            for name, span in RANGES.items():
                window = Window.last(span, step=TASK_STEP)
                alerts = page_alerts(SYSTEM_ACTOR, path, window.start, window.end, window.bucket)
                names = [rule.name for rule in alerts.rules]
                bands = partial(
                    firing_bands, SYSTEM_ACTOR, names, window.start, window.end, window.bucket
                )
                median, p95 = timed(bands, args.rounds)

                def drawn(w: Window = window, p: str = path) -> object:
                    return page_alerts(SYSTEM_ACTOR, p, w.start, w.end, w.bucket).on(chart([]))

                whole, _ = timed(drawn, args.rounds)
                size = len(json.dumps(alerts.on(chart([]))))
                print(
                    f"{path} {name:>3} ({len(names)} rules, {describe(window)}): query median "
                    f"{median:.1f} ms, p95 {p95:.1f} ms; with rules and figure {whole:.1f} ms; "
                    f"{len(alerts.bands.bands)} bands (+{alerts.bands.hidden} not drawn), "
                    f"{size / 1024:.1f} kB of figure"
                )


def describe(window: Window) -> str:
    return f"merge gap {int(window.bucket.total_seconds() // 60)} min"


if __name__ == "__main__":
    main()
