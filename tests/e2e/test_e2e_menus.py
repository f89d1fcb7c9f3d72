"""End to end over HTTP: act from the message — overflow menus on listed items, and the modals they open."""

from __future__ import annotations

import pytest

from bot.slack.blocks.common import MAX_BLOCKS
from bot.testing.fakeslack import message_text
from tests.support.approvals import exists
from tests.support.bot_process import wait_until
from tests.support.factories import make_instance, make_snapshot, make_volume
from tests.support.harness import ALICE, BOB, CAROL

pytestmark = pytest.mark.e2e


def answered(bot) -> dict:
    """The latest answer through a response_url, as sent (blocks and all)."""
    return bot.slack.calls_of("response_url")[-1].params


def listed(bot, line: str) -> dict:
    bot.command(line)
    bot.settle()
    return answered(bot)


def opened_modal(bot) -> dict:
    """The modal last opened, once the bot filled it from AWS (views.update)."""
    [opened] = bot.slack.calls_of("views.open")
    view_id = wait_until(
        lambda: next((c.params["view_id"] for c in bot.slack.calls_of("views.update")), None),
        timeout=10,
        interval=0.02,
        what="the modal filled",
    )
    assert opened.params["trigger_id"]  # opened with the click's trigger, before any AWS call
    assert "Reading the choices" in message_text(opened.params["view"])
    return bot.slack.views[view_id]


def test_every_listed_snapshot_has_a_menu_and_status_answers_as_the_typed_command(bot, ec2):
    snaps = [make_snapshot(ec2) for _ in range(3)]
    listing = listed(bot, "/snapshot list")

    menus = [b["accessory"] for b in listing["blocks"] if b.get("accessory", {}).get("type") == "overflow"]
    assert len(menus) == 3 and len(listing["blocks"]) <= MAX_BLOCKS
    assert [o["text"]["text"] for o in menus[0]["options"]] == [
        "Status",
        "Restore…",
        "Copy…",
        "Restore drill",
        "Delete",
    ]

    assert bot.menu(listing, snaps[0], "Status", user=ALICE).status == 200
    bot.settle()
    assert snaps[0] in bot.responses()[-1] and "completed" in bot.responses()[-1]
    [entry] = [r for r in bot.deps.store.recent_audit(5) if "status" in r["action"]]
    assert entry["action"] == f"/snapshot status {snaps[0]} region=us-east-1" and entry["outcome"] == "ok"


def test_delete_from_the_menu_asks_an_approver_like_the_typed_command(bot, ec2):
    snap = make_snapshot(ec2)
    listing = listed(bot, "/snapshot list")
    bot.menu(listing, snap, "Delete", user=ALICE)
    bot.settle()

    [request] = bot.approval_messages()
    assert snap in message_text(request) and f"<@{ALICE}>" in message_text(request)
    assert exists(ec2, snap) and bot.deps.gateway.calls["DeleteSnapshot"] == 0
    bot.click(request, "approval_approve", user=BOB)
    bot.settle()
    assert not exists(ec2, snap)


def test_restore_opens_a_modal_filled_from_aws_bad_input_gets_a_field_error_and_no_aws_call(bot, ec2):
    snap = make_snapshot(ec2)
    listing = listed(bot, "/snapshot list")
    bot.menu(listing, snap, "Restore…", user=ALICE)
    bot.settle()
    modal = opened_modal(bot)

    fields = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    assert set(fields) == {"az", "type", "instance", "device"}
    azs = [o["value"] for o in fields["az"]["element"]["options"]]
    assert "us-east-1a" in azs and all(a.startswith("us-east-1") for a in azs)  # read from AWS, this region's
    assert len(modal["title"]["text"]) <= 24 and modal["submit"]

    answer = bot.submit(modal, {"az": "us-east-1z"}, user=ALICE)  # not an option: Slack sends no choice
    assert answer.json() == {"response_action": "errors", "errors": {"az": "Choose one."}}

    answer = bot.submit(modal, {"az": "us-east-1a", "type": "gp3", "device": "/dev/nope"}, user=ALICE)
    assert answer.status == 200
    assert (
        answer.json()
        == {
            "response_action": "errors",
            "errors": {"device": answer.json()["errors"]["device"]},
        }
        and "device name" in answer.json()["errors"]["device"]
    )
    bot.settle()
    assert bot.deps.gateway.calls["CreateVolume"] == 0

    answer = bot.submit(modal, {"az": "us-east-1b", "type": "gp3", "device": "/dev/sdf"}, user=ALICE)
    assert answer.status == 200 and not answer.body  # the modal closes
    bot.settle()
    volumes = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snap]}])["Volumes"]
    assert [(v["AvailabilityZone"], v["VolumeType"]) for v in volumes] == [("us-east-1b", "gp3")]
    assert bot.deps.gateway.calls["CreateVolume"] == 1
    audit = [r["action"] for r in bot.deps.store.recent_audit(10)]
    assert f"/snapshot restore {snap} az=us-east-1b type=gp3 device=/dev/sdf region=us-east-1" in audit


