"""/chatops help | audit [N] | approvals."""

from __future__ import annotations

from bot.flows import approval_flow
from bot.slack import blocks
from bot.slack.commands import Invocation
from handlers.respond import SlackReply
from handlers.slash import register_command


def audit(reply: SlackReply, inv: Invocation) -> str:
    rows = reply.deps.store.recent_audit(inv.args.get("count") or 20)
    reply.ephemeral(blocks.audit_list(rows, reply.deps.now()))
    return f"{len(rows)} entries"


def approvals(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    rows = deps.store.approvals_in("pending")
    reply.ephemeral(blocks.approvals_list(rows, deps.now(), approval_flow.permalinks(deps, rows)))
    return f"{len(rows)} pending"


RUNNERS = {"audit": audit, "approvals": approvals}


def register(app, deps) -> None:
    register_command(app, deps, "chatops", RUNNERS)
