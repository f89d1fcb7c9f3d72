"""Copies and the policy tags: a manual copy is the user's, a policy's DR copy stays the policy's."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.factories import base_config, daily_policy, make_instance, make_volume
from tests.support.harness import ALICE

pytestmark = pytest.mark.e2e

POLICY_TAGS = {"chatops:managed": "true", "chatops:policy": "daily-db", "chatops:copy-of": "eu-west-1/snap-0123abcd"}


def tags_of(raw: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


def tag_spec(kind: str, tags: dict[str, str]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def test_a_manual_snapshot_copy_of_a_policy_item_does_not_carry_the_policy_tags(bot, ec2, aws):
    vol = make_volume(ec2)
    snap = ec2.create_snapshot(VolumeId=vol, TagSpecifications=tag_spec("snapshot", {**POLICY_TAGS, "Team": "db"}))[
        "SnapshotId"
    ]

    bot.command(f"/snapshot copy {snap} to=us-west-2")
    bot.settle()

    [copy] = aws.client("ec2", region_name="us-west-2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    tags = tags_of(copy)
    assert "chatops:policy" not in tags and "chatops:copy-of" not in tags
    assert tags["Team"] == "db"  # the user's own tags still go with it
    assert tags["chatops:source"] == f"us-east-1/{snap}" and tags["chatops:requested-by"] == ALICE


def test_a_manual_ami_copy_of_a_policy_item_does_not_carry_the_policy_tags(bot, ec2, aws):
    image_id = ec2.create_image(InstanceId=make_instance(ec2), Name="daily-db-web")["ImageId"]
    ec2.create_tags(
        Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in {**POLICY_TAGS, "Team": "web"}.items()]
    )

    bot.command(f"/ami copy {image_id} to=us-west-2")
    bot.settle()

    west = aws.client("ec2", region_name="us-west-2")
    [copy] = west.describe_images(Owners=["self"])["Images"]
    tags = tags_of(copy)
    assert "chatops:policy" not in tags and "chatops:copy-of" not in tags
    assert tags["Team"] == "web" and tags["chatops:source"] == f"us-east-1/{image_id}"
    # Its backing snapshots get the copy's tags once it is available, so not the policy's either.
    snap_ids = [m["Ebs"]["SnapshotId"] for m in copy["BlockDeviceMappings"] if "Ebs" in m]
    backing = west.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]
    assert backing and all(tags_of(s)["Team"] == "web" and "chatops:policy" not in tags_of(s) for s in backing)


def test_a_policy_dr_copy_still_carries_its_policy_and_origin(make_bot, ec2, aws, tmp_path):
    policy = daily_policy(
        copy_to=("us-west-2",),
    )
    bot = make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))
    make_volume(ec2, Backup="daily")

    bot.command("/lifecycle run daily-db")
    bot.settle()

    [home] = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    [copy] = aws.client("ec2", region_name="us-west-2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    tags = tags_of(copy)
    assert tags["chatops:policy"] == "daily-db"
    assert tags["chatops:copy-of"] == f"us-east-1/{home['SnapshotId']}"
