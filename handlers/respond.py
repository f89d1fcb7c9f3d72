"""Talking back to Slack after the ack, and the one place errors become messages.

`SlackReply` is what a command runner gets: who asked, where, and how to
answer (ephemeral via `response_url`, a channel message it can update later,
a watch that updates that message when AWS finishes).  `run_job` runs a
runner in the worker pool and turns `BotError`s into a friendly ephemeral
message with the next step, and anything unexpected into a logged apology;
either way the audit entry gets the outcome.

Once AWS did what was asked, Slack failing must not read as a failure: a
runner records what it did (event, watch) before it posts, and `post` never
raises for Slack's sake.  When the channel post fails, or Slack's answer is
lost (a 5xx, a timeout, a dropped connection: the client does not retry
those for a post, so it never doubles), the requester gets the same message
as an ephemeral, the watch follows the resource without a message (it posts
the final state once), and the audit entry stays "ok" with a note.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.aws.gateway import Ec2Gateway
from bot.errors import BotError
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES, error_of

log = logging.getLogger(__name__)

_NO_CHANNEL = {"not_in_channel", "channel_not_found", "is_archived"}


@dataclass
class SlackReply:
    deps: Deps
    user: str
    channel: str
    response_url: str | None
    line: str  # the command as typed, for the audit log
    account: str = ""  # `account=NAME`; "" = the bot's own
    audit_id: int | None = None
    slack_notes: list[str] = field(default_factory=list)  # what Slack failed to show, for the audit entry

    @property
    def gateway(self) -> Ec2Gateway:
        """AWS in the account the command named, as this user (their Slack ID is the role session name)."""
        return self.deps.gateway_for(self.account, self.user)

    def _labelled(self, msg: blocks.Message) -> blocks.Message:
        """Name the account the command acted in, when the bot reaches several."""
        return blocks.in_account(msg, self.deps.config.account_label(self.account))

    def ephemeral(self, msg: blocks.Message) -> None:
        """Only the requester sees it."""
        refused = self._ephemeral(self._labelled(msg))
        if refused:
            log.warning("could not tell %s about %r: %s", self.user, self.line, refused)

    def _ephemeral(self, msg: blocks.Message) -> str:
        """Send an ephemeral; returns why Slack refused it ("" once delivered).  Connection failures raise."""
        if not self.response_url:
            send.ephemeral(self.deps.slack, self.channel, self.user, msg)
            return ""
        return send.respond(self.response_url, msg, self.deps.slack.timeout)

    def post(self, msg: blocks.Message, channel: str | None = None, *, watch_id: int | None = None) -> str | None:
        """Post in the channel (so it can be updated); returns its ts, or None when Slack did not confirm it.

        Never raises for Slack's sake (see the module docstring).  `watch_id`,
        from `watch()`, learns the message it is to update, or that it has none.
        """
        where = channel or self.channel
        msg = self._labelled(msg)
        ts, why = None, ""
        try:
            _, ts = send.post(self.deps.slack, where, msg)
        except SLACK_FAILURES as exc:
            why = error_of(exc)
            log.warning("could not post %r in %s: %s", msg["text"][:80], where, why)
            self.slack_notes.append(f"Slack: the message in {where} was not confirmed ({why})")
        finally:
            if watch_id is not None:
                self.deps.store.set_watch_message(watch_id, ts)
        if ts is None:
            self._tell_instead(blocks.unposted(msg, where, why, why in _NO_CHANNEL, followed=watch_id is not None))
        return ts

    def _tell_instead(self, msg: blocks.Message) -> None:
        try:
            refused = self._ephemeral(msg)
        except SLACK_FAILURES as exc:
            refused = error_of(exc)
        if refused:
            log.warning("could not tell %s about %r either: %s", self.user, self.line, refused)
            self.slack_notes.append(f"could not tell the requester either ({refused})")
        else:
            self.slack_notes.append("the requester was told by ephemeral")

    def update(self, ts: str, msg: blocks.Message, channel: str | None = None) -> None:
        send.update(self.deps.slack, channel or self.channel, ts, self._labelled(msg))

    def watch(self, kind: str, region: str, resource_ids: list[str], data: dict | None = None) -> int:
        """Follow the resources until they finish (scheduler/watches.py); call before `post`, pass it the ID.

        Recorded first, so that neither a failed post nor a crash mid-post can
        leave the resources unfollowed.
        """
        deadline = self.deps.now() + self.deps.config.aws.poll_timeout
        if self.account:
            data = {**(data or {}), "account": self.account}
        return self.deps.store.add_watch(kind, region, resource_ids, self.channel, None, self.user, deadline, data)


Runner = Callable[[SlackReply, object], str | None]


def run_job(reply: SlackReply, runner: Runner, invocation: object) -> None:
    """Run a command's AWS work and report it; never raises."""
    store = reply.deps.store
    try:
        detail = runner(reply, invocation) or ""
        outcome = "ok"
    except BotError as exc:
        outcome, detail = exc.outcome, str(exc)
        _safe_ephemeral(reply, blocks.error(exc))
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("command %r failed (reference %s)", reply.line, reference)
        outcome, detail = "crashed", f"unexpected error, reference {reference}"
        _safe_ephemeral(reply, blocks.apology(reference))
    if reply.slack_notes:
        detail = "; ".join([detail, *reply.slack_notes]) if detail else "; ".join(reply.slack_notes)
    if reply.audit_id is not None:
        store.set_audit_outcome(reply.audit_id, outcome, detail)
    else:
        store.audit(reply.user, reply.channel, reply.line, outcome, detail)


def _safe_ephemeral(reply: SlackReply, msg: blocks.Message) -> None:
    try:
        reply.ephemeral(msg)
    except Exception:  # Slack itself failing must not hide the original outcome from the audit log
        log.exception("could not tell %s about %r", reply.user, reply.line)


def click_teller(response_url: str | None) -> Callable[[blocks.Message], None]:
    """How to answer a click only to the clicker, after its ack: through its response_url; never raises."""

    def tell(msg: blocks.Message) -> None:
        if not response_url:
            return
        try:
            refused = send.respond(response_url, msg, timeout=10)
        except Exception as exc:  # Slack unreachable: the decision and its audit entry must not depend on it
            refused = str(exc)
        if refused:
            log.warning("could not answer a click through its response_url: %s", refused)

    return tell
