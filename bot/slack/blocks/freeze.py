"""The kill switch: the banner a freeze puts on approval requests, the digest and the policy list; its announcements."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.slack.blocks.common import Message, escape, message, section

FREEZE_ICON = ":snowflake:"
# freeze_text says "by U0123ABC"; in Slack the approver who froze reads as a mention.
_FROZEN_BY = re.compile(r"\bby ([UW][A-Z0-9]{2,})\b")


def _shown(frozen: str) -> str:
    """The plain freeze text, escaped, its author a mention."""
    return _FROZEN_BY.sub(r"by <@\1>", escape(_capital(frozen)), count=1)


def freeze_banner(frozen: str) -> dict:
    """One section: why deletions are frozen (plain text, from bot.domain.freeze.freeze_text)."""
    return section(f"{FREEZE_ICON} *{_shown(frozen)}.* Nothing is deleted until `/lifecycle thaw`.")


def freeze_banners(frozen: Sequence[str]) -> list[dict]:
    """A banner per freeze in force (the fleet's first), for messages that cover every account."""
    return [freeze_banner(text) for text in frozen[:5]]


def frozen_now(frozen: str, by: str, held: int, pending: int) -> Message:
    """The announcement of `/lifecycle freeze`, posted where it was typed."""
    waiting = []
    if pending:
        waiting.append(f"{pending} pending request{'s' if pending != 1 else ''} cannot be approved until the thaw")
    if held:
        waiting.append(f"{held} approved request{'s' if held != 1 else ''} held")
    lines = [
        f"{FREEZE_ICON} *Deletions frozen* by <@{escape(by)}>.",
        _shown(frozen) + ".",
        "Sweeps report what they would delete; Approve is refused; approved requests wait for the thaw.",
    ]
    if waiting:
        lines.append("; ".join(waiting) + ".")
    return message(f"Deletions frozen: {escape(frozen)}", [section("\n".join(lines))])


def thawed_now(scopes: Sequence[str], by: str, released: int, still: Sequence[str] = ()) -> Message:
    """The announcement of `/lifecycle thaw` (or of a freeze's `until=` passing: `by` "")."""
    who = f"by <@{escape(by)}>" if by else "on its own (its `until=` passed)"
    what = ", ".join(escape(s) for s in scopes)
    lines = [f":sunny: *Deletions thawed* in {what} {who}."]
    if released:
        lines.append(f"{released} held request{'s' if released != 1 else ''} released and running now.")
    lines += [f"{FREEZE_ICON} Still in force: {_shown(text)}." for text in still]
    return message(f"Deletions thawed in {what}", [section("\n".join(lines))])


def not_frozen(still: Sequence[str]) -> Message:
    """`/lifecycle thaw` when its scope is not frozen: what is (if anything)."""
    if still:
        text = "That scope is not frozen. In force: " + "; ".join(_shown(s) for s in still) + "."
    else:
        text = "Nothing is frozen: deletions run as usual."
    return message(text, [section(text)])


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
