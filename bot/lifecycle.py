"""Lifecycle policies: scheduled backups, DR copies and retention sweeps (SPEC §5).

Domain functions over the gateway, no Slack.  A policy run creates a snapshot
(volume policy) or an AMI without reboot (instance policy) of every resource
whose tags match, copies what retention keeps to the `copy_to` regions, then
sweeps: one describe pass per region gives the inventory, `retention.decide`
gives a decision with a reason for every item, and the expired ones are
deleted now (`delete`), put in one approval request (`approve`), or only
reported (`report`).  Regions are worked in parallel; within a region the
gateway's token buckets pace calls to EC2's refill rate.

Deleting is the `sweep-delete` executor: the same code runs for an approved
batch and for `on_expired = "delete"`, re-checking every item first, and one
failure never drops the rest of the batch.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from bot import errors
from bot.approvals import ItemResult, Plan, PlanItem, Progress, executor
from bot.config import Config, Policy
from bot.costs import monthly_usd
from bot.gateway import Ec2Gateway, Image, Snapshot
from bot.retention import IMAGE, KIND_OF, SNAPSHOT, Decision, build_inventory, decide
from bot.sweep_report import Created, Failed, PolicyReport, policy_report
from bot.tags import POLICY, SOURCE, carried_over, managed_tags

log = logging.getLogger(__name__)

COPY_OF = "chatops:copy-of"
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


def list_policy_items(gw: Ec2Gateway, policy_name: str, region: str) -> Listing:
    """One paginated pass: the policy's snapshots, and every own AMI (to know which snapshots back one)."""
    snapshots = tuple(gw.describe_snapshots(region, filters=[{"Name": f"tag:{POLICY}", "Values": [policy_name]}]))
    images = tuple(gw.describe_images(region))
    return Listing(region, snapshots, images)


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
        decisions += decide(build_inventory(listing.snapshots, listing.images), policy, now, tz=tz)
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


def _create_one(gw: Ec2Gateway, policy: Policy, source, now: datetime, user: str) -> str:
    name = source.tags.get("Name", "")
    tags = managed_tags(user, policy=policy.name, **{SOURCE: source.id})
    if name:
        tags["Name"] = name
    stamp = now.strftime("%Y-%m-%d %H.%M")
    if policy.resource == "volume":
        description = f"{policy.name} {stamp} of {source.id}" + (f" ({name})" if name else "")
        return gw.create_snapshot(source.region, source.id, description, tags).id
    ami_name = f"{policy.name} {name or source.id} {stamp}"[:128]
    image_id = gw.create_image(
        source.region, source.id, ami_name, f"{policy.name} of {source.id}", tags, no_reboot=True
    )
    return image_id


def create_backups(
    gw: Ec2Gateway,
    config: Config,
    policy: Policy,
    now: datetime,
    user: str = SCHEDULER_USER,
    sleep: Callable[[float], None] = time.sleep,
    pauses: Sequence[float] = CREATE_RETRY_PAUSES,
) -> tuple[list[Created], list[Failed]]:
    """Snapshot (or image) every matching resource in the policy's regions.

    Throttling and concurrency limits are not failures: those resources are
    retried after a pause, and still-throttled ones are reported as deferred
    to the next run (a failure entry whose action is "create-deferred" only if
    every retry was refused).
    """

    def region_pass(region: str) -> tuple[list[Created], list[Failed]]:
        created: list[Created] = []
        failed: list[Failed] = []
        todo = matching_sources(gw, policy, region)
        for pause in (*pauses, None):
            retry = []
            for source in todo:
                try:
                    created.append(Created(region, source.id, _create_one(gw, policy, source, now, user)))
                except (errors.Throttled, errors.LimitExceeded) as exc:
                    retry.append((source, exc))
                except errors.BotError as exc:
                    failed.append(Failed(region, source.id, "create", exc.message))
            if not retry:
                break
            if pause is None:
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


def sweep_plan(policy: Policy, expired: Sequence[Decision], price: float) -> Plan:
    """One approval plan for a sweep's whole batch of expired items (any regions)."""
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
    gib = sum(i.size_gib for i in items)
    regions = sorted({i.region for i in items})
    noun = "snapshots" if policy.resource == "volume" else "AMIs (with their snapshots)"
    return Plan(
        kind="sweep-delete",
        region=regions[0] if regions else "",
        title=f"Policy {policy.name}: delete {len(items)} expired {noun} in {', '.join(regions)}",
        items=items,
        gib_freed=gib,
        usd_month_freed=monthly_usd(gib, price),
        params={"policy": policy.name},
    )


RegionState = tuple[set[str], dict[str, Image]]  # the policy's snapshot IDs, every own AMI by ID


def state_of(listing: Listing) -> RegionState:
    return {s.id for s in listing.snapshots}, {i.id: i for i in listing.images if i.state != "deregistered"}


def _region_state(gw: Ec2Gateway, region: str, policy_name: str) -> RegionState:
    """What exists now in a region (one describe pass)."""
    return state_of(list_policy_items(gw, policy_name, region))


