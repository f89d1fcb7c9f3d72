"""End to end: a long policy run shows its progress in the digest channel, then its report replaces it."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from bot.config import with_overrides
from bot.flows.progress import RunProgress
from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_volume

pytestmark = pytest.mark.e2e


class Ticks:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_shows_only_after_its_interval_then_at_most_that_often_and_the_report_replaces_it(bot):
    ticks = Ticks()
    progress = RunProgress(bot.deps, "Policy daily-db", clock=ticks)  # every 5 s, in the digest channel
    progress.add(10)
    progress.step()
    ticks.now = 4.9
    progress.step()
    assert progress.ts is None and bot.slack.calls_of("chat.postMessage") == []  # a short run shows nothing

    ticks.now = 5.0
    progress.step()  # 3 of 10 in 5 s: 7 left at that pace is about 12 s
    [posted] = bot.slack.calls_of("chat.postMessage")
    assert posted.params["channel"] == "C0DIGEST" and "3 / 10 done · about 12 s left" in message_text(posted.params)
    ticks.now = 6.0
    progress.step()
    assert bot.slack.calls_of("chat.update") == []  # not again within 5 s
    ticks.now = 10.0
    progress.step()
    [updated] = bot.slack.calls_of("chat.update")
    assert updated.params["ts"] == progress.ts and "5 / 10 done" in message_text(updated.params)

    assert progress.finish({"text": "the report", "blocks": []})
    assert bot.slack.messages[("C0DIGEST", progress.ts)]["text"] == "the report"


def test_a_long_sweep_updates_one_message_and_ends_with_its_report_there(make_bot, ec2, tmp_path):
    config = dataclasses.replace(base_config(tmp_path), policies=(daily_policy(keep=1, on_expired="delete"),))
    bot = make_bot(with_overrides(config, slack={"digest_channel": "C0DIGEST", "progress_every": timedelta(0)}))
    volume = make_volume(ec2, Backup="daily")
    tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": volume}]
    for _ in range(12):
        ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    time.sleep(1.1)

    bot.command("/lifecycle run daily-db")
    bot.settle()

    shown = [c.params for c in bot.slack.calls_of("chat.postMessage") if c.params.get("channel") == "C0DIGEST"]
    assert len(shown) == 1 and "/ 12 done" in message_text(shown[0])  # one message, not one per step
    ts = bot.slack.calls_of("chat.postMessage")[0].params["ts"]
    final = message_text(bot.slack.messages[("C0DIGEST", ts)])
    assert "Lifecycle sweep" in final and "deleted 12" in final
