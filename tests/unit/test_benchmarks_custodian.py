"""The sweep benchmark's inventory (benchmarks/inventory.py) and the Cloud Custodian harness (benchmarks/custodian.py).

The inventory's promise is checked against what boto3 lists from the fake:
our retention rule and Custodian's age-only rule pick the same snapshots,
and those are exactly the ones `seed_sweep_inventory` says.  Running c7n
itself needs benchmarks/.c7n-venv (`python -m benchmarks.custodian` makes
it); without it that test is skipped, so CI never installs c7n.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import boto3
import botocore.config
import botocore.session
import pytest

from benchmarks import custodian, measure
from benchmarks.fake_ec2 import FakeEc2
from benchmarks.inventory import (
    KEEP,
    MAX_AGE,
    OTHER_POLICY,
    POLICY_NAME,
    seed_sweep_inventory,
    snapshot_ids,
    sweep_outcome,
    sweep_policy,
)

REGIONS = ("us-east-1", "us-west-2")
# One botocore session: it caches the large EC2 model a new client would otherwise load again.
BOTOCORE = botocore.session.get_session()
NOW = datetime.now(UTC)  # seeded snapshots dated after the wall clock would still be pending


@pytest.fixture
def fake():
    with FakeEc2(throttling=False) as fake:
        yield fake


def ec2(fake: FakeEc2, region: str):
    return boto3.session.Session(botocore_session=BOTOCORE).client(
        "ec2",
        region_name=region,
        endpoint_url=fake.url,
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


def listing(fake: FakeEc2, region: str) -> tuple[list[dict], set[str]]:
    """Every own snapshot, and the snapshots that back an own AMI, as a sweep sees them."""
    client = ec2(fake, region)
    pages = client.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 1000})
    snaps = [s for page in pages for s in page["Snapshots"]]
    images = client.describe_images(Owners=["self"])["Images"]
    backing = {m["Ebs"]["SnapshotId"] for i in images for m in i["BlockDeviceMappings"] if "Ebs" in m}
    return snaps, backing


def tags(snap: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snap.get("Tags", [])}


def protected(snap: dict, backing: set[str]) -> bool:
    return (
        tags(snap).get("chatops:keep", "").strip().lower() == "true"
        or snap["SnapshotId"] in backing
        or snap["State"] != "completed"
    )


def retention_rule(snaps: list[dict], backing: set[str], now: datetime) -> set[str]:
    """SPEC §5: of the policy's unprotected snapshots, per source, outside the newest `keep` and older than max_age."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    for snap in snaps:
        if tags(snap).get("chatops:policy") == POLICY_NAME and not protected(snap, backing):
            by_source[tags(snap).get("chatops:source") or snap["VolumeId"]].append(snap)
    expired = set()
    for items in by_source.values():
        items.sort(key=lambda s: s["StartTime"], reverse=True)
        expired |= {s["SnapshotId"] for s in items[KEEP:] if now - s["StartTime"] > MAX_AGE}
    return expired


def age_rule(snaps: list[dict], backing: set[str], now: datetime) -> set[str]:
    """What the Custodian policy selects: policy tag, completed, older than max_age, not pinned, not AMI-backing."""
    return {
        s["SnapshotId"]
        for s in snaps
        if tags(s).get("chatops:policy") == POLICY_NAME and not protected(s, backing) and now - s["StartTime"] > MAX_AGE
    }


# --- the inventory -------------------------------------------------------------------------


@pytest.mark.parametrize("n, share", [(200, 0.3), (1001, 0.5), (120, 0.0)])
def test_the_expected_set_is_what_both_rules_pick(fake, n, share):
    expected = seed_sweep_inventory(fake, REGIONS, n, share, NOW)

    assert sorted(expected) == list(REGIONS)
    for index, region in enumerate(REGIONS):
        snaps, backing = listing(fake, region)
        n_r = n // 2 + (1 if index < n % 2 else 0)
        assert len(expected[region]) == round(share * n_r)
        assert retention_rule(snaps, backing, NOW) == expected[region]
        assert age_rule(snaps, backing, NOW) == expected[region]
        mine = [s for s in snaps if tags(s).get("chatops:policy") == POLICY_NAME]
        assert len(mine) == n_r


