"""Lifecycle policies: scheduled backups, DR copies and retention sweeps (SPEC §5).

Domain functions over the gateway, no Slack.  A policy run creates a snapshot
(volume policy) or an AMI without reboot (instance policy) of every resource
whose tags match, copies what retention keeps to the `copy_to` regions, then
sweeps: one describe pass per region gives the inventory, `retention.decide`
gives a decision with a reason for every item, and the expired ones are
deleted now (`delete`), put in one approval request (`approve`), or only
reported (`report`).  Regions are worked in parallel; within a region the
gateway's token buckets pace calls to EC2's refill rate.

Deleting is `execute_sweep`: the same code runs for an approved batch (the
`sweep-delete` executor, bot/approvals/sweeps.py) and for
`on_expired = "delete"`, re-checking every item first, and one failure never
drops the rest of the batch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot import errors
from bot.aws.models import Image, ImageUse, Snapshot, SnapshotLock
from bot.config import Config, Policy
from bot.domain.costs import archive_estimate, monthly_usd
from bot.domain.plans import SHUTTING_DOWN, Context, ItemResult, Plan, PlanItem, Progress
from bot.domain.recycle_bin import PERMANENT, lock_refusal, read_locks, read_rules
from bot.domain.retention import IMAGE, KIND_OF, SNAPSHOT, Decision, build_inventory, decide
from bot.domain.sweep_report import Created, Failed, PolicyReport, Spared, policy_report
from bot.domain.tags import (
    AMI,
    ARCHIVED_AT,
    COPY_OF,
    KEEP,
    POLICY,
    SOURCE,
    archived_tags,
    backing_snapshot_tags,
    carried_over,
    is_pinned,
    managed_tags,
)
from bot.domain.uses import describe_uses

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway

log = logging.getLogger(__name__)

SCHEDULER_USER = "scheduler"
# Throttled creates (SnapshotCreationPerVolumeRateExceeded, concurrency limits)
# are retried later in the run, after these pauses, before being deferred.
CREATE_RETRY_PAUSES = (15.0, 60.0)
# Deletions in flight per region.  The gateway's pacer sets the rate (EC2's
# 5 a second); several in flight keep that rate while some sleep off a
# throttled or failed attempt (botocore backs off ~0.5 s, then ~1 s, …).  One
# at a time, a 30% throttle share alone halves the rate (measured:
# benchmarks/sweep_scale.py, docs/benchmarks.md).
DELETERS_PER_REGION = 8
# A deletion still throttled (or EC2 still failing) after botocore's retries
# goes again after the rest of the region, after each of these pauses: under
# a long throttle storm botocore's retry quota runs dry and stops retrying,
# and an expired snapshot must not be left behind for that.
TRANSIENT = (errors.Throttled, errors.AwsUnavailable)
DELETE_RETRY_PAUSES = (10.0, 60.0)
# A batch deleting for longer than this lists and decides again before its next
# deletion (seconds): at 5 deletions a second a 100,000-item batch takes hours,
# and a snapshot pinned meanwhile must still be spared.
REDECIDE_AFTER = 600.0
# The outcome reason of an expired snapshot an archive policy moved to the archive tier (not deleted).
ARCHIVED = "archived"


def policy_regions(config: Config, policy: Policy) -> tuple[str, ...]:
    return config.policy_regions(policy)


def all_regions(config: Config, policy: Policy) -> tuple[str, ...]:
    """The policy's own regions and its DR regions: where its items live."""
    return tuple(dict.fromkeys(policy_regions(config, policy) + policy.copy_to))


def in_parallel(regions: Sequence[str], work: Callable[[str], object]) -> dict[str, object]:
    """Run `work(region)` for every region at once; region → result (or the exception raised)."""
    if len(regions) <= 1:
        results: dict[str, object] = {}
        for region in regions:
            try:
                results[region] = work(region)
            except Exception as exc:  # reported per region by the caller
                results[region] = exc
        return results
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="region") as pool:
        futures = {region: pool.submit(work, region) for region in regions}
    return {region: (f.exception() or f.result()) for region, f in futures.items()}


# --- inventory ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    region: str
    snapshots: tuple[Snapshot, ...]
    images: tuple[Image, ...]
    locks: Mapping[str, SnapshotLock] = dataclasses.field(default_factory=dict)  # the region's locked snapshots


