"""`python -m bot` over Socket Mode, end to end: a real process, a local websocket endpoint, moto and the fake Slack.

The bot asks the fake Slack for its websocket (`apps.connections.open` with
the app token), connects, and takes a slash command, a button click and a
modal submission as envelopes, acking each; a disconnect makes it reconnect
and carry on.  What happened is asserted in AWS and in Slack.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, parse_qsl

import pytest

from bot.testing import slack_payloads
from bot.testing.fakeslack import message_text
from tests.support.bot_process import BASE_CONFIG, BotProcess, wait_until
from tests.support.factories import make_snapshot, make_volume
from tests.support.harness import ALICE, BOB, find_button
from tests.support.socket_mode import FakeSocketMode

pytestmark = pytest.mark.e2e

CONFIG = BASE_CONFIG + '\n[access]\napprovers = ["U0BOB"]\n'


def command(socket: FakeSocketMode, fake_slack, line: str, user: str = ALICE) -> dict:
    """A slash command as a `slash_commands` envelope; returns the app's ack."""
    name, _, text = line.partition(" ")
    body = slack_payloads.slash_command(name, text, user, "C0OPS", fake_slack.new_response_url())
    return socket.ack_of(socket.send("slash_commands", dict(parse_qsl(body)), accepts_response_payload=True))


def interactive(socket: FakeSocketMode, body: str) -> dict:
    """A block_actions or view_submission payload (as the HTTP tests build them) as an `interactive` envelope."""
    payload = json.loads(parse_qs(body)["payload"][0])
    return socket.ack_of(socket.send("interactive", payload, accepts_response_payload=True))


@pytest.fixture
def socket_mode(fake_slack):
    socket = FakeSocketMode().start()
    fake_slack.socket_mode_url = socket.url
    yield socket
    socket.stop()


def test_socket_mode_takes_a_command_a_click_and_a_form_and_survives_a_reconnect(
    tmp_path, aws, ec2, fake_slack, moto_server, socket_mode
):
    bot = BotProcess(tmp_path, CONFIG, fake_slack, moto_server, env={"SLACK_APP_TOKEN": "xapp-1-test"}, unset=("PORT",))
    bot.start(wait=False)
    try:
        socket_mode.wait_connected(1, timeout=60)
        assert fake_slack.calls_of("apps.connections.open")

        # A slash command: acked over the websocket with its "working on it", then done in AWS.
        vol = make_volume(ec2)
        ack = command(socket_mode, fake_slack, f"/snapshot {vol} over Socket Mode")
        assert "Working on" in message_text(ack["payload"])
        wait_until(lambda: fake_slack.calls_of("chat.postMessage"), timeout=30, what="the snapshot message")
        [snap] = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vol]}])["Snapshots"]
        assert snap["Description"] == "over Socket Mode"

        # A button click: an approval request, approved by Bob, executed once.
        doomed = make_snapshot(ec2)
        command(socket_mode, fake_slack, f"/snapshot delete {doomed}")
        request = wait_until(
            lambda: next((m for m in fake_slack.channel_messages("Approve") if doomed in message_text(m)), None),
            timeout=30,
            what="the approval request",
        )
        action = find_button(request, "approval_approve")
        interactive(
            socket_mode,
            slack_payloads.block_actions(BOB, "C0OPS", request, action, fake_slack.new_response_url()),
        )
        wait_until(
            lambda: doomed not in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]},
            timeout=30,
            what="the approved delete",
        )

        # Slack refreshes the connection: the app reconnects and carries on.
        socket_mode.disconnect()
        socket_mode.wait_connected(2, timeout=60)

        # A modal: Restore… from the list's menu opens a form; a bad field is refused in the ack, a good one runs.
        source = make_snapshot(ec2)
        command(socket_mode, fake_slack, "/snapshot list")
        listing = wait_until(
            lambda: next(
                (c.params for c in fake_slack.calls_of("response_url") if source in message_text(c.params)), None
            ),
            timeout=30,
            what="the list",
        )
        [menu] = [
            b["accessory"]
            for b in listing["blocks"]
            if b.get("accessory", {}).get("type") == "overflow" and source in message_text({"blocks": [b]})
        ]
        [restore] = [o for o in menu["options"] if o["text"]["text"] == "Restore…"]
        interactive(
            socket_mode,
            slack_payloads.block_actions(
                ALICE, "C0OPS", listing, {**menu, "selected_option": restore}, fake_slack.new_response_url()
            ),
        )
        view_id = wait_until(
            lambda: next((c.params["view_id"] for c in fake_slack.calls_of("views.update")), None),
            timeout=30,
            what="the form filled from AWS",
        )
        form = fake_slack.views[view_id]
        refused = interactive(
            socket_mode, slack_payloads.view_submission(ALICE, form, {"az": "us-east-1a", "device": "sdf"})
        )
        assert refused["payload"]["response_action"] == "errors" and "device" in refused["payload"]["errors"]
        accepted = interactive(socket_mode, slack_payloads.view_submission(ALICE, form, {"az": "us-east-1c"}))
        assert not accepted.get("payload")  # the form closes
        volumes = wait_until(
            lambda: ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [source]}])["Volumes"],
            timeout=30,
            what="the restored volume",
        )
        assert [v["AvailabilityZone"] for v in volumes] == ["us-east-1c"]
        assert bot.proc.poll() is None, bot.output()
    finally:
        bot.stop()
