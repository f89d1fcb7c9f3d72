"""Plain factories: the tests' usual policy and config, and EC2 resources created through a boto3 client."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from bot.config import Config, Policy, with_overrides
from tests.support.harness import BOB


def daily_policy(**changes) -> Policy:
    """The tests' usual policy: daily-db snapshots volumes tagged Backup=daily in us-east-1 every 12 h, keeps 2."""
    policy = Policy(
        name="daily-db",
        resource="volume",
        target_tags={"Backup": "daily"},
        regions=("us-east-1",),
        every=timedelta(hours=12),
        keep=2,
        on_expired="approve",
    )
    return dataclasses.replace(policy, **changes)


def base_config(tmp_path) -> Config:
    return with_overrides(
        Config(),
        store={"path": str(tmp_path / "chatops.db")},
        aws={"regions": ("us-east-1", "us-west-2"), "poll_interval": timedelta(seconds=0.2)},
        access={"approvers": (BOB,)},
        slack={"digest_channel": "C0DIGEST"},
    )


def make_volume(ec2, size: int = 8, az: str = "us-east-1a", **tags: str) -> str:
    spec = {"AvailabilityZone": az, "Size": size}
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.create_volume(**spec)["VolumeId"]


def make_instance(ec2, az: str = "us-east-1a", **tags: str) -> str:
    spec = {
        "ImageId": "ami-12345678",
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": "t3.micro",
        "Placement": {"AvailabilityZone": az},
    }
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.run_instances(**spec)["Instances"][0]["InstanceId"]


def make_snapshot(ec2, **tags: str) -> str:
    """A snapshot ("nightly") of a new 10 GiB volume."""
    vol = make_volume(ec2, 10)
    spec = {"VolumeId": vol, "Description": "nightly"}
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.create_snapshot(**spec)["SnapshotId"]
