"""End to end over HTTP: /snapshot, /volume and /instance against moto, answers in the fake Slack."""

from __future__ import annotations

import time

import pytest

from tests.support.factories import make_instance, make_volume
from tests.support.harness import ALICE, CAROL, SECRET

pytestmark = pytest.mark.e2e


def test_snapshot_create_is_visible_in_aws_with_description_and_tags(bot, ec2):
    vol = make_volume(ec2, 8, Name="db-data")

    ack = bot.command(f"/snapshot {vol} Backup of my EBS volume")
    bot.settle()

    assert ack.status == 200
    assert "Working on" in ack.text
    snaps = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vol]}])["Snapshots"]
    assert len(snaps) == 1
    snap = snaps[0]
    assert snap["Description"] == "Backup of my EBS volume"
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags["chatops:managed"] == "true"
    assert tags["chatops:requested-by"] == ALICE
    assert tags["Name"] == "db-data"
    [posted] = bot.posted()
    assert snap["SnapshotId"] in posted["text"]
    assert posted["channel"] == "C0OPS"
    audit = bot.deps.store.recent_audit(5)
    assert audit[0]["outcome"] == "ok" and snap["SnapshotId"] in audit[0]["detail"]
    from datetime import UTC, datetime, timedelta

    counts = bot.deps.store.event_counts(datetime.now(UTC) - timedelta(hours=24))
    assert counts["us-east-1"]["created"] == 1  # the digest's "created in the last 24 h"


def test_description_is_escaped_so_it_pings_no_one(bot, ec2):
    vol = make_volume(ec2)
    bot.command(f"/snapshot {vol} before deploy <!channel> & <@U0BOSS>")
    bot.settle()
    bot.command("/snapshot list")
    bot.settle()
    listing = bot.responses()[-1]
    assert "&lt;!channel&gt;" in listing and "<!channel>" not in listing
    assert "&lt;@U0BOSS&gt;" in listing and "&amp;" in listing
    posted = bot.posted()[0]
    assert "<!channel>" not in str(posted["blocks"])


def test_list_is_newest_first_and_filters_by_volume(bot, ec2):
    a, b = make_volume(ec2), make_volume(ec2)
    first = ec2.create_snapshot(VolumeId=a, Description="first")["SnapshotId"]
    time.sleep(1.1)  # moto stamps StartTime with the wall clock, at 1 s resolution
    second = ec2.create_snapshot(VolumeId=a, Description="second")["SnapshotId"]
    other = ec2.create_snapshot(VolumeId=b, Description="other")["SnapshotId"]

    bot.command(f"/snapshot list {a}")
    bot.settle()

    text = bot.responses()[-1]
    assert second in text and first in text and other not in text
    assert text.index(second) < text.index(first)


def test_status_shows_state_volume_size_and_tags(bot, ec2):
    vol = make_volume(ec2, 16)
    snap = ec2.create_snapshot(
        VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "Team", "Value": "db"}]}]
    )["SnapshotId"]
    bot.command(f"/snapshot status {snap}")
    bot.settle()
    text = bot.responses()[-1]
    assert "completed" in text and vol in text and "16 GiB" in text and "`Team=db`" in text


def test_status_of_missing_snapshot_is_a_friendly_error(bot):
    bot.command("/snapshot status snap-0123456789abcdef0")
    bot.settle()
    text = bot.responses()[-1]
    assert "not found" in text.lower() and "region" in text
    assert bot.deps.store.recent_audit(1)[0]["outcome"] == "not-found"


def test_restore_creates_a_volume_and_attaches_it_once_available(bot, ec2):
    inst = make_instance(ec2, az="us-east-1b")
    vol = make_volume(ec2, 10, az="us-east-1b")
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]

    bot.command(f"/snapshot restore {snap} type=gp3 instance={inst} device=/dev/sdh")
    bot.settle()

    restored = bot.slack.wait_for(
        lambda s: [
            v
            for v in ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snap]}])["Volumes"]
            if v["Attachments"]
        ]
    )
    assert restored[0]["AvailabilityZone"] == "us-east-1b"
    assert restored[0]["Attachments"][0]["InstanceId"] == inst
    assert restored[0]["Attachments"][0]["Device"] == "/dev/sdh"
    updates = bot.slack.wait_for(lambda s: [t for t in s.texts("chat.update") if "attached to" in t])
    assert inst in updates[-1]


