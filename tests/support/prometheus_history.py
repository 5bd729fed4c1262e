"""A real Prometheus holding days of history the test chose: the samples are written as
OpenMetrics, turned into TSDB blocks by `promtool tsdb create-blocks-from openmetrics` (what
backfilling is for), and the server started on them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskmaster_dash.data.local_prometheus import LocalPrometheus
from tests.support.processes import free_port

Samples = Mapping[str, Sequence[tuple[int, float]]]  # pool -> (unix seconds, value)


@contextmanager
def prometheus_with(directory: Path, metric: str, samples: Samples) -> Iterator[LocalPrometheus]:
    """Prometheus with `metric`{pool=...} holding `samples`; skips when it is not installed."""
    promtool = shutil.which("promtool")
    if not shutil.which("prometheus") or not promtool:
        pytest.skip("prometheus and promtool are not installed")
    lines = [f"# TYPE {metric} gauge"]
    for pool, points in samples.items():
        lines += [f'{metric}{{pool="{pool}"}} {value} {at}' for at, value in points]
    source = directory / "history.om"
    source.write_text("\n".join([*lines, "# EOF"]) + "\n")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(directory / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    # Nothing to scrape: the history is all there is (the target is a closed port).
    server = LocalPrometheus(directory, f"127.0.0.1:{free_port()}", token=None, retention="30d")
    server.start()
    try:
        yield server
    finally:
        server.stop()
