"""End to end: Slack Web API faults at every post and update; each AWS action happens once, each message arrives once.

The real app over HTTP against moto, with the fake Slack failing one call as
scripted: a 429 with Retry-After, a 500 after the message was really posted,
an answer slower than the client's timeout, a connection closed with or
without the message posted.  Whatever Slack does, the resource exists once in
AWS, no message is posted twice, the requester learns the resource's ID, the
audit entry says "ok" (the AWS action succeeded) and notes Slack's failure,
the event is recorded, and the resource is still followed to its end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, make_instance, make_volume
from tests.support.harness import ALICE, BOB, BotUnderTest

pytestmark = pytest.mark.e2e

TIMEOUT = 0.5  # the bot's Slack client timeout in these tests
HANG = 3 * TIMEOUT


@pytest.fixture
def bot(aws, fake_slack, tmp_path) -> Iterator[BotUnderTest]:
    bot = BotUnderTest(base_config(tmp_path), fake_slack, slack_timeout=TIMEOUT).start()
    yield bot
    bot.stop()


@pytest.fixture
def west(aws):
    return aws.client("ec2", region_name="us-west-2")


@dataclass(frozen=True)
class Fault:
    name: str
    script: dict
    lands: bool  # the call takes effect in Slack
    confirmed: bool  # the bot gets Slack's answer in the end (after its retries)

    def __str__(self) -> str:
        return self.name


POST_FAULTS = [
    Fault("429 then ok", {"status": 429, "retry_after": 0}, lands=True, confirmed=True),
    Fault("429 every time", {"status": 429, "retry_after": 0, "times": 4}, lands=False, confirmed=False),
    Fault("500 after posting", {"status": 500, "after": True}, lands=True, confirmed=False),
    Fault("timeout after posting", {"hang": HANG, "after": True}, lands=True, confirmed=False),
    Fault("dropped after posting", {"drop": True, "after": True}, lands=True, confirmed=False),
    Fault("dropped before posting", {"drop": True}, lands=False, confirmed=False),
]
# chat.update sets the message to the same content again: every one of these is retried through.
UPDATE_FAULTS = [
    Fault("429", {"status": 429, "retry_after": 0}, lands=True, confirmed=True),
    Fault("500 after updating", {"status": 500, "after": True}, lands=True, confirmed=True),
    Fault("timeout after updating", {"hang": HANG, "after": True}, lands=True, confirmed=True),
    Fault("timeout before updating", {"hang": HANG}, lands=True, confirmed=True),
    Fault("dropped after updating", {"drop": True, "after": True}, lands=True, confirmed=True),
    Fault("dropped before updating", {"drop": True}, lands=True, confirmed=True),
]


def run(bot: BotUnderTest, line: str, user: str = ALICE) -> None:
    assert bot.command(line, user=user).status == 200
    bot.settle()
    bot.wait_watches_done()


# -- the command flows: each sends its command and returns the one resource it made in AWS --


@dataclass(frozen=True)
class Flow:
    name: str
    act: Callable  # (bot, ec2, west) -> (command line, ID of the one resource it made)
    watched: bool  # moto leaves it pending: a watch follows it
    event_region: str | None  # where the "created" event is recorded, if the flow records one
    final: str = ""  # what the message says once the watch saw the resource finish

    def __str__(self) -> str:
        return self.name


def _snapshot_create(bot, ec2, west):
    vol = make_volume(ec2)
    line = f"/snapshot {vol} nightly"
    run(bot, line)
    [snap] = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vol]}])["Snapshots"]
    return line, snap["SnapshotId"]


def _restore(bot, ec2, west):
    snap = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    instance = make_instance(ec2)
    line = f"/snapshot restore {snap} instance={instance} device=/dev/sdh"
    run(bot, line)
    [vol] = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snap]}])["Volumes"]
    assert [a["InstanceId"] for a in vol["Attachments"]] == [instance]  # attached, once
    return line, vol["VolumeId"]


def _snapshot_copy(bot, ec2, west):
    snap = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    before = _ids(west.describe_snapshots(OwnerIds=["self"])["Snapshots"], "SnapshotId")
    line = f"/snapshot copy {snap} to=us-west-2"
    run(bot, line)
    [copy] = _ids(west.describe_snapshots(OwnerIds=["self"])["Snapshots"], "SnapshotId") - before
    return line, copy


def _ami_create(bot, ec2, west):
    instance = make_instance(ec2)
    name = f"golden-{instance}"
    line = f"/ami create {instance} name={name}"
    run(bot, line)
    [image] = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return line, image["ImageId"]


def _ami_launch(bot, ec2, west):
    instance = make_instance(ec2)
    image = ec2.create_image(InstanceId=instance, Name=f"launch-{instance}")["ImageId"]
    line = f"/ami launch {image}"
    run(bot, line)
    reservations = ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image]}])["Reservations"]
    [launched] = [i["InstanceId"] for r in reservations for i in r["Instances"]]
    return line, launched


def _ami_copy(bot, ec2, west):
    instance = make_instance(ec2)
    image = ec2.create_image(InstanceId=instance, Name=f"copy-{instance}")["ImageId"]
    before = _ids(west.describe_images(Owners=["self"])["Images"], "ImageId")
    line = f"/ami copy {image} to=us-west-2"
    run(bot, line)
    [copy] = _ids(west.describe_images(Owners=["self"])["Images"], "ImageId") - before
    return line, copy


def _ids(items: list[dict], key: str) -> set[str]:
    return {item[key] for item in items}


FLOWS = [
    Flow("snapshot create", _snapshot_create, watched=False, event_region="us-east-1"),
    Flow("snapshot restore", _restore, watched=True, event_region=None, final="attached to"),
    Flow("snapshot copy", _snapshot_copy, watched=False, event_region="us-west-2"),
    Flow("ami create", _ami_create, watched=False, event_region="us-east-1"),
    Flow("ami launch", _ami_launch, watched=True, event_region=None, final="1 instance running"),
    Flow("ami copy", _ami_copy, watched=False, event_region="us-west-2"),
]
UPDATED_FLOWS = [f for f in FLOWS if f.watched]


def posts_about(bot: BotUnderTest, resource_id: str) -> list[str]:
    """Texts of the channel posts that took effect and mention the resource."""
    return [
        message_text(c.params) for c in bot.slack.calls_of("chat.postMessage") if resource_id in message_text(c.params)
    ]


def audit_of(bot: BotUnderTest, line: str) -> dict:
    [entry] = [a for a in bot.deps.store.recent_audit(200) if a["action"] == line]
    return entry


def events_of(bot: BotUnderTest, resource_id: str) -> list[tuple[str, str]]:
    rows = bot.deps.store.db.execute("SELECT region, kind FROM events WHERE resource_id = ?", [resource_id])
    return [tuple(r) for r in rows.fetchall()]


@pytest.mark.parametrize("fault", POST_FAULTS, ids=str)
def test_a_slack_fault_at_the_post_after_an_aws_action(bot, ec2, west, fault):
    for flow in FLOWS:
        bot.slack.fail_next("chat.postMessage", **fault.script)
        line, resource_id = flow.act(bot, ec2, west)  # it asserts the resource exists exactly once in AWS

        posts = posts_about(bot, resource_id)
        assert len(posts) == len(set(posts)), f"{flow}: a message arrived twice"
        # The progress message, where it landed; and, when the bot never learnt of it, the final state
        # posted once by the watch that followed the resource without a message.
        assert len(posts) == fault.lands + (flow.watched and not fault.confirmed), flow
        ephemerals = [t for t in bot.responses() if resource_id in t]
        assert len(ephemerals) == (0 if fault.confirmed else 1), f"{flow}: the requester must learn the ID once"
        entry = audit_of(bot, line)
        assert entry["outcome"] == "ok" and resource_id in entry["detail"], flow
        assert ("Slack" in entry["detail"]) == (not fault.confirmed), flow
        if flow.event_region:
            assert events_of(bot, resource_id) == [(flow.event_region, "created")], flow
    assert bot.deps.store.active_watches() == []


def test_when_slack_fails_the_post_and_the_ephemeral_the_audit_says_so(bot, ec2, west):
    bot.slack.fail_next("chat.postMessage", status=500, after=True)
    bot.slack.fail_next("response_url", status=500)
    line, snap = _snapshot_create(bot, ec2, west)
    entry = audit_of(bot, line)
    assert entry["outcome"] == "ok" and snap in entry["detail"]
    assert "could not tell the requester" in entry["detail"]
    assert events_of(bot, snap) == [("us-east-1", "created")]


def test_a_channel_the_bot_is_not_in_gets_the_final_state_once_it_is_invited(bot, ec2, west):
    bot.slack.fail_next("chat.postMessage", error="not_in_channel")
    line, vol = _restore(bot, ec2, west)
    assert "Invite me" in [t for t in bot.responses() if vol in t][0]
    [final] = posts_about(bot, vol)  # the bot was invited meanwhile: the watch's final post got through
    assert "attached to" in final


def test_a_slack_fault_at_the_update_of_a_watched_message(bot, ec2, west):
    for fault in UPDATE_FAULTS:
        for flow in UPDATED_FLOWS:
            start = len(bot.slack.calls)
            bot.slack.fail_next("chat.update", **fault.script)
            line, resource_id = flow.act(bot, ec2, west)

            where = f"{flow}, {fault}"
            assert any(c.fault for c in bot.slack.calls[start:] if c.method.startswith("chat.update")), where
            [message] = bot.slack.channel_messages(resource_id)  # one message, updated in place to the end state
            assert len(posts_about(bot, resource_id)) == 1, where
            assert flow.final in message_text(message), where
            assert not [t for t in bot.responses() if resource_id in t], where
            assert audit_of(bot, line)["outcome"] == "ok", where


def test_a_deleted_message_ends_its_watch_and_nothing_is_posted_again(bot, ec2, west):
    def delete_as_soon_as_posted(call):  # a user deletes the message before the watch first updates it
        if call.method == "chat.postMessage":
            bot.slack.delete_message(call.params["channel"], call.params["ts"])

    bot.slack.listeners.append(delete_as_soon_as_posted)
    line, vol = _restore(bot, ec2, west)
    assert bot.slack.channel_messages(vol) == []
    assert len(posts_about(bot, vol)) == 1
    [watch] = bot.deps.store.db["watches"].rows
    assert watch["state"] == "message-gone"


# -- the approval message flow --


def request_delete(bot, ec2) -> str:
    snap = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    run(bot, f"/snapshot delete {snap}")
    return snap


def requests_for(bot, resource_id: str) -> list[dict]:
    return [m for m in bot.approval_messages() if resource_id in message_text(m)]


def snapshot_exists(ec2, snap: str) -> bool:
    return snap in _ids(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"], "SnapshotId")


def approve_by_bob(bot, message: dict) -> None:
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    bot.wait_watches_done()


def test_a_slack_fault_at_the_approval_request_post(bot, ec2):
    for fault in POST_FAULTS:
        deletes = bot.deps.gateway.calls["DeleteSnapshot"]
        bot.slack.fail_next("chat.postMessage", **fault.script)
        snap = request_delete(bot, ec2)
        messages = requests_for(bot, snap)
        assert len(messages) == fault.lands, fault  # never twice
        if fault.confirmed:
            approve_by_bob(bot, messages[0])
            assert not snapshot_exists(ec2, snap), fault
            assert "1 done" in message_text(requests_for(bot, snap)[0]), fault
            continue
        # Not confirmed: the request is closed and the requester told; a message that landed anyway does nothing.
        assert "nothing will be done" in bot.responses()[-1], fault
        if messages:
            approve_by_bob(bot, messages[0])
            assert "already denied" in bot.responses()[-1], fault
        assert snapshot_exists(ec2, snap), fault
        assert bot.deps.gateway.calls["DeleteSnapshot"] == deletes, fault


def test_a_slack_fault_at_an_approval_message_update(bot, ec2):
    for fault in UPDATE_FAULTS:
        for which, skip in (("the decision", 0), ("the result", 1)):
            deletes = bot.deps.gateway.calls["DeleteSnapshot"]
            snap = request_delete(bot, ec2)
            [message] = requests_for(bot, snap)
            bot.slack.fail_next("chat.update", **fault.script, skip=skip)
            approve_by_bob(bot, message)
            where = f"{fault} at {which}"
            assert not snapshot_exists(ec2, snap), where
            assert bot.deps.gateway.calls["DeleteSnapshot"] == deletes + 1, where
            [final] = requests_for(bot, snap)
            assert "1 done" in message_text(final), where
            assert not any(b["type"] == "actions" for b in final["blocks"]), where


def test_a_slack_fault_at_the_post_of_an_ami_an_approval_started(bot, ec2):
    for fault in POST_FAULTS:
        instance = make_instance(ec2)
        name = f"db-{instance}"
        run(bot, f"/ami create {instance} name={name} reboot")
        [request] = requests_for(bot, instance)
        created = bot.deps.store.event_counts(datetime.now(UTC) - timedelta(hours=1)).get("us-east-1", {})
        bot.slack.fail_next("chat.postMessage", **fault.script)  # the next post: the AMI's progress in the thread
        approve_by_bob(bot, request)

        [image] = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
        image_id = image["ImageId"]
        assert image_id in message_text(requests_for(bot, instance)[0]), fault  # the request names the AMI
        in_thread = [m for m in bot.posted() if m.get("thread_ts") == request["ts"]]
        assert len(in_thread) == fault.lands and all(image_id in m["text"] for m in in_thread), fault
        posts = posts_about(bot, image_id)
        assert len(posts) == len(set(posts)), fault
        counts = bot.deps.store.event_counts(datetime.now(UTC) - timedelta(hours=1))["us-east-1"]
        assert counts["created"] == created.get("created", 0) + 1, fault