def test_the_inventory_holds_every_kind_of_snapshot_a_sweep_must_spare(fake):
    expected = seed_sweep_inventory(fake, REGIONS, 1000, 0.3, NOW)

    snaps, backing = listing(fake, "us-east-1")
    old = [s for s in snaps if NOW - s["StartTime"] > MAX_AGE + timedelta(days=1) - timedelta(seconds=1)]
    spared = [s for s in old if s["SnapshotId"] not in expected["us-east-1"]]
    kinds = {
        "pinned": sum(tags(s).get("chatops:keep") == "true" for s in spared),
        "ami-backing": sum(s["SnapshotId"] in backing for s in spared),
        "error": sum(s["State"] == "error" for s in spared),
        "other policy": sum(tags(s).get("chatops:policy") == OTHER_POLICY for s in spared),
        "unmanaged": sum(not tags(s) for s in spared),
    }
    assert kinds == {"pinned": 5, "ami-backing": 5, "error": 2, "other policy": 10, "unmanaged": 5}
    assert len(spared) == sum(kinds.values())
    # Nothing near the age boundary, where clocks or > against >= could disagree.
    assert all(abs(NOW - s["StartTime"] - MAX_AGE) > timedelta(days=1, seconds=-1) for s in snaps)


def test_too_high_an_expired_share_is_refused(fake):
    with pytest.raises(ValueError, match="too high"):
        seed_sweep_inventory(fake, REGIONS, 1000, 0.95, NOW)


def test_sweep_outcome_names_misses_and_wrong_deletions(fake):
    expected = seed_sweep_inventory(fake, REGIONS, 200, 0.3, NOW)
    before = snapshot_ids(fake, REGIONS)
    victims = sorted(expected["us-east-1"])
    bystander = sorted(before["us-east-1"] - expected["us-east-1"])[0]
    client = ec2(fake, "us-east-1")
    for snap in [*victims[1:], bystander]:
        client.delete_snapshot(SnapshotId=snap)
    west = ec2(fake, "us-west-2")
    for snap in expected["us-west-2"]:
        west.delete_snapshot(SnapshotId=snap)

    outcome = sweep_outcome(fake, before, expected)

    assert outcome["correct"] is False
    assert (outcome["missed"], outcome["wrongly_deleted"]) == (1, 1)
    assert outcome["regions"]["us-east-1"]["missed_sample"] == [victims[0]]
    assert outcome["regions"]["us-east-1"]["wrongly_deleted_sample"] == [bystander]
    assert outcome["regions"]["us-west-2"] | {"missed_sample": [], "wrongly_deleted_sample": []} == {
        "expected": 30,
        "deleted": 30,
        "missed": 0,
        "wrongly_deleted": 0,
        "missed_sample": [],
        "wrongly_deleted_sample": [],
    }


# --- the Custodian policy -------------------------------------------------------------------


def test_the_policy_file_says_what_our_retention_means():
    yaml = pytest.importorskip("yaml")

    document = yaml.safe_load(custodian.policy_yaml(sweep_policy()))

    assert document == {
        "policies": [
            {
                "name": "chatops-bench-daily-expired",
                "resource": "ebs-snapshot",
                "description": "Delete snapshots of policy bench-daily older than 30 days",
                "filters": [
                    {"tag:chatops:policy": "bench-daily"},
                    {"State": "completed"},
                    {"type": "age", "days": 30, "op": "gt"},
                    {"not": [{"type": "value", "key": "tag:chatops:keep", "value": "true", "value_type": "normalize"}]},
                ],
                "actions": [{"type": "delete", "skip-ami-snapshots": True}],
            }
        ]
    }


def test_a_policy_without_max_age_has_no_custodian_equivalent():
    policy = sweep_policy()
    with pytest.raises(ValueError, match="max_age"):
        custodian.policy_yaml(type(policy)(name=policy.name, resource="volume", target_tags={"a": "b"}, keep=3))


def test_the_deletion_floor_is_the_bucket_refill_after_the_burst():
    expected = {"us-east-1": set(map(str, range(600))), "us-west-2": set(map(str, range(350)))}

    floor = measure.deletion_floor(expected, speedup=10)

    assert floor == {
        "per_region_s": {"us-east-1": 10.0, "us-west-2": 5.0},
        "regions_in_turn_s": 15.0,
        "regions_at_once_s": 10.0,
    }


@pytest.mark.e2e
@pytest.mark.skipif(not (custodian.VENV / "bin" / "custodian").exists(), reason="no benchmarks/.c7n-venv")
def test_custodian_deletes_exactly_the_expired_snapshots():
    report = custodian.benchmark(200, speedup=50, throttle_share=0.1)

    assert report["correct"], report["outcome"]
    assert report["exit_codes"] == [0]
    assert report["fake"]["calls"]["DeleteSnapshot"] >= 60
    assert {r: v["ami_skipped"] for r, v in report["regions"].items()} == {"us-east-1": 1, "us-west-2": 1}
