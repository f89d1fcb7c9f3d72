"""What every builder shares: escaping, Slack's limits, the block primitives, lists and short formats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000
LIST_LIMIT = 50  # items shown in a list before "and N more"

Message = dict


def escape(text: object) -> str:
    """Escape Slack's control characters so user/AWS text is shown, never parsed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- short formats ----------------------------------------------------------------


def age(now: datetime, then: datetime | None) -> str:
    """A short human age: 45s, 12m, 3h, 5d."""
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def duration(delta: timedelta) -> str:
    return age(datetime.min + delta, datetime.min)


def plural(count: int, noun: str, nouns: str = "") -> str:
    """`1 snapshot`, `1,204 snapshots`, `2 policies` (give `nouns` when it is not noun + s)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def id_list(values: Sequence[str], limit: int = 10) -> str:
    """The first `limit` IDs, each in backticks, then "and N more"."""
    shown = ", ".join(f"`{escape(v)}`" for v in values[:limit])
    return shown + (f" and {len(values) - limit:,} more" if len(values) > limit else "")


def tags_text(tags: Mapping[str, str]) -> str:
    if not tags:
        return "_none_"
    return ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(tags.items()))


STATE_ICONS = {
    "completed": ":white_check_mark:",
    "available": ":white_check_mark:",
    "running": ":large_green_circle:",
    "in-use": ":link:",
    "pending": ":hourglass_flowing_sand:",
    "creating": ":hourglass_flowing_sand:",
    "stopped": ":black_circle:",
    "error": ":x:",
    "failed": ":x:",
}


def state(value: str) -> str:
    return f"{STATE_ICONS.get(value, ':grey_question:')} {escape(value)}"


ESTIMATE_NOTE = (
    "Costs price every snapshot at its full volume size × ${price}/GB-month. EBS snapshots are incremental, "
    "so the real bill (and what deleting frees) is usually lower: read them as upper bounds."
)


def estimate_note(price: float) -> dict:
    """The footnote under every cost figure: they are upper bounds."""
    return context(ESTIMATE_NOTE.replace("{price}", f"{price:g}"))


# --- blocks and messages, always inside Slack's limits -------------------------------


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


def header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True}}


def message(text: str, blocks: Sequence[dict]) -> Message:
    blocks = list(blocks)
    if len(blocks) > MAX_BLOCKS:  # last line of defence; builders summarise before this
        blocks = blocks[: MAX_BLOCKS - 1] + [context(f"…{len(blocks) - MAX_BLOCKS + 1} more blocks not shown")]
    return {"text": clip(text, MAX_FALLBACK), "blocks": blocks}


def in_account(msg: Message, account: str) -> Message:
    """`msg` naming the AWS account it is about (first line and fallback), when the bot reaches several.

    The account block goes first and a message already at Slack's block limit
    drops its last block for it: the account is never left out.
    """
    if not account:
        return msg
    blocks = [context(f":office: account *{escape(account)}*"), *msg.get("blocks", [])]
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[:MAX_BLOCKS]
    return {**msg, "text": clip(f"[{escape(account)}] {msg.get('text', '')}", MAX_FALLBACK), "blocks": blocks}


def packed_sections(lines: Sequence[str], max_sections: int) -> tuple[list[dict], int]:
    """Pack lines into as few ≤3000-char sections as possible; returns (blocks, lines shown)."""
    blocks: list[dict] = []
    current: list[str] = []
    size = 0
    shown = 0
    for line in lines:
        line = clip(line, MAX_SECTION)
        if current and size + len(line) + 1 > MAX_SECTION:
            if len(blocks) + 1 >= max_sections:
                break
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
        shown += 1
    if current:
        blocks.append(section("\n".join(current)))
    return blocks, shown


def fit(head: Sequence[str], groups: Sequence[tuple], limit: int = MAX_SECTION) -> str:
    """Head lines, then titled groups of lines, cut with "…and N more" to stay within `limit` characters.

    A group is (title, lines, noun) or (title, lines, noun, total) when only
    the first of `total` entries were passed in.
    """
    text = "\n".join(head)
    reserve = 100  # room for the "…and N more" line
    for title, lines, noun, *rest in groups:
        total = rest[0] if rest else len(lines)
        if not total:
            continue
        first = clip(lines[0], 500) if lines else ""
        if len(text) + len(title) + len(first) + 2 > limit - reserve:
            text += f"\n…{plural(total, noun)} not listed"
            continue
        if title:
            text += f"\n{title}" if text else title
        shown = 0
        for line in lines:
            line = clip(line, 500)
            if len(text) + len(line) + 1 > limit - reserve:
                break
            text += f"\n{line}"
            shown += 1
        if total > shown:
            text += f"\n…and {total - shown:,} more"
    return clip(text, limit)


MENU_ITEMS = 20  # items of a list that get their own section and menu; the rest are packed, without


def item_list(
    title: str, lines: Sequence[str], total: int, empty: str, more_hint: str = "", menus: Sequence[dict] = ()
) -> Message:
    """A titled list, newest first, capped with an "and N more" line.

    `menus`: an accessory (an item's overflow menu) per line; the first MENU_ITEMS lines get a section each.
    """
    if not lines:
        return message(f"{title}: {empty}", [section(f"*{title}*\n{empty}")])
    lines = list(lines)[:LIST_LIMIT]
    own = min(len(lines), len(menus), MENU_ITEMS)
    blocks = [
        {**section(clip(line, MAX_SECTION)), "accessory": menu}
        for line, menu in zip(lines[:own], menus[:own], strict=True)
    ]
    packed, shown = packed_sections(lines[own:], MAX_BLOCKS - 2 - own)
    blocks += packed
    shown += own
    blocks.insert(0, section(f"*{title}*"))
    if total > shown:
        blocks.append(context(f"…and {total - shown} more. {more_hint}".strip()))
    return message(f"{title}: {total}", blocks)
