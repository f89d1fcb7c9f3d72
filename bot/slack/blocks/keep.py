"""Keep and Snooze from Slack: the menus on a sweep request and the digest's cleanup candidates, and their answers.

Each option's value says where the item is: `REGION|ID`, or `ACCOUNT/REGION|ID`
in another account (as the digest labels a region), at most 150 characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.slack.blocks.common import Message, clip, escape, message, section

KEEP_ACTION = "item_keep"
SNOOZE_ACTION = "item_snooze"
SNOOZE_DAYS = 7
MAX_OPTIONS = 100  # Slack's limit for a static select


def item_value(where: str, resource_id: str) -> str:
    return f"{where}|{resource_id}"


def parse_item_value(value: str) -> tuple[str, str, str]:
    """(account name or "", region, resource ID) from an option's value; ValueError when it is not one."""
    where, _, resource_id = value.partition("|")
    account, _, region = where.rpartition("/")
    if not region or not resource_id:
        raise ValueError(value)
    return account, region, resource_id


def keep_menus(items: Sequence[tuple[str, str]], block_id: str) -> dict:
    """An actions block: "Keep…" and "Snooze 7 d…" selects over `items` ((label, value), the first 100)."""
    options = [
        {"text": {"type": "plain_text", "text": clip(label, 75)}, "value": value[:150]}
        for label, value in items[:MAX_OPTIONS]
    ]
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": [
            {
                "type": "static_select",
                "action_id": KEEP_ACTION,
                "placeholder": {"type": "plain_text", "text": "Keep… (never swept)"},
                "options": options,
            },
            {
                "type": "static_select",
                "action_id": SNOOZE_ACTION,
                "placeholder": {"type": "plain_text", "text": f"Snooze {SNOOZE_DAYS} d…"},
                "options": options,
            },
        ],
    }


def kept(resource_id: str, user: str) -> Message:
    text = (
        f":pushpin: <@{escape(user)}> kept `{escape(resource_id)}`: tagged `chatops:keep=true`, no sweep deletes it."
        " Remove the tag to let it go."
    )
    return message(f"Kept {escape(resource_id)}", [section(text)])


def snoozed(resource_id: str, user: str, until: str) -> Message:
    text = (
        f":zzz: <@{escape(user)}> snoozed `{escape(resource_id)}` until {escape(until)}: no sweep expires it before"
        " then (`chatops:snooze-until`)."
    )
    return message(f"Snoozed {escape(resource_id)}", [section(text)])
