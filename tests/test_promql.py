"""The PromQL behind the panels comes from configuration; steps follow the time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from taskmaster_dash.data.pool_health import Window
from taskmaster_dash.data.prometheus import load_promql, promql, rate_window, step_seconds


def test_defaults_use_the_spec_metric_names():
    queries = load_promql(None)
    assert "taskmaster_db_queries_failed" in queries["query_failure_rate"]
    assert "taskmaster_db_pool_max" in queries["pool_utilisation"]


def test_an_override_file_replaces_only_the_queries_it_names(tmp_path, monkeypatch):
    override = tmp_path / "promql.yaml"
    override.write_text("query_failure_rate: sum by (pool) (rate(my_failed_total[{window}]))\n")
    monkeypatch.setenv("PROMQL_CONFIG", str(override))
    queries = load_promql()
    assert queries["query_failure_rate"] == "sum by (pool) (rate(my_failed_total[{window}]))"
    monkeypatch.delenv("PROMQL_CONFIG")
    assert queries["pool_max"] == load_promql()["pool_max"]
    assert promql("query_failure_rate", 600, queries) == (
        "sum by (pool) (rate(my_failed_total[1200s]))"
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("no_such_panel: up\n", "unknown panel query name"),
        ("- just\n- a list\n", "expected 'name: PromQL query'"),
        ("pool_max: [unclosed\n", "cannot read"),
    ],
)
def test_a_bad_override_file_is_refused_with_a_clear_message(tmp_path, content, message):
    override = tmp_path / "promql.yaml"
    override.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_promql(override)
    with pytest.raises(ValueError, match="cannot read"):
        load_promql(tmp_path / "absent.yaml")


def test_step_and_rate_window_grow_with_the_range():
    now = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    assert step_seconds(now - timedelta(minutes=15), now) == 15
    assert step_seconds(now - timedelta(days=7), now) == 605
    assert rate_window(15) == "60s" and rate_window(605) == "1210s"
    window = Window.last(60, now)
    assert window.step == 15
    assert window.end == datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)  # aligned to the step
    assert window.end - window.start == timedelta(minutes=60)
