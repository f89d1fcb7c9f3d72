"""/volume list, /volume attach."""

from __future__ import annotations

from bot.domain import volumes
from bot.domain.volumes import DEFAULT_DEVICE
from bot.slack import blocks
from bot.slack.commands import Invocation
from handlers.respond import SlackReply
from handlers.slash import register_command


def list_volumes(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    page = volumes.list_volumes(reply.gateway, inv.region, inv.options.get("limit", blocks.LIST_LIMIT))
    reply.ephemeral(
        blocks.volume_list(page.items, page.total, inv.region, deps.now(), blocks.where(inv.account, inv.region))
    )
    return f"{page.total} volumes"


def attach(reply: SlackReply, inv: Invocation) -> str:
    volume_id, instance_id = inv.args["volume_id"], inv.args["instance_id"]
    device = inv.options.get("device", DEFAULT_DEVICE)
    volumes.attach_volume(reply.gateway, inv.region, volume_id, instance_id, device)
    reply.post(blocks.volume_attached(volume_id, instance_id, device, inv.region))
    return f"attached {volume_id} to {instance_id} as {device}"


RUNNERS = {"list": list_volumes, "attach": attach}


def register(app, deps) -> None:
    register_command(app, deps, "volume", RUNNERS)
