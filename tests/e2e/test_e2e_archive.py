"""End to end: the snapshot archive tier (moto has ModifySnapshotTier, RestoreSnapshotTier and StorageTier)."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_volume
from tests.support.harness import ALICE, BOB, FakeClock

pytestmark = pytest.mark.e2e


def snapshot(ec2, snapshot_id: str) -> dict:
    [snap] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    return {**snap, "Tags": {t["Key"]: t["Value"] for t in snap.get("Tags", [])}}


def existing(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def backups(ec2, volume: str, n: int) -> list[str]:
    """`n` backups of the policy, oldest first, a second apart (moto stamps StartTime to the second)."""
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    made = []
    for _ in range(n):
        spec = [{"ResourceType": "snapshot", "Tags": tags}]
        made.append(ec2.create_snapshot(VolumeId=volume, TagSpecifications=spec)["SnapshotId"])
        time.sleep(1.1)
    return made


def test_an_archive_policy_archives_what_expired_deletes_nothing_and_spares_a_pinned_one(make_bot, ec2, tmp_path):
    clock = FakeClock()
    policy = daily_policy(keep=1, on_expired="archive", archive_delete_after=timedelta(days=90))
    bot = make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)), clock=clock)
    volume = make_volume(ec2, size=8, Backup="daily")
    pinned, old = backups(ec2, volume, 2)
    ec2.create_tags(Resources=[pinned], Tags=[{"Key": "chatops:keep", "Value": "true"}])
    before = existing(ec2)

    bot.command("/lifecycle run daily-db", user=ALICE)
    bot.settle()

    assert before <= existing(ec2)  # nothing deleted
    assert snapshot(ec2, old)["StorageTier"] == "archive" and "chatops:archived-at" in snapshot(ec2, old)["Tags"]
    assert snapshot(ec2, pinned)["StorageTier"] == "standard"
    report = message_text(bot.posted()[-1])
    assert "archived 1, deleted 0" in report
    assert "archived 1 snapshot (8 GiB full size) ≈ $0.10/month in archive vs up to $0.40/month standard" in report
    assert not bot.approval_messages()

    # Archived and counted apart: the next run does not archive it again, and 90 days on it is deleted.
    clock.advance(timedelta(days=91))
    bot.command("/lifecycle run daily-db", user=ALICE)
    bot.settle()
    assert old not in existing(ec2)
    assert pinned in existing(ec2) and snapshot(ec2, pinned)["StorageTier"] == "standard"


def test_a_frozen_archive_policy_archives_nothing(make_bot, ec2, tmp_path):
    policy = daily_policy(keep=1, on_expired="archive")
    bot = make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))
    volume = make_volume(ec2, Backup="daily")
    [old] = backups(ec2, volume, 1)
    bot.command("/lifecycle freeze incident", user=BOB)
    bot.settle()

    bot.command("/lifecycle run daily-db", user=ALICE)
    bot.settle()

    assert snapshot(ec2, old)["StorageTier"] == "standard"
    assert "Would have archived or deleted (frozen)" in message_text(bot.posted()[-1])


def test_snapshot_archive_asks_an_approver_and_unarchive_restores_it(bot, ec2):
    volume = make_volume(ec2, size=8)
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]

    bot.command(f"/snapshot archive {snap}", user=ALICE)
    bot.settle()
    [request] = bot.approval_messages()
    text = message_text(request)
    assert "≈ $0.10/month in archive vs up to $0.40/month standard" in text
    assert snapshot(ec2, snap)["StorageTier"] == "standard"  # not before an approver says so
    bot.click(request, "approval_approve", user=BOB)
    bot.settle()
    assert snapshot(ec2, snap)["StorageTier"] == "archive"

    bot.command(f"/snapshot archive {snap}", user=ALICE)  # archived already: refused up front
    bot.settle()
    assert any("already in the archive tier" in r for r in bot.responses())
    assert len(bot.approval_messages()) == 1

    bot.command(f"/snapshot unarchive {snap} days=3", user=ALICE)
    bot.settle()
    restored = snapshot(ec2, snap)
    assert restored["StorageTier"] == "archive" and restored.get("RestoreExpiryTime")
    bot.command(f"/snapshot unarchive {snap}", user=ALICE)
    bot.settle()
    assert snapshot(ec2, snap)["StorageTier"] == "standard"

    bot.command(f"/snapshot unarchive {snap}", user=ALICE)  # standard now: nothing to restore
    bot.settle()
    assert any("not the archive; nothing to restore" in r for r in bot.responses())