def _delete_region(
    gw: Ec2Gateway,
    region: str,
    items: Sequence[PlanItem],
    policy_name: str,
    progress: Progress,
    known: RegionState | None = None,
    sleep: Callable[[float], None] = time.sleep,
    pauses: Sequence[float] = DELETE_RETRY_PAUSES,
) -> list[ItemResult]:
    try:
        snaps, images = known or _region_state(gw, region, policy_name)
    except errors.BotError as exc:
        results = [ItemResult(i.resource_id, "failed", f"could not re-check: {exc.message}", region) for i in items]
        for r in results:
            progress(r)
        return results
    backing = {s: image_id for image_id, image in images.items() for s in image.snapshot_ids}
    results: list[ItemResult | None] = [None] * len(items)

    def attempt(index: int, final: bool) -> bool:
        """Try one item; False: it failed for a passing reason and goes again in the next round."""
        result = _delete_item(gw, region, items[index], snaps, images, backing, final)
        if result is None:
            return False
        results[index] = result
        progress(result)
        return True

    pending = list(range(len(items)))
    rounds = (0.0, *pauses)
    deleters = max(1, min(DELETERS_PER_REGION, len(items)))
    with ThreadPoolExecutor(max_workers=deleters, thread_name_prefix=f"delete-{region}") as pool:
        for number, pause in enumerate(rounds):
            if not pending:
                break
            if pause:
                log.warning("sweep: %d deletion(s) in %s to retry in %.0f s", len(pending), region, pause)
                sleep(pause)
            done = list(pool.map(partial(attempt, final=number == len(rounds) - 1), pending))
            pending = [i for i, ok in zip(pending, done, strict=True) if not ok]
    return [r for r in results if r is not None]


def _delete_item(
    gw: Ec2Gateway,
    region: str,
    item: PlanItem,
    snaps: set[str],
    images: dict[str, Image],
    backing: dict[str, str],
    final: bool = True,
) -> ItemResult | None:
    """Delete one item; None when its first call failed for a passing reason and `final` is False.

    Only the first call is tried again later: once an AMI is deregistered, a
    failure deleting its snapshots is reported, since a second try would find
    the AMI gone and could not tell which snapshots were its.
    """
    rid = item.resource_id
    try:
        if item.kind == IMAGE:
            image = images.get(rid)
            if image is None:
                return ItemResult(rid, "skipped", "no longer exists", region)
            if not _first_call(lambda: gw.deregister_image(region, rid), final):
                return None
            kept = []
            for snap in image.snapshot_ids:
                other = next((i for i, im in images.items() if i != rid and snap in im.snapshot_ids), None)
                if other:
                    kept.append(f"{snap} (backs {other})")
                    continue
                try:
                    gw.delete_snapshot(region, snap)
                except errors.NotFound:
                    pass
            note = f"; kept {', '.join(kept)}" if kept else ""
            return ItemResult(
                rid, "done", f"deregistered, {len(image.snapshot_ids) - len(kept)} snapshot(s) deleted{note}", region
            )
        if rid not in snaps:
            return ItemResult(rid, "skipped", "no longer exists", region)
        if rid in backing:
            return ItemResult(rid, "failed", f"now backs {backing[rid]}; not deleted", region)
        if not _first_call(lambda: gw.delete_snapshot(region, rid), final):
            return None
        return ItemResult(rid, "done", "deleted", region)
    except errors.NotFound:
        return ItemResult(rid, "skipped", "no longer exists", region)
    except errors.BotError as exc:
        return ItemResult(rid, "failed", exc.message, region)


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


def _reconcile_sweep(gw: Ec2Gateway, plan: Plan) -> list[ItemResult]:
    results = []
    for region, items in _by_region(plan).items():
        snaps, images = _region_state(gw, region, plan.params.get("policy", ""))
        for item in items:
            present = item.resource_id in (images if item.kind == IMAGE else snaps)
            results.append(
                ItemResult(
                    item.resource_id,
                    "failed",
                    "interrupted before it was deleted; it is picked up again by the next sweep",
                    region,
                )
                if present
                else ItemResult(item.resource_id, "done", "deleted", region)
            )
    return results


@executor("sweep-delete", reconcile=_reconcile_sweep)
def execute_sweep(
    gw: Ec2Gateway,
    plan: Plan,
    progress: Progress,
    known: dict[str, RegionState] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    pauses: Sequence[float] = DELETE_RETRY_PAUSES,
) -> list[ItemResult]:
    """Delete a sweep's batch: regions in parallel, each paced by the gateway; every item gets a result.

    `known` is what a listing made moments ago showed (a sweep deleting right
    away); without it (an approval that waited) every region is re-checked.
    """
    groups = _by_region(plan)
    policy_name = plan.params.get("policy", "")
    known = known or {}
    outcome = in_parallel(
        list(groups), lambda r: _delete_region(gw, r, groups[r], policy_name, progress, known.get(r), sleep, pauses)
    )
    results: list[ItemResult] = []
    for region, value in outcome.items():
        if isinstance(value, Exception):  # never drop a batch silently
            results += [ItemResult(i.resource_id, "failed", _reason(value), region) for i in groups[region]]
        else:
            results += value
    return results


def report_from_results(
    policy: Policy,
    decisions: Sequence[Decision],
    results: Sequence[ItemResult],
    created: Sequence[Created],
    failed: Sequence[Failed],
) -> PolicyReport:
    deleted = [r.resource_id for r in results if r.outcome in ("done", "skipped")]
    failures = list(failed) + [
        Failed(r.region, r.resource_id, "delete", r.reason) for r in results if r.outcome == "failed"
    ]
    return policy_report(policy.name, policy.on_expired, decisions, created=created, deleted=deleted, failed=failures)
