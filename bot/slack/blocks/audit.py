"""`/chatops audit`: the audit log, newest first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.slack.blocks.common import Message, age, clip, escape, item_list


def audit_line(row: Mapping, now: datetime) -> str:
    who = f"<@{escape(row['user'])}>" if row.get("user") else "_bot_"
    detail = f" — {escape(clip(row['detail'], 300))}" if row.get("detail") else ""
    return (
        f"`{age(now, datetime.fromisoformat(row['at']))} ago` {who} `{escape(clip(row['action'], 200))}`"
        f" → *{escape(row['outcome'])}*{detail}"
    )


def audit_list(rows: Sequence[Mapping], now: datetime) -> Message:
    return item_list("Audit log, newest first", [audit_line(r, now) for r in rows], len(rows), "No entries yet.")
