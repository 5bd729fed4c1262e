"""Benchmark: one evaluation of every alert rule, one evaluation cycle of 200 grouped rules
(about 20 instances each, SQL metrics read from the analytics rollups), the banner's query, and
the timeline chart's query over a month of transitions (a flapping rule every 5 minutes), on
demo data.

    .venv/bin/python bench/alerts.py [--scale small|medium|large] [--rounds 20] [--rules 200]

Starts a throwaway embedded PostgreSQL, loads demo data, and prints median and p95 times.
Not a test: run it on demand.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from bench.common import app_services, bench_parser, seeded, timed
from taskmaster_dash.alerts.evaluator import AlertEvaluator
from taskmaster_dash.alerts.rules import Rule, parse_rule
from taskmaster_dash.data.alerts import banner_alerts, state_periods
from taskmaster_dash.data.analytics import compact_headline_counts
from taskmaster_dash.data.db import SYSTEM_ACTOR

# Grouped rules as teams write them: errors per minute by service, category and severity over
# windows of an hour to a day (the 5-minute rollup plus the raw rows at the edges), validation
# failure share and mean score by type (the hourly rollup), the backlog by assignee and priority.
SHAPES: list[dict] = [
    {"sql": "errors_per_minute", "group_by": ["service_name", "error_type", "severity"]},
    {"sql": "validation_failure_share", "group_by": ["validation_type"]},
    {"sql": "errors_per_minute", "group_by": ["service_name", "error_type", "severity"]},
    {"sql": "mean_validation_score", "group_by": ["validation_type"]},
    {"sql": "pending_tasks", "group_by": ["assigned_to", "priority"]},
]


def grouped_rules(count: int) -> list[Rule]:
    """`count` rules, each its own window (so each reads its own query) and threshold."""
    rules = []
    for i in range(count):
        shape = SHAPES[i % len(SHAPES)]
        entry = {
            "name": f"Bench{i:03d}",
            "title": f"Bench rule {i}",
            "severity": "warning",
            "source": {"sql": shape["sql"]},
            "group_by": shape["group_by"],
            "comparison": ">",
            "threshold": (i % 7) * 0.5,
            "for": "1m",
            "description": "A benchmark rule.",
            "link": "/alerts",
        }
        if shape["sql"] != "pending_tasks":
            entry["params"] = {"window_minutes": 60 + (i * 7) % 1380}
        rules.append(parse_rule(entry, i))
    return rules


def add_month_of_flapping(
    owner_url: str, flapping: str, params: dict, analyze: bool = False
) -> int:
    """Each (rule_name, instance, labels, shift) row the query `flapping` selects, alternating
    normal/firing every 5 minutes (`shift` seconds earlier) for 30 days, inserted as the owner
    and ANALYZEd if asked: the rows alert_history has then."""
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"""INSERT INTO alert_history (rule_name, instance, labels, to_state, created_at)
                    SELECT f.rule_name, f.instance, f.labels,
                           CASE WHEN n % 2 = 0 THEN 'normal' ELSE 'firing' END,
                           now() - make_interval(mins => 5 * n, secs => f.shift)
                    FROM ({flapping}) f, generate_series(1, 30 * 24 * 12) n"""
            ),
            params,
        )
        if analyze:
            conn.execute(text("ANALYZE alert_history"))
        count = conn.execute(text("SELECT count(*) FROM alert_history")).scalar_one()
    engine.dispose()
    return count


def add_month_of_transitions(owner_url: str, rule_names: list[str]) -> int:
    """Each of `rule_names` alternating normal/firing every 5 minutes for 30 days: far more
    than real."""
    return add_month_of_flapping(
        owner_url,
        """SELECT rule_name, '' AS instance, '{}'::jsonb AS labels, 0 AS shift
           FROM unnest(CAST(:names AS text[])) AS rule_name""",
        {"names": rule_names},
    )


def main() -> None:
    parser = bench_parser(__doc__, "small", rounds=20)
    parser.add_argument("--rules", type=int, default=200)
    args = parser.parse_args()
    with seeded(args) as (owner_url, app_url), app_services(app_url):
        # The rollups and the trigger-kept counts as the app's refresher keeps them, and the
        # rows compaction leaves dead vacuumed away, as autovacuum does on a running system.
        engine = create_engine(owner_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT analytics_refresh(NULL)"))
            compact_headline_counts()
            conn.execute(text("VACUUM (ANALYZE)"))
        engine.dispose()
        evaluator = AlertEvaluator(prometheus=lambda: None)
        evaluator.evaluate_once()  # warm the pools
        median, p95 = timed(evaluator.evaluate_once, args.rounds)
        print(
            f"evaluate all {len(evaluator.rules)} rules ({args.scale}): "
            f"median {median:.1f} ms, p95 {p95:.1f} ms"
        )
        many = AlertEvaluator(rules=grouped_rules(args.rules), prometheus=lambda: None)
        results = many.evaluate_once()  # the first cycle writes every instance's row
        queries = {(r.source, r.params, r.group_by) for r in many.rules}
        median, p95 = timed(many.evaluate_once, max(5, args.rounds // 2))
        print(
            f"one cycle of {len(many.rules)} grouped rules, {len(results)} instances "
            f"({len(results) / len(many.rules):.1f} per rule, {len(queries)} distinct queries), "
            f"{args.scale}: median {median:.0f} ms, p95 {p95:.0f} ms"
        )
        median, p95 = timed(lambda: banner_alerts(SYSTEM_ACTOR), args.rounds * 5)
        print(f"banner query (uncached): median {median:.2f} ms, p95 {p95:.2f} ms")
        rule_names = [rule.name for rule in evaluator.rules]
        transitions = add_month_of_transitions(owner_url, rule_names)
        for hours in (24, 168):
            median, p95 = timed(
                partial(state_periods, SYSTEM_ACTOR, rule_names, hours), args.rounds
            )
            print(
                f"timeline periods, last {hours} h of {transitions:,} transitions: "
                f"median {median:.1f} ms, p95 {p95:.1f} ms"
            )


if __name__ == "__main__":
    main()
