"""The "image" and "instances" watches: a Stubber plays AWS's pending states (moto is always done at once)."""

from __future__ import annotations

from datetime import timedelta

from botocore.stub import Stubber

from scheduler.watches import poll_watches
from tests.support.watches import AMI, NOW, SNAP, image, watch


def test_image_watch_waits_then_tags_snapshots_and_lists_them(deps, fake_slack):
    ts = watch(deps, "image", [AMI], {"verb": "AMI", "source": "i-0123456789abcdef0"})
    with Stubber(deps.gateway.client("us-east-1")) as stub:
        stub.add_response("describe_images", {"Images": [image("pending")]}, None)
        stub.add_response("describe_images", {"Images": [image("available")]}, None)
        stub.add_response(
            "create_tags",
            {},
            {
                "Resources": [SNAP],
                "Tags": [{"Key": "chatops:managed", "Value": "true"}, {"Key": "Name", "Value": "web-1"}],
            },
        )
        poll_watches(deps)
        assert deps.store.active_watches()  # still pending: nothing finished
        assert fake_slack.messages[("C0OPS", ts)]["text"] == "working"
        poll_watches(deps)
        stub.assert_no_pending_responses()
    assert deps.store.active_watches() == []
    final = fake_slack.texts("chat.update")[-1]
    assert AMI in final and "available" in final and f"`{SNAP}` 8 GiB" in final


def test_image_watch_reports_a_failed_image(deps, fake_slack):
    watch(deps, "image", [AMI], {"verb": "AMI"})
    with Stubber(deps.gateway.client("us-east-1")) as stub:
        stub.add_response("describe_images", {"Images": [image("failed")]}, None)
        poll_watches(deps)
    assert deps.store.active_watches() == []
    assert ":x:" in fake_slack.texts("chat.update")[-1] and "failed" in fake_slack.texts("chat.update")[-1]


def test_image_watch_gives_up_after_the_deadline(deps, fake_slack, clock):
    watch(deps, "image", [AMI], {"verb": "AMI"})
    clock["now"] = NOW + timedelta(hours=2)
    with Stubber(deps.gateway.client("us-east-1")) as stub:
        stub.add_response("describe_images", {"Images": [image("pending")]}, None)
        poll_watches(deps)
    assert deps.store.active_watches() == []
    assert "/ami list" in fake_slack.texts("chat.update")[-1]


def test_instances_watch_updates_on_change_and_finishes_when_all_run(deps, fake_slack):
    ids = ["i-0023456789abcdef0", "i-0123456789abcdef0"]
    watch(deps, "instances", ids, {"image_id": AMI, "image_name": "golden"})

    def reservation(*states: str) -> dict:
        return {
            "Reservations": [
                {
                    "Instances": [
                        {"InstanceId": i, "ImageId": AMI, "State": {"Name": s}}
                        for i, s in zip(ids, states, strict=True)
                    ]
                }
            ]
        }

    with Stubber(deps.gateway.client("us-east-1")) as stub:
        stub.add_response("describe_instances", reservation("pending", "running"), {"InstanceIds": ids})
        stub.add_response("describe_instances", reservation("pending", "running"), {"InstanceIds": ids})
        stub.add_response("describe_instances", reservation("running", "running"), {"InstanceIds": ids})
        for _ in range(3):
            poll_watches(deps)
        stub.assert_no_pending_responses()
    updates = fake_slack.texts("chat.update")
    assert len(updates) == 2  # the unchanged second poll sent nothing
    assert "Launching 2 instances" in updates[0] and "2 instances running" in updates[1]
    assert deps.store.active_watches() == []
