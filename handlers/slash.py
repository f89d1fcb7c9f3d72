"""The one slash-command listener shape: ack, parse, delegate, render.

Parsing and access checks are pure, so a malformed command, a help request or
a refusal is answered in the ack itself and never reaches AWS.  A valid
command is acked with a short "working on it", audited, and its runner is
queued in the bounded worker pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.domain.access import require_operator
from bot.errors import BotError
from bot.flows.deps import Deps
from bot.slack import blocks
from bot.slack.commands import COMMANDS, HelpRequest, Invocation, parse
from handlers.respond import Runner, SlackReply, run_job

# A verb that must work however busy the bot is (the kill switch): it changes only the store, runs in the
# listener, and its answer is the ack itself, shown to the whole channel.  No AWS call, no Slack call.
Immediate = Callable[[Deps, str, str, Invocation], blocks.Message]


# How a listener answers at once: the ack of a slash command, or a teller after a click or a modal's ack.
Answer = Callable[..., None]  # answer(msg, in_channel=False)


def handle_slash(
    deps: Deps,
    command: str,
    runners: Mapping[str, Runner],
    ack: Callable,
    body: Mapping,
    immediate: Mapping[str, Immediate] | None = None,
) -> None:
    def answer(msg: blocks.Message, in_channel: bool = False) -> None:
        ack(response_type="in_channel", **msg) if in_channel else ack(**msg)

    user, channel = body.get("user_id", ""), body.get("channel_id", "")
    dispatch(
        deps, command, body.get("text", "") or "", user, channel, body.get("response_url"), answer, runners, immediate
    )


def dispatch(
    deps: Deps,
    command: str,
    text: str,
    user: str,
    channel: str,
    response_url: str | None,
    answer: Answer,
    runners: Mapping[str, Runner],
    immediate: Mapping[str, Immediate] | None = None,
) -> None:
    """One command line, as typed or as a menu or modal wrote it: parse, check, audit, queue its runner."""
    line = f"/{command} {text}".strip()
    try:
        parsed = parse(command, text, deps.config.aws.default_region, deps.config.account_names)
        if isinstance(parsed, HelpRequest):
            answer(blocks.help_message(parsed.command, parsed.verb))
            return
        require_operator(deps.config.access, user)
    except BotError as exc:
        answer(blocks.error(exc))
        deps.store.audit(user, channel, line, exc.outcome, exc.message)
        return
    if immediate and parsed.verb.name in immediate:
        _run_now(deps, immediate[parsed.verb.name], parsed, user, channel, line, answer)
        return
    answer(blocks.working(line))
    reply = SlackReply(deps, user, channel, response_url, line, account=parsed.account)
    reply.audit_id = deps.store.audit(user, channel, line, "accepted")
    try:
        deps.worker.submit(run_job, reply, runners[parsed.verb.name], parsed)
    except BotError as exc:
        reply.ephemeral(blocks.error(exc))
        deps.store.set_audit_outcome(reply.audit_id, exc.outcome, exc.message)


def _run_now(
    deps: Deps, runner: Immediate, parsed: Invocation, user: str, channel: str, line: str, answer: Answer
) -> None:
    audit_id = deps.store.audit(user, channel, line, "accepted")
    try:
        msg = runner(deps, user, channel, parsed)
    except BotError as exc:
        answer(blocks.error(exc))
        deps.store.set_audit_outcome(audit_id, exc.outcome, exc.message)
        return
    answer(msg, in_channel=True)
    deps.store.set_audit_outcome(audit_id, "ok", msg["text"])


def register_command(
    app, deps: Deps, command: str, runners: Mapping[str, Runner], immediate: Mapping[str, Immediate] | None = None
) -> None:
    """Register `/command`, checking every verb of the registry has a runner (queued, or immediate)."""
    immediate = immediate or {}
    handled = set(runners) | set(immediate)
    missing = set(COMMANDS[command]) - handled - {"help"}
    unknown = handled - set(COMMANDS[command])
    if missing or unknown:
        raise RuntimeError(
            f"/{command}: verbs without runner {sorted(missing)}, runners without verb {sorted(unknown)}"
        )

    def listener(ack, body):
        handle_slash(deps, command, runners, ack, body, immediate)

    listener.__name__ = f"on_{command}_command"
    app.command(f"/{command}")(listener)
