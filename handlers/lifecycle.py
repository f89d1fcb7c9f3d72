"""/lifecycle list | preview NAME|all | run NAME | digest."""

from __future__ import annotations

from bot.config import Policy
from bot.errors import UsageError
from bot.flows import lifecycle_flow
from bot.slack import blocks
from bot.slack.commands import Invocation
from handlers.respond import SlackReply
from handlers.slash import register_command


def _policies(reply: SlackReply, inv: Invocation, allow_all: bool) -> list[Policy]:
    name = inv.args["policy"]
    config = reply.deps.config
    if allow_all and name == "all":
        return list(config.policies)
    policy = config.policy(name)
    if policy is None:
        known = ", ".join(f"`{p.name}`" for p in config.policies) or "none configured"
        raise UsageError(f"no policy named `{name}` (policies: {known}).", inv.verb.usage)
    return [policy]


def list_(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    config = deps.config
    rows = [
        (
            p,
            lifecycle_flow.next_run(deps, p),
            deps.store.last_run(lifecycle_flow.job_name(p)),
            config.policy_accounts(p) if config.accounts else (),
        )
        for p in config.policies
    ]
    reply.ephemeral(blocks.lifecycle_list(rows, deps.now()))
    return f"{len(rows)} policies"


def preview(reply: SlackReply, inv: Invocation) -> str:
    reports = [r for p in _policies(reply, inv, allow_all=True) for r in lifecycle_flow.preview_policy(reply.deps, p)]
    report = lifecycle_flow.sweep_report(reply.deps, reports)
    reply.ephemeral(blocks.sweep_report_message(report))
    return f"preview: {sum(len(r.expired) for r in reports)} would be deleted"


def run(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    [policy] = _policies(reply, inv, allow_all=False)
    reports = lifecycle_flow.run_policy(deps, policy, user=reply.user, trigger="manual")
    summary = lifecycle_flow.sweep_report(deps, reports)
    lifecycle_flow.post_report(deps, summary)
    if reply.channel != deps.config.slack.digest_channel:
        reply.ephemeral(blocks.sweep_report_message(summary))
    approvals = ", ".join(r.approval_id for r in reports if r.approval_id)
    return (
        f"{sum(len(r.created) for r in reports)} created, {sum(len(r.expired) for r in reports)} expired, "
        f"{sum(len(r.deleted) for r in reports)} deleted, {sum(len(r.failed) for r in reports)} failed"
        + (f", approval {approvals}" if approvals else "")
    )


def digest(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    lifecycle_flow.post_digest(deps)
    if reply.channel != deps.config.slack.digest_channel:
        reply.ephemeral(blocks.posted_elsewhere("The digest", deps.config.slack.digest_channel))
    return "digest posted"


RUNNERS = {"list": list_, "preview": preview, "run": run, "digest": digest}


def register(app, deps) -> None:
    register_command(app, deps, "lifecycle", RUNNERS)
