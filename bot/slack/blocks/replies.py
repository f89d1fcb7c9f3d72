"""Replies that belong to no one feature: errors, the apology, "working on it", where a message went, a watch's end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.errors import BotError
from bot.slack.blocks.common import MAX_BLOCKS, Message, context, duration, escape, message, section


def error(exc: BotError) -> Message:
    text = f":warning: {escape(exc.message)}"
    if exc.hint:
        text += f"\n{escape(exc.hint)}"
    return message(text, [section(text)])


def apology(reference: str) -> Message:
    text = (
        ":boom: Sorry, something went wrong on my side. It is logged"
        f" (reference `{escape(reference)}`); please try again or tell the bot's owners."
    )
    return message(text, [section(text)])


def working(line: str) -> Message:
    text = f":hourglass_flowing_sand: Working on `{escape(line)}`…"
    return message(text, [context(text)])


# --- where a message went -------------------------------------------------------------


def unposted(msg: Message, channel: str, why: str, no_channel: bool, followed: bool) -> Message:
    """The requester's copy of a channel message Slack refused or did not confirm (the AWS work is done)."""
    if no_channel:
        note = ":information_source: Invite me to this channel (`/invite @bot`) to get " + (
            "the result there when it finishes." if followed else "these messages there."
        )
    else:
        note = f":warning: Slack did not confirm my message in <#{escape(channel)}> ({escape(why)}), so here it is" + (
            "; I will post the result there when it finishes." if followed else "."
        )
    return message(msg["text"], [*msg["blocks"][: MAX_BLOCKS - 1], context(note)])


def posted_elsewhere(what: str, channel: str) -> Message:
    text = f":white_check_mark: {escape(what)} posted in <#{escape(channel)}>."
    return message(text, [section(text)])


# --- how a watch ended when its resource never finished -----------------------------------


def watch_timed_out(resource_id: str, waited: timedelta, status_hint: str) -> Message:
    text = (
        f":hourglass: `{escape(resource_id)}` is still not finished after {duration(waited)}; "
        f"I stopped watching it (AWS carries on). Check it with `{escape(status_hint)}`."
    )
    return message(text, [section(text)])


def watched_gone(what: str, resource_ids: Sequence[str], region: str, why: str = "") -> Message:
    """A watched resource vanished before it finished: the watch ends with this."""
    ids = ", ".join(f"`{escape(i)}`" for i in resource_ids)
    text = f":x: {escape(what)} {ids} no longer exist{'s' if len(resource_ids) == 1 else ''} in {escape(region)}"
    text += f" ({escape(why)})." if why else "."
    return message(text, [section(text)])
