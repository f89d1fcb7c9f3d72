"""End to end: /ami deregister, /ami share and /ami create … reboot wait for an approver."""

from __future__ import annotations

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import make_instance
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e


def golden(ec2) -> tuple[str, list[str], str]:
    instance = make_instance(ec2, Name="web-1")
    image = ec2.create_image(InstanceId=instance, Name="golden-1", NoReboot=True)["ImageId"]
    [raw] = ec2.describe_images(ImageIds=[image])["Images"]
    snaps = [m["Ebs"]["SnapshotId"] for m in raw["BlockDeviceMappings"] if "Ebs" in m]
    return image, snaps, instance


def snapshot_ids(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def image_ids(ec2) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def request(bot, line: str) -> dict:
    bot.command(line, user=ALICE)
    bot.settle()
    [message] = bot.approval_messages()
    return message


def approve(bot, message: dict) -> str:
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    return message_text(bot.approval_messages()[0])


def test_deregister_removes_the_ami_and_its_snapshots_after_approval(bot, ec2):
    image, snaps, _ = golden(ec2)
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    message = request(bot, f"/ami deregister {image}")
    plan = message_text(message)
    assert image in plan and all(s in plan for s in snaps) and "golden-1" in plan
    assert "shared with account(s) 111122223333" in plan  # shared: the plan warns
    assert image in image_ids(ec2)  # nothing before approval

    final = approve(bot, message)

    assert image not in image_ids(ec2)
    assert not set(snaps) & snapshot_ids(ec2)
    assert "deregistered" in final and "deleted" in final


def test_deregister_keep_snapshots_keeps_them(bot, ec2):
    image, snaps, _ = golden(ec2)
    message = request(bot, f"/ami deregister {image} keep-snapshots")
    assert "kept" in message_text(message)
    approve(bot, message)
    assert image not in image_ids(ec2)
    assert set(snaps) <= snapshot_ids(ec2)


def test_share_adds_the_launch_permission_only_after_approval(bot, ec2):
    image, _, _ = golden(ec2)

    def shared() -> list[str]:
        perms = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
        return [p.get("UserId") for p in perms]

    message = request(bot, f"/ami share {image} 111122223333")
    assert shared() == []
    bot.click(message, "approval_deny", user=BOB)
    bot.settle()
    assert shared() == []

    message = request_again(bot, f"/ami share {image} 111122223333")
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert shared() == ["111122223333"]


def request_again(bot, line: str) -> dict:
    before = len(bot.approval_messages())
    bot.command(line, user=ALICE)
    bot.settle()
    messages = bot.approval_messages()
    assert len(messages) == before + 1
    return messages[-1]


def test_create_with_reboot_waits_for_approval(bot, ec2):
    instance = make_instance(ec2, Name="db-1")
    message = request(bot, f"/ami create {instance} name=db-consistent reboot")
    assert "Reboot" in message_text(message) and instance in message_text(message)
    assert ec2.describe_images(Owners=["self"])["Images"] == []

    final = approve(bot, message)

    [image] = ec2.describe_images(Owners=["self"])["Images"]
    assert image["Name"] == "db-consistent" and image["ImageId"] in final
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert tags["chatops:requested-by"] == ALICE
    # The new AMI's progress is followed in the request's thread, as `/ami create` without reboot does.
    [progress] = [m for m in bot.posted() if m.get("thread_ts") == message["ts"]]
    assert image["ImageId"] in progress["text"] and "available" in progress["text"]


def test_create_without_reboot_needs_no_approval(bot, ec2):
    instance = make_instance(ec2)
    bot.command(f"/ami create {instance} name=quick")
    bot.settle()
    assert bot.approval_messages() == []
    assert [i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]] == ["quick"]


def test_deregister_keeps_a_pinned_backing_snapshot_and_says_so_up_front(bot, ec2):
    image, snaps, _ = golden(ec2)
    ec2.create_tags(Resources=[snaps[0]], Tags=[{"Key": "chatops:keep", "Value": "true"}])
    message = request(bot, f"/ami deregister {image}")
    assert "kept: pinned with chatops:keep=true" in message_text(message)

    final = approve(bot, message)

    assert image not in image_ids(ec2)
    assert snaps[0] in snapshot_ids(ec2) and not set(snaps[1:]) & snapshot_ids(ec2)
    assert "kept: pinned" in final


def test_an_ami_pinned_after_the_deregister_request_is_left_alone(bot, ec2):
    image, snaps, _ = golden(ec2)
    message = request(bot, f"/ami deregister {image}")
    ec2.create_tags(Resources=[image], Tags=[{"Key": "chatops:keep", "Value": "true"}])

    final = approve(bot, message)

    assert image in image_ids(ec2) and set(snaps) <= snapshot_ids(ec2)
    assert "pinned with chatops:keep=true since the request; nothing was done" in final
