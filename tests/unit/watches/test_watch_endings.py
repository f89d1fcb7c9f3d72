"""Every watch ends: a vanished resource, a message Slack will not update, a poll failing past its deadline.

And what ends stays ended; a watch whose message never got posted still
follows its resource and posts the final state once.  A Stubber plays AWS
(moto is always done at once); Slack is the fake Web API.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.stub import Stubber

from bot.flows import approval_flow
from bot.slack.commands import parse
from bot.testing.fakeslack import message_text
from handlers import snapshot as snapshot_handlers
from handlers.respond import SlackReply, run_job
from scheduler import watches
from scheduler.watches import poll_watches
from tests.support.watches import AMI, NOW, SNAP, VOL, describe, image, snapshot, watch

INSTANCE = "i-0123456789abcdef0"


def state_of(deps, watch_id: int = 1) -> str:
    return deps.store.db["watches"].get(watch_id)["state"]


def without_message(deps, kind: str, ids: list[str], data: dict) -> int:
    """A watch whose message could not be posted (the command's post failed)."""
    watch_id = deps.store.add_watch(kind, "us-east-1", ids, "C0OPS", None, "U0ALICE", NOW + timedelta(hours=1), data)
    assert deps.store.set_watch_message(watch_id, None)
    return watch_id


# -- the resource is gone --


def test_a_volume_that_vanished_ends_its_watch(deps, stub, fake_slack):
    watch(deps, "volume", [VOL], {"snapshot_id": SNAP, "attach": None})
    stub.add_client_error("describe_volumes", "InvalidVolume.NotFound", "gone")
    poll_watches(deps)
    assert deps.store.active_watches() == [] and state_of(deps) == "failed"
    assert VOL in fake_slack.texts("chat.update")[-1] and "not found" in fake_slack.texts("chat.update")[-1]


def test_launched_instances_that_vanished_end_their_watch(deps, stub, fake_slack):
    watch(deps, "instances", [INSTANCE], {"image_id": "ami-0123456789abcdef0", "image_name": "golden"})
    stub.add_client_error("describe_instances", "InvalidInstanceID.NotFound", "gone")
    poll_watches(deps)
    assert deps.store.active_watches() == [] and state_of(deps) == "failed"
    assert f"`{INSTANCE}` no longer exists" in fake_slack.texts("chat.update")[-1]


# -- the message is gone --


@pytest.mark.parametrize("error", ["message_not_found", "channel_not_found", "is_archived", "not_in_channel"])
def test_a_message_slack_will_not_update_any_more_ends_its_watch(deps, stub, fake_slack, error):
    watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    fake_slack.fail_next("chat.update", error=error, times=10)
    describe(stub, "pending", "40%")  # new progress: the watch updates the message, and learns it is gone
    poll_watches(deps)
    assert deps.store.active_watches() == [] and state_of(deps) == "message-gone"
    poll_watches(deps)
    stub.assert_no_pending_responses()  # nothing more asked of AWS…
    assert len(fake_slack.calls_of("chat.update:failed")) == 1  # …or of Slack


def test_a_deleted_message_ends_its_watch_even_when_the_resource_finishes(deps, stub, fake_slack):
    ts = watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    fake_slack.delete_message("C0OPS", ts)
    describe(stub, "completed", "100%")
    poll_watches(deps)
    assert deps.store.active_watches() == []
    assert fake_slack.channel_messages() == []  # not posted again elsewhere: the user deleted it


# -- the poll keeps failing --


def test_a_poll_that_keeps_failing_ends_the_watch_at_its_deadline(deps, stub, fake_slack, clock):
    watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    stub.add_client_error("describe_snapshots", "UnauthorizedOperation", "no")
    poll_watches(deps)
    assert deps.store.active_watches()  # before the deadline a failed poll is tried again
    clock["now"] = NOW + timedelta(hours=2)
    stub.add_client_error("describe_snapshots", "UnauthorizedOperation", "no")
    poll_watches(deps)
    assert deps.store.active_watches() == [] and state_of(deps) == "timed-out"
    final = fake_slack.texts("chat.update")[-1]
    assert "stopped watching" in final and f"/snapshot status {SNAP}" in final


def test_a_watch_whose_message_cannot_be_updated_ends_at_its_deadline(deps, stub, fake_slack, clock):
    watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    clock["now"] = NOW + timedelta(hours=2)
    fake_slack.fail_next("chat.update", error="invalid_auth", times=100)
    describe(stub, "pending", "99%")
    poll_watches(deps)
    assert deps.store.active_watches() == [] and state_of(deps) == "timed-out"


# -- final is final --


def test_a_finished_watch_never_moves_again(deps):
    watch_id = deps.store.add_watch("snapshot", "us-east-1", [SNAP], "C0OPS", "1.000001", "U0ALICE", NOW, {})
    assert deps.store.update_watch(watch_id, state="done")
    assert not deps.store.update_watch(watch_id, state="timed-out")
    assert not deps.store.update_watch(watch_id, data={"progress": "50%"})
    row = deps.store.db["watches"].get(watch_id)
    assert row["state"] == "done" and json.loads(row["data"]) == {}


def test_a_watch_state_must_be_a_known_end(deps):
    watch_id = deps.store.add_watch("snapshot", "us-east-1", [SNAP], "C0OPS", "1.000001", "U0ALICE", NOW, {})
    with pytest.raises(ValueError):
        deps.store.update_watch(watch_id, state="finished-ish")


# -- a watch without a message --


def test_a_watch_without_a_message_posts_the_final_state_once(deps, stub, fake_slack):
    without_message(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    describe(stub, "pending", "40%")
    describe(stub, "completed", "100%")
    poll_watches(deps)
    assert fake_slack.calls == []  # progress has no message to update
    poll_watches(deps)
    poll_watches(deps)
    [final] = fake_slack.channel_messages(SNAP)
    assert "completed" in message_text(final) and final["channel"] == "C0OPS"
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    assert deps.store.active_watches() == [] and state_of(deps) == "done"


def test_the_final_post_of_a_watch_without_a_message_is_never_repeated(deps, stub, fake_slack):
    without_message(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    fake_slack.fail_next("chat.postMessage", status=500, after=True)
    describe(stub, "completed", "100%")
    poll_watches(deps)
    poll_watches(deps)
    assert len(fake_slack.channel_messages(SNAP)) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    assert deps.store.active_watches() == []


def test_a_watch_without_a_message_posts_into_its_thread(deps, stub, fake_slack):
    without_message(deps, "snapshot", [SNAP], {"verb": "Snapshot", "thread_ts": "1.000001"})
    describe(stub, "completed", "100%")
    poll_watches(deps)
    [final] = fake_slack.channel_messages(SNAP)
    assert final["thread_ts"] == "1.000001"


def test_a_watch_is_not_polled_while_its_message_is_being_posted(deps, stub, fake_slack):
    watch_id = deps.store.add_watch(
        "snapshot", "us-east-1", [SNAP], "C0OPS", None, "U0ALICE", NOW + timedelta(hours=1), {"verb": "Snapshot"}
    )
    assert poll_watches(deps) == 0
    ts = deps.slack.chat_postMessage(channel="C0OPS", text="working")["ts"]
    assert deps.store.set_watch_message(watch_id, ts)
    describe(stub, "completed", "100%")
    assert poll_watches(deps) == 1
    assert "completed" in message_text(fake_slack.messages[("C0OPS", ts)])
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_a_watch_left_posting_by_a_crash_is_followed_without_a_message(deps, stub, fake_slack, clock):
    watch_id = deps.store.add_watch(
        "snapshot", "us-east-1", [SNAP], "C0OPS", None, "U0ALICE", NOW + timedelta(hours=1), {"verb": "Snapshot"}
    )
    clock["now"] = NOW + watches.POSTING_GRACE + timedelta(seconds=1)
    describe(stub, "completed", "100%")
    assert poll_watches(deps) == 1
    assert len(fake_slack.channel_messages(SNAP)) == 1
    assert not deps.store.set_watch_message(watch_id, "2.000002")  # too late: it is finished
    assert state_of(deps, watch_id) == "done"


# -- a post that fails right after the AWS action: the pending resource is still followed --


def test_a_pending_snapshot_whose_post_failed_is_followed_and_reported_once(deps, stub, fake_slack):
    line = f"/snapshot {VOL} nightly"
    reply = SlackReply(deps, "U0ALICE", "C0OPS", fake_slack.new_response_url(), line)
    stub.add_response("describe_volumes", {"Volumes": [{"VolumeId": VOL, "Size": 8, "State": "in-use", "Tags": []}]})
    stub.add_response("create_snapshot", snapshot("pending", "0%"))
    fake_slack.fail_next("chat.postMessage", status=500)
    run_job(reply, snapshot_handlers.create, parse("snapshot", f"{VOL} nightly", "us-east-1"))

    [entry] = deps.store.recent_audit(1)
    assert entry["outcome"] == "ok" and SNAP in entry["detail"] and "Slack" in entry["detail"]
    assert any(SNAP in text for text in fake_slack.texts("response_url"))  # the requester has the ID
    describe(stub, "completed", "100%")
    poll_watches(deps)
    poll_watches(deps)
    [final] = fake_slack.channel_messages(SNAP)
    assert "completed" in message_text(final)
    assert deps.store.active_watches() == []


def test_an_ami_an_approval_started_is_followed_even_when_its_post_fails(deps, fake_slack):
    request_ts = deps.slack.chat_postMessage(channel="C0OPS", text="Request req-1")["ts"]
    row = {"id": "req-1", "channel": "C0OPS", "message_ts": request_ts, "requester": "U0ALICE"}
    fake_slack.fail_next("chat.postMessage", status=500, after=True)
    with Stubber(deps.gateway.client("us-east-1")) as stub:
        stub.add_response("describe_images", {"Images": [image("pending")]})
        approval_flow.follow_image(deps, row, "us-east-1", AMI, INSTANCE)
        stub.add_response("describe_images", {"Images": [image("available")]})
        stub.add_response("create_tags", {})
        poll_watches(deps)
        stub.assert_no_pending_responses()
    in_thread = [message_text(m) for m in fake_slack.channel_messages(AMI) if m.get("thread_ts") == request_ts]
    # The progress message (it landed, though Slack's answer was lost: never posted again) and the final state.
    assert len(in_thread) == 2 and "pending" in in_thread[0] and "available" in in_thread[1]
    assert deps.store.active_watches() == []
    assert "Slack" in deps.store.recent_audit(1)[0]["detail"]
