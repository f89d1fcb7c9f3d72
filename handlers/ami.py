"""/ami: create, list, launch, copy, unshare, undelete; share, deregister and create … reboot ask an approver."""

from __future__ import annotations

from bot.domain import amis, recycle_bin
from bot.errors import UsageError
from bot.flows import drill_flow
from bot.slack import blocks
from bot.slack.commands import Invocation
from handlers.approvals import request_approval
from handlers.drill_reply import drill_account, run_drill_reply
from handlers.respond import SlackReply
from handlers.slash import register_command


def _request_id(reply: SlackReply) -> str:
    """The response_url is unique to one slash command, and the same on any retry of it."""
    return reply.response_url or f"audit-{reply.audit_id}"


def create(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    instance_id = inv.args["instance_id"]
    if "reboot" in inv.flags:
        plan = amis.reboot_create_plan(
            reply.gateway, inv.region, instance_id, inv.options["name"], inv.options.get("description", ""), reply.user
        )
        return request_approval(reply, plan)
    image = amis.create_image(
        reply.gateway, inv.region, instance_id, inv.options["name"], inv.options.get("description", ""), reply.user
    )
    # Record, then post: Slack failing from here on loses neither the event nor the watch.
    deps.store.record_event(inv.region, "created", image.id, f"by {reply.user}", reply.account)
    watch = None
    if image.state == "pending":
        watch = reply.watch("image", inv.region, [image.id], {"verb": "AMI", "source": instance_id})
    reply.post(blocks.image_progress(image, deps.now(), requested_by=reply.user, source=instance_id), watch_id=watch)
    return f"created {image.id} ({image.name}) of {instance_id}, no reboot"


def list_(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    page = amis.list_images(reply.gateway, inv.region, inv.options.get("limit", blocks.LIST_LIMIT))
    reply.ephemeral(
        blocks.ami_list(page.items, page.total, inv.region, deps.now(), blocks.where(inv.account, inv.region))
    )
    return f"{page.total} AMIs"


def launch(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    image_id = inv.args["image_id"]
    instance_type = inv.options.get("type", amis.DEFAULT_INSTANCE_TYPE)
    key, count = inv.options.get("key"), inv.options.get("count", 1)
    request_id = _request_id(reply)
    image, instances = amis.launch_instances(
        reply.gateway,
        inv.region,
        image_id,
        reply.user,
        client_token=amis.launch_token(request_id, inv.region, image_id, instance_type, key, count),
        max_count=deps.config.aws.launch_max_count,
        instance_type=instance_type,
        key_name=key,
        count=count,
    )
    ids = [i.id for i in instances]
    watch = None
    if any(i.state != "running" for i in instances):
        watch = reply.watch("instances", inv.region, ids, {"image_id": image.id, "image_name": image.name})
    reply.post(blocks.launch_progress(instances, image.id, image.name, inv.region, reply.user), watch_id=watch)
    return f"launched {', '.join(ids)} from {image.id}"


def copy(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    image_id, to = inv.args["image_id"], inv.options["to"]
    name = inv.options.get("name")
    new_id = amis.copy_image(
        reply.gateway,
        inv.region,
        image_id,
        to,
        reply.user,
        name,
        inv.options.get("description"),
        client_token=amis.request_token(_request_id(reply), "copy", inv.region, image_id, to, name),
    )
    deps.store.record_event(to, "created", new_id, f"copy of {image_id} by {reply.user}", reply.account)
    image = reply.gateway.get_image(to, new_id)
    verb = f"Copy of {image_id} ({inv.region}):"
    watch = None
    if image.state == "available":
        amis.tag_backing_snapshots(reply.gateway, image)
    elif image.state == "pending":
        watch = reply.watch("image", to, [new_id], {"verb": verb})
    reply.post(blocks.image_progress(image, deps.now(), verb=verb, requested_by=reply.user), watch_id=watch)
    return f"copying {image_id} to {to} as {new_id}"


def account_id_of(reply: SlackReply, inv: Invocation) -> str:
    """The 12-digit account ID the command gave, or the ID of the configured account it named (`prod`)."""
    given = str(inv.args["account_id"])
    if given.isdigit():
        return given
    config = reply.deps.config
    if given not in config.account_names:
        names = ", ".join(f"`{name}`" for name in config.account_names)
        raise UsageError(
            f"`{given}` is neither a 12-digit account ID nor an account of this bot ({names}).", inv.verb.usage
        )
    account = config.account(given)
    return account.account_id if account and account.account_id else reply.deps.gateway.account_id(inv.region)


def unshare(reply: SlackReply, inv: Invocation) -> str:
    result = amis.unshare_image(reply.gateway, inv.region, inv.args["image_id"], account_id_of(reply, inv))
    reply.post(blocks.image_unshared(result, inv.region))
    return result.reason


def share(reply: SlackReply, inv: Invocation) -> str:
    plan = amis.share_plan(reply.gateway, inv.region, inv.args["image_id"], account_id_of(reply, inv))
    return request_approval(reply, plan)


def deregister(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    plan = amis.deregister_plan(
        reply.gateway,
        inv.region,
        inv.args["image_id"],
        keep_snapshots="keep-snapshots" in inv.flags,
        usd_per_gb_month=deps.config.pricing.snapshot_gb_month,
        now=deps.now(),
    )
    return request_approval(reply, plan)


def drill(reply: SlackReply, inv: Invocation) -> str:
    """Restore drill now: the AMI launched once, its status checks awaited, terminated."""
    target, policy = drill_flow.image_target(
        reply.deps, drill_account(reply), inv.region, inv.args["image_id"], reply.user
    )
    return run_drill_reply(reply, target, policy)


def undelete(reply: SlackReply, inv: Invocation) -> str:
    entry = recycle_bin.undelete(reply.gateway, inv.region, "image", inv.args["image_id"])
    reply.post(blocks.undeleted(entry, reply.user))
    return f"restored {entry.id} from the Recycle Bin"


RUNNERS = {
    "create": create,
    "list": list_,
    "launch": launch,
    "copy": copy,
    "unshare": unshare,
    "share": share,
    "deregister": deregister,
    "undelete": undelete,  # the Recycle Bin
}
RUNNERS |= {"drill": drill}  # restore drills


def register(app, deps) -> None:
    register_command(app, deps, "ami", RUNNERS)