def test_attach_offers_only_instances_in_the_volume_s_zone(bot, ec2):
    here = make_instance(ec2, az="us-east-1a")
    elsewhere = make_instance(ec2, az="us-east-1b")
    vol = make_volume(ec2, az="us-east-1a")
    listing = listed(bot, "/volume list")
    assert [o["text"]["text"] for b in listing["blocks"] if b.get("accessory") for o in b["accessory"]["options"]][
        :2
    ] == ["Snapshot now", "Attach…"]
    bot.menu(listing, vol, "Attach…", user=ALICE)
    bot.settle()
    modal = opened_modal(bot)
    [instance] = [b for b in modal["blocks"] if b.get("block_id") == "instance"]
    offered = [o["value"] for o in instance["element"]["options"]]
    assert here in offered and elsewhere not in offered

    bot.submit(modal, {"instance": here, "device": "/dev/sdg"}, user=ALICE)
    bot.settle()
    [attached] = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]
    assert attached["InstanceId"] == here and attached["Device"] == "/dev/sdg"


def test_snapshot_now_from_a_volume_s_menu(bot, ec2):
    vol = make_volume(ec2)
    listing = listed(bot, "/volume list")
    bot.menu(listing, vol, "Snapshot now", user=ALICE)
    bot.settle()
    assert len(ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vol]}])["Snapshots"]) == 1


def test_a_non_operator_gets_no_modal_and_no_aws_call(make_bot, ec2):
    bot = make_bot(access={"operators": (ALICE,), "approvers": (BOB,)})
    snap = make_snapshot(ec2)
    listing = listed(bot, "/snapshot list")
    bot.menu(listing, snap, "Restore…", user=CAROL)
    bot.settle()
    assert not bot.slack.calls_of("views.open")
    assert "operator" in bot.responses()[-1]
    assert bot.deps.store.recent_audit(1)[0]["outcome"] == "refused"


def test_a_forged_modal_submission_is_refused_by_the_grammar(bot, ec2):
    snap = make_snapshot(ec2)
    listing = listed(bot, "/snapshot list")
    bot.menu(listing, snap, "Copy…", user=ALICE)
    bot.settle()
    modal = opened_modal(bot)
    forged = {**modal, "private_metadata": modal["private_metadata"].replace("us-east-1", "mars-north-9")}
    answer = bot.submit(forged, {"to": "us-west-2"}, user=ALICE)
    assert answer.json()["response_action"] == "errors" and "region" in str(answer.json()["errors"])
    bot.settle()
    assert bot.deps.gateway.calls["CopySnapshot"] == 0


def test_a_long_list_keeps_menus_within_slack_s_limits(bot, ec2):
    for _ in range(30):
        make_snapshot(ec2)
    listing = listed(bot, "/snapshot list")
    menus = [b for b in listing["blocks"] if b.get("accessory", {}).get("type") == "overflow"]
    assert len(menus) == 20 and len(listing["blocks"]) <= MAX_BLOCKS
    assert message_text(listing).count("snap-") >= 30  # the rest are listed, without a menu
    assert all(len(o["value"]) <= 150 for b in menus for o in b["accessory"]["options"])


def test_a_restore_drill_from_the_menu_restores_checks_and_cleans_up(bot, ec2):
    snap = make_snapshot(ec2)
    listing = listed(bot, "/snapshot list")
    bot.menu(listing, snap, "Restore drill", user=ALICE)
    bot.settle()

    [drill] = list(bot.deps.store.db["drills"].rows)
    assert drill["backup_id"] == snap and drill["state"] == "ok", drill
    restored = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snap]}])["Volumes"]
    assert all(v["State"] in ("deleting", "deleted") for v in restored)  # the drill's volume is gone again
    assert any(r["action"] == f"/snapshot drill {snap} region=us-east-1" for r in bot.deps.store.recent_audit(5))
