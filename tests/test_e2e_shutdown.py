"""SIGTERM during a sweep: the sweep stops between two deletions, records everything it did, the store closes last."""

from __future__ import annotations

import pytest

from tests.bot_process import BotProcess, wait_until

pytestmark = pytest.mark.e2e

# Deletions pace at 0.5 a second after the burst (api_rate_scale = 0.1), so the sweep is
# still going when SIGTERM arrives.
CONFIG = """
[slack]
digest_channel = "C0DIGEST"
[aws]
default_region = "us-east-1"
regions = ["us-east-1"]
api_rate_scale = 0.1
[[policies]]
name = "nightly"
resource = "volume"
target_tags = { Backup = "nightly" }
every = "12h"
keep = 1
on_expired = "delete"
"""
SNAPSHOTS = 120  # the pacer's burst is 95 deletions; the rest go one every 2 s


def seed(ec2) -> set[str]:
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    tags = [{"Key": "chatops:policy", "Value": "nightly"}, {"Key": "chatops:source", "Value": vol}]
    spec = [{"ResourceType": "snapshot", "Tags": tags}]
    return {ec2.create_snapshot(VolumeId=vol, TagSpecifications=spec)["SnapshotId"] for _ in range(SNAPSHOTS)}


def existing(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_sigterm_stops_a_sweep_between_deletions_and_loses_no_record(tmp_path, aws, ec2, fake_slack, moto_server):
    seeded = seed(ec2)
    bot = BotProcess(tmp_path, CONFIG, fake_slack, moto_server).start()
    try:
        bot.command("/lifecycle run nightly")
        wait_until(lambda: len(seeded - existing(ec2)) > 95, timeout=60, what="the sweep under way, past its burst")
        took = bot.terminate()
    finally:
        bot.stop()

    assert bot.proc.returncode == 0, bot.output()
    assert took < 15, f"shutdown took {took:.1f} s"
    gone = seeded - existing(ec2)
    assert 95 < len(gone) < SNAPSHOTS  # stopped part-way: the test saw a real interruption
    rows = bot.query(
        "SELECT substr(action, length('sweep nightly delete ') + 1), outcome, detail FROM audit"
        " WHERE action LIKE 'sweep nightly delete %'"
    )
    outcome = {snap: result for snap, result, _ in rows}
    # Every deletion that happened is in the audit log, and every expired snapshot has exactly one outcome.
    [kept] = seeded - set(outcome)  # the newest, within keep = 1
    assert len(rows) == len(outcome) == SNAPSHOTS - 1
    assert {s for s, result in outcome.items() if result == "done"} == gone
    assert {s for s, result in outcome.items() if result == "failed"} == seeded - gone - {kept}
    assert all("shutting down" in detail for _, result, detail in rows if result == "failed")
    [(state,)] = bot.query("SELECT state FROM runs WHERE job = 'policy:nightly'")
    assert state == "interrupted"

    # Nothing is lost: the next sweep deletes what the interrupted one did not attempt.
    sweep = BotProcess(tmp_path, CONFIG, fake_slack, moto_server, args=("sweep",)).start(wait=False)
    sweep.proc.wait(timeout=120)
    assert sweep.proc.returncode == 0, sweep.output()
    assert existing(ec2) == {kept}
