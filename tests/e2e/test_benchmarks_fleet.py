"""benchmarks/fleet_sweep.py runs one real `python -m bot sweep` over several accounts (tiny sizes).

Figures live in docs/benchmarks.md; this checks the script's verdicts mean
what they say: every reachable account's expired snapshots go and nothing
else, each account is reached with one AssumeRole, and an account whose role
is refused is reported failed, touched not at all, and makes the exit code
non-zero while the others complete.
"""

from __future__ import annotations

import pytest

from benchmarks import fleet_sweep

pytestmark = pytest.mark.e2e


def test_a_fleet_sweep_deletes_in_every_reachable_account_and_reports_the_denied_one():
    # 3 accounts x 2 regions x 30 snapshots: 9 expired a pair, within the DeleteSnapshot burst.
    report = fleet_sweep.benchmark(3, 30, speedup=20, deny=1)

    assert report["setup"]["denied"] == ["acct02"]
    assert report["exit_code"] == 1, report["report"]
    assert report["denied_reported_failed"] == {"acct02": True}, report["report"]
    assert report["ec2_calls_in_denied_accounts"] == {"acct02": 0}
    assert report["outcome"]["accounts_not_correct"] == {}
    assert report["outcome"]["deleted"] == report["deletions_expected"] == 2 * 2 * 9
    assert report["assume_role"]["granted"] == 1 and report["assume_role"]["refused"] >= 1
    assert report["calls_floor"] == {"DescribeSnapshots": 4, "DescribeImages": 4, "DeleteSnapshot": 36, "AssumeRole": 1}
    assert all(n == 0 for n in report["calls_over_floor"].values()), report["calls_over_floor"]
    assert report["fake"]["repeated_deletions"] == 0
    assert report["correct"]


def test_a_fleet_sweep_with_every_role_granted_exits_zero():
    report = fleet_sweep.benchmark(2, 30, regions=("us-east-1",), speedup=20)

    assert report["exit_code"] == 0, report["report"]
    assert report["correct"] and report["outcome"]["deleted"] == 2 * 9
    assert report["fake"]["calls"]["AssumeRole"] == 1


@pytest.mark.parametrize("processes", ["1", "3"])
def test_one_process_or_one_per_account_sweeps_the_same_at_the_call_floor(processes):
    report = fleet_sweep.benchmark(3, 30, regions=("us-east-1",), speedup=20, processes=processes)

    assert report["exit_code"] == 0, report["report"]
    assert report["correct"] and report["outcome"]["deleted"] == 3 * 9
    assert all(n == 0 for n in report["calls_over_floor"].values()), report["calls_over_floor"]
    assert report["fake"]["calls"]["AssumeRole"] == 2  # each account's role assumed once, in whichever process
    assert report["peak_rss_all_processes_mib"] >= report["peak_rss_mib"] > 0
