"""A real `python -m bot` stopped mid-work: SIGTERM mid-sweep; kill -9 mid-sweep, mid-approval, with a watch pending.

Nothing is lost and nothing is done twice; what was interrupted says so, and the next run finishes the work.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bot.state.store import Store, utcnow
from bot.testing.fakeslack import message_text
from tests.support.bot_process import BotProcess, policy_config, wait_until
from tests.support.harness import BOB

pytestmark = pytest.mark.e2e

# After a burst of 95, deletions pace at 0.5 a second (api_rate_scale = 0.1): the signal lands mid-batch.
SNAPSHOTS = 120


def config(on_expired: str = "delete", scale: float = 0.1, poll: str = "15s") -> str:
    return policy_config(on_expired=on_expired, aws=f'api_rate_scale = {scale}\npoll_interval = "{poll}"\n')


def seed(ec2) -> tuple[set[str], str]:
    """SNAPSHOTS expired snapshots of the policy and the newest one, which keep = 1 keeps."""
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]  # untagged: the runs create nothing
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": vol}]
    spec = [{"ResourceType": "snapshot", "Tags": tags}]
    expired = {ec2.create_snapshot(VolumeId=vol, TagSpecifications=spec)["SnapshotId"] for _ in range(SNAPSHOTS)}
    time.sleep(1.1)  # creation times are to the second
    newest = ec2.create_snapshot(VolumeId=vol, TagSpecifications=spec)["SnapshotId"]
    return expired, newest


def existing(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def deleted_past_the_burst(ec2, expired: set[str]) -> None:
    wait_until(lambda: len(expired - existing(ec2)) > 95, timeout=60, what="the batch under way, past its burst")


def audited_deletions(bot: BotProcess, since_id: int = 0) -> dict[str, str]:
    rows = bot.query(
        "SELECT substr(action, length('sweep daily-db delete ') + 1), outcome FROM audit"
        " WHERE action LIKE 'sweep daily-db delete %' AND id > ?",
        since_id,
    )
    return dict(rows)


def test_kill_mid_scheduled_sweep_then_restart(tmp_path, aws, ec2, fake_slack, moto_server):
    expired, newest = seed(ec2)
    db = tmp_path / "bot.db"
    # The bot was down when the policy was due: it catches the slot up at start, in the scheduler.
    Store(str(db), clock=lambda: utcnow() - timedelta(days=2)).first_seen("policy:daily-db")
    first = BotProcess(tmp_path, config(), fake_slack, moto_server).start()
    try:
        deleted_past_the_burst(ec2, expired)
        first.kill()
    finally:
        first.stop()
    gone = expired - existing(ec2)
    assert len(gone) < SNAPSHOTS  # a real interruption
    assert first.query("SELECT trigger, state FROM runs WHERE job = 'policy:daily-db'") == [
        ("missed-at-start", "running")
    ]
    # What the audit log says was deleted was deleted (a deletion in flight at the kill may be missing from it).
    assert {s for s, outcome in audited_deletions(first).items() if outcome == "done"} <= gone

    second = BotProcess(tmp_path, config(scale=1.0), fake_slack, moto_server).start()
    try:
        assert second.query("SELECT state FROM runs WHERE job = 'policy:daily-db'") == [("interrupted",)]
        [(last_audit,)] = second.query("SELECT max(id) FROM audit")
        second.command("/lifecycle list")
        listed = fake_slack.wait_for(lambda s: [t for t in s.texts("response_url") if "daily-db" in t], timeout=20)
        assert "interrupted" in listed[-1]
        # No catch-up for a slot already claimed by the killed run; the next run finishes the work.
        second.command("/lifecycle run daily-db")
        wait_until(lambda: existing(ec2) == {newest}, timeout=60, what="the rest deleted by the next run")
        wait_until(lambda: second.query("SELECT count(*) FROM runs WHERE state = 'ok'") == [(1,)], what="the run done")
    finally:
        second.terminate()
    again = audited_deletions(second, last_audit)
    assert set(again) == expired - gone  # only what the killed run had not deleted: nothing twice
    assert all(outcome == "done" for outcome in again.values())


def test_kill_mid_approved_batch_then_restart(tmp_path, aws, ec2, fake_slack, moto_server):
    expired, newest = seed(ec2)
    first = BotProcess(tmp_path, config(on_expired="approve"), fake_slack, moto_server).start()
    try:
        first.command("/lifecycle run daily-db")
        request = fake_slack.wait_for(
            lambda s: [m for m in s.messages.values() if "Request `req-" in message_text(m)], timeout=30
        )[0]
        first.click(request, "approval_approve", user=BOB)
        deleted_past_the_burst(ec2, expired)
        first.kill()
    finally:
        first.stop()
    [(request_id, state)] = first.query("SELECT id, state FROM approvals")
    assert state == "executing"

    second = BotProcess(tmp_path, config(on_expired="approve", scale=1.0), fake_slack, moto_server).start()
    try:
        # Reconciled at start against AWS, never executed again.
        [(state,)] = second.query("SELECT state FROM approvals WHERE id = ?", request_id)
        assert state == "failed"
        left = existing(ec2)
        time.sleep(2)
        assert existing(ec2) == left  # nothing more was deleted on the strength of that request
        updated = message_text(fake_slack.messages[(request["channel"], request["ts"])])
        gone = expired - left
        assert "interrupted before it was deleted" in updated and "finished with failures" in updated
        assert all(f"`{snap}`" in updated for snap in list(gone)[:3])

        # The next run asks again for exactly what is left, and it goes once approved.
        second.command("/lifecycle run daily-db")
        again = fake_slack.wait_for(
            lambda s: [
                m
                for m in s.messages.values()
                if "Request `req-" in message_text(m) and f"Request `{request_id}`" not in message_text(m)
            ],
            timeout=30,
        )
        assert f"delete {len(expired - gone)} expired snapshots" in message_text(again[-1])
        second.click(again[-1], "approval_approve", user=BOB)
        wait_until(lambda: existing(ec2) == {newest}, timeout=60, what="the rest deleted once approved")
    finally:
        second.terminate()


def test_kill_with_a_watch_pending_then_restart(tmp_path, aws, ec2, fake_slack, moto_server):
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    instance = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-east-1a"}
    )["Instances"][0]["InstanceId"]
    # The watch is polled only every hour: the restore waits to be attached when the bot dies.
    first = BotProcess(tmp_path, config(poll="1h"), fake_slack, moto_server).start()
    try:
        first.command(f"/snapshot restore {snap} instance={instance} device=/dev/sdf")
        wait_until(lambda: first.query("SELECT count(*) FROM watches WHERE state = 'watching'") == [(1,)])
        first.kill()
    finally:
        first.stop()
    [restored] = [v for v in ec2.describe_volumes()["Volumes"] if v.get("SnapshotId") == snap]
    assert restored["Attachments"] == []
    posts = len(fake_slack.calls_of("chat.postMessage"))

    second = BotProcess(tmp_path, config(poll="1s"), fake_slack, moto_server).start()
    try:
        wait_until(lambda: second.query("SELECT state FROM watches") == [("done",)], timeout=30, what="watch done")
    finally:
        second.terminate()
    [volume] = ec2.describe_volumes(VolumeIds=[restored["VolumeId"]])["Volumes"]
    assert [a["InstanceId"] for a in volume["Attachments"]] == [instance]  # attached, once
    assert len([v for v in ec2.describe_volumes()["Volumes"] if v.get("SnapshotId") == snap]) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == posts  # the same message was updated, not re-posted
    [message] = [m for m in fake_slack.messages.values() if restored["VolumeId"] in message_text(m)]
    assert "in-use" in message_text(message) or "attached" in message_text(message)


def test_sigterm_stops_a_sweep_between_deletions_and_loses_no_record(tmp_path, aws, ec2, fake_slack, moto_server):
    seeded, newest = seed(ec2)
    bot = BotProcess(tmp_path, config(), fake_slack, moto_server).start()
    try:
        bot.command("/lifecycle run daily-db")
        wait_until(lambda: len(seeded - existing(ec2)) > 95, timeout=60, what="the sweep under way, past its burst")
        took = bot.terminate()
    finally:
        bot.stop()

    assert bot.proc.returncode == 0, bot.output()
    assert took < 15, f"shutdown took {took:.1f} s"
    gone = seeded - existing(ec2)
    assert 95 < len(gone) < SNAPSHOTS  # stopped part-way: the test saw a real interruption
    rows = bot.query(
        "SELECT substr(action, length('sweep daily-db delete ') + 1), outcome, detail FROM audit"
        " WHERE action LIKE 'sweep daily-db delete %'"
    )
    outcome = {snap: result for snap, result, _ in rows}
    # Every deletion that happened is in the audit log, and every expired snapshot has exactly one outcome.
    assert len(rows) == len(outcome) == SNAPSHOTS
    assert {s for s, result in outcome.items() if result == "done"} == gone
    assert {s for s, result in outcome.items() if result == "failed"} == seeded - gone
    assert all("shutting down" in detail for _, result, detail in rows if result == "failed")
    [(state,)] = bot.query("SELECT state FROM runs WHERE job = 'policy:daily-db'")
    assert state == "interrupted"

    # Nothing is lost: the next sweep deletes what the interrupted one did not attempt.
    sweep = BotProcess(tmp_path, config(scale=1.0), fake_slack, moto_server, args=("sweep",)).start(wait=False)
    assert sweep.wait() == 0, sweep.output()
    assert existing(ec2) == {newest}


def test_sigterm_stops_the_sweep_cli_between_deletions_and_it_reports_and_fails(
    tmp_path, aws, ec2, fake_slack, moto_server
):
    expired, newest = seed(ec2)
    sweep = BotProcess(tmp_path, config(), fake_slack, moto_server, args=("sweep",)).start(wait=False)
    try:
        deleted_past_the_burst(ec2, expired)
        took = sweep.terminate()
    finally:
        sweep.stop()

    assert took < 15, f"the CLI took {took:.1f} s to stop"
    assert sweep.proc.returncode == 1, sweep.output()  # work left undone is a failure
    assert "shutting down" in sweep.output()  # the report says why
    gone = expired - existing(ec2)
    outcome = audited_deletions(sweep)
    assert {s for s, result in outcome.items() if result == "done"} == gone
    assert {s for s, result in outcome.items() if result == "failed"} == expired - gone
    assert sweep.query("SELECT trigger, state FROM runs") == [("cli", "interrupted")]
    assert newest in existing(ec2)
