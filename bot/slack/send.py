"""The one module that sends to Slack: channel posts, updates, ephemerals, response_url answers, App Home views.

Flows, handlers and scheduler jobs decide *what* to say and what a failure
means for them; this module only says it.  What may be retried is decided by
the clients' retry handlers (bot/slack/retry.py): a post only when Slack
certainly did not post it, an update (idempotent) through any fault.  Every
function raises one of SLACK_FAILURES when Slack refused or did not answer.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack.blocks import Message
from bot.slack.retry import webhook

# Slack refusing (SlackApiError), or not answering at all (connection errors).
SLACK_FAILURES = (SlackClientError, OSError)

# chat.update errors that mean the message can never be updated again.
MESSAGE_GONE = frozenset(
    {
        "message_not_found",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "cant_update_message",
        "edit_window_closed",
    }
)


def error_of(exc: BaseException) -> str:
    """Why Slack failed, in a few words for the audit log."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "error"))
    return f"Slack unreachable: {exc}"


def message_gone(exc: BaseException) -> bool:
    """Did an update fail because the message can never be updated again?"""
    return isinstance(exc, SlackApiError) and exc.response.get("error", "") in MESSAGE_GONE


def post(client: WebClient, channel: str, msg: Message, *, thread_ts: str | None = None) -> tuple[str, str]:
    """Post a message (links never unfurled); returns its (channel ID, ts), which `update` needs."""
    thread = {"thread_ts": thread_ts} if thread_ts else {}
    resp = client.chat_postMessage(channel=channel, unfurl_links=False, unfurl_media=False, **thread, **msg)
    return resp["channel"], resp["ts"]


def update(client: WebClient, channel: str, ts: str, msg: Message) -> None:
    client.chat_update(channel=channel, ts=ts, **msg)


def permalink(client: WebClient, channel: str, ts: str) -> str:
    """A link to a message (chat.getPermalink)."""
    return client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]


def ephemeral(client: WebClient, channel: str, user: str, msg: Message) -> None:
    """Only `user` sees it, in `channel`."""
    client.chat_postEphemeral(channel=channel, user=user, **msg)


def publish_home(client: WebClient, user: str, view: dict) -> None:
    """Show `view` as `user`'s App Home tab (views.publish replaces what was there)."""
    client.views_publish(user_id=user, view=view)


def open_view(client: WebClient, trigger_id: str, view: dict) -> str:
    """Open a modal (views.open, within 3 s of the click that gave `trigger_id`); returns its view ID."""
    return client.views_open(trigger_id=trigger_id, view=view)["view"]["id"]


def update_view(client: WebClient, view_id: str, view: dict) -> None:
    """Replace an open modal's content (views.update)."""
    client.views_update(view_id=view_id, view=view)


def respond(response_url: str, msg: Message, timeout: float) -> str:
    """Answer through a response_url, only to the user who acted; returns why Slack refused ("" once delivered).

    Connection failures raise.  The client retries only what cannot double the answer.
    """
    resp = webhook(response_url, timeout).send(response_type="ephemeral", replace_original=False, **msg)
    return f"response_url answered {resp.status_code} {resp.body}" if resp.status_code >= 400 else ""
