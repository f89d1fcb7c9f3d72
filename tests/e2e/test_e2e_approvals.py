"""End to end over HTTP: destructive requests wait for an approver and run at most once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.testing.fakeslack import message_text
from tests.support.approvals import approval_state, exists, request_delete
from tests.support.bot_process import wait_until
from tests.support.factories import make_instance, make_snapshot
from tests.support.harness import ALICE, BOB, CAROL, FakeClock

pytestmark = pytest.mark.e2e


def test_request_posts_the_exact_plan_and_touches_nothing(bot, ec2):
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)

    text = message_text(message)
    assert snap in text and "10 GiB" in text and f"<@{ALICE}>" in text and "Expires in" in text
    assert "$0.50/month" in text  # 10 GiB at the default 0.05 $/GB-month
    approve = next(
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "approval_approve"
    )
    assert approve["style"] == "danger" and approve["confirm"]["title"]["text"]
    assert approve["value"].startswith("req-")  # the button carries only the request's ID
    assert exists(ec2, snap)
    assert bot.deps.gateway.calls["DeleteSnapshot"] == 0


def test_approver_executes_and_the_message_shows_the_result(bot, ec2):
    snaps = [make_snapshot(ec2), make_snapshot(ec2)]
    message = request_delete(bot, ec2, *snaps)

    ack = bot.click(message, "approval_approve", user=BOB)
    bot.settle()

    assert ack.status == 200
    assert not any(exists(ec2, s) for s in snaps)
    assert approval_state(bot) == "done"
    final = message_text(bot.approval_messages()[0])
    assert "Approved by" in final and f"<@{BOB}>" in final and "2 done" in final
    assert all(f"{s}" in final for s in snaps)
    assert not any(b["type"] == "actions" for b in bot.approval_messages()[0]["blocks"])
    outcomes = [(r["action"], r["outcome"]) for r in bot.deps.store.recent_audit(20)]
    assert (f"delete-snapshots {snaps[0]} ({message_text(message).split('Request `')[1][:12]})", "done") in outcomes
    assert any(o == "approved" for _, o in outcomes)


def test_non_approver_is_refused_and_nothing_changes(bot, ec2):
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)
    bot.click(message, "approval_approve", user=CAROL)
    bot.settle()
    assert exists(ec2, snap) and approval_state(bot) == "pending"
    assert "only an approver" in bot.responses()[-1]
    assert bot.deps.store.recent_audit(1)[0]["outcome"] == "refused"


def test_self_approval_is_refused_by_default(make_bot, ec2):
    bot = make_bot(access={"approvers": (BOB, CAROL)})
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap, user=BOB)
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert exists(ec2, snap) and approval_state(bot) == "pending"
    assert "two-person rule" in bot.responses()[-1]
    bot.click(message, "approval_approve", user=CAROL)
    bot.settle()
    assert not exists(ec2, snap) and approval_state(bot) == "done"


def test_self_approval_when_allowed(make_bot, ec2):
    bot = make_bot(access={"approvers": (BOB,), "allow_self_approval": True})
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap, user=BOB)
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert not exists(ec2, snap)


def test_deny_leaves_everything(bot, ec2):
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)
    bot.click(message, "approval_deny", user=BOB)
    bot.settle()
    assert exists(ec2, snap) and approval_state(bot) == "denied"
    assert "Denied by" in message_text(bot.approval_messages()[0])
    bot.click(message, "approval_approve", user=BOB)  # a click after the decision
    bot.settle()
    assert exists(ec2, snap) and approval_state(bot) == "denied"
    assert f"already denied by <@{BOB}>" in bot.responses()[-1]  # a real mention, not escaped text
    assert bot.deps.gateway.calls["DeleteSnapshot"] == 0


def test_expired_request_refuses_clicks_and_says_so(make_bot, ec2):
    clock = FakeClock()
    bot = make_bot(clock=clock)
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)

    clock.advance(timedelta(hours=1, seconds=1))
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()

    assert exists(ec2, snap) and approval_state(bot) == "expired"
    assert "already expired" in bot.responses()[-1]
    assert "Expired without a decision" in message_text(bot.approval_messages()[0])


def test_the_bot_s_own_scheduler_expires_a_request_and_updates_its_message_without_a_click(make_bot, ec2):
    clock = FakeClock()
    bot = make_bot(clock=clock)
    request_delete(bot, ec2, make_snapshot(ec2))
    job = bot.runtime.scheduler.get_job("approval-expiry")
    assert job is not None, "no scheduled approval-expiry job: a request past its TTL would stay pending"
    assert job.trigger.interval <= timedelta(minutes=1)  # a request never looks approvable long after its TTL

    clock.advance(timedelta(hours=2))
    job.modify(next_run_time=datetime.now(UTC))  # its next run, now: the job as scheduled, with the bot's deps
    wait_until(lambda: approval_state(bot) == "expired", timeout=10, interval=0.02, what="the request expired")
    wait_until(lambda: "Expired" in message_text(bot.approval_messages()[0]), timeout=10, interval=0.02)
    assert "Approve" not in json.dumps(bot.approval_messages()[0]["blocks"])  # the buttons are gone


def test_twenty_concurrent_approvals_delete_exactly_once(make_bot, ec2):
    bot = make_bot(access={"approvers": (BOB, CAROL, "U0DAVE", "U0ERIN")})
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)
    approvers = [BOB, CAROL, "U0DAVE", "U0ERIN"]
    barrier = threading.Barrier(20)
    statuses = []

    def click(i: int) -> None:
        barrier.wait()
        statuses.append(bot.click(message, "approval_approve", user=approvers[i % 4]).status)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.settle()

    assert statuses == [200] * 20
    assert bot.deps.gateway.calls["DeleteSnapshot"] == 1
    assert not exists(ec2, snap) and approval_state(bot) == "done"
    decisions = [r for r in bot.deps.store.recent_audit(100) if r["action"].startswith("approve req-")]
    assert sum(r["outcome"] == "approved" for r in decisions) == 1
    assert sum(r["outcome"] == "refused" for r in decisions) == 19


def test_pending_request_survives_a_restart(make_bot, ec2, tmp_path):
    first = make_bot()
    snap = make_snapshot(ec2)
    message = request_delete(first, ec2, snap)
    first.stop()

    second = make_bot(config=first.config)
    second.click(message, "approval_approve", user=BOB)
    second.settle()
    assert not exists(ec2, snap)
    assert approval_state(second) == "done"


def test_crash_between_approved_and_the_aws_call_is_reconciled_not_rerun(make_bot, ec2):
    first = make_bot()
    snap = make_snapshot(ec2)
    message = request_delete(first, ec2, snap)
    [row] = first.deps.store.approvals_in("pending")
    # The process dies right after winning the click, before any AWS call:
    assert first.deps.store.transition(row["id"], "pending", "approved", decided_by=BOB)
    first.stop()

    second = make_bot(config=first.config)
    assert approval_state(second) == "failed"
    assert exists(ec2, snap)
    assert second.deps.gateway.calls["DeleteSnapshot"] == 0
    assert "request again" in message_text(second.approval_messages()[0])
    second.click(message, "approval_approve", user=BOB)
    second.settle()
    assert exists(ec2, snap) and second.deps.gateway.calls["DeleteSnapshot"] == 0


def test_crash_after_the_delete_is_reconciled_as_done(make_bot, ec2):
    first = make_bot()
    snap = make_snapshot(ec2)
    request_delete(first, ec2, snap)
    [row] = first.deps.store.approvals_in("pending")
    first.deps.store.transition(row["id"], "pending", "approved", decided_by=BOB)
    first.deps.store.transition(row["id"], "approved", "executing")
    ec2.delete_snapshot(SnapshotId=snap)  # it got as far as AWS, then died
    first.stop()

    second = make_bot(config=first.config)
    assert approval_state(second) == "done"
    assert second.deps.gateway.calls["DeleteSnapshot"] == 0


def ami_backing_snapshot(ec2) -> str:
    """A snapshot that backs a registered AMI (moto's register_image ignores given mappings)."""
    image = ec2.create_image(InstanceId=make_instance(ec2), Name="golden", NoReboot=True)["ImageId"]
    [image] = ec2.describe_images(ImageIds=[image])["Images"]
    return image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def test_snapshot_backing_an_ami_is_refused_up_front(bot, ec2):
    snap = ami_backing_snapshot(ec2)
    bot.command(f"/snapshot delete {snap}")
    bot.settle()
    assert "backs ami-" in bot.responses()[-1]
    assert bot.approval_messages() == []
    assert bot.deps.store.approvals_in("pending") == []


def test_unknown_snapshot_makes_no_request(bot, ec2):
    snap = make_snapshot(ec2)
    bot.command(f"/snapshot delete {snap} snap-0123456789abcdef0")
    bot.settle()
    assert "snap-0123456789abcdef0 not found" in bot.responses()[-1]
    assert bot.approval_messages() == []


def test_world_changed_before_approval_is_reported_per_resource(bot, ec2):
    gone, fine = make_snapshot(ec2), make_snapshot(ec2)
    message = request_delete(bot, ec2, gone, fine)
    ec2.delete_snapshot(SnapshotId=gone)

    bot.click(message, "approval_approve", user=BOB)
    bot.settle()

    assert not exists(ec2, fine)
    assert approval_state(bot) == "done"
    final = message_text(bot.approval_messages()[0])
    assert "no longer exists" in final and "1 done, 1 skipped" in final


def test_approval_channel_from_config(make_bot, ec2):
    bot = make_bot(slack={"digest_channel": "C0DIGEST", "approval_channel": "C0APPROVE"})
    snap = make_snapshot(ec2)
    bot.command(f"/snapshot delete {snap}")
    bot.settle()
    [message] = bot.approval_messages()
    assert message["channel"] == "C0APPROVE"
    assert "C0APPROVE" in bot.responses()[-1]


def test_chatops_approvals_tells_pending_requests_apart(bot, ec2):
    one = make_snapshot(ec2)
    request_delete(bot, ec2, one)
    many = [make_snapshot(ec2) for _ in range(5)]
    bot.command(f"/snapshot delete {' '.join(many)}", user=CAROL)
    bot.settle()
    first, second = bot.approval_messages()
    bot.command("/chatops approvals")
    bot.settle()

    listing = bot.responses()[-1]
    ids = [r["id"] for r in bot.deps.store.approvals_in("pending")]
    assert all(f"`{i}`" in listing for i in ids)
    mine, theirs = listing.split(ids[1])
    assert f"`{one}`" in mine and f"asked by <@{ALICE}>" in mine and "expires in" in mine
    assert all(f"`{s}`" in theirs for s in many[:3]) and many[3] not in theirs and "and 2 more" in theirs
    assert f"asked by <@{CAROL}>" in theirs
    assert f"/archives/{first['channel']}/p{first['ts']}|open the request>" in mine
    assert f"/archives/{second['channel']}/p{second['ts']}|open the request>" in theirs


def test_a_snapshot_pinned_after_the_request_is_spared_one_pinned_before_goes_as_approved(bot, ec2):
    pinned_before = make_snapshot(ec2, **{"chatops:keep": "true"})
    pinned_after = make_snapshot(ec2)
    message = request_delete(bot, ec2, pinned_before, pinned_after)
    assert f"{pinned_before} is tagged chatops:keep=true" in message_text(message)  # the approver sees it
    ec2.create_tags(Resources=[pinned_after], Tags=[{"Key": "chatops:keep", "Value": "true"}])

    bot.click(message, "approval_approve", user=BOB)
    bot.settle()

    assert not exists(ec2, pinned_before)  # approved knowingly
    assert exists(ec2, pinned_after)  # the approver never saw it pinned
    assert "pinned with chatops:keep=true since the request" in message_text(bot.approval_messages()[0])
