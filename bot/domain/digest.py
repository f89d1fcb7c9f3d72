"""The daily digest, computed from inventories in one streaming pass (pure).

`build_digest()` takes, per region, iterables of volumes, instances, images
and snapshots (typically the gateway's paginated generators), plus activity
counts from the audit log, and returns a small frozen `Digest` for
`bot.slack.blocks.digest_message()`.

Memory stays bounded by what the answer needs, not by the inventory:
volumes, instances and images (hundreds to thousands) are read first into ID
sets; snapshots (possibly 100,000s) are then streamed once and only counted,
with a fixed-size heap for the top cleanup candidates.

Cleanup candidates are resources nothing seems to need any more:
- an orphaned snapshot: its source volume (`chatops:source` tag, else its
  VolumeId) exists in none of the covered regions, and it backs no AMI (a
  snapshot of an AMI belongs to the AMI, whatever became of its volume);
- an AMI that no instance (not terminated) in its region was launched from.
Pinned items (`chatops:keep=true`) and unfinished ones are never candidates.
Costs are upper-bound estimates (see bot.domain.costs): full volume size × price.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime

from bot.aws.models import Image, Instance, Snapshot, Volume
from bot.domain.costs import monthly_usd
from bot.domain.drills import PolicyDrills
from bot.domain.retention import snapshot_source
from bot.domain.tags import KEEP
from bot.domain.trend import DayTotal

TOP_CANDIDATES = 10
GONE = ("terminated", "shutting-down")


@dataclass(frozen=True)
class RegionInventory:
    """One region's resources; each may be a lazy iterable, consumed once."""

    region: str
    snapshots: Iterable[Snapshot] = ()
    images: Iterable[Image] = ()
    volumes: Iterable[Volume] = ()
    instances: Iterable[Instance] = ()


@dataclass(frozen=True)
class Activity:
    """What the bot did in a region in the last 24 h (counted from the audit log)."""

    created: int = 0
    deleted: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Candidate:
    region: str
    kind: str  # "snapshot" | "image"
    id: str
    label: str  # Name tag, AMI name or description: AWS text, escape when shown
    size_gib: int
    created: datetime
    reason: str


@dataclass(frozen=True)
class RegionDigest:
    region: str
    snapshots: int = 0
    snapshot_gib: int = 0
    usd_month: float = 0.0
    unfinished: int = 0  # snapshots pending or in error
    errors: int = 0  # snapshots in state error
    images: int = 0
    volumes: int = 0
    created_24h: int = 0
    deleted_24h: int = 0
    failed_24h: int = 0
    orphaned: int = 0
    orphaned_gib: int = 0
    unused_images: int = 0
    candidates: int = 0
    candidate_gib: int = 0
    archived: int = 0  # snapshots in the archive tier (also counted in `snapshots`)
    archived_gib: int = 0  # their full size: what the archive tier bills


@dataclass(frozen=True)
class Digest:
    now: datetime
    price_gb_month: float
    regions: tuple[RegionDigest, ...]
    pending_approvals: int = 0
    top_candidates: tuple[Candidate, ...] = ()  # biggest first
    totals: RegionDigest = field(default_factory=lambda: RegionDigest("all regions"))
    archive_gb_month: float = 0.0125  # pricing.snapshot_archive_gb_month
    trend: tuple[DayTotal, ...] = ()  # the recorded days of the last TREND_DAYS, oldest first, today last
    drills: tuple[PolicyDrills, ...] = ()  # per drill policy: last good drill, restore time, overdue sources

    @property
    def candidate_usd_month(self) -> float:
        return monthly_usd(self.totals.candidate_gib, self.price_gb_month)


def build_digest(
    inventories: Iterable[RegionInventory],
    activity: Mapping[str, Activity],
    pending_approvals: int,
    now: datetime,
    price_gb_month: float,
    *,
    top: int = TOP_CANDIDATES,
) -> Digest:
    """Summarise every region's inventory and last-24-h activity into a Digest.

    Volumes, instances and images of all regions are read first (so a DR copy
    whose source volume lives in another covered region is not called
    orphaned), then each region's snapshots are streamed once.  `activity`
    maps region → Activity; regions missing from it count zero.  The steps
    are public (`live_volumes`, `summarise_region`, `combine`) so a caller may
    stream the regions' snapshots in parallel.
    """
    inventories = list(inventories)
    volumes = live_volumes(inventories)
    summaries = [summarise_region(inv, volumes, activity, price_gb_month, top=top) for inv in inventories]
    return combine(summaries, pending_approvals, now, price_gb_month, top=top)


@dataclass(frozen=True)
class LiveVolumes:
    """The IDs of every covered region's volumes, and how many each region has."""

    ids: frozenset[str]
    counts: Mapping[str, int]


@dataclass(frozen=True)
class RegionSummary:
    """One region's figures and its own `top` cleanup candidates (any order)."""

    digest: RegionDigest
    candidates: tuple[Candidate, ...]


def live_volumes(inventories: Iterable[RegionInventory]) -> LiveVolumes:
    """Consume every region's volumes; call before streaming any region's snapshots."""
    ids: set[str] = set()
    counts: dict[str, int] = {}
    for inv in inventories:
        count = 0
        for vol in inv.volumes:
            ids.add(vol.id)
            count += 1
        counts[inv.region] = count
    return LiveVolumes(frozenset(ids), counts)


