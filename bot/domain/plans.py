"""Destructive actions as plans: built read-only, approved by a human, executed once.

A `Plan` states exactly what will happen (each resource, its size, what goes
with it) and is stored as JSON with the request, so the approver approves
that plan and nothing else: at execution every resource is re-checked and
if the world changed the item is refused, not improvised.  Each plan kind
has an `Executor`: `execute` (re-check, act, report per resource) and
`reconcile` (after a crash: what is already done, never acting again).

No Slack here; bot/approval_flow.py moves requests through their states and
talks to Slack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.config import Config
from bot.domain.costs import monthly_usd
from bot.domain.tags import KEEP, is_pinned

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway


@dataclass(frozen=True)
class PlanItem:
    """One resource the plan acts on."""

    resource_id: str
    kind: str  # snapshot | image | launch-permission | instance
    size_gib: int = 0
    detail: str = ""  # shown to the approver: "of vol-… (db-data), 12d old, 'nightly'"
    goes_with: tuple[str, ...] = ()  # e.g. an AMI's backing snapshots, deleted with it
    region: str = ""  # for batches spanning regions (sweeps); "" = the plan's region


@dataclass(frozen=True)
class Plan:
    kind: str  # the executor: delete-snapshots, deregister-image, share-image, create-image-reboot …
    region: str
    title: str  # "Delete 3 snapshots in us-east-1"
    items: tuple[PlanItem, ...]
    gib_freed: int = 0
    usd_month_freed: float = 0.0
    warnings: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)  # executor-specific, e.g. keep_snapshots

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Plan:
        items = tuple(PlanItem(**{**i, "goes_with": tuple(i.get("goes_with", ()))}) for i in raw["items"])
        return cls(
            **{**raw, "items": items, "warnings": tuple(raw.get("warnings", ())), "params": dict(raw.get("params", {}))}
        )


@dataclass(frozen=True)
class ItemResult:
    resource_id: str
    outcome: str  # done | skipped (already gone) | spared (decided again at execution: not deleted) | failed
    reason: str = ""
    region: str = ""  # "" = the plan's region
    started_image: str = ""  # an AMI the action started and that is still being made: followed in the thread

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


Progress = Callable[[ItemResult], None]

SHUTTING_DOWN = "not attempted: the bot was shutting down"


@dataclass(frozen=True)
class Context:
    """What an executor works with: AWS, the configuration as it is *now*, the clock, and the stop signal.

    Executors decide again at execution with `config` (a policy's current
    rules, not the ones of the request) and check `stopping` between items,
    so a shutdown stops a batch between two deletions rather than in the
    middle of one, and every item not attempted is reported as such.
    """

    gateway: Ec2Gateway
    config: Config
    clock: Callable[[], datetime]
    stopping: threading.Event = field(default_factory=threading.Event)

    def now(self) -> datetime:
        return self.clock()


@dataclass(frozen=True)
class Executor:
    execute: Callable[[Context, Plan, Progress], list[ItemResult]]
    reconcile: Callable[[Context, Plan], list[ItemResult]]


EXECUTORS: dict[str, Executor] = {}


def executor(kind: str, reconcile: Callable[[Context, Plan], list[ItemResult]]):
    """Register `execute` for plan `kind`, with its crash `reconcile`."""

    def add(execute: Callable[[Context, Plan, Progress], list[ItemResult]]):
        EXECUTORS[kind] = Executor(execute, reconcile)
        return execute

    return add


OUTCOMES = ("done", "skipped", "spared", "failed")


def summarise(results: Sequence[ItemResult]) -> str:
    counts = {k: sum(r.outcome == k for r in results) for k in OUTCOMES}
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "done")


# --- deleting snapshots ----------------------------------------------------------


def delete_snapshots_plan(
    gw: Ec2Gateway,
    region: str,
    snapshot_ids: Iterable[str],
    usd_per_gb_month: float,
    title: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Plan:
    """Read-only: describe the snapshots and refuse up front what can't be deleted.

    Every ID must exist (a typo must not silently shrink the plan) and none may
    back a registered AMI (AWS would refuse; the user must deregister first).
    """
    ids = list(dict.fromkeys(snapshot_ids))
    found = {s.id: s for s in _existing_snapshots(gw, region, ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise errors.NotFound(
            f"{', '.join(missing)} not found in {region}; nothing was requested.",
            "Check the IDs with `/snapshot list`, or add region=….",
        )
    backing = gw.images_using_snapshots(region, ids)
    if backing:
        pairs = ", ".join(f"{s} backs {a}" for s, a in sorted(backing.items()))
        raise errors.Conflict(
            f"{pairs}; a snapshot backing an AMI cannot be deleted. Nothing was requested.",
            "Deregister the AMI first: `/ami deregister ami-…`.",
        )
    items = []
    for sid in ids:
        snap = found[sid]
        age = f", started {snap.start_time:%Y-%m-%d}"
        desc = f", \u201c{snap.description[:80]}\u201d" if snap.description else ""
        keep = f" (tagged {KEEP}=true)" if is_pinned(snap.tags) else ""
        source = snap.volume_id or "unknown volume"
        items.append(PlanItem(sid, "snapshot", snap.size_gib, f"of {source}{age}{desc}{keep}"))
    gib = sum(i.size_gib for i in items)
    pinned = [sid for sid in ids if is_pinned(found[sid].tags)]
    warnings = tuple(f"{sid} is tagged {KEEP}=true: approving deletes it anyway" for sid in pinned)
    return Plan(
        kind="delete-snapshots",
        region=region,
        title=title or f"Delete {len(items)} snapshot{'s' if len(items) != 1 else ''} in {region}",
        items=tuple(items),
        gib_freed=gib,
        usd_month_freed=monthly_usd(gib, usd_per_gb_month),
        warnings=warnings,
        # The approver sees these pinned and approves anyway; any other snapshot pinned
        # by the time of execution is spared (see execute_delete_snapshots).
        params={**(params or {}), "pinned": pinned},
    )


def _reconcile_deletes(ctx: Context, plan: Plan) -> list[ItemResult]:
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


@executor("delete-snapshots", reconcile=_reconcile_deletes)
def execute_delete_snapshots(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    """Re-check, then delete each snapshot; one failure never drops the rest.

    Decided again at execution: a snapshot gone is skipped, one that now backs
    an AMI fails, and one pinned with chatops:keep=true since the request (the
    approver did not see it pinned) is spared.
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
        elif is_pinned(existing[sid].tags) and sid not in pinned_at_request:
            result = ItemResult(sid, "spared", f"pinned with {KEEP}=true since the request; not deleted")
        elif sid in backing:
            result = ItemResult(sid, "failed", f"now backs {backing[sid]}; not deleted")
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
