"""/lifecycle list | preview NAME|all | run NAME | digest | drills [NAME] | freeze [reason…] | thaw."""

from __future__ import annotations

import logging

from bot.config import Policy
from bot.domain.access import require_approver
from bot.domain.drills import Drill
from bot.domain.freeze import until_from
from bot.errors import BotError, UsageError
from bot.flows import freeze_flow, lifecycle_flow
from bot.flows.deps import Deps
from bot.flows.progress import RunProgress
from bot.slack import blocks, send
from bot.slack.commands import Invocation
from bot.slack.send import SLACK_FAILURES
from handlers.respond import SlackReply
from handlers.slash import register_command

log = logging.getLogger(__name__)


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
    reply.ephemeral(blocks.lifecycle_list(rows, deps.now(), freeze_flow.in_force(deps)))
    return f"{len(rows)} policies"


def preview(reply: SlackReply, inv: Invocation) -> str:
    reports = [r for p in _policies(reply, inv, allow_all=True) for r in lifecycle_flow.preview_policy(reply.deps, p)]
    report = lifecycle_flow.sweep_report(reply.deps, reports)
    reply.ephemeral(blocks.sweep_report_message(report))
    return f"preview: {sum(len(r.expired) for r in reports)} would be deleted"


def run(reply: SlackReply, inv: Invocation) -> str:
    deps = reply.deps
    [policy] = _policies(reply, inv, allow_all=False)
    progress = RunProgress(deps, f"Policy {policy.name}")
    reports = lifecycle_flow.run_policy(deps, policy, user=reply.user, trigger="manual", progress=progress)
    summary = lifecycle_flow.sweep_report(deps, reports)
    lifecycle_flow.post_report(deps, summary, progress=progress)
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


def freeze(deps: Deps, user: str, channel: str, inv: Invocation) -> blocks.Message:
    """The kill switch, at once (in the listener: it must work when the worker pool is full)."""
    require_approver(deps.config.access, user, "freeze deletions")
    until = None
    if "until" in inv.options:
        try:
            until = until_from(str(inv.options["until"]), deps.now())
        except ValueError as exc:
            raise UsageError(f"`until={inv.options['until']}`: expected {exc}.", inv.verb.usage) from None
    scope = deps.config.account_key(inv.account) if inv.account else "*"
    reason = str(inv.args.get("reason") or "").strip() or "no reason given"
    msg = freeze_flow.freeze(deps, scope, reason, user, channel, until)
    _later(deps, _announce_and_redraw, deps, scope, channel, msg)
    return msg


def thaw(deps: Deps, user: str, channel: str, inv: Invocation) -> blocks.Message:
    require_approver(deps.config.access, user, "thaw deletions")
    scope = deps.config.account_key(inv.account) if inv.account else None
    msg, lifted = freeze_flow.thaw(deps, scope, user, channel)
    if lifted:
        _later(deps, freeze_flow.after_thaw, deps)
    return msg


def _announce_and_redraw(deps: Deps, scope: str, channel: str, msg: blocks.Message) -> None:
    digest_channel = deps.config.slack.digest_channel
    if digest_channel and digest_channel != channel:
        try:
            send.post(deps.slack, digest_channel, msg)
        except SLACK_FAILURES as exc:
            log.error("could not announce the freeze in %s: %s", digest_channel, exc)
    freeze_flow.after_freeze(deps, scope)


def _later(deps: Deps, fn, *args) -> None:
    """After the ack, in the pool; when it is full, the upkeep job releases held requests within a minute."""
    try:
        deps.worker.submit(fn, *args)
    except BotError as exc:
        log.warning("freeze follow-up not queued (%s); the upkeep job catches up", exc.message)


def drills(reply: SlackReply, inv: Invocation) -> str:
    """The latest restore drills, of one policy when named."""
    deps = reply.deps
    name = inv.args.get("policy")
    if name:
        _policies(reply, inv, allow_all=False)
    rows = deps.store.drills(name, limit=20)
    reply.ephemeral(blocks.drill_list([Drill.from_row(r) for r in rows], deps.now(), name))
    return f"{len(rows)} drills"


RUNNERS = {"list": list_, "preview": preview, "run": run, "digest": digest, "drills": drills}
IMMEDIATE = {"freeze": freeze, "thaw": thaw}


def register(app, deps) -> None:
    register_command(app, deps, "lifecycle", RUNNERS, IMMEDIATE)