def summarise_region(
    inv: RegionInventory,
    volumes: LiveVolumes,
    activity: Mapping[str, Activity],
    price: float,
    *,
    top: int = TOP_CANDIDATES,
) -> RegionSummary:
    """One region's pass: its images and instances, then its snapshots streamed once.

    Touches nothing shared, so regions may be summarised in parallel; each
    keeps its own `top` candidates, which is enough for `combine` to find the
    overall `top` exactly.
    """
    heap: list[tuple[tuple, Candidate]] = []
    digest = _region(inv, volumes.ids, volumes.counts.get(inv.region, 0), activity, price, heap, top)
    return RegionSummary(digest, tuple(c for _, c in heap))


def combine(
    summaries: Iterable[RegionSummary],
    pending_approvals: int,
    now: datetime,
    price_gb_month: float,
    *,
    top: int = TOP_CANDIDATES,
) -> Digest:
    """The Digest from every region's summary (in the order given): totals and the overall top candidates."""
    summaries = list(summaries)
    regions = [s.digest for s in summaries]
    best = heapq.nlargest(top, (c for s in summaries for c in s.candidates), key=_rank)
    return Digest(now, price_gb_month, tuple(regions), pending_approvals, tuple(best), _sum(regions, price_gb_month))


def _region(
    inv: RegionInventory,
    volumes: Set[str],
    volume_count: int,
    activity: Mapping[str, Activity],
    price: float,
    heap: list,
    top: int,
) -> RegionDigest:
    used = {i.image_id for i in inv.instances if i.state not in GONE and i.image_id}
    backing: set[str] = set()
    unused: dict[str, Image] = {}
    unused_size: dict[str, int] = {}
    unused_of: dict[str, str] = {}  # backing snapshot ID → unused candidate AMI
    images = 0
    unused_count = 0
    for image in inv.images:
        if image.state == "deregistered":
            continue
        images += 1
        backing.update(image.snapshot_ids)
        if image.id not in used:
            unused_count += 1
            if image.state == "available" and not _pinned(image.tags):
                unused[image.id] = image
                unused_size[image.id] = 0
                unused_of.update((s, image.id) for s in image.snapshot_ids)

    count = gib = unfinished = errors = orphaned = orphaned_gib = candidates = candidate_gib = 0
    archived = archived_gib = 0
    for snap in inv.snapshots:
        count += 1
        gib += snap.size_gib
        if snap.archived:
            archived += 1
            archived_gib += snap.size_gib
        if snap.state != "completed":
            unfinished += 1
            errors += snap.state == "error"
        if snap.id in unused_of:
            unused_size[unused_of[snap.id]] += snap.size_gib
        source = snapshot_source(snap)
        if not source or source in volumes or snap.id in backing:
            continue  # source alive or unknown, or the snapshot belongs to an AMI
        orphaned += 1
        orphaned_gib += snap.size_gib
        if snap.state == "completed" and not _pinned(snap.tags):
            candidates += 1
            candidate_gib += snap.size_gib
            label = snap.tags.get("Name") or snap.description
            reason = f"source volume {source} is gone"
            _offer(heap, top, Candidate(inv.region, "snapshot", snap.id, label, snap.size_gib, snap.start_time, reason))

    for image_id, image in unused.items():
        candidates += 1
        candidate_gib += unused_size[image_id]
        size, created = unused_size[image_id], image.creation_date
        _offer(heap, top, Candidate(inv.region, "image", image_id, image.name, size, created, "no instance uses it"))

    act = activity.get(inv.region, Activity())
    return RegionDigest(
        region=inv.region,
        snapshots=count,
        snapshot_gib=gib,
        usd_month=monthly_usd(gib, price),
        unfinished=unfinished,
        errors=errors,
        images=images,
        volumes=volume_count,
        created_24h=act.created,
        deleted_24h=act.deleted,
        failed_24h=act.failed,
        orphaned=orphaned,
        orphaned_gib=orphaned_gib,
        unused_images=unused_count,
        candidates=candidates,
        candidate_gib=candidate_gib,
        archived=archived,
        archived_gib=archived_gib,
    )


def _rank(candidate: Candidate) -> tuple:
    # Biggest, then oldest, then by region and ID: a total order, so the
    # result depends neither on the order of the listing nor on the threads.
    return (candidate.size_gib, -candidate.created.timestamp(), candidate.region, candidate.id)


def _offer(heap: list, top: int, candidate: Candidate) -> None:
    """Keep the `top` biggest candidates (by `_rank`) in a min-heap."""
    if top <= 0:
        return
    key = _rank(candidate)
    if len(heap) < top:
        heapq.heappush(heap, (key, candidate))
    elif key > heap[0][0]:
        heapq.heapreplace(heap, (key, candidate))


def _sum(regions: list[RegionDigest], price: float) -> RegionDigest:
    numeric = [name for name in RegionDigest.__dataclass_fields__ if name not in ("region", "usd_month")]
    totals = {name: sum(getattr(r, name) for r in regions) for name in numeric}
    return RegionDigest("all regions", usd_month=monthly_usd(totals["snapshot_gib"], price), **totals)


def _pinned(tags: Mapping[str, str]) -> bool:
    return tags.get(KEEP, "").strip().lower() == "true"