def test_copy_to_another_region(bot, ec2, aws):
    vol = make_volume(ec2)
    snap = ec2.create_snapshot(VolumeId=vol, Description="prod db")["SnapshotId"]
    bot.command(f"/snapshot copy {snap} to=us-west-2")
    bot.settle()
    west = aws.client("ec2", region_name="us-west-2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert len(west) == 1
    tags = {t["Key"]: t["Value"] for t in west[0]["Tags"]}
    assert tags["chatops:source"] == f"us-east-1/{snap}" and tags["chatops:requested-by"] == ALICE
    assert west[0]["SnapshotId"] in bot.posted()[0]["text"]


def test_volume_list_and_attach(bot, ec2):
    inst = make_instance(ec2, Name="web-1")
    vol = make_volume(ec2, 30, Name="logs")
    bot.command(f"/volume attach {vol} {inst}")
    bot.settle()
    attached = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]
    assert attached[0]["InstanceId"] == inst and attached[0]["Device"] == "/dev/sdf"

    bot.command("/volume list")
    bot.settle()
    text = bot.responses()[-1]
    assert vol in text and "*logs*" in text and "never snapshotted" in text and inst in text


def test_instance_list_shows_ami(bot, ec2):
    inst = make_instance(ec2, Name="web-1")
    bot.command("/instance list")
    bot.settle()
    text = bot.responses()[-1]
    assert inst in text and "ami-12345678" in text and "web-1" in text


@pytest.mark.parametrize(
    "line",
    [
        "/snapshot vol-123",
        "/snapshot restore",
        "/snapshot copy snap-0123456789abcdef0",
        "/snapshot copy snap-0123456789abcdef0 to=nowhere-1",
        "/snapshot list colour=blue",
        "/volume attach vol-0123456789abcdef0",
        "/snapshot frobnicate",
    ],
)
def test_malformed_commands_get_usage_in_the_ack_and_make_no_aws_call(bot, line):
    ack = bot.command(line)
    bot.settle()
    assert ack.status == 200
    assert "Usage:" in ack.text
    assert sum(bot.deps.gateway.calls.values()) == 0
    assert bot.slack.calls_of("response_url") == []


def test_bad_signature_is_401_and_does_nothing(bot, ec2):
    vol = make_volume(ec2)
    from bot.testing import slack_payloads

    body = slack_payloads.slash_command("/snapshot", vol, ALICE, "C0OPS", bot.slack.new_response_url())
    headers = slack_payloads.signed_headers("not-the-secret", body)
    assert bot.post(body, headers).status == 401
    stale = slack_payloads.signed_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    assert bot.post(body, stale).status == 401
    bot.settle()
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert [c.method for c in bot.slack.calls] == ["auth.test"]  # at start-up, before the requests
    assert bot.deps.store.recent_audit() == []


def test_healthz(bot):
    result = bot.get("/healthz")
    assert result.status == 200 and result.body.strip() == "ok"


def test_operators_only(make_bot, ec2):
    bot = make_bot(access={"operators": (CAROL,)})
    vol = make_volume(ec2)
    ack = bot.command(f"/snapshot {vol}")
    assert "not an operator" in ack.text
    bot.settle()
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert bot.deps.store.recent_audit(1)[0]["outcome"] == "refused"


def test_slow_aws_does_not_delay_the_ack(bot, ec2, monkeypatch):
    """Every AWS call takes 2 s here; the ack still comes back at once."""
    vol = make_volume(ec2)
    gateway = bot.deps.gateway
    real = gateway.describe_volumes

    def slow(*args, **kwargs):
        time.sleep(2)
        return real(*args, **kwargs)

    monkeypatch.setattr(gateway, "describe_volumes", slow)
    ack = bot.command(f"/snapshot {vol} slow")
    assert ack.status == 200 and ack.elapsed < 1.0
    bot.settle()
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1
