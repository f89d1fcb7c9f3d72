"""Sweep reports and previews: never call undone work a success; stay within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Policy
from bot.domain.costs import Cost
from bot.domain.retention import Item, decide
from bot.domain.sweep_report import Created, Failed, PolicyReport, SweepReport, policy_report
from bot.slack.blocks import sweep_report_message
from bot.testing.slack_limits import all_text, assert_within_limits

NOW = datetime(2024, 6, 15, 3, 0, tzinfo=UTC)
PRICE = 0.05


def decisions(count: int = 5, keep: int = 2, size: int = 100, policy: str = "daily-db"):
    items = [
        Item(f"snap-{i:04d}", "us-east-1", "snapshot", "vol-1", NOW - timedelta(days=i), "completed", size,
             {"chatops:policy": policy})
        for i in range(count)
    ]  # fmt: skip
    rules = Policy(name=policy, resource="volume", target_tags={"B": "1"}, every=timedelta(hours=12), keep=keep)
    return decide(items, rules, NOW)


def report(*policies: PolicyReport) -> SweepReport:
    return SweepReport(policies, NOW, PRICE)


def test_policy_report_from_decisions():
    p = policy_report("daily-db", "delete", decisions(), created=[Created("us-east-1", "vol-1", "snap-new")])
    assert [d.item.id for d in p.expired] == ["snap-0002", "snap-0003", "snap-0004"]
    assert p.kept == 2
    assert p.at_stake(PRICE) == Cost(3, 300, 15.0)


def test_delete_run_that_deleted_everything_is_ok():
    p = policy_report("daily-db", "delete", decisions(), deleted=["snap-0002", "snap-0003", "snap-0004"])
    assert p.ok and p.undone == ()
    assert p.freed(PRICE) == Cost(3, 300, 15.0)
    msg = sweep_report_message(report(p))
    assert_within_limits(msg)
    text = all_text(msg)
    assert ":white_check_mark: 1 policy: 0 created · 3 expired · 3 deleted · 0 failed" in text
    assert "freed 300 GiB (up to $15.00/month)" in text
    assert "3 expired (300 GiB, up to $15.00/month): deleted 3, freeing 300 GiB" in text


def test_work_left_undone_is_a_failure():
    # snap-0003 failed with a reason; snap-0004 has no outcome at all: both fail the run.
    p = policy_report(
        "daily-db",
        "delete",
        decisions(),
        deleted=["snap-0002"],
        failed=[Failed("us-east-1", "snap-0003", "delete", "InvalidSnapshot.InUse: in use by ami-1 <!channel>")],
    )
    assert [i.id for i in p.undone] == ["snap-0004"]
    assert not p.ok and not report(p).ok
    assert p.freed(PRICE) == Cost(1, 100, 5.0)
    text = all_text(sweep_report_message(report(p)))
    assert ":x: 1 policy: 0 created · 3 expired · 1 deleted · 2 failed" in text
    assert "• :x: `snap-0003` (us-east-1) delete: InvalidSnapshot.InUse: in use by ami-1 &lt;!channel&gt;" in text
    assert "• :x: `snap-0004` (us-east-1) delete: no outcome recorded" in text
    assert "<!channel>" not in text


def test_one_failed_deletion_fails_the_run_though_nothing_is_left_undone():
    # Every expired item has an outcome: two deleted, one refused by EC2.  The refusal alone fails the run.
    p = policy_report(
        "daily-db",
        "delete",
        decisions(),
        deleted=["snap-0002", "snap-0004"],
        failed=[Failed("us-east-1", "snap-0003", "delete", "InvalidSnapshot.InUse: in use by ami-1")],
    )
    assert p.undone == () and p.error == ""
    assert not p.ok and not report(p).ok
    text = all_text(sweep_report_message(report(p)))
    assert ":x: 1 policy: 0 created · 3 expired · 2 deleted · 1 failed" in text


@pytest.mark.parametrize(
    ("on_expired", "line"),
    [
        ("approve", "3 expired (300 GiB, up to $15.00/month): awaiting approval (request `apr-7`)"),
        ("report", "3 expired (300 GiB, up to $15.00/month): reported only, nothing deleted"),
    ],
)
def test_approve_and_report_modes_delete_nothing_and_are_ok(on_expired, line):
    p = policy_report("daily-db", on_expired, decisions(), approval_id="apr-7")
    assert p.ok
    assert p.freed(PRICE) == Cost()
    text = all_text(sweep_report_message(report(p)))
    assert line in text
    assert "\n• `snap-0004` of `vol-1` (us-east-1) · 100 GiB — #5 of vol-1, outside the newest 2" in text


def test_preview_lists_what_would_be_created_and_deleted():
    p = policy_report(
        "daily-db",
        "delete",
        decisions(),
        dry_run=True,
        created=[Created("us-east-1", "vol-1"), Created("us-east-1", "vol-2"), Created("us-west-2", "vol-1", "", "x")],
    )
    assert p.ok and p.undone == ()  # a preview deletes nothing and leaves nothing undone
    msg = sweep_report_message(report(p))
    assert_within_limits(msg)
    text = all_text(msg)
    assert "Lifecycle preview — 2024-06-15 03:00 UTC" in text
    assert ":mag: 1 policy: would create 3, would expire 3, freeing up to 300 GiB ($15.00/month)" in text
    assert "Would create 3 (incl. 1 DR copy) from `vol-1`, `vol-2`, `vol-1`" in text
    assert "Would delete:\n• `snap-0002` of `vol-1`" in text


def test_a_policy_that_could_not_run_fails_the_report():
    p = PolicyReport("weekly", "delete", error="DescribeSnapshots failed: access denied (UnauthorizedOperation)")
    assert not report(p).ok
    text = all_text(sweep_report_message(report(p)))
    assert ":x: *weekly* (delete)" in text
    assert "Could not run: DescribeSnapshots failed" in text


def test_no_policies():
    msg = sweep_report_message(report())
    assert_within_limits(msg)
    assert "No lifecycle policies ran" in all_text(msg)


def test_huge_sweep_stays_within_limits_and_shows_failures_first():
    many = decisions(count=3000, keep=1, size=8)
    failed = [Failed("us-east-1", f"snap-{i:04d}", "delete", "<!here> " + "x" * 1000) for i in range(1, 2000)]
    for dry_run in (False, True):
        policies = [policy_report(f"ok-{i:03d}", "approve", many, dry_run=dry_run) for i in range(120)]
        policies.append(policy_report("broken", "delete", many, failed=failed, dry_run=dry_run))
        msg = sweep_report_message(report(*policies))
        assert_within_limits(msg)
        text = all_text(msg)
        assert "<!here>" not in text and "&lt;!here&gt; xxx" in text
        assert "…and 76 more policies" in text  # 121 policies, 45 shown
        assert msg["blocks"][2]["text"]["text"].startswith(":x: *broken* (delete")  # failures first, even in a preview
    msg = sweep_report_message(report(*policies[:-1], policy_report("broken", "delete", many, failed=failed)))
    broken = msg["blocks"][2]["text"]["text"]
    assert broken.startswith(":x: *broken* (delete)")
    assert ":x: 2,999 failed:" in broken  # 1,999 with reasons + 1,000 with no outcome
    assert "more" in broken
