"""The digest: one streaming pass over the inventory, and a message within Slack's limits."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.aws.models import Image, Instance, Snapshot, Volume
from bot.domain.digest import Activity, RegionInventory, build_digest
from bot.slack.blocks import digest_message
from bot.testing.slack_limits import all_text, assert_within_limits

NOW = datetime(2024, 6, 15, 9, 0, tzinfo=UTC)
PRICE = 0.05


class Once:
    """An iterable that may be consumed only once, like a paginated AWS listing."""

    def __init__(self, items):
        self.items = items
        self.used = False

    def __iter__(self):
        assert not self.used, "iterated twice: the digest must stream"
        self.used = True
        return iter(self.items)


def snap(sid: str, volume: str, size: int = 10, days: float = 1, state: str = "completed", **kw) -> Snapshot:
    region = kw.pop("region", "us-east-1")
    return Snapshot(sid, region, volume, state, "100%", size, NOW - timedelta(days=days), **kw)


def vol(vid: str, region: str = "us-east-1") -> Volume:
    return Volume(vid, region, "in-use", 10, "gp3", f"{region}a", NOW)


def inst(iid: str, image: str, state: str = "running", region: str = "us-east-1") -> Instance:
    return Instance(iid, region, state, "t3.micro", image, f"{region}a", NOW)


def image(iid: str, snaps: tuple[str, ...], name: str = "web", region: str = "us-east-1", **kw) -> Image:
    return Image(iid, region, name, kw.pop("state", "available"), NOW - timedelta(days=30), snaps, **kw)


@pytest.fixture
def digest():
    east = RegionInventory(
        region="us-east-1",
        volumes=Once([vol("vol-live")]),
        instances=Once([inst("i-1", "ami-used"), inst("i-2", "ami-ghost", state="terminated")]),
        images=Once(
            [
                image("ami-used", ("snap-used",)),
                image("ami-ghost", ("snap-ghost1", "snap-ghost2"), name="ghost"),
                image("ami-pinned", ("snap-pinned-ami",), tags={"chatops:keep": "true"}),
                image("ami-gone", ("snap-x",), state="deregistered"),
            ]
        ),
        snapshots=Once(
            [
                snap("snap-live", "vol-live", 10),
                snap("snap-orphan", "vol-dead", 100, days=40, description="old db"),
                snap("snap-orphan-pinned", "vol-dead", 5, tags={"chatops:keep": "true"}),
                snap("snap-orphan-pending", "vol-dead", 7, state="pending"),
                snap("snap-orphan-error", "vol-dead", 3, state="error"),
                snap("snap-used", "vol-dead", 8),  # backs ami-used: belongs to the AMI, not orphaned
                snap("snap-ghost1", "vol-ffffffff", 20),
                snap("snap-ghost2", "vol-ffffffff", 30),
                snap("snap-pinned-ami", "vol-ffffffff", 1),
            ]
        ),
    )
    west = RegionInventory(
        region="us-west-2",
        volumes=Once([]),
        instances=Once([]),
        images=Once([]),
        snapshots=Once(
            [
                # DR copy of a live us-east-1 volume: not orphaned.
                snap("snap-copy", "vol-ffffffff", 10, region="us-west-2", tags={"chatops:source": "vol-live"}),
                snap("snap-unknown", "vol-ffffffff", 4, region="us-west-2"),
                snap("snap-west-orphan", "vol-west-dead", 50, days=3, region="us-west-2", tags={"Name": "scratch"}),
            ]
        ),
    )
    activity = {"us-east-1": Activity(created=4, deleted=2, failed=1)}
    return build_digest(iter([east, west]), activity, pending_approvals=3, now=NOW, price_gb_month=PRICE)


def test_per_region_counts(digest):
    east, west = digest.regions
    assert (east.region, east.snapshots, east.snapshot_gib, east.usd_month) == ("us-east-1", 9, 184, 9.2)
    assert (east.unfinished, east.errors) == (2, 1)
    assert (east.images, east.volumes) == (3, 1)
    assert (east.created_24h, east.deleted_24h, east.failed_24h) == (4, 2, 1)
    # vol-dead: snap-orphan, -pinned, -pending, -error (snap-used backs an AMI).
    assert (east.orphaned, east.orphaned_gib) == (4, 115)
    # ami-ghost (its only instance is terminated) and ami-pinned.
    assert east.unused_images == 2
    # snap-orphan and ami-ghost (50 GiB of snapshots); pinned and unfinished ones are not candidates.
    assert (east.candidates, east.candidate_gib) == (2, 150)
    assert (west.snapshots, west.orphaned, west.candidates, west.created_24h) == (3, 1, 1, 0)


def test_totals_and_top_candidates(digest):
    t = digest.totals
    assert (t.region, t.snapshots, t.snapshot_gib, t.usd_month) == ("all regions", 12, 248, 12.4)
    assert (t.candidates, t.candidate_gib, digest.candidate_usd_month) == (3, 200, 10.0)
    assert digest.pending_approvals == 3
    assert [(c.id, c.size_gib, c.reason) for c in digest.top_candidates] == [
        ("snap-orphan", 100, "source volume vol-dead is gone"),
        ("ami-ghost", 50, "no instance uses it"),
        ("snap-west-orphan", 50, "source volume vol-west-dead is gone"),
    ]
    assert digest.top_candidates[2].label == "scratch"


def test_digest_message(digest):
    msg = digest_message(digest)
    assert_within_limits(msg)
    text = all_text(msg)
    assert "Snapshot & AMI digest — 2024-06-15" in text
    assert "12 snapshots* · 248 GiB · up to $12.40/month across 2 regions" in text
    assert "Last 24 h: 4 created · 2 deleted · :x: 1 failed" in text
    assert "3 approvals pending — `/chatops approvals`" in text
    assert "3 cleanup candidates (200 GiB, up to $10.00/month): 5 orphaned snapshots, 2 AMIs no instance uses" in text
    assert "*us-west-2* — 3 snapshots · 64 GiB" in text
    assert "• snapshot `snap-orphan` “old db” (us-east-1) · 100 GiB · ~$5.00/mo · 40d old" in text
    assert "EBS snapshots are incremental" in text


def test_top_candidates_do_not_depend_on_listing_order():
    snaps = [snap(f"snap-{i:05d}", f"vol-{i % 7}", size=i % 5, days=i % 3) for i in range(300)]
    results = set()
    for seed in range(3):
        random.Random(seed).shuffle(snaps)
        d = build_digest([RegionInventory("us-east-1", snapshots=list(snaps))], {}, 0, NOW, PRICE, top=7)
        results.add(tuple(c.id for c in d.top_candidates))
    assert len(results) == 1
    (ids,) = results
    assert len(ids) == 7


def many_snapshots(count: int, region: str = "us-east-1") -> Iterator[Snapshot]:
    """`count` snapshots, a third of them orphaned, with hostile descriptions."""
    for i in range(count):
        volume = f"vol-{i % 50:08x}" if i % 3 else f"vol-dead{i % 97:04x}"
        yield Snapshot(
            f"snap-{i:017x}",
            region,
            volume,
            "completed" if i % 101 else "error",
            "100%",
            8 + i % 500,
            NOW - timedelta(hours=i % 5000),
            description=f"<!channel> backup {i} " + "x" * (i % 300),
            tags={"Name": f"<@U123> *bold* {i}"} if i % 2 else {},
        )


def live_volumes(region: str = "us-east-1") -> list[Volume]:
    return [vol(f"vol-{i:08x}", region) for i in range(50)]


@pytest.mark.parametrize("count", [500, 100_000])
def test_large_inventories_stay_within_slack_limits(count):
    inventory = RegionInventory(
        "us-east-1",
        snapshots=Once(many_snapshots(count)),
        volumes=Once(live_volumes()),
        images=Once([image(f"ami-{i:08x}", (), name=f"<!here> img {i}") for i in range(200)]),
        instances=Once([]),
    )
    d = build_digest([inventory], {}, 0, NOW, PRICE)
    assert d.totals.snapshots == count
    assert d.totals.orphaned == (count + 2) // 3
    assert len(d.top_candidates) == 10
    msg = digest_message(d)
    assert_within_limits(msg)
    text = all_text(msg)
    assert "<!channel>" not in text and "<!here>" not in text and "<@U123>" not in text
    assert "&lt;@U123&gt;" in text or "&lt;!here&gt;" in text
    assert f"…and {d.totals.candidates - 10:,} more" in text


def test_many_regions_are_summarised():
    regions = [f"xx-region-{i}" for i in range(300)]
    inventories = [RegionInventory(r, snapshots=[snap("snap-1", "vol-1", region=r)]) for r in regions]
    msg = digest_message(build_digest(inventories, {}, 0, NOW, PRICE))
    assert_within_limits(msg)
    assert "more regions" in all_text(msg)


def test_streams_snapshots_in_bounded_memory():
    # Holding these 20,000 Snapshot objects would take ~15 MB; the pass keeps
    # only counters and a 10-entry heap, so memory does not grow with the
    # inventory (100,000 above is checked for the result, not traced: slow).
    tracemalloc.start()
    try:
        inventory = RegionInventory("us-east-1", snapshots=many_snapshots(20_000), volumes=live_volumes())
        d = build_digest([inventory], {}, 0, NOW, PRICE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert d.totals.snapshots == 20_000
    assert peak < 1_000_000, f"peak {peak:,} bytes"


def test_empty_inventory():
    d = build_digest([], {}, 0, NOW, PRICE)
    msg = digest_message(d)
    assert_within_limits(msg)
    assert "0 snapshots* · 0 GiB · up to $0.00/month across 0 regions" in all_text(msg)
    assert "No approvals pending." in all_text(msg)
