""" "Who uses this?": how the things that would launch from an AMI are named in plans, refusals and sweep reports."""

from __future__ import annotations

from collections.abc import Sequence

from bot.aws.models import ImageUse

SHOWN = 5


def describe_uses(uses: Sequence[ImageUse]) -> str:
    """`instance i-1, launch template lt-2 (web $Default) and 3 more`: the first few, then how many more."""
    names = [str(u) for u in uses[:SHOWN]]
    more = f" and {len(uses) - SHOWN} more" if len(uses) > SHOWN else ""
    return ", ".join(names) + more
