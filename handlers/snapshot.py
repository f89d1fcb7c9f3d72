"""/snapshot: create, list, status, restore, copy, delete (approval); archive, unarchive; drill; the Recycle Bin."""

from __future__ import annotations

from bot.approvals import archive as archive_approvals
from bot.approvals import snapshots as snapshot_approvals
from bot.domain import recycle_bin, snapshots
from bot.domain.volumes import DEFAULT_DEVICE
from bot.flows import drill_flow
from bot.slack import blocks
from bot.slack.commands import Invocation
from handlers.approvals import request_approval
from handlers.drill_reply import drill_account, run_drill_reply
from handlers.respond import SlackReply
from handlers.slash import register_command


def create(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    snap = snapshots.create_snapshot(
        reply.gateway, inv.region, inv.args["volume_id"], inv.args.get("description") or "", reply.user
    )
    # Record, then post: Slack failing from here on loses neither the event nor the watch.
    deps.store.record_event(inv.region, "created", snap.id, f"by {reply.user}", reply.account)
    watch = reply.watch("snapshot", inv.region, [snap.id], {"verb": "Snapshot"}) if snap.state == "pending" else None
    reply.post(blocks.snapshot_progress(snap, deps.now(), requested_by=reply.user), watch_id=watch)
    return f"created {snap.id} of {snap.volume_id}"


def list_(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    limit = inv.options.get("limit", blocks.LIST_LIMIT)
    page = snapshots.list_snapshots(reply.gateway, inv.region, inv.args.get("volume_id"), limit)
    reply.ephemeral(
        blocks.snapshot_list(
            page.items,
            page.total,
            inv.region,
            deps.now(),
            inv.args.get("volume_id"),
            blocks.where(inv.account, inv.region),
        )
    )
    return f"{page.total} snapshots"


def status(reply: SlackReply, inv: Invocation) -> str:
    snap = snapshots.snapshot_status(reply.gateway, inv.region, inv.args["snapshot_id"])
    reply.ephemeral(blocks.snapshot_status(snap, reply.deps.now()))
    return f"{snap.id} {snap.state}"


def restore(reply: SlackReply, inv: Invocation) -> str:
    snapshot_id = inv.args["snapshot_id"]
    instance_id = inv.options.get("instance")
    attach = {"instance_id": instance_id, "device": inv.options.get("device", DEFAULT_DEVICE)} if instance_id else None
    volume = snapshots.restore_snapshot(
        reply.gateway,
        inv.region,
        snapshot_id,
        reply.user,
        az=inv.options.get("az"),
        volume_type=inv.options.get("type", "gp3"),
        instance_id=instance_id,
    )
    watch = None
    if not (volume.state == "error" or (volume.state == "available" and not attach)):  # else it is final already
        watch = reply.watch("volume", inv.region, [volume.id], {"snapshot_id": snapshot_id, "attach": attach})
    reply.post(blocks.volume_progress(volume, snapshot_id, reply.user, attach), watch_id=watch)
    return f"restoring {snapshot_id} into {volume.id}" + (f", to attach to {instance_id}" if attach else "")


def copy(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    to = inv.options["to"]
    new_id = snapshots.copy_snapshot(
        reply.gateway, inv.region, inv.args["snapshot_id"], to, reply.user, inv.options.get("description")
    )
    deps.store.record_event(to, "created", new_id, f"copy of {inv.args['snapshot_id']} by {reply.user}", reply.account)
    verb = f"Copy of {inv.args['snapshot_id']}:"
    snap = reply.gateway.get_snapshot(to, new_id)
    watch = reply.watch("snapshot", to, [new_id], {"verb": verb}) if snap.state == "pending" else None
    reply.post(blocks.snapshot_progress(snap, deps.now(), verb=verb, requested_by=reply.user), watch_id=watch)
    return f"copying {inv.args['snapshot_id']} to {to} as {new_id}"


def delete(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    plan = snapshot_approvals.delete_snapshots_plan(
        reply.gateway, inv.region, inv.args["snapshot_ids"], deps.config.pricing.snapshot_gb_month, now=deps.now()
    )
    return request_approval(reply, plan)


def archive(reply: SlackReply, inv: Invocation) -> str:
    price = reply.deps.config.pricing
    ids = inv.args["snapshot_ids"]
    plan = archive_approvals.archive_snapshots_plan(
        reply.gateway, inv.region, ids, price.snapshot_gb_month, price.snapshot_archive_gb_month
    )
    return request_approval(reply, plan)


def unarchive(reply: SlackReply, inv: Invocation) -> str:
    snapshot_id, days = inv.args["snapshot_id"], inv.options.get("days")
    snapshots.unarchive_snapshot(reply.gateway, inv.region, snapshot_id, days)
    reply.post(blocks.unarchived(snapshot_id, inv.region, days, reply.user))
    return f"restoring {snapshot_id} from the archive tier " + (f"for {days} days" if days else "permanently")


def drill(reply: SlackReply, inv: Invocation) -> str:
    """Restore drill now: checked first (unknown, pending or archived gets a clear error), then run."""
    target, policy = drill_flow.snapshot_target(
        reply.deps, drill_account(reply), inv.region, inv.args["snapshot_id"], reply.user
    )
    return run_drill_reply(reply, target, policy)


def undelete(reply: SlackReply, inv: Invocation) -> str:
    entry = recycle_bin.undelete(reply.gateway, inv.region, "snapshot", inv.args["snapshot_id"])
    reply.post(blocks.undeleted(entry, reply.user))
    return f"restored {entry.id} from the Recycle Bin"


def recycle_bin_(reply: SlackReply, inv: Invocation) -> str:
    entries = recycle_bin.recycle_bin(reply.gateway, inv.region)
    reply.ephemeral(blocks.recycle_bin_list(entries, inv.region, reply.deps.now()))
    return f"{len(entries)} in the Recycle Bin"


RUNNERS = {"create": create, "list": list_, "status": status, "restore": restore, "copy": copy, "delete": delete}
RUNNERS |= {"archive": archive, "unarchive": unarchive}  # the archive tier
RUNNERS |= {"drill": drill}  # restore drills
RUNNERS |= {"undelete": undelete, "recycle-bin": recycle_bin_}  # the Recycle Bin


def register(app, deps) -> None:
    register_command(app, deps, "snapshot", RUNNERS)
