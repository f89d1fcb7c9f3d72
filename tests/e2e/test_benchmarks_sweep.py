"""benchmarks/sweep_scale.py runs the real `python -m bot sweep` against the fake EC2 (tiny sizes).

Figures live in docs/benchmarks.md; these check the script's verdicts mean
what they say: exactly the expected snapshots go, every call is counted
against the floor, and faults cost retries but never a wrong result.
"""

from __future__ import annotations

import pytest

from benchmarks import sweep_scale

pytestmark = pytest.mark.e2e


def test_a_clean_sweep_is_correct_and_makes_exactly_the_floors_calls():
    # 60 expired per region fit in the DeleteSnapshot burst, so no bucket can throttle.
    report = sweep_scale.benchmark(400, speedup=10)
    assert report["exit_code"] == 0, report["report"]
    assert report["correct"] and report["outcome"]["deleted"] == report["deletions_expected"] == 120
    assert report["calls_floor"] == {"DescribeSnapshots": 2, "DescribeImages": 2, "DeleteSnapshot": 120}
    assert report["calls_total_over_floor"] == 0
    assert report["fake"]["repeated_deletions"] == 0
    assert report["peak_rss_mib"] > 0 and report["wall_s"] > 0


def test_injected_throttles_and_500s_cost_retries_not_the_result():
    report = sweep_scale.benchmark(200, speedup=10, throttle_share=0.3, error_share=0.02, seed=3)
    assert report["fake"]["faults"], "the fake injected nothing: the test proves nothing"
    assert report["exit_code"] == 0, report["report"]
    assert report["correct"]
    assert report["fake"]["repeated_deletions"] == 0
    assert report["calls_total_over_floor"] > 0  # the retries are counted


def test_a_lost_delete_response_is_not_a_failure_or_a_wrong_result():
    # Every 500 comes after EC2 deleted the snapshot: the retry finds it gone ("skipped").
    report = sweep_scale.benchmark(400, speedup=10, error_share=0.1, fault_after=1.0, seed=4)
    assert report["fake"]["faults"]
    assert report["exit_code"] == 0, report["report"]
    assert report["correct"]
