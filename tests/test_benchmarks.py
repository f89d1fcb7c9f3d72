"""The benchmark scripts run (tiny sizes); their figures live in docs/benchmarks.md, not in asserts."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_ack_latency_script_runs_and_loses_nothing():
    from benchmarks import ack_latency

    report = ack_latency.run(commands=6, concurrency=3, delay=0.05, workers=2, timeout=60)
    assert report["http_200"] == 6
    assert report["results_posted"] == 6 and report["results_lost"] == 0
    assert report["aws_calls"]["DescribeSnapshots"] >= 4
