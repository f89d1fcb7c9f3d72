"""End to end: a sweep over its `max_delete` asks an approver instead of deleting; large requests list every item."""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.testing.fakeslack import message_text
from tests.support.approvals import approval_state
from tests.support.factories import base_config, daily_policy, make_volume
from tests.support.harness import BOB

pytestmark = pytest.mark.e2e


def policy_snapshots(ec2) -> list[str]:
    found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:chatops:policy", "Values": ["daily-db"]}])
    return [s["SnapshotId"] for s in found["Snapshots"]]


def seed_backups(ec2, volume: str, n: int) -> None:
    """`n` earlier backups of the policy; the run's own is newer than all of them."""
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    for _ in range(n):
        ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    time.sleep(1.1)  # moto stamps StartTime to the second; retention orders by it


@pytest.fixture
def capped_bot(make_bot, tmp_path):
    def make(**changes):
        policy = daily_policy(**{"keep": 1, "on_expired": "delete", "max_delete": "50%", **changes})
        return make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))

    return make


def test_a_sweep_over_its_cap_asks_an_approver_instead_and_deletes_once_approved(capped_bot, ec2):
    bot = capped_bot()
    seed_backups(ec2, make_volume(ec2, Backup="daily"), 3)
    bot.command("/lifecycle run daily-db")
    bot.settle()

    assert len(policy_snapshots(ec2)) == 4 and bot.deps.gateway.calls["DeleteSnapshot"] == 0
    report = message_text(
        [m for m in bot.posted() if "Lifecycle run" in message_text(m) or "daily-db" in message_text(m)][-1]
    )
    assert "Not deleted on its own: 3 of the 4 items the policy manages would go (75%)" in report
    [request] = bot.approval_messages()
    assert "Blast radius: 3 of the 4 items" in message_text(request)
    [run] = bot.deps.store.db["runs"].rows
    assert run["state"] == "ok"  # asking instead of deleting is the policy working, not failing

    bot.click(request, "approval_approve", user=BOB)
    bot.settle()
    assert len(policy_snapshots(ec2)) == 1 and approval_state(bot) == "done"


def test_a_sweep_within_its_cap_deletes_on_its_own(capped_bot, ec2):
    bot = capped_bot()
    seed_backups(ec2, make_volume(ec2, Backup="daily"), 1)
    bot.command("/lifecycle run daily-db")  # 1 of 2 = 50%: within the cap
    bot.settle()
    assert len(policy_snapshots(ec2)) == 1 and bot.approval_messages() == []


def test_a_request_too_large_for_one_message_lists_every_item_in_its_thread(capped_bot, ec2):
    bot = capped_bot(on_expired="approve")
    seed_backups(ec2, make_volume(ec2, Backup="daily"), 60)
    bot.command("/lifecycle run daily-db")
    bot.settle()

    [request] = bot.approval_messages()
    assert "…and 10 more: every item is listed in this message's thread." in message_text(request)
    thread = [c.params for c in bot.slack.calls if c.method == "chat.postMessage" and c.params.get("thread_ts")]
    assert thread and all(t["thread_ts"] == request["ts"] for t in thread)
    listed = "\n".join(message_text(t) for t in thread)
    unlisted = [s for s in policy_snapshots(ec2) if s not in listed]
    assert "60. " in listed and len(unlisted) == 1  # every expired item; only the one kept is not in the list


def test_a_snapshot_backing_a_disabled_ami_is_never_swept(make_bot, ec2, tmp_path):
    policy = daily_policy(keep=1, on_expired="delete")
    bot = make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))
    volume = make_volume(ec2, Backup="daily")
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    plain = ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])[
        "SnapshotId"
    ]
    image = ec2.register_image(Name="disabled-golden", RootDeviceName="/dev/sda1", BlockDeviceMappings=[])["ImageId"]
    [mapping] = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"]
    backing = mapping["Ebs"]["SnapshotId"]  # moto makes the AMI's own snapshot; make it one of the policy's
    ec2.create_tags(Resources=[backing], Tags=tags)
    ec2.disable_image(ImageId=image)
    time.sleep(1.1)
    bot.command("/lifecycle run daily-db")
    bot.settle()

    left = set(policy_snapshots(ec2))
    assert backing in left and plain not in left and len(left) == 2