def list_policy_items(gw: Ec2Gateway, policy_name: str, region: str) -> Listing:
    """One paginated pass: the policy's snapshots, every own AMI (to know which snapshots back one), the locks.

    Locks that cannot be read (no ec2:DescribeLockedSnapshots) are logged and
    taken as none: EC2 refuses deleting a locked snapshot anyway, which then
    reports as a failure instead of a spared item with its date.
    """
    snapshots = tuple(gw.describe_snapshots(region, filters=[{"Name": f"tag:{POLICY}", "Values": [policy_name]}]))
    images = tuple(gw.describe_images(region))
    locks = read_locks(gw, region)
    if locks.unknown:
        log.warning("sweep of %s in %s: %s", policy_name, region, locks.unknown)
    return Listing(region, snapshots, images, locks.locks)


def decide_policy(
    gw: Ec2Gateway, config: Config, policy: Policy, now: datetime
) -> tuple[list[Decision], list[Failed], dict[str, Listing]]:
    """Retention decisions for every item of the policy, in all its regions (listed in parallel).

    Also returns the listings, so a sweep that deletes right away re-uses them
    instead of describing everything a second time.
    """
    results = in_parallel(all_regions(config, policy), lambda r: list_policy_items(gw, policy.name, r))
    decisions: list[Decision] = []
    failed: list[Failed] = []
    listings: dict[str, Listing] = {}
    tz = ZoneInfo(config.schedule.timezone)
    for region, listing in results.items():
        if isinstance(listing, Exception):
            failed.append(Failed(region, policy.name, "list", _reason(listing)))
            continue
        listings[region] = listing
        decisions += decide(build_inventory(listing.snapshots, listing.images, listing.locks), policy, now, tz=tz)
    return decisions, failed, listings


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, errors.BotError) else f"{type(exc).__name__}: {exc}"


# --- creating -----------------------------------------------------------------------------


def matching_sources(gw: Ec2Gateway, policy: Policy, region: str) -> list:
    """Volumes (or running/stopped instances) whose tags match the policy's target_tags."""
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in policy.target_tags.items()]
    if policy.resource == "volume":
        return [v for v in gw.describe_volumes(region, filters=filters) if v.state in ("available", "in-use")]
    filters.append({"Name": "instance-state-name", "Values": ["running", "stopped"]})
    return list(gw.describe_instances(region, filters=filters))


# Characters AWS allows in an AMI name (3–128 of them).
_NOT_IN_AMI_NAME = re.compile(r"[^A-Za-z0-9()\[\] ./'@_-]+")
MAX_AMI_NAME = 128
MAX_DESCRIPTION = 255


def policy_ami_name(policy_name: str, instance_id: str, name: str, now: datetime) -> str:
    """A valid AMI name for a policy backup, unique per instance and second.

    AMI names are unique per account and region and allow only letters,
    digits, spaces and ( ) [ ] . / - ' @ _: the instance ID keeps two
    instances both named "web" apart, the Name tag is transliterated to
    ASCII, stripped of other characters and shortened to what fits, and the
    policy, instance ID and time always survive.
    """
    stamp = now.strftime("%Y-%m-%d %H.%M.%S")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    label = " ".join(_NOT_IN_AMI_NAME.sub(" ", ascii_name).split())
    room = MAX_AMI_NAME - len(f"{policy_name}  {instance_id} {stamp}")
    label = label[: max(room, 0)].strip()
    return " ".join(p for p in (policy_name, label, instance_id, stamp) if p)[:MAX_AMI_NAME]


def _create_one(gw: Ec2Gateway, policy: Policy, source, now: datetime, user: str) -> str:
    name = source.tags.get("Name", "")
    tags = managed_tags(user, policy=policy.name, **{SOURCE: source.id})
    if name:
        tags["Name"] = name
    stamp = now.strftime("%Y-%m-%d %H.%M")
    label = f" ({name})" if name else ""
    description = f"{policy.name} {stamp} of {source.id}{label}"[:MAX_DESCRIPTION]
    if policy.resource == "volume":
        return gw.create_snapshot(source.region, source.id, description, tags).id
    ami_name = policy_ami_name(policy.name, source.id, name, now)
    return gw.create_image(source.region, source.id, ami_name, description, tags, no_reboot=True)


