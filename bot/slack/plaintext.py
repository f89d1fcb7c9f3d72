"""Block Kit as plain terminal lines: for the demo console and the `python -m bot sweep` report.

Mentions become @name, links their label, known emoji codes their character,
and Slack's escaping is undone; each button (and each option of an item's
overflow menu) is shown as `[N] label`, numbered by the caller; a modal's
fields as `✎ name= label: what it takes`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping

EMOJI = {
    ":white_check_mark:": "✅",
    ":hourglass_flowing_sand:": "⏳",
    ":hourglass:": "⌛",
    ":warning:": "⚠️",
    ":x:": "❌",
    ":link:": "🔗",
    ":large_green_circle:": "🟢",
    ":black_circle:": "⚫",
    ":lock:": "🔒",
    ":office:": "🏢",
    ":boom:": "💥",
    ":mag:": "🔍",
    ":broom:": "🧹",
    ":package:": "📦",
    ":arrow_forward:": "▶️",
    ":heavy_minus_sign:": "➖",
    ":grey_question:": "❔",
    ":information_source:": "ℹ️",
    ":wastebasket:": "🗑️",
    ":no_entry:": "⛔",
    ":bust_in_silhouette:": "👤",
    ":calendar:": "📅",
    ":moneybag:": "💰",
}
_EMOJI = re.compile(r":[a-z0-9_+-]+:")
_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def render_blocks(blocks: list[Mapping], number: Callable[[Mapping], int], names: Mapping[str, str]) -> list[str]:
    """Block Kit → plain lines (pure but for `number`, which assigns button numbers)."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("section", "header"):
            if block.get("text"):
                lines.append(render_text(block["text"], names))
            for f in block.get("fields", []):
                lines.append("  " + render_text(f, names).replace("\n", ": ", 1))
            if block.get("accessory", {}).get("type") == "button":
                lines.append(_button(block["accessory"], number))
            if block.get("accessory", {}).get("type") == "overflow":  # each option pressable on its own
                menu = block["accessory"]
                options = [{**menu, "selected_option": o, "text": o["text"]} for o in menu.get("options", [])]
                lines.append("  ⋮ " + "   ".join(_button(o, number) for o in options))
        elif kind == "input":
            lines.append(_input(block))
        elif kind == "context":
            lines.append("  " + " ".join(render_text(e, names) for e in block.get("elements", []) if "text" in e))
        elif kind == "divider":
            lines.append("  " + "─" * 40)
        elif kind == "actions":
            lines.append(
                "  " + "   ".join(_button(e, number) for e in block.get("elements", []) if e.get("type") == "button")
            )
    return lines


def render_text(obj: Mapping, names: Mapping[str, str]) -> str:
    """One text object (or a bare string) → plain text; `names` maps user IDs to names."""
    text = obj.get("text", "") if isinstance(obj, Mapping) else str(obj)
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _LINK.sub(lambda m: m.group(2), text)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(0), m.group(0)), text)
    return html.unescape(text)


def _input(block: Mapping) -> str:
    """A modal's field: `name` (what `submit name=…` fills), its label, and what it takes."""
    element = block.get("element", {})
    label = block.get("label", {}).get("text", "")
    optional = ", optional" if block.get("optional") else ""
    if element.get("type") == "static_select":
        values = [o["value"] for o in element.get("options", [])]
        shown = ", ".join(values[:12]) + (f", … ({len(values)} in all)" if len(values) > 12 else "")
        initial = (element.get("initial_option") or {}).get("value")
        takes = f"one of {shown}" + (f" (now {initial})" if initial else "")
    else:
        initial = element.get("initial_value")
        takes = "text" + (f" (now {initial})" if initial else "")
    return f"  ✎ {block.get('block_id', '')}= {label}{optional}: {takes}"


def _button(element: Mapping, number: Callable[[Mapping], int]) -> str:
    style = {"danger": "!", "primary": "*"}.get(element.get("style", ""), "")
    return f"[{number(element)}] {style}{element.get('text', {}).get('text', '')}"
