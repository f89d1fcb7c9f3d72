"""Clicks when things go wrong after the ack: a full worker pool, an unreachable response_url."""

from __future__ import annotations

import threading

import pytest

from bot.errors import Busy
from bot.testing import slack_payloads
from tests.support.factories import make_volume
from tests.support.harness import BOB, CAROL, CHANNEL, SECRET, find_button

pytestmark = pytest.mark.e2e


def fill_the_worker(bot) -> threading.Event:
    """Queue jobs that wait on a gate until the pool refuses more (its real cap); set the gate to drain."""
    gate = threading.Event()
    while True:
        try:
            bot.deps.worker.submit(gate.wait, 30)
        except Busy:
            return gate


@pytest.mark.parametrize("button", ["approval_approve", "approval_deny"])
def test_a_click_on_a_full_worker_is_answered_and_changes_nothing(bot, ec2, button):
    snap = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    bot.command(f"/snapshot delete {snap}")
    bot.settle()
    [message] = bot.approval_messages()

    gate = fill_the_worker(bot)
    try:
        ack = bot.click(message, button, user=BOB)
        assert ack.status == 200
        told = bot.slack.wait_for(lambda s: [t for t in s.texts("response_url") if "too busy" in t], timeout=5)
    finally:
        gate.set()
    bot.settle()

    word = "Approve" if button == "approval_approve" else "Deny"
    assert "unchanged" in told[-1] and f"Click {word} again" in told[-1]
    [row] = bot.deps.store.db["approvals"].rows
    assert row["state"] == "pending" and row["decided_by"] in ("", None)
    assert snap in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    latest = bot.deps.store.recent_audit(1)[0]
    assert (latest["user"], latest["outcome"]) == (BOB, "busy") and row["id"] in latest["action"]

    bot.click(message, "approval_approve", user=BOB)  # once the queue drains, clicking again works
    bot.settle()
    assert [r["state"] for r in bot.deps.store.db["approvals"].rows] == ["done"]
    assert snap not in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_a_refused_click_is_audited_even_when_its_response_url_is_unreachable(bot, ec2, caplog):
    snap = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    bot.command(f"/snapshot delete {snap}")
    bot.settle()
    [message] = bot.approval_messages()

    action = find_button(message, "approval_approve")
    body = slack_payloads.block_actions(CAROL, CHANNEL, message, action, "http://127.0.0.1:9/closed")
    assert bot.post(body, slack_payloads.signed_headers(SECRET, body)).status == 200
    bot.settle()

    latest = bot.deps.store.recent_audit(1)[0]
    assert (latest["user"], latest["outcome"]) == (CAROL, "refused")
    assert "worker job failed" not in caplog.text