def create_backups(
    gw: Ec2Gateway,
    config: Config,
    policy: Policy,
    now: datetime,
    user: str = SCHEDULER_USER,
    sleep: Callable[[float], None] = time.sleep,
    pauses: Sequence[float] = CREATE_RETRY_PAUSES,
    stopping: threading.Event | None = None,
) -> tuple[list[Created], list[Failed]]:
    """Snapshot (or image) every matching resource in the policy's regions.

    Throttling and concurrency limits are not failures: those resources are
    retried after a pause, and still-throttled ones are reported as deferred
    to the next run (a failure entry whose action is "create-deferred" only if
    every retry was refused).  Once `stopping` is set, the rest are reported
    as not attempted.
    """
    stopping = stopping or threading.Event()

    def region_pass(region: str) -> tuple[list[Created], list[Failed]]:
        created: list[Created] = []
        failed: list[Failed] = []
        todo = matching_sources(gw, policy, region)
        for pause in (*pauses, None):
            retry = []
            for source in todo:
                if stopping.is_set():
                    failed.append(Failed(region, source.id, "create", SHUTTING_DOWN))
                    continue
                try:
                    created.append(Created(region, source.id, _create_one(gw, policy, source, now, user)))
                except (errors.Throttled, errors.LimitExceeded) as exc:
                    retry.append((source, exc))
                except errors.BotError as exc:
                    failed.append(Failed(region, source.id, "create", exc.message))
            if not retry:
                break
            if pause is None or stopping.is_set():
                failed += [
                    Failed(region, s.id, "create", f"still throttled after retries: {e.message}") for s, e in retry
                ]
                break
            sleep(pause)
            todo = [s for s, _ in retry]
        return created, failed

    created: list[Created] = []
    failed: list[Failed] = []
    for region, result in in_parallel(policy_regions(config, policy), region_pass).items():
        if isinstance(result, Exception):
            failed.append(Failed(region, policy.name, "create", _reason(result)))
        else:
            created += result[0]
            failed += result[1]
    return created, failed


def copy_to_dr(
    gw: Ec2Gateway, config: Config, policy: Policy, decisions: Iterable[Decision], user: str = SCHEDULER_USER
) -> tuple[list[Created], list[Failed]]:
    """Copy every kept, finished item of the policy's own regions to each `copy_to` region, once.

    Copies carry the source's tags (so retention counts them per source in
    their region) plus `chatops:copy-of=REGION/ID`, which is how an existing
    copy is recognised.  Items still pending are copied by a later run.
    """
    if not policy.copy_to:
        return [], []
    home = set(policy_regions(config, policy))
    kept = [
        d.item
        for d in decisions
        if d.action == "keep" and d.item.region in home and d.item.done and d.item.kind == KIND_OF[policy.resource]
    ]
    created: list[Created] = []
    failed: list[Failed] = []
    for target in policy.copy_to:
        try:
            existing = {
                s.tags.get(COPY_OF)
                for s in gw.describe_snapshots(target, filters=[{"Name": f"tag:{POLICY}", "Values": [policy.name]}])
            } | {i.tags.get(COPY_OF) for i in gw.describe_images(target)}
        except errors.BotError as exc:
            failed.append(Failed(target, policy.name, "copy", exc.message))
            continue
        for item in kept:
            origin = f"{item.region}/{item.id}"
            if origin in existing:
                continue
            tags = {
                **carried_over(item.tags),
                **managed_tags(user, policy=policy.name, **{SOURCE: item.source_id}),
                COPY_OF: origin,
            }
            try:
                if item.kind == SNAPSHOT:
                    new_id = gw.copy_snapshot(item.region, item.id, target, f"{policy.name} DR copy of {origin}", tags)
                else:
                    new_id = gw.copy_image(
                        item.region,
                        item.id,
                        target,
                        f"{policy.name}-{item.id}-dr",
                        f"{policy.name} DR copy of {origin}",
                        client_token=origin,
                    )
                    gw.create_tags(target, [new_id], tags)
                created.append(Created(target, item.source_id, new_id, copy_of=item.id))
            except errors.BotError as exc:
                failed.append(Failed(target, item.id, "copy", exc.message))
    return created, failed


# --- sweeping -----------------------------------------------------------------------------------


def blast_radius_cap(max_delete: str, managed: int) -> int | None:
    """How many items a run may delete on its own under `max_delete` ("" = no cap; "20%" of `managed`, rounded down)."""
    if not max_delete:
        return None
    if max_delete.endswith("%"):
        return managed * int(max_delete[:-1]) // 100
    return int(max_delete)


