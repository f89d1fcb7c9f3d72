"""Approve / Deny buttons: ack at once, decide in the worker pool (bot/approval_flow.py)."""

from __future__ import annotations

from slack_sdk.webhook import WebhookClient

from bot import approval_flow, blocks
from bot.approvals import Plan
from bot.deps import Deps
from handlers.respond import SlackReply


def request_approval(reply: SlackReply, plan: Plan) -> str:
    """Runner helper for destructive verbs: post the plan for an approver instead of acting."""
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


def _teller(response_url: str | None):
    def tell(msg: blocks.Message) -> None:
        if response_url:
            WebhookClient(response_url, timeout=10).send(response_type="ephemeral", replace_original=False, **msg)

    return tell


def register(app, deps: Deps) -> None:
    def on_click(approve: bool):
        def listener(ack, body, action):
            ack()
            deps.worker.submit(
                approval_flow.decide,
                deps,
                action.get("value", ""),
                body["user"]["id"],
                approve,
                _teller(body.get("response_url")),
            )

        listener.__name__ = "on_approve" if approve else "on_deny"
        return listener

    app.action(blocks.APPROVE_ACTION)(on_click(True))
    app.action(blocks.DENY_ACTION)(on_click(False))
