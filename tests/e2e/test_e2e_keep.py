"""End to end: Keep and Snooze from Slack, on a sweep request and on the digest's cleanup candidates."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_volume
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e


def tags_of(ec2, snapshot_id: str) -> dict[str, str]:
    [snap] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    return {t["Key"]: t["Value"] for t in snap.get("Tags", [])}


def existing(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def backups(ec2, volume: str, n: int) -> list[str]:
    """`n` backups of the policy, oldest first, a second apart (moto stamps StartTime to the second)."""
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    made = []
    for _ in range(n):
        made.append(
            ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])[
                "SnapshotId"
            ]
        )
        time.sleep(1.1)
    return made


@pytest.fixture
def policy_bot(make_bot, tmp_path):
    def make(**changes):
        policy = daily_policy(**{"keep": 1, **changes})
        return make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))

    return make


def test_keep_and_snooze_from_a_sweep_request_spare_those_items_when_it_runs(policy_bot, ec2):
    bot = policy_bot()
    volume = make_volume(ec2, Backup="daily")
    kept, snoozed, plain, _newest = backups(ec2, volume, 4)
    bot.command("/lifecycle run daily-db", user=ALICE)
    bot.settle()
    [request] = bot.approval_messages()

    bot.choose(request, "item_keep", kept, user=ALICE)
    bot.choose(request, "item_snooze", snoozed, user=ALICE)
    bot.settle()
    assert tags_of(ec2, kept)["chatops:keep"] == "true" and tags_of(ec2, kept)["chatops:kept-by"] == ALICE
    until = datetime.fromisoformat(tags_of(ec2, snoozed)["chatops:snooze-until"])
    assert timedelta(days=6, hours=23) < until - bot.deps.now() <= timedelta(days=7)
    answers = bot.responses()
    assert any(f"kept `{kept}`" in a for a in answers) and any(f"snoozed `{snoozed}`" in a for a in answers)

    bot.click(request, "approval_approve", user=BOB)
    bot.settle()
    left = existing(ec2)
    assert kept in left and snoozed in left and plain not in left
    final = message_text(bot.approval_messages()[0])
    assert "pinned with chatops:keep=true" in final and "snoozed until" in final
    audit = [(r["action"], r["outcome"]) for r in bot.deps.store.recent_audit(30)]
    assert (f"keep {kept}", "ok") in audit and (f"snooze {snoozed}", "ok") in audit


def test_keep_from_the_digest_protects_the_item_from_the_next_sweep(policy_bot, ec2):
    bot = policy_bot(on_expired="delete")
    volume = make_volume(ec2, Backup="daily")
    older, newer = backups(ec2, volume, 2)
    ec2.delete_volume(VolumeId=volume)  # both are orphans now: cleanup candidates in the digest
    bot.command("/lifecycle digest", user=ALICE)
    bot.settle()
    [digest] = [m for m in bot.posted() if "digest" in message_text(m).lower() and "cleanup" in message_text(m)]

    bot.choose(digest, "item_keep", older, user=ALICE, channel="C0DIGEST")
    bot.settle()
    bot.command("/lifecycle run daily-db", user=ALICE)  # keep=1: the older is expired, but kept from the digest
    bot.settle()

    assert {older, newer} <= existing(ec2)
    assert tags_of(ec2, older)["chatops:keep"] == "true"


def test_a_menu_value_naming_no_configured_place_changes_nothing(policy_bot, ec2):
    bot = policy_bot()
    volume = make_volume(ec2, Backup="daily")
    older, _ = backups(ec2, volume, 2)
    bot.command("/lifecycle run daily-db", user=ALICE)
    bot.settle()
    [request] = bot.approval_messages()
    for block in request["blocks"]:  # a forged payload: the option names a region the bot does not cover
        for element in block.get("elements", []):
            for option in element.get("options", []):
                option["value"] = option["value"].replace("us-east-1", "ap-south-2")
    bot.choose(request, "item_keep", older, user=ALICE)
    bot.settle()
    assert "chatops:keep" not in tags_of(ec2, older)
    assert "no account default with region ap-south-2 is configured; nothing changed" in bot.responses()[-1]
