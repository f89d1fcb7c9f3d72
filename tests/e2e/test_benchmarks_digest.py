"""The digest-at-scale benchmark runs (tiny size): its digest agrees with what it seeded and fits Slack."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from benchmarks.digest_scale import measure, seed_inventory
from benchmarks.fake_ec2 import FakeEc2

pytestmark = pytest.mark.e2e


def test_digest_scale_script_counts_what_it_seeded_within_slack_limits():
    report = measure(2_000, 2)
    assert report["snapshots"] == 2_000 == sum(e["snapshots"] for e in report["expected"].values())
    seeded = report["expected"]
    assert report["by_region"] == {r: {k: v for k, v in e.items() if k != "instances"} for r, e in seeded.items()}
    assert report["mismatches"] == {}
    assert report["slack"]["within_limits"], report["slack"]["problem"]
    assert report["slack"]["blocks"] <= 50 and report["slack"]["longest_text"] <= 3000
    assert report["digest"]["top_candidates"] == 10
    # One pass: every describe at its page floor, nothing throttled.
    assert report["calls"] == report["floor"] == report["fake_calls"]
    assert report["throttled"] == {}


def test_seeded_inventory_has_every_kind_of_item():
    fake = FakeEc2(throttling=False)
    expected = seed_inventory(fake, ["us-east-1", "us-west-2"], 1_000, datetime.now(UTC))
    for region, e in expected.items():
        assert fake.count(region) == e["snapshots"] == 1_000
        assert fake.count(region, "image") == e["images"] == 30
        assert fake.count(region, "volume") == e["volumes"]
        assert 0 < e["errors"] < e["unfinished"] < e["orphaned"] < e["snapshots"]
        assert 0 < e["unused_images"] < e["images"] and e["candidates"] > 0