def over_blast_radius(policy: Policy, expired: int, managed: int) -> str:
    """Why a run that would delete `expired` of the `managed` items must ask an approver ("" = within the cap)."""
    cap = blast_radius_cap(policy.max_delete, managed)
    if cap is None or expired <= cap:
        return ""
    share = f" ({expired * 100 // managed}%)" if managed else ""
    return (
        f"{expired} of the {managed} items the policy manages would go{share}, "
        f"more than max_delete = {policy.max_delete} allows ({cap})"
    )


def archives(policy: Policy, item) -> bool:
    """Whether an expired item goes to the archive tier (an archive policy's standard-tier snapshot) or is deleted."""
    return policy.on_expired == "archive" and item.kind == SNAPSHOT and not item.archived


def archive_note(count: int, gib: int, price: float, archive_price: float) -> str:
    """The archive's price, with the catch: billed on the full size, and a restore takes hours."""
    cost = archive_estimate(count, gib, price, archive_price)
    return (
        f"archiving {count:,} snapshot{'s' if count != 1 else ''} ({gib:,} GiB full size) "
        f"≈ ${cost.archive_usd_month:,.2f}/month in archive vs up to ${cost.standard_usd_month:,.2f}/month standard; "
        "archive is billed on the full size (not incrementally, so it may cost more than a snapshot whose blocks "
        "are shared with others) and a restore takes hours"
    )


def sweep_plan(policy: Policy, expired: Sequence[Decision], price: float, archive_price: float = 0.0125) -> Plan:
    """One approval plan for a sweep's whole batch of expired items (any regions).

    Under an archive policy the batch archives its standard-tier snapshots and
    deletes only the archived ones past archive_delete_after.
    """
    items = tuple(
        PlanItem(
            d.item.id,
            d.item.kind,
            d.item.size_gib,
            f"of {d.item.source_id} in {d.item.region}: {d.reason}",
            region=d.item.region,
        )
        for d in expired
    )
    regions = sorted({i.region for i in items})
    noun = "snapshots" if policy.resource == "volume" else "AMIs (with their snapshots)"
    to_archive = [d.item for d in expired if archives(policy, d.item)]
    if policy.on_expired == "archive":
        archived_gib = sum(i.size_gib for i in to_archive)
        gone = [d.item for d in expired if not archives(policy, d.item)]
        gib = sum(i.size_gib for i in gone)
        what = [f"archive {len(to_archive)} expired snapshots"] if to_archive else []
        what += [f"delete {len(gone)} archived past archive_delete_after"] if gone else []
        return Plan(
            kind="sweep-delete",
            region=regions[0] if regions else "",
            title=f"Policy {policy.name}: {', '.join(what)} in {', '.join(regions)}",
            items=items,
            gib_freed=gib,
            usd_month_freed=monthly_usd(gib, archive_price),  # the deletions; the archiving's price is a warning
            warnings=(f"Archive tier: {archive_note(len(to_archive), archived_gib, price, archive_price)}.",)
            if to_archive
            else (),
            params={"policy": policy.name, "archive": [i.id for i in to_archive]},
        )
    gib = sum(i.size_gib for i in items)
    return Plan(
        kind="sweep-delete",
        region=regions[0] if regions else "",
        title=f"Policy {policy.name}: delete {len(items)} expired {noun} in {', '.join(regions)}",
        items=items,
        gib_freed=gib,
        usd_month_freed=monthly_usd(gib, price),
        params={"policy": policy.name},
    )


