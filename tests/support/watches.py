"""The watch tests' resources and steps: a watch on a posted message, and what a Stubber answers for AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

AMI = "ami-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"
VOL = "vol-0123456789abcdef0"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def watch(deps, kind: str, ids: list[str], data: dict) -> str:
    ts = deps.slack.chat_postMessage(channel="C0OPS", text="working")["ts"]
    deps.store.add_watch(kind, "us-east-1", ids, "C0OPS", ts, "U0ALICE", NOW + timedelta(hours=1), data)
    return ts


def image(state: str) -> dict:
    return {
        "ImageId": AMI,
        "Name": "golden",
        "State": state,
        "CreationDate": "2026-11-25T11:59:00Z",
        "Tags": [{"Key": "chatops:managed", "Value": "true"}, {"Key": "Name", "Value": "web-1"}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP, "VolumeSize": 8}}],
    }


def snapshot(state: str, progress: str) -> dict:
    return {
        "SnapshotId": SNAP,
        "VolumeId": VOL,
        "State": state,
        "Progress": progress,
        "VolumeSize": 8,
        "StartTime": NOW - timedelta(minutes=5),
        "Description": "nightly <!channel>",
        "OwnerId": "123456789012",
    }


def describe(stub, state: str, progress: str) -> None:
    stub.add_response(
        "describe_snapshots", {"Snapshots": [snapshot(state, progress)]}, {"OwnerIds": ["self"], "SnapshotIds": [SNAP]}
    )
