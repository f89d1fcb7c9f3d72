"""What a watcher does with its watch's Slack message: update it, finish the watch, give up.

Every watch ends, and what ends stays ended (`Store.update_watch`): when the
resource is gone, when Slack will not update the message any more (deleted,
channel archived, bot removed), and when polls keep failing past the
deadline.  A watch whose message could not be posted (Slack failed after the
AWS action succeeded) has nothing to update: it posts the final state once, as
a new message in the channel (in the thread it belongs to, if any), when the
resource finishes.  Once means at most once: the watch is ended before that
post, and a post whose answer is lost is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.aws.gateway import Ec2Gateway
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES, error_of, message_gone
from bot.state.store import from_iso

log = logging.getLogger(__name__)

# Where a user checks a resource by hand once its watch gave up: kind → command ({ids}, {region}).
STATUS_HINTS = {
    "snapshot": "/snapshot status {ids} region={region}",
    "volume": "/volume list region={region}",
    "image": "/ami list region={region}",
    "instances": "/instance list region={region}",
}


def gateway_of(deps: Deps, row: Mapping) -> Ec2Gateway:
    """AWS in the account the watch's command named, as the user who typed it."""
    return deps.gateway_for(row["data"].get("account"), row["user"])


def labelled(deps: Deps, row: Mapping, msg: blocks.Message) -> blocks.Message:
    """Name the watch's account on its message, when the bot reaches several."""
    return blocks.in_account(msg, deps.config.account_label(row["data"].get("account", "")))


class MessageGone(Exception):
    """Slack will never update this watch's message: the watch ends."""


def update_message(deps: Deps, row: Mapping, msg: blocks.Message) -> None:
    """Update the watch's message; nothing to do for a watch without one (its final state is posted at the end)."""
    if not row["ts"]:
        return
    try:
        send.update(deps.slack, row["channel"], row["ts"], labelled(deps, row, msg))
    except SLACK_FAILURES as exc:
        if message_gone(exc):
            raise MessageGone(error_of(exc)) from exc
        raise


def timed_out(deps: Deps, row: Mapping) -> bool:
    return deps.now() >= from_iso(row["deadline"])


def finish(deps: Deps, row: Mapping, msg: blocks.Message, state: str = "done") -> None:
    """End the watch with its final message.

    With a message: update it, then end the watch (an update that fails is
    tried again next poll; updating twice is harmless).  Without one: end the
    watch first, and only the caller that ended it posts the final state, once.
    """
    if row["ts"]:
        update_message(deps, row, msg)
        deps.store.update_watch(row["id"], state=state)
    elif deps.store.update_watch(row["id"], state=state):
        show(deps, row, msg)


def show(deps: Deps, row: Mapping, msg: blocks.Message) -> None:
    """The final state: on the watch's message, or as a new message when it has none (at most once)."""
    if row["ts"]:
        update_message(deps, row, msg)
        return
    try:
        send.post(deps.slack, row["channel"], labelled(deps, row, msg), thread_ts=row["data"].get("thread_ts"))
    except SLACK_FAILURES:
        log.exception("watch %s: could not post the final state of %s", row["id"], row["resource_ids"])


def timed_out_message(deps: Deps, row: Mapping) -> blocks.Message:
    waited = deps.now() - from_iso(row["created_at"])
    hint = STATUS_HINTS[row["kind"]].format(ids=" ".join(row["resource_ids"]), region=row["region"])
    return blocks.watch_timed_out(", ".join(row["resource_ids"]), waited, hint)


def give_up(deps: Deps, row: Mapping) -> None:
    finish(deps, row, timed_out_message(deps, row), "timed-out")
