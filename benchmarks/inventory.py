"""A sweep inventory with a known answer, shared by the bot's sweep benchmark and Cloud Custodian's.

`seed_sweep_inventory()` fills a FakeEc2 with one volume policy's snapshots
over several regions and returns, per region, exactly the snapshot IDs a
correct sweep deletes.  Beside them sit snapshots a sweep must leave alone:
old ones of the policy tagged `chatops:keep=true`, old ones backing a
registered AMI, old ones in the `error` state, old ones of another policy and
old ones the bot never made.

The layout makes an age-only rule (all Cloud Custodian can express) and our
retention (newest `keep` per source, then `max_age`) pick the same set: every
source volume's newest `keep` ordinary snapshots are younger than `max_age`,
so the rolling window never saves an old snapshot, and nothing sits within a
day of the age boundary, so the two clocks and `>` against `>=` cannot
disagree.  Protected snapshots do not count toward `keep` (SPEC §5, and
bot/domain/retention.py), which the layout respects by keeping them all old.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks.fake_ec2 import FakeEc2
from bot.config import Policy
from bot.domain.tags import KEEP as KEEP_TAG
from bot.domain.tags import MANAGED, POLICY, REQUESTED_BY, SOURCE

POLICY_NAME = "bench-daily"
OTHER_POLICY = "bench-other"
KEEP = 2
MAX_AGE = timedelta(days=30)
PER_SOURCE = 20  # ordinary snapshots per source volume (one policy run a day, roughly)
MARGIN = timedelta(days=1)  # no snapshot is closer than this to the max_age boundary


def sweep_policy(name: str = POLICY_NAME, *, keep: int = KEEP, max_age: timedelta = MAX_AGE) -> Policy:
    """The volume policy whose expired snapshots `seed_sweep_inventory` predicts (deletes without approval)."""
    return Policy(
        name=name,
        resource="volume",
        target_tags={"backup": name},
        every=timedelta(days=1),
        keep=keep,
        max_age=max_age,
        on_expired="delete",
    )


def _policy_tags(policy: str, source: str, **extra: str) -> dict[str, str]:
    # What the scheduler puts on a policy snapshot (bot.domain.tags.managed_tags).
    return {MANAGED: "true", REQUESTED_BY: "scheduler", POLICY: policy, SOURCE: source, **extra}


def _spread(total: int, capacities: Sequence[int]) -> list[int]:
    """`total` shared as evenly as possible over slots, none above its capacity."""
    shares = [0] * len(capacities)
    left = total
    while left:
        open_slots = [i for i, cap in enumerate(capacities) if shares[i] < cap]
        if not open_slots:
            raise ValueError("more than the capacities hold")
        each = max(1, left // len(open_slots))
        for i in open_slots:
            add = min(each, capacities[i] - shares[i], left)
            shares[i] += add
            left -= add
            if not left:
                break
    return shares


def _seed_old(
    fake: FakeEc2,
    region: str,
    policy: str,
    volumes: Sequence[str],
    count: int,
    newest: datetime,
    extra: Mapping[str, str] | None = None,
    **options,
) -> list[str]:
    """`count` old snapshots of `policy`, one at a time over the sources, so each is some volume's backup."""
    made = []
    for k in range(count):
        vol = volumes[k % len(volumes)]
        tags = _policy_tags(policy, vol, **(extra or {}))
        made += fake.seed_snapshots(
            region, 1, tags=tags, volumes=[vol], newest=newest - timedelta(hours=k + 1), **options
        )
    return made


