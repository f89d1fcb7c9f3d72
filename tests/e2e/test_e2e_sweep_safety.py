"""End to end: an approved sweep batch is decided again at the click, never on the strength of the request alone."""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_instance, make_volume
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e

KEEP_TAG = [{"Key": "chatops:keep", "Value": "true"}]


@pytest.fixture
def policy_bot(make_bot, tmp_path):
    def make(**changes):
        config = dataclasses.replace(base_config(tmp_path), policies=(daily_policy(**{"keep": 1, **changes}),))
        return make_bot(config)

    return make


def run(bot, times: int) -> None:
    for i in range(times):
        if i:
            time.sleep(1.1)  # moto stamps creation times to the second; retention orders by them
        bot.command("/lifecycle run daily-db", user=ALICE)
        bot.settle()


def policy_snapshots(ec2) -> list[dict]:
    found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:chatops:policy", "Values": ["daily-db"]}])
    return sorted(found["Snapshots"], key=lambda s: s["StartTime"])


def snapshot_ids(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def the_request(bot) -> dict:
    """The newest run's request (each run with expired items asks for its whole batch)."""
    return bot.approval_messages()[-1]


def approve(bot, request) -> str:
    bot.click(request, "approval_approve", user=BOB)
    bot.settle()
    return message_text(bot.slack.messages[(request["channel"], request["ts"])])


def test_a_snapshot_pinned_after_the_request_is_spared_and_the_message_says_why(policy_bot, ec2):
    bot = policy_bot(keep=1)
    make_volume(ec2, 8, Backup="daily")
    run(bot, 3)
    oldest, middle, newest = (s["SnapshotId"] for s in policy_snapshots(ec2))
    request = the_request(bot)
    assert oldest in message_text(request) and middle in message_text(request)

    ec2.create_tags(Resources=[oldest], Tags=KEEP_TAG)  # someone pins it while the request waits
    text = approve(bot, request)

    assert oldest in snapshot_ids(ec2)  # spared
    assert middle not in snapshot_ids(ec2) and newest in snapshot_ids(ec2)
    assert "pinned with chatops:keep=true" in text and "spared" in text


def test_deleting_newer_snapshots_before_the_click_never_cuts_below_keep(policy_bot, ec2):
    bot = policy_bot(keep=2)
    make_volume(ec2, 8, Backup="daily")
    run(bot, 4)
    ids = [s["SnapshotId"] for s in policy_snapshots(ec2)]
    request = the_request(bot)
    assert ids[0] in message_text(request) and ids[1] in message_text(request)

    for newer in ids[2:]:  # deleted by hand meanwhile: the two requested are now the newest two
        ec2.delete_snapshot(SnapshotId=newer)
    text = approve(bot, request)

    assert {ids[0], ids[1]} <= snapshot_ids(ec2)
    assert "of the newest 2" in text


def test_an_ami_sweep_keeps_a_pinned_backing_snapshot_and_deletes_the_rest(policy_bot, ec2):
    bot = policy_bot(resource="instance", target_tags={"Backup": "daily"}, keep=1)
    make_instance(ec2, Name="web", Backup="daily")
    make_instance(ec2, Name="web", Backup="daily")  # same Name: the AMI names must still differ
    run(bot, 2)
    images = sorted(
        ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:chatops:policy", "Values": ["daily-db"]}])[
            "Images"
        ],
        key=lambda i: i["CreationDate"],
    )
    assert len(images) == 4 and len({i["Name"] for i in images}) == 4
    older = images[:2]
    pinned = older[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    doomed = older[1]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    # The policy's AMIs' snapshots carry the policy and their AMI, so a leftover is never lost.
    tags = {t["Key"]: t["Value"] for t in ec2.describe_snapshots(SnapshotIds=[doomed])["Snapshots"][0]["Tags"]}
    assert tags["chatops:policy"] == "daily-db" and tags["chatops:ami"] == older[1]["ImageId"]
    request = the_request(bot)

    ec2.create_tags(Resources=[pinned], Tags=KEEP_TAG)
    text = approve(bot, request)

    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert not left & {i["ImageId"] for i in older}  # both older AMIs deregistered
    assert pinned in snapshot_ids(ec2) and doomed not in snapshot_ids(ec2)
    assert f"{pinned}` — kept: pinned with chatops:keep=true" in text
    assert f"{doomed}` — deleted" in text
