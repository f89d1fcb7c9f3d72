"""End to end over HTTP: /ami create → list → launch → copy (and unshare) against moto, answers in the fake Slack."""

from __future__ import annotations

import pytest

from tests.support.factories import make_instance
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e

OTHER = "111122223333"


def tags_of(raw) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


def own_images(ec2) -> list[dict]:
    return ec2.describe_images(Owners=["self"])["Images"]


def instances_from(ec2, image_id: str) -> list[dict]:
    reservations = ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image_id]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def test_golden_ami_create_list_launch_copy(bot, ec2, aws):
    inst = make_instance(ec2, Name="web-1")
    ec2.create_key_pair(KeyName="ops")

    # create: no reboot, tagged, the message lists the backing snapshots
    ack = bot.command(f'/ami create {inst} "name=web golden (2026-11)"')
    bot.settle()
    assert ack.status == 200 and "Working on" in ack.text
    [image] = own_images(ec2)
    image_id = image["ImageId"]
    assert image["Name"] == "web golden (2026-11)"
    assert tags_of(image) == {
        "chatops:managed": "true",
        "chatops:requested-by": ALICE,
        "chatops:source": inst,
        "Name": "web-1",
    }
    snap_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    for snap in ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert tags_of(snap)["chatops:requested-by"] == ALICE
    [created] = bot.posted()
    assert image_id in created["text"] and "available" in created["text"]
    assert all(s in str(created["blocks"]) for s in snap_ids)

    # list: name, ID, snapshots, not in use yet
    bot.command("/ami list")
    bot.settle()
    listing = bot.responses()[-1]
    assert image_id in listing and "web golden (2026-11)" in listing and snap_ids[0] in listing
    assert "no instances" in listing and "not shared" in listing

    # launch: two identical instances, tagged with the requester; the message ends "running"
    bot.command(f"/ami launch {image_id} type=t3.small key=ops count=2", user=BOB)
    bot.settle()
    launched = instances_from(ec2, image_id)
    assert len(launched) == 2
    for raw in launched:
        assert raw["InstanceType"] == "t3.small" and raw["KeyName"] == "ops"
        assert tags_of(raw)["chatops:requested-by"] == BOB and tags_of(raw)["chatops:source"] == image_id
    final = bot.slack.wait_for(lambda s: [t for t in s.texts("chat.update") if "2 instances running" in t], timeout=10)
    assert all(raw["InstanceId"] in final[-1] for raw in launched)

    # the list now flags the AMI as in use; /instance list names the AMI
    bot.command("/ami list")
    bot.settle()
    assert "*in use* by 2 instances" in bot.responses()[-1]
    bot.command("/instance list")
    bot.settle()
    assert f"`{image_id}` (web golden (2026-11))" in bot.responses()[-1]

    # copy to the DR region: tags carried over, the message says available there
    bot.command(f"/ami copy {image_id} to=us-west-2")
    bot.settle()
    west = aws.client("ec2", region_name="us-west-2")
    [copy] = west.describe_images(Owners=["self"])["Images"]
    assert copy["Name"] == "web golden (2026-11)"
    copy_tags = tags_of(copy)
    assert copy_tags["Name"] == "web-1" and copy_tags["chatops:source"] == f"us-east-1/{image_id}"
    copy_snaps = [m["Ebs"]["SnapshotId"] for m in copy["BlockDeviceMappings"] if "Ebs" in m]
    for snap in west.describe_snapshots(SnapshotIds=copy_snaps)["Snapshots"]:
        assert tags_of(snap)["Name"] == "web-1"
    copied = bot.posted()[-1]
    assert copy["ImageId"] in copied["text"] and "us-west-2" in copied["text"] and "available" in copied["text"]
    assert [row["outcome"] for row in bot.deps.store.recent_audit(10)] == ["ok"] * 6


def test_unshare_removes_the_launch_permission(bot, ec2):
    image_id = ec2.create_image(InstanceId=make_instance(ec2), Name="shared-one")["ImageId"]
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER}]})

    bot.command("/ami list")
    bot.settle()
    assert f"shared with `{OTHER}`" in bot.responses()[-1]

    bot.command(f"/ami unshare {image_id} {OTHER}")
    bot.settle()
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == []
    assert f"no longer shared with {OTHER}" in bot.posted()[-1]["text"]


def test_launch_over_the_configured_cap_launches_nothing(make_bot, ec2):
    bot = make_bot(aws={"launch_max_count": 2})
    image_id = ec2.create_image(InstanceId=make_instance(ec2), Name="golden")["ImageId"]

    bot.command(f"/ami launch {image_id} count=3")
    bot.settle()

    assert instances_from(ec2, image_id) == []
    assert "more than the 2 instances" in bot.responses()[-1]
    assert bot.deps.gateway.calls["RunInstances"] == 0 and sum(bot.deps.gateway.calls.values()) == 0
    assert bot.deps.store.recent_audit(1)[0]["outcome"] == "refused"


def test_launch_with_a_missing_key_pair_is_a_clear_error(bot, ec2):
    image_id = ec2.create_image(InstanceId=make_instance(ec2), Name="golden")["ImageId"]
    bot.command(f"/ami launch {image_id} key=nope")
    bot.settle()
    assert "key pair 'nope' does not exist" in bot.responses()[-1]
    assert instances_from(ec2, image_id) == []


MALFORMED = [
    "/ami create i-0123456789abcdef0",
    "/ami create i-0123456789abcdef0 name=ab",
    "/ami create vol-0123456789abcdef0 name=golden",
    "/ami launch",
    "/ami launch ami-123 count=1",
    "/ami launch ami-0123456789abcdef0 type=gp3",
    "/ami launch ami-0123456789abcdef0 count=0",
    "/ami launch ami-0123456789abcdef0 colour=blue",
    "/ami copy ami-0123456789abcdef0",
    "/ami copy ami-0123456789abcdef0 to=atlantis-1",
    "/ami unshare ami-0123456789abcdef0",
    "/ami unshare ami-0123456789abcdef0 12345",
    "/ami share ami-0123456789abcdef0 12",
    "/ami deregister ami-0123456789abcdef0 keep",
    "/ami frobnicate",
]


def test_malformed_ami_commands_get_usage_in_the_ack_and_make_no_aws_call(bot):
    """One bot for every line (starting a bot per case costs seconds); each line is checked on its own."""
    for line in MALFORMED:
        ack = bot.command(line)
        assert ack.status == 200 and "Usage:" in ack.text, line
    bot.settle()
    assert sum(bot.deps.gateway.calls.values()) == 0
    assert bot.slack.calls_of("response_url") == []
    outcomes = [row["outcome"] for row in bot.deps.store.recent_audit(len(MALFORMED) + 1)]
    assert outcomes == ["usage"] * len(MALFORMED)
