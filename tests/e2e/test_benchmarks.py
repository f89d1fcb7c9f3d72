"""The benchmark scripts run (tiny sizes); their figures live in docs/benchmarks.md, not in asserts."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_ack_latency_script_runs_and_loses_nothing(capsys):
    from benchmarks import ack_latency

    ack_latency.main(["--commands", "4", "--concurrency", "2", "--delay", "0.2", "--workers", "2", "--timeout", "30"])
    report = json.loads(capsys.readouterr().out)
    assert report["http_200"] == 4 and report["acked_working"] == 4
    assert report["results_posted"] == 4 and report["results_lost"] == 0
    assert report["error_results"] == {}
    for figure in ("ack_ms", "result_s"):
        assert set(report[figure]) == {"p50", "p99", "max"}
    assert set(report["loadavg_1_5_15"]) == {"before", "after"}
    assert report["aws_calls"]["DescribeSnapshots"] >= 2  # the results came from the fake EC2
    assert report["exit_codes"] == {"bot": 0, "fake_ec2": 0}
