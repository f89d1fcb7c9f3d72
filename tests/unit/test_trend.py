"""The storage trend: the sparkline, the change since the day before, and how the digest shows them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.domain.digest import Digest
from bot.domain.trend import BARS, DayTotal, change, sparkline
from bot.slack import blocks
from bot.testing.fakeslack import message_text


@pytest.mark.parametrize(
    ("values", "line"),
    [([], ""), ([5], "▄"), ([3, 3, 3], "▄▄▄"), ([0, 7], "▁█"), ([0, 1, 2, 3, 4, 5, 6, 7], BARS), ([10, 0, 5], "█▁▅")],
)
def test_the_sparkline_scales_between_the_smallest_and_largest_day(values, line):
    assert sparkline(values) == line


def day(n: int, gib: int) -> DayTotal:
    return DayTotal(date(2026, 12, n), snapshots=gib // 8, gib=gib, usd_month=gib * 0.05)


def test_the_change_is_from_the_day_before_the_last():
    assert change([day(1, 100)]) is None
    assert change([day(1, 50), day(2, 100), day(3, 120)]) == (20, 20.0)
    assert change([day(1, 0), day(2, 40)]) == (40, None)  # from nothing: no percentage


def test_the_digest_shows_the_trend_once_it_has_two_days():
    now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    one = message_text(blocks.digest_message(Digest(now, 0.05, (), trend=(day(3, 100),))))
    assert ":chart_with_upwards_trend:" not in one
    text = message_text(blocks.digest_message(Digest(now, 0.05, (), trend=(day(1, 100), day(2, 90), day(3, 135)))))
    assert ":chart_with_upwards_trend: Last 3 days: `▃▁█` · +45 GiB (+50.0%) since Dec 2" in text
