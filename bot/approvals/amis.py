"""AMI actions that need an approver: deregister, share, create with a reboot.

Each builds an approval `Plan` (bot/approvals.py) from the AMI domain plans
(bot/amis.py), and registers the executor that carries it out once approved
and the reconcile that tells, after a crash, what AWS shows as done.
"""

from __future__ import annotations

from bot import errors
from bot.aws.gateway import Ec2Gateway
from bot.domain import amis
from bot.domain.costs import monthly_usd
from bot.domain.plans import Context, ItemResult, Plan, PlanItem, Progress, executor
from bot.domain.tags import KEEP


def _item_results(results, progress: Progress) -> list[ItemResult]:
    out = []
    for r in results:
        item = ItemResult(r.resource_id, "spared" if r.kept else "done" if r.ok else "failed", r.reason)
        progress(item)
        out.append(item)
    return out


# --- deregister ------------------------------------------------------------------------


def deregister_request(gw: Ec2Gateway, region: str, image_id: str, keep_snapshots: bool, price: float) -> Plan:
    """What `/ami deregister` will do: the AMI, and its snapshots unless keep-snapshots."""
    dp = amis.deregister_plan(gw, region, image_id, keep_snapshots)
    snaps = ", ".join(f"{s.id} ({s.size_gib} GiB)" for s in dp.snapshots) or "none"
    fate = "kept" if keep_snapshots else "deleted"
    items = [PlanItem(dp.image_id, "image", dp.snapshot_gib, f"“{dp.name}”; backing snapshots {fate}: {snaps}")]
    if not keep_snapshots:
        items += [
            PlanItem(
                s.id,
                "snapshot",
                s.size_gib,
                f"backs {dp.image_id}" + (f"; kept: pinned with {KEEP}=true" if s.id in dp.pinned_snapshots else ""),
            )
            for s in dp.snapshots
        ]
    warnings = []
    if dp.pinned:
        warnings.append(f"{dp.image_id} is tagged {KEEP}=true: approving deregisters it anyway")
    if dp.instances:
        shown = ", ".join(dp.instances[:10]) + (" …" if len(dp.instances) > 10 else "")
        warnings.append(
            f"{len(dp.instances)} instance(s) were launched from it and keep running, "
            f"but cannot be relaunched from it: {shown}"
        )
    gib = 0 if keep_snapshots else sum(s.size_gib for s in dp.snapshots if s.id not in dp.pinned_snapshots)
    return Plan(
        kind="deregister-image",
        region=region,
        title=f"Deregister {dp.image_id} ({dp.name})" + ("" if keep_snapshots else " and delete its snapshots"),
        items=tuple(items),
        gib_freed=gib,
        usd_month_freed=monthly_usd(gib, price),
        warnings=tuple(warnings),
        params=dp.to_dict(),
    )


def _reconcile_deregister(ctx: Context, plan: Plan) -> list[ItemResult]:
    gw = ctx.gateway
    dp = amis.DeregisterPlan.from_dict(plan.params)
    image = gw.find_images(plan.region, [dp.image_id]).get(dp.image_id)
    if image is not None and image.state != "deregistered":
        return [
            ItemResult(i.resource_id, "failed", "interrupted before it was deregistered; request again")
            for i in plan.items
        ]
    results = [ItemResult(dp.image_id, "done", "deregistered")]
    if dp.keep_snapshots:
        return results
    present = (
        {
            s.id
            for s in gw.describe_snapshots(
                plan.region, filters=[{"Name": "snapshot-id", "Values": list(dp.snapshot_ids)}]
            )
        }
        if dp.snapshot_ids
        else set()
    )
    return results + [
        ItemResult(s, "failed", "interrupted before it was deleted; delete it with /snapshot delete")
        if s in present
        else ItemResult(s, "done", "deleted")
        for s in dp.snapshot_ids
    ]


@executor("deregister-image", reconcile=_reconcile_deregister)
def _execute_deregister(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    return _item_results(amis.execute_deregister(ctx.gateway, amis.DeregisterPlan.from_dict(plan.params)), progress)


# --- share ----------------------------------------------------------------------------------


def share_request(gw: Ec2Gateway, region: str, image_id: str, account_id: str) -> Plan:
    sp = amis.share_plan(gw, region, image_id, account_id)
    already = ", ".join(sp.shared_with) or "no other account"
    warnings = [
        f"encrypted snapshot {s}: {account_id} also needs use of its KMS key to launch" for s in sp.encrypted_snapshots
    ]
    return Plan(
        kind="share-image",
        region=region,
        title=f"Share {sp.image_id} ({sp.name}) with account {account_id}",
        items=(
            PlanItem(
                sp.image_id,
                "image",
                0,
                f"“{sp.name}”: account {account_id} gets launch permission (now shared with {already})",
            ),
        ),
        warnings=tuple(warnings),
        params=sp.to_dict(),
    )


def _reconcile_share(ctx: Context, plan: Plan) -> list[ItemResult]:
    sp = amis.SharePlan.from_dict(plan.params)
    if sp.account_id in ctx.gateway.image_launch_permissions(plan.region, sp.image_id):
        return [ItemResult(sp.image_id, "done", f"shared with {sp.account_id}")]
    return [ItemResult(sp.image_id, "failed", "interrupted before it was shared; request again")]


@executor("share-image", reconcile=_reconcile_share)
def _execute_share(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    return _item_results(amis.execute_share(ctx.gateway, amis.SharePlan.from_dict(plan.params)), progress)


# --- create with a reboot -------------------------------------------------------------------------


def reboot_create_request(
    gw: Ec2Gateway, region: str, instance_id: str, name: str, description: str, requester: str
) -> Plan:
    """`/ami create … reboot` reboots a running instance: that needs an approver."""
    amis.check_ami_name(name)
    instance = gw.get_instance(region, instance_id)
    if instance.state not in ("running", "stopped"):
        raise errors.Conflict(f"{instance_id} is {instance.state}; an AMI needs a running or stopped instance.")
    label = f" ({instance.name})" if instance.name else ""
    return Plan(
        kind="create-image-reboot",
        region=region,
        title=f"Reboot {instance_id}{label} to create AMI “{name}”",
        items=(
            PlanItem(
                instance_id,
                "instance",
                0,
                f"{instance.instance_type}, {instance.state}: rebooted for a consistent image",
            ),
        ),
        warnings=(f"{instance_id}{label} will be unavailable while it reboots",) if instance.state == "running" else (),
        params={"instance_id": instance_id, "name": name, "description": description, "requester": requester},
    )


def _reconcile_reboot_create(ctx: Context, plan: Plan) -> list[ItemResult]:
    # AMI names are unique per account and region, so the name tells whether it was made.
    images = list(ctx.gateway.describe_images(plan.region, filters=[{"Name": "name", "Values": [plan.params["name"]]}]))
    instance_id = plan.params["instance_id"]
    if images:
        return [ItemResult(instance_id, "done", f"created {images[0].id}")]
    return [ItemResult(instance_id, "failed", "interrupted before the AMI was created; request again")]


@executor("create-image-reboot", reconcile=_reconcile_reboot_create)
def _execute_reboot_create(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    p = plan.params
    try:
        image = amis.create_image(
            ctx.gateway, plan.region, p["instance_id"], p["name"], p["description"], p["requester"], reboot=True
        )
        result = ItemResult(
            p["instance_id"],
            "done",
            f"rebooted; creating {image.id} ({image.state}); progress in the thread",
            started_image=image.id,
        )
    except errors.BotError as exc:
        result = ItemResult(p["instance_id"], "failed", exc.message)
    progress(result)
    return [result]
