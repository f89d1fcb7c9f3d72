"""The Recycle Bin, snapshot locks and deregistration protection: the pure decisions, the gateway's parsing
(botocore's Stubber: moto has none of these APIs), and a sweep and an AMI deregistration against the fake EC2."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from benchmarks.fake_ec2 import FakeEc2
from bot.aws.gateway import Ec2Gateway
from bot.aws.models import Image, RetentionRule, SnapshotLock
from bot.config import Config, Policy
from bot.domain import amis
from bot.domain.lifecycle import decide_policy, execute_sweep, sweep_plan
from bot.domain.plans import Context
from bot.domain.recycle_bin import (
    BinRules,
    covering_rule,
    lock_refusal,
    protection_refusal,
    read_locks,
    read_rules,
    recycle_bin,
)

REGION = "us-east-1"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rule(rule_id="r1", kind="EBS_SNAPSHOT", days=7, tags=(), exclude=(), status="available", description=""):
    return RetentionRule(rule_id, kind, days, description, tuple(tags), tuple(exclude), status=status)


# --- which rule covers an item ---------------------------------------------------------------------------


def test_a_tag_level_rule_covers_items_with_one_of_its_tag_pairs():
    rules = [rule(tags=[("Team", "db"), ("Keep", "")])]
    assert covering_rule(rules, "snapshot", {"Team": "db"}) == rules[0]
    assert covering_rule(rules, "snapshot", {"Keep": "anything"}) == rules[0]  # a pair without value: any value
    assert covering_rule(rules, "snapshot", {"Team": "web"}) is None
    assert covering_rule(rules, "snapshot", {}) is None


def test_a_region_level_rule_covers_everything_of_its_type_but_the_excluded():
    rules = [rule(exclude=[("Scratch", "yes")])]
    assert covering_rule(rules, "snapshot", {}) == rules[0]
    assert covering_rule(rules, "snapshot", {"Scratch": "no"}) == rules[0]
    assert covering_rule(rules, "snapshot", {"Scratch": "yes"}) is None
    assert covering_rule(rules, "image", {}) is None  # a snapshot rule never covers an AMI


def test_the_longest_retention_wins_and_a_pending_rule_covers_nothing():
    short, long_, pending = (
        rule("a", days=3),
        rule("b", days=30, tags=[("Team", "db")]),
        rule("c", days=90, status="pending"),
    )
    assert covering_rule([short, long_, pending], "snapshot", {"Team": "db"}) == long_
    assert covering_rule([short, long_, pending], "snapshot", {}) == short


def test_recoverability_says_until_when_and_by_which_rule_or_permanent_or_unknown():
    rules = BinRules((rule("abc123", days=7, tags=[("Team", "db")], description="db-week"),))
    assert rules.recoverability("snapshot", {"Team": "db"}, NOW) == (
        "recoverable until 2026-12-08 12:00 UTC (7 d, Recycle Bin rule db-week/abc123)"
    )
    assert rules.recoverability("snapshot", {}, NOW).startswith("permanent delete")
    unknown = BinRules(unknown="could not read the Recycle Bin rules: AccessDenied")
    assert unknown.recoverability("snapshot", {"Team": "db"}, NOW) == (
        "recoverability unknown (could not read the Recycle Bin rules: AccessDenied)"
    )


# --- what refuses a deletion, and when it can go ---------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expires", "says"),
    [
        ("governance", NOW + timedelta(days=2), "locked in governance mode until 2026-12-03 12:00 UTC: unlock it"),
        ("compliance", NOW + timedelta(days=2), "locked in compliance mode until 2026-12-03 12:00 UTC: nobody can"),
        ("compliance-cooloff", NOW + timedelta(days=2), "locked in compliance-cooloff mode until 2026-12-03"),
        ("expired", NOW - timedelta(days=1), ""),
        ("governance", NOW - timedelta(seconds=1), ""),  # the lock's end passed since it was listed
    ],
)
def test_a_lock_refuses_until_it_expires(state, expires, says):
    refusal = lock_refusal(SnapshotLock("snap-1", state, expires), NOW)
    assert refusal.startswith(says) if says else refusal == ""


def test_no_lock_refuses_nothing():
    assert lock_refusal(None, NOW) == ""


@pytest.mark.parametrize(
    ("protection", "says"),
    [
        ("", ""),
        ("disabled", ""),
        ("enabled", "deregistration protection is enabled: disable it first"),
        ("enabled-with-cooldown", "deregistration protection is enabled with a 24 h cooldown: disable it first"),
        (
            "disabled-until 2026-12-02T08:00:00.000Z",
            "deregistration protection was disabled; its cooldown ends 2026-12-02 08:00 UTC",
        ),
        ("disabled-until 2026-11-30T08:00:00.000Z", ""),
        ("something-new", "deregistration protection is 'something-new'"),  # unknown: refuse, never guess
    ],
)
def test_deregistration_protection_refuses_until_disabled_and_cooled_down(protection, says):
    refusal = protection_refusal(protection, NOW)
    assert refusal.startswith(says) if says else refusal == ""


# --- the gateway, against botocore's Stubber -------------------------------------------------------------


@pytest.fixture
def gateway(monkeypatch) -> Ec2Gateway:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_RBIN", raising=False)
    return Ec2Gateway(boto3.session.Session(region_name=REGION))


@pytest.fixture
def ec2(gateway) -> Iterator[Stubber]:
    with Stubber(gateway.client(REGION)) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def rbin(gateway) -> Iterator[Stubber]:
    with Stubber(gateway.client(REGION, "rbin")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def summary(rule_id: str) -> dict:
    return {"Identifier": rule_id, "RetentionPeriod": {"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"}}


def test_rules_are_listed_per_type_across_pages_and_read_with_their_tags(gateway, rbin):
    rbin.add_response("list_rules", {"Rules": [summary("s1")], "NextToken": "t"}, {"ResourceType": "EBS_SNAPSHOT"})
    rbin.add_response("list_rules", {"Rules": [summary("s2")]}, {"ResourceType": "EBS_SNAPSHOT", "NextToken": "t"})
    rbin.add_response(
        "get_rule",
        {
            **summary("s1"),
            "Description": "db",
            "ResourceTags": [{"ResourceTagKey": "Team", "ResourceTagValue": "db"}, {"ResourceTagKey": "Keep"}],
            "Status": "available",
            "LockState": "unlocked",
        },
        {"Identifier": "s1"},
    )
    rbin.add_response(
        "get_rule",
        {
            **summary("s2"),
            "RetentionPeriod": {"RetentionPeriodValue": 30, "RetentionPeriodUnit": "DAYS"},
            "ExcludeResourceTags": [{"ResourceTagKey": "Scratch", "ResourceTagValue": "yes"}],
            "Status": "pending",
            "LockState": "locked",
        },
        {"Identifier": "s2"},
    )
    rbin.add_response("list_rules", {"Rules": [summary("i1")]}, {"ResourceType": "EC2_IMAGE"})
    rbin.add_response("get_rule", {**summary("i1"), "Status": "available"}, {"Identifier": "i1"})

    rules = gateway.retention_rules(REGION)

    assert rules == (
        RetentionRule("s1", "EBS_SNAPSHOT", 7, "db", (("Team", "db"), ("Keep", ""))),
        RetentionRule("s2", "EBS_SNAPSHOT", 30, "", (), (("Scratch", "yes"),), lock_state="locked", status="pending"),
        RetentionRule("i1", "EC2_IMAGE", 7),
    )


def test_no_permission_to_read_rules_makes_recoverability_unknown_not_a_failure(gateway, rbin):
    rbin.add_client_error("list_rules", "AccessDeniedException", "not authorized to perform rbin:ListRules")
    rules = read_rules(gateway, REGION)
    assert rules.rules == () and "rbin:ListRules" in rules.unknown
    assert rules.recoverability("snapshot", {}, NOW).startswith("recoverability unknown (could not read")


def test_locked_snapshots_follow_next_token_and_read_the_dates(gateway, ec2):
    wanted = {"Name": "lock-state", "Values": ["compliance", "governance", "compliance-cooloff"]}
    ec2.add_response(
        "describe_locked_snapshots",
        {"Snapshots": [{"SnapshotId": "snap-1", "LockState": "governance", "LockExpiresOn": NOW}], "NextToken": "n"},
        {"Filters": [wanted], "MaxResults": 1000},
    )
    ec2.add_response(
        "describe_locked_snapshots",
        {
            "Snapshots": [
                {
                    "SnapshotId": "snap-2",
                    "LockState": "compliance-cooloff",
                    "LockExpiresOn": NOW + timedelta(days=9),
                    "CoolOffPeriodExpiresOn": NOW + timedelta(hours=3),
                }
            ]
        },
        {"Filters": [wanted], "MaxResults": 1000, "NextToken": "n"},
    )

    locks = gateway.locked_snapshots(REGION)

    assert locks == {
        "snap-1": SnapshotLock("snap-1", "governance", NOW),
        "snap-2": SnapshotLock("snap-2", "compliance-cooloff", NOW + timedelta(days=9), NOW + timedelta(hours=3)),
    }


def test_locks_that_cannot_be_read_are_unknown(gateway, ec2):
    ec2.add_client_error("describe_locked_snapshots", "UnauthorizedOperation", "no")
    locks = read_locks(gateway, REGION)
    assert locks.locks == {} and "EC2 still refuses deleting a locked one" in locks.unknown


def test_the_bin_lists_snapshots_and_amis_first_purged_first(gateway, ec2):
    ec2.add_response(
        "list_snapshots_in_recycle_bin",
        {
            "Snapshots": [
                {"SnapshotId": "snap-late", "RecycleBinEnterTime": NOW, "RecycleBinExitTime": NOW + timedelta(days=7)},
                {"SnapshotId": "snap-soon", "RecycleBinEnterTime": NOW, "RecycleBinExitTime": NOW + timedelta(days=1)},
            ]
        },
        {},
    )
    ec2.add_response(
        "list_images_in_recycle_bin",
        {"Images": [{"ImageId": "ami-1", "Name": "golden", "RecycleBinExitTime": NOW + timedelta(days=3)}]},
        {},
    )
    entries = recycle_bin(gateway, REGION)
    assert [(e.id, e.kind) for e in entries] == [
        ("snap-soon", "snapshot"),
        ("ami-1", "image"),
        ("snap-late", "snapshot"),
    ]
    assert entries[1].name == "golden" and entries[1].purged_at == NOW + timedelta(days=3)


def test_an_image_carries_its_deregistration_protection():
    raw = {"ImageId": "ami-1", "DeregistrationProtection": "disabled-until 2026-12-02T08:00:00.000Z"}
    assert Image.from_api(raw, REGION).deregistration_protection == "disabled-until 2026-12-02T08:00:00.000Z"
    assert Image.from_api({"ImageId": "ami-1"}, REGION).deregistration_protection == ""


# --- against the fake EC2: a sweep and a deregistration ----------------------------------------------------


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeEc2]:
    with FakeEc2(throttling=False) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        monkeypatch.delenv("AWS_ENDPOINT_URL_RBIN", raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield fake


SNAPS = Policy(name="nightly", resource="volume", target_tags={"Backup": "x"}, every=timedelta(hours=1), keep=1)


def test_a_sweep_keeps_a_locked_snapshot_and_spares_one_locked_after_the_decision(fake):
    tags = {"chatops:policy": SNAPS.name, "chatops:source": "vol-0123456789abcdef0"}
    now = datetime.now(UTC)
    fake.seed_snapshots(REGION, 1, tags=tags, newest=now)  # the newest: kept by keep=1
    locked_before, locked_after, plain = fake.seed_snapshots(REGION, 3, tags=tags, newest=now - timedelta(days=1))
    until = now + timedelta(days=10)
    fake.lock_snapshot(REGION, locked_before, "compliance", until=until)
    ctx = Context(Ec2Gateway(boto3.session.Session()), dataclasses.replace(Config(), policies=(SNAPS,)), lambda: now)

    decisions, failed, _ = decide_policy(ctx.gateway, ctx.config, SNAPS, now)
    by_id = {d.item.id: d for d in decisions}
    assert failed == []
    assert by_id[locked_before].action == "keep"
    assert by_id[locked_before].reason.startswith(f"locked in compliance mode until {until:%Y-%m-%d %H:%M} UTC")
    expired = [d for d in decisions if d.action == "expire"]
    assert {d.item.id for d in expired} == {locked_after, plain}

    fake.lock_snapshot(REGION, locked_after, "governance", until=until)  # between the request and its approval
    results = execute_sweep(ctx, sweep_plan(SNAPS, expired, 0.05), lambda r: None)

    outcome = {r.resource_id: r for r in results}
    assert outcome[plain].outcome == "done"
    assert (
        outcome[locked_after].outcome == "spared"
        and f"until {until:%Y-%m-%d %H:%M} UTC" in outcome[locked_after].reason
    )
    assert fake.ids(REGION) >= {locked_before, locked_after} and plain not in fake.ids(REGION)


def test_deregistering_keeps_a_locked_backing_snapshot_and_says_so(fake):
    [image] = fake.seed_images(REGION, 1, snapshots_per_image=2)
    backing = sorted(fake.ids(REGION))
    until = datetime.now(UTC) + timedelta(days=3)
    fake.lock_snapshot(REGION, backing[0], "governance", until=until)
    gw = Ec2Gateway(boto3.session.Session())

    plan = amis.deregister_plan(gw, REGION, image, usd_per_gb_month=0.05)
    details = {i.resource_id: i.detail for i in plan.items}
    assert "kept: locked in governance mode" in details[backing[0]]
    assert details[backing[1]].endswith("permanent delete (no Recycle Bin rule covers it)")

    results = {r.resource_id: r for r in amis.execute_deregister(gw, plan)}
    assert results[image].outcome == "done"
    assert results[backing[0]].outcome == "spared" and "locked" in results[backing[0]].reason
    assert results[backing[1]].outcome == "done"
    assert fake.ids(REGION) == {backing[0]}


def test_an_ami_protected_after_the_request_is_not_deregistered(fake):
    [image] = fake.seed_images(REGION, 1)
    gw = Ec2Gateway(boto3.session.Session())
    plan = amis.deregister_plan(gw, REGION, image, usd_per_gb_month=0.05)
    fake.protect_image(REGION, image, "enabled")

    [result] = amis.execute_deregister(gw, plan)

    assert result.outcome == "failed" and "deregistration protection is enabled" in result.reason
    assert fake.ids(REGION, "image") == {image} and gw.calls["DeregisterImage"] == 0
