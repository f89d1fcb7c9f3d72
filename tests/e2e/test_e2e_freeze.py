"""End to end over HTTP: `/lifecycle freeze` stops every deletion by every path until `/lifecycle thaw`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from bot.domain.lifecycle import DELETERS_PER_REGION
from bot.flows import approval_flow, freeze_flow
from bot.state.store import Store
from bot.testing.fakeslack import message_text
from tests.support.approvals import approval_state, exists, request_delete
from tests.support.factories import base_config, daily_policy, make_snapshot, make_volume
from tests.support.harness import ALICE, BOB, CAROL, FakeClock

pytestmark = pytest.mark.e2e


def policy_snapshots(ec2) -> list[str]:
    found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:chatops:policy", "Values": ["daily-db"]}])
    return [s["SnapshotId"] for s in found["Snapshots"]]


@pytest.fixture
def deleting_bot(make_bot, tmp_path):
    config = dataclasses.replace(base_config(tmp_path), policies=(daily_policy(keep=1, on_expired="delete"),))
    return make_bot(config)


def freeze(bot, text: str = "incident 42", user: str = BOB) -> dict:
    ack = bot.command(f"/lifecycle freeze {text}".strip(), user=user)
    assert ack.status == 200
    return ack.json()


def test_only_an_approver_freezes_and_the_answer_is_the_ack_shown_to_the_channel(bot):
    refused = freeze(bot, user=CAROL)
    assert "only an approver can freeze deletions" in refused["text"]
    assert bot.deps.store.freezes() == []

    answer = freeze(bot, "bad keep value until=4h")
    assert answer["response_type"] == "in_channel"
    text = message_text(answer)
    assert "Deletions frozen" in text and f"<@{BOB}>" in text and "bad keep value" in text and "until" in text
    [row] = bot.deps.store.freezes()
    assert row["scope"] == "*" and row["reason"] == "bad keep value" and row["by_user"] == BOB
    audit = [(r["action"], r["outcome"]) for r in bot.deps.store.recent_audit(10)]
    assert ("lifecycle freeze every account", "frozen") in audit
    bot.settle()
    assert any("Deletions frozen" in message_text(m) for m in bot.posted())  # announced in the digest channel


def test_a_bad_until_is_a_usage_error_and_freezes_nothing(bot):
    for until in ("yesterday", "2001-01-01", "400d"):
        answer = freeze(bot, f"x until={until}")
        assert "until=" in answer["text"], until
    assert bot.deps.store.freezes() == []


def test_a_frozen_sweep_reports_what_it_would_delete_and_deletes_nothing_until_the_thaw(deleting_bot, ec2):
    bot = deleting_bot
    make_volume(ec2, Backup="daily")
    bot.command("/lifecycle run daily-db")
    bot.settle()
    freeze(bot)
    time.sleep(1.1)  # moto stamps StartTime to the second; retention orders by it
    bot.command("/lifecycle run daily-db")
    bot.settle()

    assert len(policy_snapshots(ec2)) == 2  # the new backup was made; the expired one was not deleted
    assert bot.deps.gateway.calls["DeleteSnapshot"] == 0
    report = message_text([m for m in bot.posted() if "daily-db" in message_text(m)][-1])
    assert "not deleted" in report and "deletions are frozen by U0BOB" in report and "incident 42" in report
    assert "Would have deleted (frozen)" in report

    bot.command("/lifecycle list")
    bot.settle()
    assert "Deletions are frozen by <@U0BOB>" in bot.responses()[-1]

    thawed = bot.command("/lifecycle thaw", user=BOB).json()
    assert "Deletions thawed" in message_text(thawed)
    bot.command("/lifecycle run daily-db")
    bot.settle()
    assert len(policy_snapshots(ec2)) == 1


def test_approve_is_refused_while_frozen_and_the_request_can_be_approved_after_the_thaw(bot, ec2):
    snap = make_snapshot(ec2)
    request_delete(bot, ec2, snap)
    freeze(bot)
    bot.settle()
    [shown] = bot.approval_messages()
    assert "Deletions are frozen by <@U0BOB>" in message_text(shown)  # the open request was redrawn with the freeze

    bot.click(shown, "approval_approve", user=BOB)
    bot.settle()
    assert exists(ec2, snap) and approval_state(bot) == "pending"
    assert "Not approved: deletions are frozen" in bot.responses()[-1]

    bot.command("/lifecycle thaw", user=BOB)
    bot.settle()
    [shown] = bot.approval_messages()
    assert "frozen" not in message_text(shown)
    bot.click(shown, "approval_approve", user=BOB)
    bot.settle()
    assert not exists(ec2, snap) and approval_state(bot) == "done"


def test_an_approval_that_raced_the_freeze_is_held_then_runs_at_the_thaw(bot, ec2):
    snap = make_snapshot(ec2)
    request_delete(bot, ec2, snap)
    [row] = bot.deps.store.approvals_in("pending")
    # The click won (approved) just before the freeze landed; execution starts after it.
    assert bot.deps.store.transition(row["id"], "pending", "approved", decided_by=BOB)
    freeze(bot)
    assert approval_flow.execute(bot.deps, bot.deps.store.get_approval(row["id"])) == "held"
    assert exists(ec2, snap) and approval_state(bot) == "held"
    assert "held: deletions are frozen" in message_text(bot.approval_messages()[0])

    bot.command("/lifecycle thaw", user=BOB)
    bot.settle()
    assert not exists(ec2, snap) and approval_state(bot) == "done"
    audit = [(r["action"], r["outcome"]) for r in bot.deps.store.recent_audit(20)]
    assert (f"approval {row['id']} held", "held") in audit and (f"approval {row['id']} released", "approved") in audit


def test_a_held_request_older_than_requests_last_expires_at_the_thaw(make_bot, ec2, tmp_path):
    clock = FakeClock()
    bot = make_bot(base_config(tmp_path), clock=clock)
    snap = make_snapshot(ec2)
    request_delete(bot, ec2, snap)
    [row] = bot.deps.store.approvals_in("pending")
    assert bot.deps.store.transition(row["id"], "pending", "approved", decided_by=BOB)
    freeze(bot)
    approval_flow.execute(bot.deps, bot.deps.store.get_approval(row["id"]))
    clock.advance(bot.deps.config.access.approval_ttl + timedelta(minutes=1))

    bot.command("/lifecycle thaw", user=BOB)
    bot.settle()
    assert exists(ec2, snap) and approval_state(bot) == "expired"


def test_a_deletion_under_way_stops_at_the_next_item_when_the_freeze_lands(bot, ec2):
    snaps = [make_snapshot(ec2) for _ in range(3)]
    request_delete(bot, ec2, *snaps)
    [row] = bot.deps.store.approvals_in("pending")
    assert bot.deps.store.transition(row["id"], "pending", "approved", decided_by=BOB)
    deleted = []

    def freeze_after_first(params, **_):  # the freeze lands while the batch runs, right after its first delete
        deleted.append(params["SnapshotId"])
        if len(deleted) == 1:
            bot.deps.store.freeze("*", "stop now", BOB)

    client = bot.deps.gateway.client("us-east-1")
    client.meta.events.register("provide-client-params.ec2.DeleteSnapshot", freeze_after_first)
    assert approval_flow.execute(bot.deps, bot.deps.store.get_approval(row["id"])) == "failed"

    assert deleted == snaps[:1]  # no DeleteSnapshot left the bot after the freeze
    assert [exists(ec2, s) for s in snaps] == [False, True, True]
    results = {r["resource_id"]: r for r in bot.deps.store.get_approval(row["id"])["result"]}
    assert results[snaps[1]]["outcome"] == "failed" and "stop now" in results[snaps[1]]["reason"]


def test_the_freeze_survives_a_restart_and_until_lifts_it_on_its_own(make_bot, tmp_path):
    clock = FakeClock()
    bot = make_bot(base_config(tmp_path), clock=clock)
    freeze(bot, "change window until=2h")
    bot.stop()

    again = make_bot(base_config(tmp_path), clock=clock)
    assert [f["reason"] for f in again.deps.store.freezes()] == ["change window"]
    clock.advance(timedelta(hours=2, seconds=1))
    assert freeze_flow.lift_lapsed(again.deps) == 1
    assert again.deps.store.freezes() == [] and again.deps.store.lapsed_freezes() == []
    assert any("Deletions thawed" in message_text(m) and "on its own" in message_text(m) for m in again.posted())


def test_one_accounts_freeze_leaves_the_others_alone(make_bot, ec2, tmp_path):
    from bot.config import Account

    prod = Account(name="prod", role_arn="arn:aws:iam::111111111111:role/chatops")
    bot = make_bot(dataclasses.replace(base_config(tmp_path), accounts=(prod,)))
    answer = bot.command("/lifecycle freeze prod migration account=prod", user=BOB).json()
    assert "in prod" in message_text(answer)
    assert bot.deps.frozen("prod") and not bot.deps.frozen("")

    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)  # in the bot's own account
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert not exists(ec2, snap)

    still = bot.command("/lifecycle thaw account=default", user=BOB).json()
    assert "not frozen" in message_text(still) and "in prod" in message_text(still)
    bot.command("/lifecycle thaw account=prod", user=BOB)
    assert not bot.deps.frozen("prod")


def test_the_sweep_cli_deletes_nothing_while_frozen_and_exits_non_zero(deleting_bot, ec2, tmp_path, moto_server):
    bot = deleting_bot
    volume = make_volume(ec2, Backup="daily")
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    for i in range(2):  # keep=1: the older one is expired
        if i:
            time.sleep(1.1)
        ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    before = set(policy_snapshots(ec2))
    freeze(bot, "hands off")

    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\npath = "{bot.deps.config.store.path}"\n[aws]\nregions = ["us-east-1"]\n'
        '[[policies]]\nname = "daily-db"\nresource = "volume"\ntarget_tags = { Backup = "daily" }\n'
        'every = "12h"\nkeep = 1\non_expired = "delete"\n'
    )
    env = {**os.environ, "CHATOPS_CONFIG": str(config), "AWS_ENDPOINT_URL": moto_server}
    env.pop("SLACK_BOT_TOKEN", None)
    env.pop("CHATOPS_DB", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sweep", "--policy", "daily-db"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Nothing was deleted: deletions are frozen by U0BOB" in result.stdout and "hands off" in result.stdout
    assert set(policy_snapshots(ec2)) == before


def test_a_store_from_before_the_freeze_migrates_unfrozen(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    assert store.freezes() == [] and store.freeze_on("") is None
    store.freeze("prod", "x", BOB)
    assert store.freeze_on("") is None and store.freeze_on("prod")["reason"] == "x"
    store.freeze("*", "y", ALICE)
    assert store.freeze_on("")["scope"] == "*"  # the fleet's freeze first
    assert sorted(f["scope"] for f in store.thaw()) == ["*", "prod"]
    assert store.freezes() == []


def test_a_sweep_under_way_stops_deleting_when_the_freeze_lands(deleting_bot, ec2):
    bot = deleting_bot
    volume = make_volume(ec2, Backup="daily")
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    expired = 3 * DELETERS_PER_REGION
    for _ in range(expired):
        ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    time.sleep(1.1)  # the run's own backup is the newest: keep=1 keeps it, the rest are expired
    sent = []

    def freeze_after_first(params, **_):
        sent.append(params["SnapshotId"])
        if len(sent) == 1:
            bot.deps.store.freeze("*", "stop the sweep", BOB)

    bot.deps.gateway.client("us-east-1").meta.events.register(
        "provide-client-params.ec2.DeleteSnapshot", freeze_after_first
    )
    bot.command("/lifecycle run daily-db")
    bot.settle()

    # Each deleter thread stops at its next item: only deletions already past the check when the freeze
    # landed (one per thread at most) left the bot; every other expired item is still there, reported.
    assert 1 <= len(sent) <= DELETERS_PER_REGION
    assert len(policy_snapshots(ec2)) == 1 + expired - len(sent)
    report = message_text([m for m in bot.posted() if "daily-db" in message_text(m)][-1])
    assert "stop the sweep" in report and f":x: {expired - len(sent)} failed" in report
    [run] = bot.deps.store.db["runs"].rows
    assert run["state"] == "failed"
