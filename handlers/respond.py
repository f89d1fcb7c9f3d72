"""Talking back to Slack after the ack, and the one place errors become messages.

`SlackReply` is what a command runner gets: who asked, where, and how to
answer (ephemeral via `response_url`, a channel message it can update later,
a watch that updates that message when AWS finishes).  `run_job` runs a
runner in the worker pool and turns `BotError`s into a friendly ephemeral
message with the next step, and anything unexpected into a logged apology;
either way the audit entry gets the outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import blocks
from bot.deps import Deps
from bot.errors import BotError

log = logging.getLogger(__name__)

_NO_CHANNEL = {"not_in_channel", "channel_not_found", "is_archived"}


@dataclass
class SlackReply:
    deps: Deps
    user: str
    channel: str
    response_url: str | None
    line: str  # the command as typed, for the audit log
    audit_id: int | None = None

    def ephemeral(self, msg: blocks.Message) -> None:
        """Only the requester sees it."""
        if self.response_url:
            resp = WebhookClient(self.response_url, timeout=10).send(
                response_type="ephemeral", replace_original=False, **msg
            )
            if resp.status_code >= 400:
                log.warning("response_url answered %s: %s", resp.status_code, resp.body)
        else:
            self.deps.slack.chat_postEphemeral(channel=self.channel, user=self.user, **msg)

    def post(self, msg: blocks.Message, channel: str | None = None) -> str | None:
        """Post in the channel (so it can be updated); returns its ts, or None when the bot can't post there."""
        try:
            resp = self.deps.slack.chat_postMessage(
                channel=channel or self.channel, unfurl_links=False, unfurl_media=False, **msg
            )
            return resp["ts"]
        except SlackApiError as exc:
            if exc.response.get("error") not in _NO_CHANNEL:
                raise
            note = blocks.context(
                ":information_source: Invite me to this channel (`/invite @bot`) "
                "to get the live update when it finishes."
            )
            self.ephemeral({"text": msg["text"], "blocks": [*msg["blocks"], note]})
            return None

    def update(self, ts: str, msg: blocks.Message, channel: str | None = None) -> None:
        self.deps.slack.chat_update(channel=channel or self.channel, ts=ts, **msg)

    def watch(self, kind: str, region: str, resource_ids: list[str], ts: str | None, data: dict | None = None) -> None:
        """Update message `ts` when the resources finish (scheduler/watches.py polls them)."""
        if ts is None:
            return
        deadline = self.deps.now() + self.deps.config.aws.poll_timeout
        self.deps.store.add_watch(kind, region, resource_ids, self.channel, ts, self.user, deadline, data)


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
    if reply.audit_id is not None:
        store.set_audit_outcome(reply.audit_id, outcome, detail)
    else:
        store.audit(reply.user, reply.channel, reply.line, outcome, detail)


def _safe_ephemeral(reply: SlackReply, msg: blocks.Message) -> None:
    try:
        reply.ephemeral(msg)
    except Exception:  # Slack itself failing must not hide the original outcome from the audit log
        log.exception("could not tell %s about %r", reply.user, reply.line)
