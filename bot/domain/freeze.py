"""The kill switch (`/lifecycle freeze`): what a freeze says, and when it lifts.

A freeze is a row of the store (bot/state/store.py): a scope ("*" for every
account, else one account as events name it, "" being the bot's own), who set
it, when, why, and optionally until when.  While one covers an account, no
deletion happens there by any path: the gateway refuses to send a delete, a
sweep that would delete reports instead, Approve is refused and an approved
request waits (held) until the thaw.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.config import parse_duration

# A freeze with until= lifts on its own; further than this is a typo, not a plan.
LONGEST_UNTIL = timedelta(days=90)


def scope_name(scope: str, own_name: str) -> str:
    """How people read a scope: "every account", or the account's name."""
    return "every account" if scope == "*" else (scope or own_name)


def freeze_text(freeze: Mapping[str, str], own_name: str = "", several: bool = False) -> str:
    """Plain text: deletions are frozen [in prod] by U123 since 2026-12-02 20:15 UTC [until …]: reason."""
    where = f" in {scope_name(freeze['scope'], own_name)}" if several else ""
    until = f" until {_when(freeze['until'])}" if freeze.get("until") else ""
    reason = f": {freeze['reason']}" if freeze.get("reason") else ""
    return f"deletions are frozen{where} by {freeze['by_user']} since {_when(freeze['at'])}{until}{reason}"


def _when(stamp: str) -> str:
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M UTC")


def until_from(value: str, now: datetime) -> datetime:
    """`until=` as typed: a duration from now (4h, 2d) or a UTC date or time (2026-12-24, 2026-12-24T09:00).

    Raises ValueError (with what is expected) for anything else, a moment past,
    or one further than LONGEST_UNTIL.
    """
    try:
        moment = now + parse_duration(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("a duration like 4h or 2d, or a UTC date like 2026-12-24 or 2026-12-24T09:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=now.tzinfo)
    if moment <= now:
        raise ValueError("a moment in the future")
    if moment - now > LONGEST_UNTIL:
        raise ValueError(f"at most {LONGEST_UNTIL.days} days ahead")
    return moment
