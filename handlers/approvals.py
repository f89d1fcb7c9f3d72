"""Approve / Deny buttons, in a channel or the App Home tab: ack at once, decide in the worker pool."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.domain.plans import Plan
from bot.errors import Busy
from bot.flows import approval_flow, home_flow
from bot.flows.deps import Deps
from bot.slack import blocks
from handlers.respond import SlackReply, click_teller

log = logging.getLogger(__name__)


def request_approval(reply: SlackReply, plan: Plan) -> str:
    """Runner helper for destructive verbs: post the plan for an approver instead of acting."""
    config = reply.deps.config
    if len(config.account_names) > 1:  # several accounts: the plan says which one it acts in
        name = reply.account or config.aws.account_name
        plan = replace(plan, account=reply.account, title=f"{plan.title} (account {name})")
    row = approval_flow.open_request(reply.deps, plan, reply.user, reply.channel)
    if row["channel"] != reply.channel:
        reply.ephemeral(
            blocks.message(
                f"Approval request {row['id']} posted in <#{row['channel']}>.",
                [
                    blocks.section(
                        f":lock: Approval request `{row['id']}` for *{blocks.escape(plan.title)}* "
                        f"is waiting in <#{row['channel']}>."
                    )
                ],
            )
        )
    return f"approval {row['id']} requested: {plan.title}"


def busy_click(approve: bool) -> blocks.Message:
    """What the clicker sees when the worker pool is full: nothing changed, click again."""
    button = "Approve" if approve else "Deny"
    return blocks.refusal(
        "The bot is too busy to take your click (its work queue is full); the request is unchanged. "
        f"Click {button} again in a minute."
    )


def register(app, deps: Deps) -> None:
    def on_click(approve: bool):
        def listener(ack, body, action, context):
            ack()
            approval_id, user = str(action.get("value", "")), context.user_id or ""
            from_home = (body.get("view") or {}).get("type") == "home"
            tell = click_teller(body.get("response_url"))
            try:
                if from_home:  # the same decision; its answer goes to the top of the clicker's tab
                    deps.worker.submit(home_flow.decide_from_home, deps, approval_id, user, approve)
                else:
                    deps.worker.submit(approval_flow.decide, deps, approval_id, user, approve, tell)
            except Busy as exc:  # after the ack: the only way to say so is the response_url, or the tab
                if from_home:
                    home_flow.publish_home(deps, user, busy_click(approve)["text"])
                else:
                    tell(busy_click(approve))
                channel = context.channel_id or ""
                verb = "approve" if approve else "deny"
                deps.store.audit(user, channel, f"{verb} {approval_id}", exc.outcome, exc.message)

        listener.__name__ = "on_approve" if approve else "on_deny"
        return listener

    app.action(blocks.APPROVE_ACTION)(on_click(True))
    app.action(blocks.DENY_ACTION)(on_click(False))
