"""Executors of the AMI actions that need an approver: deregister, share, create with a reboot.

The plans are built by the AMI domain (bot/domain/amis.py: deregister_plan,
share_plan, reboot_create_plan), which also carries them out; here each
kind gets its `execute` (report every result as progress) and its
`reconcile`, which tells after a crash what AWS shows as done without
acting again.  They are listed by kind in bot/approvals/registry.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot import errors
from bot.domain import amis
from bot.domain.plans import Context, ItemResult, Plan, Progress


def _reported(results: Sequence[ItemResult], progress: Progress) -> list[ItemResult]:
    for result in results:
        progress(result)
    return list(results)


# --- deregister ------------------------------------------------------------------------


def execute_deregister(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    return _reported(amis.execute_deregister(ctx.gateway, plan, ctx.now()), progress)


def reconcile_deregister(ctx: Context, plan: Plan) -> list[ItemResult]:
    gw = ctx.gateway
    image_id = plan.params["image_id"]
    snapshot_ids = [s["id"] for s in plan.params["snapshots"]]
    image = gw.find_images(plan.region, [image_id]).get(image_id)
    if image is not None and image.state != "deregistered":
        return [
            ItemResult(i.resource_id, "failed", "interrupted before it was deregistered; request again")
            for i in plan.items
        ]
    results = [ItemResult(image_id, "done", "deregistered")]
    if plan.params["keep_snapshots"]:
        return results
    present = (
        {s.id for s in gw.describe_snapshots(plan.region, filters=[{"Name": "snapshot-id", "Values": snapshot_ids}])}
        if snapshot_ids
        else set()
    )
    return results + [
        ItemResult(s, "failed", "interrupted before it was deleted; delete it with /snapshot delete")
        if s in present
        else ItemResult(s, "done", "deleted")
        for s in snapshot_ids
    ]


# --- share ----------------------------------------------------------------------------------


def execute_share(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    return _reported(amis.execute_share(ctx.gateway, plan), progress)


def reconcile_share(ctx: Context, plan: Plan) -> list[ItemResult]:
    image_id, account_id = plan.params["image_id"], plan.params["account_id"]
    if account_id in ctx.gateway.image_launch_permissions(plan.region, image_id):
        return [ItemResult(image_id, "done", f"shared with {account_id}")]
    return [ItemResult(image_id, "failed", "interrupted before it was shared; request again")]


# --- create with a reboot -------------------------------------------------------------------------


def execute_reboot_create(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
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


def reconcile_reboot_create(ctx: Context, plan: Plan) -> list[ItemResult]:
    # AMI names are unique per account and region, so the name tells whether it was made.
    images = list(ctx.gateway.describe_images(plan.region, filters=[{"Name": "name", "Values": [plan.params["name"]]}]))
    instance_id = plan.params["instance_id"]
    if images:
        return [ItemResult(instance_id, "done", f"created {images[0].id}")]
    return [ItemResult(instance_id, "failed", "interrupted before the AMI was created; request again")]
