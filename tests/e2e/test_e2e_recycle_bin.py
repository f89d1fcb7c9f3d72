"""End to end over HTTP: the Recycle Bin shown in plans and used to undelete; locks and protection refuse.

moto has no Recycle Bin, no snapshot locks and no deregistration protection, so this module runs the bot
against the project's fake EC2 (benchmarks/fake_ec2.py: the real wire protocol, rbin rules included), where a
DeleteSnapshot of a snapshot a rule covers moves it to the bin as in AWS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.fake_ec2 import FakeEc2
from bot.testing.fakeslack import message_text
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


@pytest.fixture
def fake(aws, monkeypatch):
    """The fake EC2 in place of moto (after `aws`, so its AWS_ENDPOINT_URL wins), serving rbin too."""
    with FakeEc2(throttling=False) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        monkeypatch.delenv("AWS_ENDPOINT_URL_RBIN")
        yield fake


def test_a_plan_says_which_deletion_is_recoverable_and_undelete_brings_it_back(make_bot, fake):
    [kept] = fake.seed_snapshots(REGION, 1, tags={"Team": "db"})
    [gone] = fake.seed_snapshots(REGION, 1, tags={"Team": "web"})
    fake.add_retention_rule(REGION, "EBS_SNAPSHOT", 7, tags={"Team": "db"}, description="db-week")
    bot = make_bot()

    bot.command(f"/snapshot delete {kept} {gone}")
    bot.settle()
    [message] = bot.approval_messages()
    text = message_text(message)
    until = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%d")
    [kept_line] = [line for line in text.splitlines() if kept in line]
    [gone_line] = [line for line in text.splitlines() if gone in line and "recoverable" not in line]
    assert f"recoverable until {until}" in kept_line and "Recycle Bin rule db-week/" in kept_line
    assert "permanent delete" in gone_line
    assert "1 of 2 cannot be undeleted" in text

    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert fake.ids(REGION) == set() and fake.in_bin(REGION) == {kept}

    bot.command("/snapshot recycle-bin")
    bot.settle()
    listing = bot.responses()[-1]
    assert kept in listing and gone not in listing and f"purged for good {until}" in listing

    bot.command(f"/snapshot undelete {kept}")
    bot.settle()
    assert fake.ids(REGION) == {kept} and fake.in_bin(REGION) == set()
    assert any(f"restored snapshot `{kept}`" in message_text(m) for m in bot.posted())
    assert ("/snapshot undelete " + kept, "ok") in [(r["action"], r["outcome"]) for r in bot.deps.store.recent_audit(5)]


def test_undelete_of_what_is_not_in_the_bin_is_refused_and_changes_nothing(make_bot, fake):
    [snap] = fake.seed_snapshots(REGION, 1)
    bot = make_bot()

    bot.command(f"/snapshot undelete {snap}")
    bot.settle()  # each answered before the next: two commands in the pool may answer in either order
    bot.command("/ami undelete ami-0123456789abcdef0")
    bot.settle()

    first, second = bot.responses()[-2:]
    assert f"{snap} is not in the Recycle Bin of {REGION}; nothing was changed" in first
    assert "ami-0123456789abcdef0 is not in the Recycle Bin" in second
    assert bot.deps.gateway.calls["RestoreSnapshotFromRecycleBin"] == 0
    assert bot.deps.gateway.calls["RestoreImageFromRecycleBin"] == 0


def test_a_deregistered_ami_is_undeleted_from_the_bin(make_bot, fake):
    [image] = fake.seed_images(REGION, 1)
    fake.add_retention_rule(REGION, "EC2_IMAGE", 3)  # region-level: every AMI
    fake.add_retention_rule(REGION, "EBS_SNAPSHOT", 3)
    bot = make_bot()

    bot.command(f"/ami deregister {image}")
    bot.settle()
    [message] = bot.approval_messages()
    assert "recoverable until" in message_text(message) and "permanent" not in message_text(message)
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert fake.ids(REGION, "image") == set() and image in fake.in_bin(REGION)

    bot.command(f"/ami undelete {image}")
    bot.settle()
    assert fake.ids(REGION, "image") == {image}


def test_a_locked_snapshot_is_refused_with_when_it_can_go(make_bot, fake):
    [snap] = fake.seed_snapshots(REGION, 1)
    until = datetime.now(UTC) + timedelta(days=30)
    fake.lock_snapshot(REGION, snap, "compliance", until=until)
    bot = make_bot()

    bot.command(f"/snapshot delete {snap}")
    bot.settle()

    reply = bot.responses()[-1]
    assert f"{snap} is locked in compliance mode until {until:%Y-%m-%d %H:%M} UTC" in reply
    assert "Nothing was requested" in reply
    assert bot.approval_messages() == [] and fake.ids(REGION) == {snap}


def test_a_snapshot_locked_after_the_request_is_spared_at_execution(make_bot, fake):
    [snap] = fake.seed_snapshots(REGION, 1)
    bot = make_bot()
    bot.command(f"/snapshot delete {snap}")
    bot.settle()
    [message] = bot.approval_messages()
    until = datetime.now(UTC) + timedelta(days=2)
    fake.lock_snapshot(REGION, snap, "governance", until=until)

    bot.click(message, "approval_approve", user=BOB)
    bot.settle()

    final = message_text(bot.approval_messages()[0])
    assert f"locked in governance mode until {until:%Y-%m-%d %H:%M} UTC" in final and "1 spared" in final
    assert fake.ids(REGION) == {snap} and bot.deps.gateway.calls["DeleteSnapshot"] == 0


def test_a_protected_ami_is_refused_by_deregister(make_bot, fake):
    [image] = fake.seed_images(REGION, 1)
    fake.protect_image(REGION, image, "enabled-with-cooldown")
    bot = make_bot()

    bot.command(f"/ami deregister {image}", user=ALICE)
    bot.settle()

    reply = bot.responses()[-1]
    assert f"{image}: deregistration protection is enabled with a 24 h cooldown: disable it first" in reply
    assert bot.approval_messages() == [] and fake.ids(REGION, "image") == {image}
