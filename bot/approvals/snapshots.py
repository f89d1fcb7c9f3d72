"""`/snapshot delete`: the plan (read-only, refused up front when it cannot be done), its executor and reconcile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.domain.costs import monthly_usd
from bot.domain.plans import SHUTTING_DOWN, Context, ItemResult, Plan, PlanItem, Progress
from bot.domain.recycle_bin import PERMANENT as PERMANENT_NOTE
from bot.domain.recycle_bin import read_locks, read_rules, refuse_locked
from bot.domain.tags import KEEP, is_pinned

if TYPE_CHECKING:
    from bot.aws.gateway import Ec2Gateway
    from bot.aws.models import Snapshot


def every_snapshot(gw: Ec2Gateway, region: str, ids: list[str]) -> dict[str, Snapshot]:
    """ID → snapshot for every one of `ids`; NotFound naming the missing (a typo must not shrink a plan)."""
    found = {s.id: s for s in _existing_snapshots(gw, region, ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise errors.NotFound(
            f"{', '.join(missing)} not found in {region}; nothing was requested.",
            "Check the IDs with `/snapshot list`, or add region=….",
        )
    return found


def delete_snapshots_plan(
    gw: Ec2Gateway,
    region: str,
    snapshot_ids: Iterable[str],
    usd_per_gb_month: float,
    title: str | None = None,
    params: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Plan:
    """Read-only: describe the snapshots and refuse up front what can't be deleted.

    Every ID must exist (a typo must not silently shrink the plan), none may
    back a registered AMI (AWS would refuse; the user must deregister first)
    and none may be locked (refused saying when it can go).  Each item says
    whether the Recycle Bin would keep it, and until when.
    """
    now = now or datetime.now(UTC)
    ids = list(dict.fromkeys(snapshot_ids))
    found = every_snapshot(gw, region, ids)
    backing = gw.images_using_snapshots(region, ids)
    if backing:
        pairs = ", ".join(f"{s} backs {a}" for s, a in sorted(backing.items()))
        raise errors.Conflict(
            f"{pairs}; a snapshot backing an AMI cannot be deleted. Nothing was requested.",
            "Deregister the AMI first: `/ami deregister ami-…`.",
        )
    locks = read_locks(gw, region)
    refuse_locked(locks, ids, now)
    rules = read_rules(gw, region)
    items = []
    for sid in ids:
        snap = found[sid]
        age = f", started {snap.start_time:%Y-%m-%d}"
        desc = f", \u201c{snap.description[:80]}\u201d" if snap.description else ""
        keep = f" (tagged {KEEP}=true)" if is_pinned(snap.tags) else ""
        source = snap.volume_id or "unknown volume"
        fate = rules.recoverability("snapshot", snap.tags, now)
        items.append(PlanItem(sid, "snapshot", snap.size_gib, f"of {source}{age}{desc}{keep}; {fate}"))
    gib = sum(i.size_gib for i in items)
    pinned = [sid for sid in ids if is_pinned(found[sid].tags)]
    warnings = [f"{sid} is tagged {KEEP}=true: approving deletes it anyway" for sid in pinned]
    warnings += [f"recoverability unknown: {why}" for why in (rules.unknown, locks.unknown) if why]
    permanent = [i.resource_id for i in items if i.detail.endswith(PERMANENT_NOTE)]
    if permanent and not rules.unknown:
        warnings.append(f"{len(permanent)} of {len(items)} cannot be undeleted: no Recycle Bin rule covers them")
    return Plan(
        kind="delete-snapshots",
        region=region,
        title=title or f"Delete {len(items)} snapshot{'s' if len(items) != 1 else ''} in {region}",
        items=tuple(items),
        gib_freed=gib,
        usd_month_freed=monthly_usd(gib, usd_per_gb_month),
        warnings=tuple(warnings),
        # The approver sees these pinned and approves anyway; any other snapshot pinned
        # by the time of execution is spared (see execute_delete_snapshots).
        params={**(params or {}), "pinned": pinned},
    )


def reconcile_delete_snapshots(ctx: Context, plan: Plan) -> list[ItemResult]:
    """After a crash: a snapshot gone is done, one still there failed (never deleted again here)."""
    ids = [i.resource_id for i in plan.items]
    still = {s.id for s in _existing_snapshots(ctx.gateway, plan.region, ids)}
    return [
        ItemResult(i, "failed", "interrupted before it was deleted; request again")
        if i in still
        else ItemResult(i, "done", "deleted")
        for i in ids
    ]


def _existing_snapshots(gw: Ec2Gateway, region: str, ids: Sequence[str]):
    """Those of `ids` that still exist (a describe by IDs fails wholesale on one missing ID)."""
    if not ids:
        return []
    try:
        return list(gw.describe_snapshots(region, ids))
    except errors.NotFound:
        found = []
        for sid in ids:
            try:
                found.append(gw.get_snapshot(region, sid))
            except errors.NotFound:
                pass
        return found


def execute_delete_snapshots(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    """Re-check, then delete each snapshot; one failure never drops the rest.

    Decided again at execution: a snapshot gone is skipped, one that now backs
    an AMI fails, and one pinned with chatops:keep=true since the request (the
    approver did not see it pinned) or locked since is spared.
    """
    gw = ctx.gateway
    ids = [i.resource_id for i in plan.items]
    pinned_at_request = set(plan.params.get("pinned", ()))
    existing = {s.id: s for s in _existing_snapshots(gw, plan.region, ids)}
    backing = gw.images_using_snapshots(plan.region, list(existing))
    locks = read_locks(gw, plan.region) if existing else None
    results = []
    for sid in ids:
        if ctx.stopping.is_set():
            result = ItemResult(sid, "failed", f"{SHUTTING_DOWN}; request again")
        elif sid not in existing:
            result = ItemResult(sid, "skipped", "no longer exists")
        elif is_pinned(existing[sid].tags) and sid not in pinned_at_request:
            result = ItemResult(sid, "spared", f"pinned with {KEEP}=true since the request; not deleted")
        elif sid in backing:
            result = ItemResult(sid, "failed", f"now backs {backing[sid]}; not deleted")
        elif locks is not None and locks.refusal(sid, ctx.now()):
            result = ItemResult(sid, "spared", f"{locks.refusal(sid, ctx.now())}; not deleted")
        else:
            try:
                gw.delete_snapshot(plan.region, sid)
                result = ItemResult(sid, "done", "deleted")
            except errors.NotFound:
                result = ItemResult(sid, "skipped", "no longer exists")
            except errors.BotError as exc:
                result = ItemResult(sid, "failed", exc.message)
        progress(result)
        results.append(result)
    return results