def seed_sweep_inventory(
    fake: FakeEc2,
    regions: Sequence[str],
    n: int,
    expired_share: float,
    now: datetime | None = None,
    *,
    policy: str = POLICY_NAME,
    keep: int = KEEP,
    max_age: timedelta = MAX_AGE,
) -> dict[str, set[str]]:
    """Seed `n` snapshots of volume policy `policy` over `regions`; return the IDs a correct sweep deletes.

    `n` is the total of the policy's snapshots, split evenly over the regions
    (the first regions take the remainder); about `expired_share` of them are
    expired at `now` (default: the wall clock), the rest young or protected.
    Per region the policy's snapshots are: ordinary ones, `PER_SOURCE` per
    source volume, whose newest `keep` are always young; 1% tagged
    `chatops:keep=true`, 1% backing a registered AMI and 0.5% in the `error`
    state, all older than `max_age`.  Not counted in `n`, each region also
    gets old snapshots of another policy (2%) and old unmanaged ones (1%).
    Seeding goes straight into the fake's memory and makes no API calls.
    Raises ValueError when `expired_share` leaves too few young snapshots.
    """
    if not regions:
        raise ValueError("at least one region")
    if not 0 <= expired_share <= 1:
        raise ValueError("expired_share is a share between 0 and 1")
    now = now or datetime.now(UTC)
    young_span = max_age - MARGIN - timedelta(hours=1)
    old_newest = now - max_age - MARGIN
    expected: dict[str, set[str]] = {}
    for index, region in enumerate(regions):
        n_r = n // len(regions) + (1 if index < n % len(regions) else 0)
        pinned, backing, failed = max(1, n_r // 100), max(1, n_r // 100), max(1, n_r // 200)
        ordinary = n_r - pinned - backing - failed
        if ordinary < keep:
            raise ValueError(f"{n_r} snapshots in {region} are too few for this layout")
        sources = math.ceil(ordinary / PER_SOURCE)
        counts = [ordinary // sources + (1 if j < ordinary % sources else 0) for j in range(sources)]
        capacity = [max(0, c - keep) for c in counts]
        wanted = round(expired_share * n_r)
        if wanted > sum(capacity):
            raise ValueError(
                f"expired_share {expired_share} is too high: at most {sum(capacity) / n_r:.2f} "
                f"leaves the newest {keep} of each source young"
            )
        olds = _spread(wanted, capacity)
        volumes = [f"vol-{0xB0000000 + (index << 24) + j:017x}" for j in range(sources)]
        expired: set[str] = set()
        for vol, count, old in zip(volumes, counts, olds, strict=True):
            tags = _policy_tags(policy, vol)
            young = count - old
            fake.seed_snapshots(
                region,
                young,
                tags=tags,
                volumes=[vol],
                newest=now - timedelta(hours=1),
                spacing=young_span / max(1, young - 1),
            )
            expired.update(
                fake.seed_snapshots(region, old, tags=tags, volumes=[vol], newest=old_newest, spacing=timedelta(days=1))
            )

        _seed_old(fake, region, policy, volumes, pinned, old_newest, extra={KEEP_TAG: "true"})
        for snap in _seed_old(fake, region, policy, volumes, backing, old_newest):
            fake.register_image(region, [snap], name=f"bench-image-{snap}", created=old_newest)
        _seed_old(fake, region, policy, volumes, failed, old_newest, failed=True)
        _seed_old(fake, region, OTHER_POLICY, volumes, max(1, n_r // 50), old_newest)
        fake.seed_snapshots(region, max(1, n_r // 100), volumes=volumes, newest=old_newest, spacing=timedelta(hours=1))
        expected[region] = expired
    return expected


def snapshot_ids(fake: FakeEc2, regions: Sequence[str]) -> dict[str, set[str]]:
    """The snapshot IDs now in each region (take it before the sweep, for `sweep_outcome`)."""
    return {region: fake.ids(region) for region in regions}


def sweep_outcome(
    fake: FakeEc2, before: Mapping[str, set[str]], expected: Mapping[str, set[str]], *, sample: int = 5
) -> dict:
    """Compare what a sweep deleted with what it should have: correct means exactly the expected set.

    Returns JSON-able counts per region and overall, with up to `sample`
    IDs of each kind of mistake (expired but still there; deleted but not
    expired).
    """
    regions: dict[str, dict] = {}
    for region, had in before.items():
        deleted = had - fake.ids(region)
        want = set(expected.get(region, ()))
        missed, wrong = want - deleted, deleted - want
        regions[region] = {
            "expected": len(want),
            "deleted": len(deleted),
            "missed": len(missed),
            "wrongly_deleted": len(wrong),
            "missed_sample": sorted(missed)[:sample],
            "wrongly_deleted_sample": sorted(wrong)[:sample],
        }
    return {
        "correct": all(r["missed"] == 0 and r["wrongly_deleted"] == 0 for r in regions.values()),
        "expected": sum(r["expected"] for r in regions.values()),
        "deleted": sum(r["deleted"] for r in regions.values()),
        "missed": sum(r["missed"] for r in regions.values()),
        "wrongly_deleted": sum(r["wrongly_deleted"] for r in regions.values()),
        "regions": regions,
    }


# --- one scenario, shared by the bot's sweep benchmark and Cloud Custodian's ----------------


@dataclass
class SweepScenario:
    """A fresh fake holding the sweep inventory, its faults armed; what a correct sweep deletes."""

    fake: FakeEc2
    expected: dict[str, set[str]]  # per region, the IDs a correct sweep deletes
    before: dict[str, set[str]]  # per region, every snapshot ID before the sweep
    setup: dict  # the scenario, JSON-able, for the report


def seed_scenario(
    snapshots: int,
    *,
    regions: Sequence[str] = ("us-east-1", "us-west-2"),
    expired_share: float = 0.3,
    speedup: float = 1.0,
    throttle_share: float = 0.0,
    error_share: float = 0.0,
    drop_share: float = 0.0,
    fault_after: float = 0.0,
    outage: int = 0,
    seed: int = 0,
    competitor_share: float = 0.0,
) -> SweepScenario:
    """Seed `snapshots` of the sweep policy into a new FakeEc2 with these faults (not started yet).

    `outage` makes the first that many DeleteSnapshot requests (any region)
    answer 500 InternalError: a short EC2 brownout.  `competitor_share` is
    the share of every bucket's refill another client of the account spends.
    """
    fake = FakeEc2(
        speedup=speedup,
        throttle_share=throttle_share,
        error_share=error_share,
        drop_share=drop_share,
        fault_after=fault_after,
        seed=seed,
        competitor_share=competitor_share,
    )
    expected = seed_sweep_inventory(fake, regions, snapshots, expired_share)
    before = snapshot_ids(fake, regions)
    if outage:
        fake.fail_next("DeleteSnapshot", "InternalError", times=outage)
    setup = {
        "policy_snapshots": snapshots,
        "snapshots_in_fake": sum(len(ids) for ids in before.values()),
        "regions": list(regions),
        "expired_share": expired_share,
        "speedup": speedup,
        "throttle_share": throttle_share,
        "error_share": error_share,
        "drop_share": drop_share,
        "fault_after": fault_after,
        "outage": outage,
        "seed": seed,
        "competitor_share": competitor_share,
        "cpus": os.cpu_count(),
    }
    return SweepScenario(fake, expected, before, setup)


def add_scenario_arguments(parser: argparse.ArgumentParser, *, snapshots: int, speedup_help: str) -> None:
    """The command-line options of `seed_scenario`."""
    parser.add_argument("--snapshots", type=int, default=snapshots, help="the policy's snapshots, over all regions")
    parser.add_argument("--regions", default="us-east-1,us-west-2")
    parser.add_argument("--expired-share", type=float, default=0.3)
    parser.add_argument("--speedup", type=float, default=1.0, help=speedup_help)
    parser.add_argument("--throttle-share", type=float, default=0.0, help="share of random 503 RequestLimitExceeded")
    parser.add_argument("--error-share", type=float, default=0.0, help="share of 500 InternalError")
    parser.add_argument("--drop-share", type=float, default=0.0, help="share of dropped connections")
    parser.add_argument("--fault-after", type=float, default=0.0, help="share of 500s/drops after the action ran")
    parser.add_argument("--outage", type=int, default=0, help="the first N DeleteSnapshot requests get a 500")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--competitor-share", type=float, default=0.0, help="share of every bucket's refill another client spends"
    )


def scenario_options(args: argparse.Namespace) -> dict:
    """`seed_scenario`'s keyword arguments (all but `snapshots`) from parsed `add_scenario_arguments` options."""
    return {
        "regions": [r.strip() for r in args.regions.split(",") if r.strip()],
        "expired_share": args.expired_share,
        "speedup": args.speedup,
        "throttle_share": args.throttle_share,
        "error_share": args.error_share,
        "drop_share": args.drop_share,
        "fault_after": args.fault_after,
        "outage": args.outage,
        "seed": args.seed,
        "competitor_share": args.competitor_share,
    }