def with_recoverability(gw: Ec2Gateway, plan: Plan, now: datetime) -> Plan:
    """A sweep's approval plan with what the Recycle Bin would do with each deletion (rules read once per region).

    Items an archive policy archives are not deleted, so they say nothing of it.
    """
    to_archive = set(plan.params.get("archive", ()))
    rules = {region: read_rules(gw, region) for region in {i.region or plan.region for i in plan.items}}
    tags = {}
    for listing_region in rules:
        wanted = [i.resource_id for i in plan.items if (i.region or plan.region) == listing_region]
        snaps = [w for w in wanted if w.startswith("snap-")]
        images = [w for w in wanted if w.startswith("ami-")]
        try:
            if snaps:
                found = gw.describe_snapshots(listing_region, filters=[{"Name": "snapshot-id", "Values": snaps}])
                tags.update({s.id: s.tags for s in found})
            if images:
                tags.update({i.id: i.tags for i in gw.find_images(listing_region, images).values()})
        except errors.BotError as exc:
            log.warning("could not read the tags of a sweep's items in %s: %s", listing_region, exc.message)
    items, permanent = [], 0
    for item in plan.items:
        if item.resource_id in to_archive:
            items.append(item)
            continue
        fate = rules[item.region or plan.region].recoverability(item.kind, tags.get(item.resource_id, {}), now)
        permanent += fate == PERMANENT
        items.append(dataclasses.replace(item, detail=f"{item.detail}; {fate}"))
    notes = [f"recoverability unknown in {r}: {b.unknown}" for r, b in sorted(rules.items()) if b.unknown]
    if permanent:
        notes.append(f"{permanent} of {len(items)} cannot be undeleted: no Recycle Bin rule covers them")
    return dataclasses.replace(plan, items=tuple(items), warnings=(*plan.warnings, *notes))


def _decide_listing(listing: Listing, policy: Policy, now: datetime, tz: tzinfo) -> dict[str, Decision]:
    """Item ID → its retention decision, for one region's listing."""
    inventory = build_inventory(listing.snapshots, listing.images, listing.locks)
    return {d.item.id: d for d in decide(inventory, policy, now, tz=tz)}


