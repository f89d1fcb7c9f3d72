"""End to end: lifecycle policies through /lifecycle, approvals, the sweep CLI and the digest."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_volume
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e


@pytest.fixture
def policy_bot(make_bot, tmp_path):
    def make(**changes):
        config = dataclasses.replace(base_config(tmp_path), policies=(daily_policy(**changes),))
        return make_bot(config)

    return make


def snapshots(ec2, **filters) -> list[dict]:
    f = [{"Name": f"tag:{k}" if not k.startswith("volume") else "volume-id", "Values": [v]} for k, v in filters.items()]
    return ec2.describe_snapshots(OwnerIds=["self"], Filters=f)["Snapshots"]


def run_policy(bot, times: int) -> None:
    for i in range(times):
        if i:
            time.sleep(1.1)  # moto stamps StartTime to the second; retention orders by it
        bot.command("/lifecycle run daily-db", user=ALICE)
        bot.settle()


def test_policy_keeps_the_newest_two_after_approval(policy_bot, ec2):
    bot = policy_bot()
    db, web = make_volume(ec2, 10, Backup="daily"), make_volume(ec2, 20, Backup="daily")
    other = make_volume(ec2, 5)  # not tagged: never touched
    pinned = ec2.create_snapshot(
        VolumeId=db,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [
                    {"Key": "chatops:keep", "Value": "true"},
                    {"Key": "chatops:policy", "Value": "daily-db"},
                    {"Key": "chatops:source", "Value": db},
                ],
            }
        ],
    )["SnapshotId"]
    manual = ec2.create_snapshot(VolumeId=db, Description="by hand")["SnapshotId"]
    unrelated = ec2.create_snapshot(VolumeId=other)["SnapshotId"]

    run_policy(bot, 3)

    made = snapshots(ec2, **{"chatops:policy": "daily-db"})
    assert len(made) == 7  # 3 runs × 2 volumes + the pinned one
    for snap in made:
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert snap["SnapshotId"] == pinned or tags["chatops:managed"] == "true"
    by_volume = {  # each volume's three runs, oldest first (the runs are more than a second apart)
        vol: [s["SnapshotId"] for s in sorted(made, key=lambda s: s["StartTime"]) if s["VolumeId"] == vol]
        for vol in (db, web)
    }
    by_volume[db].remove(pinned)
    [request] = bot.approval_messages()
    plan = message_text(request)
    assert "delete 2 expired snapshots" in plan
    assert all(f"`{runs[0]}`" in plan for runs in by_volume.values())  # the oldest of each volume
    assert not any(f"`{snap}`" in plan for runs in by_volume.values() for snap in runs[1:])
    assert pinned not in plan and manual not in plan and unrelated not in plan

    bot.click(request, "approval_approve", user=BOB)
    bot.settle()

    remaining = {s["SnapshotId"] for s in snapshots(ec2, **{"chatops:policy": "daily-db"})}
    assert remaining == {pinned, *by_volume[db][1:], *by_volume[web][1:]}  # the newest two of each, and the pin
    everything = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert {pinned, manual, unrelated} <= everything
    assert len(bot.slack.calls_of("chat.postMessage")) >= 4  # three run summaries + the request


def test_delete_mode_deletes_without_asking_and_reports(policy_bot, ec2):
    bot = policy_bot(keep=1, on_expired="delete")
    vol = make_volume(ec2, 8, Backup="daily")
    run_policy(bot, 2)
    assert bot.approval_messages() == []
    left = snapshots(ec2, volume=vol)
    assert len(left) == 1
    summary = [m for m in bot.posted() if m["channel"] == "C0DIGEST"][-1]
    assert "daily-db" in message_text(summary) and "1 deleted" in message_text(summary).replace("*", "")


def test_preview_and_dry_run_sweep_delete_nothing(policy_bot, ec2, tmp_path, moto_server):
    bot = policy_bot(keep=1, on_expired="delete")
    make_volume(ec2, 8, Backup="daily")
    bot.command("/lifecycle run daily-db")
    bot.settle()
    time.sleep(1.1)
    bot.command("/lifecycle run daily-db")  # keep=1: the first one is expired now... and deleted
    bot.settle()
    before = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    # make one more expired candidate by hand-tagging an old-style snapshot of the policy
    vol = snapshots(ec2, **{"chatops:policy": "daily-db"})[0]["VolumeId"]
    extra = ec2.create_snapshot(
        VolumeId=vol,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": vol}],
            }
        ],
    )["SnapshotId"]
    before.add(extra)

    bot.command("/lifecycle preview all")
    bot.settle()
    preview = bot.responses()[-1]
    assert "daily-db" in preview and "would" in preview.lower()

    config = tmp_path / "config.toml"
    config.write_text(
        '[slack]\ndigest_channel = "C0DIGEST"\n[aws]\nregions = ["us-east-1"]\n'
        '[[policies]]\nname = "daily-db"\nresource = "volume"\ntarget_tags = { Backup = "daily" }\n'
        'every = "12h"\nkeep = 1\non_expired = "delete"\n'
    )
    env = {
        **os.environ,
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(tmp_path / "cli.db"),
        "AWS_ENDPOINT_URL": moto_server,
    }
    env.pop("SLACK_BOT_TOKEN", None)
    dry = subprocess.run(
        [sys.executable, "-m", "bot", "sweep", "--dry-run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert dry.returncode == 0, dry.stderr
    assert "daily-db" in dry.stdout
    after = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert after == before

    real = subprocess.run(
        [sys.executable, "-m", "bot", "sweep", "--policy", "daily-db"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert real.returncode == 0, real.stdout + real.stderr
    assert len(snapshots(ec2, **{"chatops:policy": "daily-db"})) == 1


def test_sweep_cli_exits_non_zero_when_it_cannot_ask_for_approval(tmp_path, aws, ec2, moto_server):
    make_volume(ec2, 8, Backup="daily")
    config = tmp_path / "config.toml"
    config.write_text(
        '[slack]\ndigest_channel = "C0DIGEST"\n[aws]\nregions = ["us-east-1"]\n'
        '[[policies]]\nname = "daily-db"\nresource = "volume"\ntarget_tags = { Backup = "daily" }\n'
        'every = "12h"\nkeep = 1\n'
    )
    vol = ec2.describe_volumes()["Volumes"][0]["VolumeId"]
    for _ in range(2):
        ec2.create_snapshot(
            VolumeId=vol,
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": vol}],
                }
            ],
        )
        time.sleep(1.1)
    env = {
        **os.environ,
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(tmp_path / "cli.db"),
        "AWS_ENDPOINT_URL": moto_server,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
    }
    env.pop("SLACK_BOT_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "bot", "sweep"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "approval" in proc.stdout.lower()
    assert len(snapshots(ec2, **{"chatops:policy": "daily-db"})) == 2  # nothing deleted without approval


def test_lifecycle_list_and_unknown_policy(policy_bot):
    bot = policy_bot()
    bot.command("/lifecycle list")
    bot.settle()
    text = bot.responses()[-1]
    assert "daily-db" in text and "never run" in text and "next in" in text
    bot.command("/lifecycle run nightly")
    bot.settle()
    assert "no policy named `nightly`" in bot.responses()[-1]


def test_digest_command_posts_to_the_digest_channel(policy_bot, ec2):
    bot = policy_bot()
    vol = make_volume(ec2, 30, Backup="daily")
    ec2.create_snapshot(VolumeId=vol, Description="x")
    gone = make_volume(ec2, 7)
    ec2.create_snapshot(VolumeId=gone, Description="orphan <!here>")
    ec2.delete_volume(VolumeId=gone)
    bot.command("/lifecycle digest")
    bot.settle()
    [digest] = [m for m in bot.posted() if m["channel"] == "C0DIGEST"]
    text = message_text(digest)
    assert "us-east-1" in text and "<!here>" not in text
    assert len(digest["blocks"]) <= 50
    assert "posted in" in bot.responses()[-1]
