"""Token buckets: a burst, then the refill rate; measured on a fake clock (only the stop test waits, 0.2 s)."""

from __future__ import annotations

import threading

import pytest

from bot.aws.pacing import EC2_RATES, HEADROOM, Pacer, Rate, TokenBucket
from bot.errors import ShuttingDown


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_then_refill_rate():
    t = FakeTime()
    bucket = TokenBucket(Rate(100, 5), clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        assert bucket.take() == 0
    assert t.now == 0
    for _ in range(50):
        bucket.take()
    assert t.now == pytest.approx(10.0)  # 50 more at 5/s


def test_idle_time_refills_up_to_the_burst_only():
    t = FakeTime()
    bucket = TokenBucket(Rate(10, 1), clock=t.clock, sleep=t.sleep)
    for _ in range(10):
        bucket.take()
    t.now += 1000
    for _ in range(10):
        assert bucket.take() == 0
    assert bucket.take() == pytest.approx(1.0)


def test_pacer_keeps_regions_and_actions_apart_and_ignores_unknown_actions():
    # A stopped clock: with the real one, a busy machine refilled a token between two takes.
    pacer = Pacer({"DeleteSnapshot": Rate(2, 1000)}, scale=1, headroom=0, clock=lambda: 100.0)
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0
    assert pacer.take("us-west-2", "DeleteSnapshot") == 0
    assert pacer.take("us-east-1", "DescribeRegions") == 0
    assert pacer.take("us-east-1", "DeleteSnapshot") > 0


def test_the_bot_paces_to_config_api_rate_scale(tmp_path):
    # An account whose EC2 limits AWS raised sets aws.api_rate_scale; every entry point paces to it.
    from bot.config import parse_config
    from bot.process.runtime import SlackSettings, build_deps

    raw = {"aws": {"api_rate_scale": 2.5}, "store": {"path": str(tmp_path / "bot.db")}}
    deps = build_deps(parse_config(raw), SlackSettings(bot_token="xoxb-test"))
    try:
        assert deps.gateway.pacer.rate("DeleteSnapshot") == Rate(100 - HEADROOM, 12.5)
        assert deps.gateway.pacer.rate("DescribeSnapshots") == Rate(100 - HEADROOM, 50)
    finally:
        deps.worker.shutdown()


def test_the_pacer_leaves_headroom_in_ec2s_burst_but_keeps_its_rate():
    pacer = Pacer()
    assert HEADROOM > 0
    for action, published in EC2_RATES.items():
        assert pacer.rate(action) == Rate(published.burst - HEADROOM, published.per_second)


def test_a_stopping_pacer_sends_nothing_more_and_cuts_a_wait_short():
    stop = threading.Event()
    pacer = Pacer({"DeleteSnapshot": Rate(1, 0.01)}, scale=1, headroom=0, stop=stop)
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0  # the burst
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(ShuttingDown):  # its token is 100 s away: the wait ends when `stop` is set
        pacer.take("us-east-1", "DeleteSnapshot")
    with pytest.raises(ShuttingDown):  # stopped: not even a call that needs no wait goes out
        pacer.take("us-west-2", "DeleteSnapshot")
    assert pacer.take("us-east-1", "DescribeRegions") == 0  # unpaced actions are not the pacer's to stop
