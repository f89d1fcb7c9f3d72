"""The storage trend: each day's snapshot totals, as a sparkline with the change since the day before.

A sparkline rather than a chart image: it reads in every Slack client (the
mobile notification included), needs no `files:write` scope or upload, stays
searchable text, and fits on one line of the digest and App Home.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

BARS = "▁▂▃▄▅▆▇█"
TREND_DAYS = 14


@dataclass(frozen=True)
class DayTotal:
    day: date
    snapshots: int
    gib: int
    usd_month: float


def sparkline(values: Sequence[float]) -> str:
    """One bar per value, scaled between the smallest and the largest (all equal: a flat middle line)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return BARS[len(BARS) // 2 - 1] * len(values)
    return "".join(BARS[round((v - low) / (high - low) * (len(BARS) - 1))] for v in values)


def change(days: Sequence[DayTotal]) -> tuple[int, float | None] | None:
    """(GiB, percent) from the day before the last to the last; None with fewer than two days."""
    if len(days) < 2:
        return None
    before, last = days[-2].gib, days[-1].gib
    return last - before, ((last - before) * 100 / before if before else None)