class _RegionSweep:
    """Deleting one region's share of a batch, each item decided again at the moment it goes.

    The batch says which items may go; whether each one goes is decided here,
    again, from a fresh listing and the policy as configured now: an item
    pinned with chatops:keep=true, back inside the newest `keep` (newer ones
    were deleted meanwhile), no longer the policy's, or no longer there is
    spared, with the reason.  A long batch lists and decides again every
    `redecide_after`, so no deletion rests on a decision older than that.

    An expired AMI is deregistered, then each backing snapshot gets its own
    outcome: kept when it also backs another AMI or is pinned, else deleted,
    with its own retries.  Before the deregistration every backing snapshot
    is tagged with the policy and `chatops:ami`, so one whose deletion still
    fails is collected as a leftover by a later sweep rather than leaked.
    """

    def __init__(
        self,
        ctx: Context,
        policy: Policy,
        region: str,
        items: Sequence[PlanItem],
        progress: Progress,
        listing: Listing | None,
        redecide_after: float,
    ):
        self.ctx, self.gw, self.policy, self.region = ctx, ctx.gateway, policy, region
        self.items, self.progress, self.redecide_after = items, progress, redecide_after
        self.tz = ZoneInfo(ctx.config.schedule.timezone)
        self.results: dict[str, ItemResult] = {}
        self.extra: list[ItemResult] = []  # an AMI's backing snapshots, each with its own outcome
        self._lock = threading.Lock()
        self._decided_at = -math.inf  # no decision yet: the first item lists and decides
        if listing is not None:
            self._adopt(listing)

    # -- deciding --

    def _adopt(self, listing: Listing) -> None:
        """Decide every item of a fresh listing, and index what deleting needs (images, backing, tags)."""
        self._decisions = _decide_listing(listing, self.policy, self.ctx.now(), self.tz)
        self._images = {i.id: i for i in listing.images if i.state != "deregistered"}
        backing: dict[str, set[str]] = defaultdict(set)
        for image in self._images.values():
            for snap in image.snapshot_ids:
                backing[snap].add(image.id)
        self._backing = backing
        self._snap_tags: dict[str, Mapping[str, str]] = {s.id: s.tags for s in listing.snapshots}
        self._locks = listing.locks
        self._uses: dict[str, list[ImageUse]] | None = None  # who launches from which AMI: asked when an AMI goes
        self._decided_at = time.monotonic()

    def image_uses(self, image_id: str) -> list[ImageUse]:
        """What would launch from `image_id`: one map per region, built at its first AMI and after each re-decision."""
        with self._lock:
            if self._uses is None:
                self._uses = self.gw.image_uses(self.region)
            return self._uses.get(image_id, [])

    def refresh(self) -> None:
        """List and decide again when the last decision is older than `redecide_after` (raises BotError)."""
        with self._lock:
            if time.monotonic() - self._decided_at >= self.redecide_after:
                self._adopt(list_policy_items(self.gw, self.policy.name, self.region))

    def verdict(self, item: PlanItem) -> ItemResult | None:
        """None when the item is still expired; else why it is not deleted."""
        rid = item.resource_id
        decision = self._decisions.get(rid)
        if decision is None:
            return ItemResult(
                rid,
                "skipped",
                f"no longer exists (or no longer tagged {POLICY}={self.policy.name}); not deleted",
                self.region,
            )
        if decision.action == "expire":
            return None
        return ItemResult(rid, "spared", f"spared: {decision.reason}", self.region)

    # -- acting --

    def attempt(self, task: tuple, final: bool) -> list[tuple]:
        """Run one task; returns the tasks to try again in the next round (passing failures)."""
        if task[0] == "snapshot":
            return self._delete_backing(task[1], task[2], final)
        item = self.items[task[1]]
        if self.ctx.stopping.is_set():
            self._finish(
                ItemResult(item.resource_id, "failed", f"{SHUTTING_DOWN}; the next sweep picks it up", self.region)
            )
            return []
        try:
            self.refresh()
        except errors.BotError as exc:
            if not final and isinstance(exc, TRANSIENT):
                return [task]
            self._finish(ItemResult(item.resource_id, "failed", f"could not re-check: {exc.message}", self.region))
            return []
        spared = self.verdict(item)
        if spared is not None:
            self._finish(spared)
            return []
        try:
            if item.kind == IMAGE:
                return self._deregister(item, task, final)
            if archives(self.policy, self._decisions[item.resource_id].item):
                return self._archive(item, task, final)
            if not _first_call(lambda: self.gw.delete_snapshot(self.region, item.resource_id), final):
                return [task]
            self._finish(ItemResult(item.resource_id, "done", "deleted", self.region))
        except errors.NotFound:
            self._finish(ItemResult(item.resource_id, "skipped", "no longer exists", self.region))
        except errors.BotError as exc:
            self._finish(ItemResult(item.resource_id, "failed", exc.message, self.region))
        return []

    def _archive(self, item: PlanItem, task: tuple, final: bool) -> list[tuple]:
        """Move an expired snapshot to the archive tier, then tag when (archive_delete_after counts from it).

        Tagged after, not before: a snapshot tagged but never archived would
        read as one restored on purpose and never be archived.  A tag that
        fails leaves it archived with no date: kept, never deleted by
        archive_delete_after (the failure says so).
        """
        rid = item.resource_id
        if not _first_call(lambda: self.gw.archive_snapshot(self.region, rid), final):
            return [task]
        try:
            self.gw.create_tags(self.region, [rid], archived_tags(self.ctx.now()))
        except errors.BotError as exc:
            why = f"archived, but tagging {ARCHIVED_AT} failed ({exc.message}); archive_delete_after cannot apply"
            self._finish(ItemResult(rid, "failed", why, self.region))
            return []
        self._finish(ItemResult(rid, "done", ARCHIVED, self.region))
        return []

    def _deregister(self, item: PlanItem, task: tuple, final: bool) -> list[tuple]:
        rid = item.resource_id
        image = self._images.get(rid)
        if image is None:  # deregistered by someone else since the decision
            self._finish(ItemResult(rid, "skipped", "no longer exists", self.region))
            return []
        uses = self.image_uses(rid)
        if uses:
            self._finish(ItemResult(rid, "spared", f"spared: in use by {describe_uses(uses)}", self.region))
            return []
        snaps = image.snapshot_ids
        # Know every backing snapshot's tags (pins) and mark them as this policy's and
        # this AMI's *before* the AMI goes: afterwards nothing would tie them to it.
        untagged = [s for s in snaps if s not in self._snap_tags or self._snap_tags[s].get(AMI) != rid]
        if untagged:
            try:
                if not _first_call(lambda: self._learn_and_tag(image, untagged), final):
                    return [task]
            except errors.NotFound:
                pass  # a backing snapshot already gone: nothing to tag, nothing to leak
        if not _first_call(lambda: self.gw.deregister_image(self.region, rid), final):
            return [task]
        follow: list[tuple] = []
        kept: list[str] = []
        for snap in snaps:
            others = self._backing.get(snap, set()) - {rid}
            if others:
                kept.append(snap)
                self._extra(ItemResult(snap, "spared", f"kept: it also backs {min(others)}", self.region))
            elif is_pinned(self._snap_tags.get(snap)):
                kept.append(snap)
                self._extra(ItemResult(snap, "spared", f"kept: pinned with {KEEP}=true", self.region))
            elif lock_refusal(self._locks.get(snap), self.ctx.now()):
                kept.append(snap)
                why = lock_refusal(self._locks.get(snap), self.ctx.now())
                self._extra(ItemResult(snap, "spared", f"kept: {why}", self.region))
            else:
                follow += self._delete_backing(rid, snap, final)
        note = f"; kept {', '.join(kept)}" if kept else ""
        self._finish(ItemResult(rid, "done", f"deregistered{note}", self.region))
        return follow

    def _learn_and_tag(self, image: Image, snapshot_ids: Sequence[str]) -> None:
        only = [{"Name": "snapshot-id", "Values": list(snapshot_ids)}]
        found = {s.id: s.tags for s in self.gw.describe_snapshots(self.region, filters=only)}
        tags = backing_snapshot_tags(image.id, image.tags)
        if found:
            self.gw.create_tags(self.region, list(found), tags)
        self._snap_tags.update({sid: {**old, **tags} for sid, old in found.items()})

    def _delete_backing(self, image_id: str, snap: str, final: bool) -> list[tuple]:
        if self.ctx.stopping.is_set():
            self._extra(ItemResult(snap, "failed", f"{SHUTTING_DOWN}; {_LEFTOVER.format(image_id)}", self.region))
            return []
        try:
            if not _first_call(lambda: self.gw.delete_snapshot(self.region, snap), final):
                return [("snapshot", image_id, snap)]
            self._extra(ItemResult(snap, "done", f"deleted (backed {image_id})", self.region))
        except errors.NotFound:
            self._extra(ItemResult(snap, "skipped", "already gone", self.region))
        except errors.BotError as exc:
            self._extra(ItemResult(snap, "failed", f"{exc.message}; {_LEFTOVER.format(image_id)}", self.region))
        return []

    def _finish(self, result: ItemResult) -> None:
        with self._lock:
            self.results[result.resource_id] = result
        self.progress(result)

    def _extra(self, result: ItemResult) -> None:
        with self._lock:
            self.extra.append(result)
        self.progress(result)

    def run(self, sleep: Callable[[float], object], pauses: Sequence[float]) -> list[ItemResult]:
        pending: list[tuple] = [("item", index) for index in range(len(self.items))]
        rounds = (0.0, *pauses)
        deleters = max(1, min(DELETERS_PER_REGION, len(self.items)))
        with ThreadPoolExecutor(max_workers=deleters, thread_name_prefix=f"delete-{self.region}") as pool:
            for number, pause in enumerate(rounds):
                if not pending:
                    break
                if pause and not self.ctx.stopping.is_set():
                    log.warning("sweep: %d deletion(s) in %s to retry in %.0f s", len(pending), self.region, pause)
                    sleep(pause)
                attempt = partial(self.attempt, final=number == len(rounds) - 1 or self.ctx.stopping.is_set())
                pending = [again for follow in pool.map(attempt, pending) for again in follow]
        ordered = [self.results[i.resource_id] for i in self.items if i.resource_id in self.results]
        return ordered + self.extra


