"""A sweep's deletions against the fake EC2: a deletion that is still throttled goes again later, never lost."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from benchmarks.fake_ec2 import FakeEc2
from bot.approvals import Context, ItemResult, Plan, PlanItem
from bot.config import Config, Policy
from bot.gateway import Ec2Gateway
from bot.lifecycle import execute_sweep, list_policy_items

REGION = "us-east-1"
POLICY = Policy(name="nightly", resource="volume", target_tags={"Backup": "x"}, every=timedelta(hours=1), keep=1)
VOLUME = "vol-0123456789abcdef0"
TAGS = {"chatops:policy": "nightly", "chatops:source": VOLUME}


@pytest.fixture
def fake(monkeypatch):
    with FakeEc2() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield fake


def seed(fake: FakeEc2, n: int) -> list[str]:
    """n expired snapshots of the policy (oldest first), under one newer snapshot that keep=1 keeps."""
    now = datetime.now(UTC)
    fake.seed_snapshots(REGION, 1, tags=TAGS, volumes=[VOLUME], newest=now)
    return fake.seed_snapshots(REGION, n, tags=TAGS, volumes=[VOLUME], newest=now - timedelta(days=1))


def sweep(fake: FakeEc2, snaps: list[str], pauses=(10.0, 60.0), known=None):
    # One attempt a call: what botocore does once its retry quota has run dry.
    gateway = Ec2Gateway(boto3.session.Session(), max_attempts=1)
    ctx = Context(gateway, dataclasses.replace(Config(), policies=(POLICY,)), lambda: datetime.now(UTC))
    items = tuple(PlanItem(s, "snapshot", 8, region=REGION) for s in snaps)
    plan = Plan("sweep-delete", REGION, "test", items, params={"policy": "nightly"})
    slept: list[float] = []
    reported: list[ItemResult] = []
    results = execute_sweep(ctx, plan, reported.append, known, sleep=slept.append, pauses=pauses)
    return results, reported, slept


def test_a_throttled_deletion_goes_again_after_the_rest(fake):
    snaps = seed(fake, 5)
    fake.fail_next("DeleteSnapshot", "RequestLimitExceeded", times=2)

    results, reported, slept = sweep(fake, snaps)

    assert [r.resource_id for r in results] == snaps  # in plan order
    assert all(r.outcome == "done" for r in results)
    assert sorted(r.resource_id for r in reported) == sorted(snaps)  # each reported once, when final
    assert slept == [10.0]
    assert fake.ids(REGION) & set(snaps) == set()
    assert len(fake.ids(REGION)) == 1  # the newest, kept
    assert fake.stats()["calls"]["DeleteSnapshot"] == 7
    assert fake.stats()["repeated_deletions"] == {}


def test_a_deletion_that_never_goes_through_is_reported_failed(fake):
    snaps = seed(fake, 2)
    fake.fail_next("DeleteSnapshot", "InternalError", times=3)  # all three rounds

    results, reported, slept = sweep(fake, snaps[:1], pauses=(1.0, 2.0))

    assert slept == [1.0, 2.0]
    [result] = results
    assert result.outcome == "failed" and "InternalError" in result.reason
    assert reported == results
    assert snaps[0] in fake.ids(REGION)


def test_a_refusal_is_not_retried(fake):
    # Not found, in use: the world said no; asking again would not change it.
    snaps = seed(fake, 1)
    gateway = Ec2Gateway(boto3.session.Session())
    known = {REGION: list_policy_items(gateway, "nightly", REGION)}  # listed just before…
    fake.register_image(REGION, snaps)  # …it came to back an AMI: EC2 answers InvalidSnapshot.InUse

    results, _, slept = sweep(fake, snaps, known=known)

    assert slept == []
    assert [r.outcome for r in results] == ["failed"]
    assert fake.stats()["calls"]["DeleteSnapshot"] == 1
