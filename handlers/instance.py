"""/instance list."""

from __future__ import annotations

from bot.domain import amis, instances
from bot.slack import blocks
from bot.slack.commands import Invocation
from handlers.respond import SlackReply
from handlers.slash import register_command


def list_instances(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    page = instances.list_instances(reply.gateway, inv.region, inv.options.get("limit", blocks.LIST_LIMIT))
    names = amis.image_names(reply.gateway, inv.region, [i.image_id for i in page.items])
    reply.ephemeral(blocks.instance_list(page.items, page.total, inv.region, deps.now(), names))
    return f"{page.total} instances"


def register(app, deps) -> None:
    register_command(app, deps, "instance", {"list": list_instances})