_LEFTOVER = "it is tagged as left behind by {} and a later sweep deletes it"


def _first_call(call: Callable[[], object], final: bool) -> bool:
    """Make the call; False when it failed for a passing reason and a later round may try again."""
    try:
        call()
    except TRANSIENT:
        if final:
            raise
        return False
    return True


def _by_region(plan: Plan) -> dict[str, list[PlanItem]]:
    groups: dict[str, list[PlanItem]] = defaultdict(list)
    for item in plan.items:
        groups[item.region or plan.region].append(item)
    return groups


def reconcile_sweep(ctx: Context, plan: Plan) -> list[ItemResult]:
    """After a crash: an item gone is done, one still there failed (the next sweep picks it up)."""
    results = []
    to_archive = set(plan.params.get("archive", ()))  # those meant for the archive tier, not deletion
    for region, items in _by_region(plan).items():
        listing = list_policy_items(ctx.gateway, plan.params.get("policy", ""), region)
        present = {s.id for s in listing.snapshots} | {i.id for i in listing.images if i.state != "deregistered"}
        archived = {s.id for s in listing.snapshots if s.archived and ARCHIVED_AT in s.tags}
        for item in items:
            if item.resource_id in archived and item.resource_id in to_archive:
                results.append(ItemResult(item.resource_id, "done", ARCHIVED, region))
                continue
            results.append(
                ItemResult(
                    item.resource_id,
                    "failed",
                    "interrupted before it was deleted; it is picked up again by the next sweep",
                    region,
                )
                if item.resource_id in present
                else ItemResult(item.resource_id, "done", "deleted", region)
            )
    return results


