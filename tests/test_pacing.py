"""Token buckets: a burst, then the refill rate; measured on a fake clock, never by sleeping."""

from __future__ import annotations

import pytest

from bot.pacing import Pacer, Rate, TokenBucket


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
    pacer = Pacer({"DeleteSnapshot": Rate(2, 1000)}, scale=1)
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0
    assert pacer.take("us-west-2", "DeleteSnapshot") == 0
    assert pacer.take("us-east-1", "DescribeRegions") == 0
    assert pacer.take("us-east-1", "DeleteSnapshot") > 0
