"""`/snapshot drill` and `/ami drill` answer alike: "started", the drill in this worker, then its evidence."""

from __future__ import annotations

from bot.config import Policy
from bot.domain.drills import Target
from bot.flows import drill_flow
from bot.slack import blocks
from handlers.respond import SlackReply


def drill_account(reply: SlackReply) -> str:
    """The account as drills record it ("" = the bot's own)."""
    return reply.deps.config.account_key(reply.account) if reply.account else ""


def run_drill_reply(reply: SlackReply, target: Target, policy: Policy | None) -> str:
    """Post "started", run the drill (bounded by its timeout), replace the message with the evidence."""
    ts = reply.post(blocks.drill_started(target, reply.user))
    drill = drill_flow.run_drill(reply.deps, target, account=drill_account(reply), policy=policy, user=reply.user)
    result = blocks.drill_result(drill, reply.deps.now())
    if ts is not None:
        reply.update(ts, result)
    else:
        reply.ephemeral(result)
    return f"drill {drill.id} of {target.backup_id}: {drill.state}" + (f" ({drill.reason})" if drill.reason else "")