def execute_sweep(
    ctx: Context,
    plan: Plan,
    progress: Progress,
    known: Mapping[str, Listing] | None = None,
    *,
    sleep: Callable[[float], object] | None = None,
    pauses: Sequence[float] = DELETE_RETRY_PAUSES,
    redecide_after: float = REDECIDE_AFTER,
) -> list[ItemResult]:
    """Delete a sweep's batch: regions in parallel, each paced by the gateway; every item gets a result.

    Nothing is deleted on the strength of the request alone: each region is
    listed again and the policy's retention decided again (see _RegionSweep),
    with the policy as configured now; a policy no longer configured deletes
    nothing.  `known` is a listing made moments ago (a sweep deleting right
    away) used for the first decision instead of listing a second time.
    """
    groups = _by_region(plan)
    name = plan.params.get("policy", "")
    policy = ctx.config.policy(name)
    account = plan.account or ctx.config.aws.account_name
    why_not = ""
    if policy is None:
        why_not = f"spared: policy {name} is no longer configured"
    elif account not in ctx.config.policy_accounts(policy):
        why_not = f"spared: policy {name} no longer covers account {account}"
    if why_not:
        results = [
            ItemResult(i.resource_id, "spared", why_not, region) for region, items in groups.items() for i in items
        ]
        for r in results:
            progress(r)
        return results
    known = known or {}
    wait = sleep or ctx.stopping.wait  # a shutdown cuts a retry pause short

    def work(region: str) -> list[ItemResult]:
        sweep = _RegionSweep(ctx, policy, region, groups[region], progress, known.get(region), redecide_after)
        return sweep.run(wait, pauses)

    outcome = in_parallel(list(groups), work)
    results: list[ItemResult] = []
    for region, value in outcome.items():
        if isinstance(value, Exception):  # never drop a batch silently
            results += [ItemResult(i.resource_id, "failed", _reason(value), region) for i in groups[region]]
        else:
            results += value
    return results


def tag_policy_image_snapshots(gw: Ec2Gateway, policy: Policy, listings: Mapping[str, Listing]) -> list[Failed]:
    """Tag the backing snapshots of the policy's AMIs with the policy and `chatops:ami` (once each).

    CreateImage cannot tag snapshots portably, so a policy AMI's snapshots start
    untagged; tagged, a snapshot its AMI leaves behind is a leftover a later
    sweep collects (bot/domain/retention.py) instead of a leak no sweep ever sees.
    """
    if policy.resource != "instance":
        return []
    failed = []
    for region, listing in listings.items():
        tagged = {s.id: s.tags for s in listing.snapshots}
        for image in listing.images:
            if image.tags.get(POLICY) != policy.name or image.state == "deregistered":
                continue
            todo = [s for s in image.snapshot_ids if tagged.get(s, {}).get(AMI) != image.id]
            if not todo:
                continue
            try:
                gw.create_tags(region, todo, backing_snapshot_tags(image.id, image.tags))
            except errors.NotFound:
                pass  # a snapshot not there yet (pending AMI) or gone: the next run tags it
            except errors.BotError as exc:
                failed.append(Failed(region, image.id, "tag", exc.message))
    return failed


def report_from_results(
    policy: Policy,
    decisions: Sequence[Decision],
    results: Sequence[ItemResult],
    created: Sequence[Created],
    failed: Sequence[Failed],
) -> PolicyReport:
    deleted = [r.resource_id for r in results if r.outcome == "done" and r.reason != ARCHIVED]
    archived = [r.resource_id for r in results if r.outcome == "done" and r.reason == ARCHIVED]
    spared = [Spared(r.region, r.resource_id, r.reason) for r in results if r.outcome in ("skipped", "spared")]
    failures = list(failed) + [
        Failed(r.region, r.resource_id, "archive" if r.reason.startswith(ARCHIVED) else "delete", r.reason)
        for r in results
        if r.outcome == "failed"
    ]
    return policy_report(
        policy.name,
        policy.on_expired,
        decisions,
        created=created,
        deleted=deleted,
        archived=archived,
        failed=failures,
        spared=spared,
    )
