"""End to end: each digest records the day's totals, and the next days' digests show the trend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, make_snapshot
from tests.support.harness import FakeClock

pytestmark = pytest.mark.e2e


def test_the_digest_keeps_each_days_totals_and_shows_the_trend(make_bot, ec2, tmp_path):
    clock = FakeClock()
    bot = make_bot(base_config(tmp_path), clock=clock)
    make_snapshot(ec2)
    bot.command("/lifecycle digest")
    bot.settle()
    first = message_text([m for m in bot.posted() if "digest" in message_text(m).lower()][-1])
    assert ":chart_with_upwards_trend:" not in first  # one day: no trend yet

    clock.advance(timedelta(days=1))
    make_snapshot(ec2)
    bot.command("/lifecycle digest")
    bot.settle()
    bot.command("/lifecycle digest")  # a second digest the same day replaces that day's figures
    bot.settle()

    second = message_text([m for m in bot.posted() if "digest" in message_text(m).lower()][-1])
    assert "Last 2 days: `▁█` · +10 GiB (+100.0%) since" in second
    days = bot.deps.store.storage_days("2000-01-01")
    assert [(snapshots, gib) for _, snapshots, gib, _ in days] == [(1, 10), (2, 20)]
