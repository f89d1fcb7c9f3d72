"""`/snapshot archive`: the plan (read-only, refused up front when it cannot be done), its executor and reconcile.

Archiving is not a deletion, but it asks an approver all the same: an
archived snapshot cannot make a volume until it is restored, which takes
hours, and the archive tier bills at least 90 days of its full size.  A
freeze holds it as it holds deletions (the executor is registered with
`deletes=True`; README, "Archive tier").  `/snapshot unarchive` needs no
approver: restoring makes nothing unusable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot import errors
from bot.approvals.snapshots import _existing_snapshots, every_snapshot
from bot.domain.costs import archive_estimate
from bot.domain.lifecycle import ARCHIVED, archive_note
from bot.domain.plans import SHUTTING_DOWN, Context, ItemResult, Plan, PlanItem, Progress
from bot.domain.tags import ARCHIVED_AT, KEEP, archived_tags, is_pinned

if TYPE_CHECKING:
    from bot.aws.gateway import Ec2Gateway


def archive_snapshots_plan(
    gw: Ec2Gateway, region: str, snapshot_ids: Iterable[str], price: float, archive_price: float
) -> Plan:
    """Read-only: every ID must exist, be completed, not be archived already and back no registered AMI."""
    ids = list(dict.fromkeys(snapshot_ids))
    found = every_snapshot(gw, region, ids)
    archived = [i for i in ids if found[i].archived]
    if archived:
        raise errors.Conflict(
            f"{', '.join(archived)} already in the archive tier; nothing was requested.",
            "`/snapshot unarchive snap-… [days=N]` restores one.",
        )
    unfinished = [f"{i} is {found[i].state}" for i in ids if found[i].state != "completed"]
    if unfinished:
        raise errors.Conflict(
            f"{', '.join(unfinished)}; only completed snapshots can be archived. Nothing was requested.",
            "Try again once it has completed.",
        )
    backing = gw.images_using_snapshots(region, ids)
    if backing:
        pairs = ", ".join(f"{s} backs {a}" for s, a in sorted(backing.items()))
        raise errors.Conflict(
            f"{pairs}; a snapshot backing an AMI is not archived (the AMI could not launch). Nothing was requested.",
            "Deregister the AMI first: `/ami deregister ami-… keep-snapshots`.",
        )
    items = tuple(
        PlanItem(
            sid,
            "snapshot",
            found[sid].size_gib,
            f"of {found[sid].volume_id or 'unknown volume'}, started {found[sid].start_time:%Y-%m-%d}"
            + (f" (tagged {KEEP}=true)" if is_pinned(found[sid].tags) else ""),
        )
        for sid in ids
    )
    gib = sum(i.size_gib for i in items)
    pinned = [sid for sid in ids if is_pinned(found[sid].tags)]
    cost = archive_estimate(len(items), gib, price, archive_price)
    warnings = (
        f"Archive tier: {archive_note(cost.count, gib, price, archive_price)}; "
        "deleting it within 90 days of archiving still bills the 90 days.",
        *(f"{sid} is tagged {KEEP}=true: approving archives it anyway" for sid in pinned),
    )
    return Plan(
        kind="archive-snapshots",
        region=region,
        title=f"Archive {len(items)} snapshot{'s' if len(items) != 1 else ''} in {region}",
        items=items,
        warnings=warnings,
        params={"pinned": pinned},
    )


def execute_archive_snapshots(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    """Re-check, then archive each snapshot (tagging when); one failure never drops the rest.

    Gone: skipped; archived meanwhile: skipped; pinned since the request: spared;
    now backing an AMI: failed.
    """
    gw = ctx.gateway
    ids = [i.resource_id for i in plan.items]
    pinned_at_request = set(plan.params.get("pinned", ()))
    existing = {s.id: s for s in _existing_snapshots(gw, plan.region, ids)}
    backing = gw.images_using_snapshots(plan.region, list(existing))
    results = []
    for sid in ids:
        if ctx.stopping.is_set():
            result = ItemResult(sid, "failed", f"{SHUTTING_DOWN}; request again")
        elif sid not in existing:
            result = ItemResult(sid, "skipped", "no longer exists")
        elif existing[sid].archived:
            result = ItemResult(sid, "skipped", "already in the archive tier")
        elif is_pinned(existing[sid].tags) and sid not in pinned_at_request:
            result = ItemResult(sid, "spared", f"pinned with {KEEP}=true since the request; not archived")
        elif sid in backing:
            result = ItemResult(sid, "failed", f"now backs {backing[sid]}; not archived")
        else:
            result = _archive_one(ctx, plan.region, sid)
        progress(result)
        results.append(result)
    return results


def _archive_one(ctx: Context, region: str, sid: str) -> ItemResult:
    try:
        ctx.gateway.archive_snapshot(region, sid)
    except errors.NotFound:
        return ItemResult(sid, "skipped", "no longer exists")
    except errors.BotError as exc:
        return ItemResult(sid, "failed", exc.message)
    try:
        ctx.gateway.create_tags(region, [sid], archived_tags(ctx.now()))
    except errors.BotError as exc:
        return ItemResult(sid, "failed", f"archived, but tagging {ARCHIVED_AT} failed: {exc.message}")
    return ItemResult(sid, "done", ARCHIVED)


def reconcile_archive_snapshots(ctx: Context, plan: Plan) -> list[ItemResult]:
    """After a crash: a snapshot in the archive tier is done; one gone is skipped; one still standard failed."""
    ids = [i.resource_id for i in plan.items]
    found = {s.id: s for s in _existing_snapshots(ctx.gateway, plan.region, ids)}
    return [
        ItemResult(i, "skipped", "no longer exists")
        if i not in found
        else ItemResult(i, "done", ARCHIVED)
        if found[i].archived
        else ItemResult(i, "failed", "interrupted before it was archived; request again")
        for i in ids
    ]
