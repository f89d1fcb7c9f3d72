"""End to end: restore drills against moto, through the real app (scheduled, on demand, leftovers, the digest).

moto makes a volume `available` and an instance `running` with passing status checks at once, so these
prove the wiring, the tags, the clean-up and the evidence, not real restore times; a restore slower than
drill_timeout is in tests/unit/test_drills.py against the project's fake EC2.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from bot.state.store import Store, utcnow
from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_instance, make_volume
from tests.support.harness import ALICE, FakeClock

pytestmark = pytest.mark.e2e

DRILL = [{"Name": "tag-key", "Values": ["chatops:drill"]}]


def policy_snapshot(ec2, volume: str, policy: str = "daily-db") -> str:
    tags = [{"Key": "chatops:policy", "Value": policy}, {"Key": "chatops:source", "Value": volume}]
    return ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])[
        "SnapshotId"
    ]


def drill_config(tmp_path, **changes):
    return dataclasses.replace(base_config(tmp_path), policies=(daily_policy(drill=timedelta(days=1), **changes),))


def volume_ids(ec2, filters=()) -> set[str]:
    return {v["VolumeId"] for v in ec2.describe_volumes(Filters=list(filters))["Volumes"]}


def live_instances(ec2, filters=()) -> set[str]:
    alive = {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
    reservations = ec2.describe_instances(Filters=[*filters, alive])["Reservations"]
    return {i["InstanceId"] for r in reservations for i in r["Instances"]}


def wait_for_drills(bot, fake_slack, count: int) -> list[dict]:
    def finished():
        rows = [r for r in bot.deps.store.drills() if r["state"] != "running"]
        return rows if len(rows) >= count else None

    return fake_slack.wait_for(lambda _: finished(), timeout=30)


def test_a_scheduled_drill_restores_the_newest_backup_and_cleans_up(make_bot, tmp_path, ec2, fake_slack):
    config = drill_config(tmp_path)
    # The drill was due while the bot was down: it runs once at start, in the scheduler.
    Store(config.store.path, clock=lambda: utcnow() - timedelta(days=3)).first_seen("drill:daily-db")
    source = make_volume(ec2, 12, Backup="daily")
    older = policy_snapshot(ec2, source)
    time.sleep(1.1)  # moto stamps StartTime to the second; "latest" orders by it
    newest = policy_snapshot(ec2, source)
    bystander = make_volume(ec2, 5)
    before = volume_ids(ec2)

    bot = make_bot(config)
    [row] = wait_for_drills(bot, fake_slack, 1)

    assert (row["state"], row["trigger"], row["policy"], row["kind"]) == (
        "ok",
        "missed-at-start",
        "daily-db",
        "snapshot",
    )
    assert (row["backup_id"], row["source_id"]) == (newest, source)
    assert row["restored_id"].startswith("vol-") and row["ready_seconds"] is not None and row["size_gib"] == 12
    assert row["gib_hours"] >= 0 and row["cost_usd"] >= 0
    # Cleaned up: the drill volume is gone; the source, its snapshots and the bystander are untouched.
    assert volume_ids(ec2, DRILL) == set() and volume_ids(ec2) == before
    assert {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]} == {older, newest}
    assert bystander in volume_ids(ec2)
    [run] = bot.deps.store.db["runs"].rows_where("job = ?", ["drill:daily-db"])
    assert run["state"] == "ok"


def test_an_interrupted_drills_leftovers_are_removed_at_start_and_nothing_untagged_is_touched(
    make_bot, tmp_path, ec2, fake_slack
):
    tag = lambda **kv: [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in kv.items()]}]  # noqa: E731
    leftover = ec2.create_volume(
        AvailabilityZone="us-east-1a", Size=8, TagSpecifications=tag(**{"chatops:drill": "drill-dead"})
    )["VolumeId"]
    leftover_instance = make_instance(ec2, **{"chatops:drill": "drill-dead", "chatops:managed": "true"})
    attached = ec2.create_volume(
        AvailabilityZone="us-east-1a", Size=8, TagSpecifications=tag(**{"chatops:drill": "drill-dead"})
    )["VolumeId"]
    scratch = make_instance(ec2, Name="scratch")
    ec2.attach_volume(VolumeId=attached, InstanceId=scratch, Device="/dev/sdx")
    untagged = make_volume(ec2, 8)
    managed = make_volume(ec2, 8, **{"chatops:managed": "true", "Backup": "daily"})
    other_instance = make_instance(ec2, Name="web")

    bot = make_bot(drill_config(tmp_path))
    fake_slack.wait_for(lambda _: not volume_ids(ec2, DRILL) and not live_instances(ec2, DRILL), timeout=30)

    assert leftover not in volume_ids(ec2) and attached not in volume_ids(ec2)
    assert leftover_instance not in live_instances(ec2)
    assert {untagged, managed} <= volume_ids(ec2)
    assert {scratch, other_instance} <= live_instances(ec2)
    [entry] = [a for a in bot.deps.store.recent_audit(50) if a["action"] == "restore drill leftovers"]
    assert leftover in entry["detail"] and leftover_instance in entry["detail"] and untagged not in entry["detail"]


def test_snapshot_drill_on_demand_posts_the_evidence(make_bot, tmp_path, ec2, fake_slack):
    bot = make_bot(drill_config(tmp_path))
    source = make_volume(ec2, 10, Backup="daily")
    snap = policy_snapshot(ec2, source)

    bot.command(f"/snapshot drill {snap}", user=ALICE)
    bot.settle()

    [msg] = fake_slack.channel_messages("Restore drill")
    text = message_text(msg)
    assert "Restore drill ok" in text and f"`{snap}`" in text and "available in" in text and "GiB-hours" in text
    [row] = bot.deps.store.drills()
    assert row["policy"] == "daily-db" and row["user"] == ALICE and volume_ids(ec2, DRILL) == set()


def test_ami_drill_launches_one_instance_without_public_ip_and_terminates_it(make_bot, tmp_path, ec2, fake_slack):
    bot = make_bot(drill_config(tmp_path))
    instance = make_instance(ec2, Name="web")
    image = ec2.create_image(InstanceId=instance, Name="web-golden", NoReboot=True)["ImageId"]

    bot.command(f"/ami drill {image}", user=ALICE)
    bot.settle()

    [row] = bot.deps.store.drills()
    assert row["state"] == "ok", row["reason"]
    assert row["instance_type"] == "t3.micro" and row["checked_seconds"] is not None
    launched = ec2.describe_instances(InstanceIds=[row["restored_id"]])["Reservations"][0]["Instances"][0]
    assert launched["State"]["Name"] in ("shutting-down", "terminated")
    assert not launched.get("PublicIpAddress")
    assert live_instances(ec2) == {instance}
    assert "status checks passed" in message_text(fake_slack.channel_messages("Restore drill")[0])


@pytest.mark.parametrize(
    ("make_id", "says"),
    [(lambda ec2: "snap-0123456789abcdef0", "snap-0123456789abcdef0 not found in us-east-1")],
)
def test_snapshot_drill_of_an_unknown_snapshot_gets_a_clear_error_and_creates_nothing(
    make_bot, tmp_path, ec2, fake_slack, make_id, says
):
    bot = make_bot(drill_config(tmp_path))
    before = volume_ids(ec2)

    bot.command(f"/snapshot drill {make_id(ec2)}", user=ALICE)
    bot.settle()

    assert any(says in t for t in fake_slack.texts("response_url")), fake_slack.texts("response_url")
    assert volume_ids(ec2) == before and bot.deps.store.drills() == []


def test_the_digest_flags_a_source_without_a_recent_successful_drill(make_bot, tmp_path, ec2, fake_slack):
    clock = FakeClock()
    bot = make_bot(drill_config(tmp_path), clock=clock)
    stale_source, fresh_source = make_volume(ec2, 8, Backup="daily"), make_volume(ec2, 8, Backup="daily")
    stale, fresh = policy_snapshot(ec2, stale_source), policy_snapshot(ec2, fresh_source)

    bot.command(f"/snapshot drill {stale}", user=ALICE)
    bot.settle()
    clock.advance(timedelta(days=3))  # drill = "1d": older than 2 days is overdue
    bot.command(f"/snapshot drill {fresh}", user=ALICE)
    bot.settle()
    bot.command("/lifecycle digest", user=ALICE)
    bot.settle()

    [digest] = fake_slack.channel_messages("digest")
    text = message_text(digest)
    assert "Restore drills" in text and "*daily-db*" in text
    assert "1 source of 2 without a successful drill in 2d" in text
    assert f"us-east-1/{stale_source}" in text and f"us-east-1/{fresh_source}" not in text
    assert "overdue for a restore drill" in digest["text"]
