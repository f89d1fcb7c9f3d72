"""Token buckets: a burst, then the refill rate, learning what other clients leave of EC2's.

Measured on a fake clock that only the buckets' sleeps move (only the stop test waits, 0.2 s).
"""

from __future__ import annotations

import threading

import pytest

from bot.aws.pacing import EC2_RATES, HEADROOM, Learning, Pacer, Rate, TokenBucket
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
    # The fake clock: with the real one, a busy machine refilled a token between two takes.
    t = FakeTime()
    pacer = Pacer({"DeleteSnapshot": Rate(2, 1000)}, scale=1, headroom=0, clock=t.clock, sleep=t.sleep)
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0
    assert pacer.take("us-east-1", "DeleteSnapshot") == 0
    assert pacer.take("us-west-2", "DeleteSnapshot") == 0
    assert pacer.take("us-east-1", "DescribeRegions") == 0
    assert pacer.take("us-east-1", "DeleteSnapshot") == pytest.approx(0.001)
    assert t.slept == [pytest.approx(0.001)]  # slept on the fake clock, not the real one


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


# --- learning what other clients leave of a shared bucket ----------------------------------


LEARNING = Learning()


def learning_pacer(t: FakeTime, learning: Learning | None = LEARNING, burst: float = 100) -> Pacer:
    rates = {"DeleteSnapshot": Rate(burst, 5)}
    return Pacer(rates, headroom=0, clock=t.clock, sleep=t.sleep, learning=learning)


def rate_of(pacer: Pacer) -> float:
    return pacer.per_second("us-east-1", "DeleteSnapshot")


def test_a_throttle_cuts_the_rate_and_empties_the_bucket():
    t = FakeTime()
    pacer = learning_pacer(t, burst=10)
    pacer.take("us-east-1", "DeleteSnapshot")  # 9 tokens left by our count
    pacer.throttled("us-east-1", "DeleteSnapshot")  # but EC2's bucket is empty: someone else spent it

    assert rate_of(pacer) == pytest.approx(5 * Learning().cut)
    assert pacer.take("us-east-1", "DeleteSnapshot") == pytest.approx(1 / 4.0)  # no burst left, at the cut rate
    assert pacer.per_second("us-west-2", "DeleteSnapshot") == 5  # another region's bucket is its own
    assert pacer.per_second("us-east-1", "DescribeRegions") is None


def test_threads_throttled_at_the_same_moment_cut_once():
    t = FakeTime()
    pacer = learning_pacer(t)
    sent = threading.Barrier(8)

    def deleter():
        pacer.take("us-east-1", "DeleteSnapshot")
        sent.wait()  # all eight requests are out before any answer comes back
        pacer.throttled("us-east-1", "DeleteSnapshot")

    threads = [threading.Thread(target=deleter) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rate_of(pacer) == pytest.approx(5 * 0.8)  # one epoch, one cut

    pacer.take("us-east-1", "DeleteSnapshot")  # sent after the cut: a throttle now is news
    pacer.throttled("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == pytest.approx((5 * 0.8 + 0.01) * 0.8)


def test_the_rate_climbs_back_to_the_published_one_and_never_above():
    t = FakeTime()
    pacer = learning_pacer(t)
    pacer.take("us-east-1", "DeleteSnapshot")
    pacer.throttled("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == pytest.approx(4.0)

    for _ in range(50):  # each token taken adds 0.2 % of the published rate
        pacer.take("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == pytest.approx(4.5)
    for _ in range(500):
        pacer.take("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == 5.0


def test_cuts_that_do_not_stop_the_throttling_are_undone_until_a_clean_stretch():
    # Throttles that come whatever the rate (injected faults, a client taking nearly everything)
    # are not ours to learn from: after six cuts in a row, the rate goes back and botocore retries.
    t = FakeTime()
    learning = Learning(climb=0.0)
    pacer = learning_pacer(t, learning)
    for cut in range(1, learning.give_up_after + 1):
        pacer.take("us-east-1", "DeleteSnapshot")
        pacer.throttled("us-east-1", "DeleteSnapshot")
        assert rate_of(pacer) == pytest.approx(5 * 0.8**cut)

    pacer.take("us-east-1", "DeleteSnapshot")
    pacer.throttled("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == 5.0
    for _ in range(3):  # given up: throttles no longer cut
        pacer.take("us-east-1", "DeleteSnapshot")
        pacer.throttled("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == 5.0

    for _ in range(learning.clean_stretch):  # throttles stopped: the next one is news again
        pacer.take("us-east-1", "DeleteSnapshot")
    pacer.throttled("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == pytest.approx(4.0)


def test_giving_up_gives_back_the_burst_the_throttles_took(caplog):
    # A random throttle at the start said EC2's bucket was empty; six cuts later it is plainly not about us.
    t = FakeTime()
    learning = Learning(climb=0.0)
    pacer = learning_pacer(t, learning, burst=50)
    pacer.take("us-east-1", "DeleteSnapshot")
    pacer.throttled("us-east-1", "DeleteSnapshot")  # 49 tokens of our burst set aside
    for _ in range(learning.give_up_after):
        pacer.take("us-east-1", "DeleteSnapshot")
        pacer.throttled("us-east-1", "DeleteSnapshot")
    assert rate_of(pacer) == 5.0
    assert "EC2 kept throttling DeleteSnapshot in us-east-1" in caplog.text

    waits = [pacer.take("us-east-1", "DeleteSnapshot") for _ in range(50)]
    assert waits[:49] == [0] * 49 and waits[49] > 0  # the 49 tokens are back (the six waited for theirs)


def test_steady_throttles_one_request_in_three_never_drive_the_rate_to_nothing():
    t = FakeTime()
    pacer = learning_pacer(t)
    lowest = 5.0
    for _ in range(300):
        for _ in range(3):
            pacer.take("us-east-1", "DeleteSnapshot")
        pacer.throttled("us-east-1", "DeleteSnapshot")
        lowest = min(lowest, rate_of(pacer))
    assert lowest >= 5 * 0.8 ** Learning().give_up_after * 0.99
    assert rate_of(pacer) == 5.0  # given up, and climbed back


def test_a_cut_is_remembered_per_bucket_not_per_pacer():
    t = FakeTime()
    pacer = learning_pacer(t)
    pacer.take("us-east-1", "DeleteSnapshot")
    pacer.take("us-west-2", "DeleteSnapshot")
    pacer.throttled("us-east-1", "DeleteSnapshot")
    pacer.throttled("us-west-2", "DeleteSnapshot")  # its own epoch: cut as well
    assert rate_of(pacer) == pacer.per_second("us-west-2", "DeleteSnapshot") == pytest.approx(4.0)


def test_without_learning_a_pacer_paces_exactly_as_a_plain_token_bucket():
    schedule = [0, 0, 0.01, 0.5, 0, 0, 0, 0, 3.0, 0, 0.2, 0, 0, 0, 0, 0, 0, 0]
    t_old, t_new = FakeTime(), FakeTime()
    bucket = TokenBucket(Rate(5, 5), clock=t_old.clock, sleep=t_old.sleep)
    pacer = Pacer({"DeleteSnapshot": Rate(5, 5)}, headroom=0, clock=t_new.clock, sleep=t_new.sleep, learning=None)
    waits_old, waits_new = [], []
    for gap in schedule:
        t_old.now += gap
        t_new.now += gap
        waits_old.append(bucket.take())
        waits_new.append(pacer.take("us-east-1", "DeleteSnapshot"))
        pacer.throttled("us-east-1", "DeleteSnapshot")  # heard, and ignored
    assert waits_new == waits_old
    assert any(waits_new)
    assert pacer.per_second("us-east-1", "DeleteSnapshot") == 5


def test_config_turns_learning_off_for_benchmarks(tmp_path):
    from bot.config import parse_config
    from bot.process.runtime import SlackSettings, build_deps

    for raw, learning in (({}, Learning()), ({"pacer_learning": False}, None)):
        config = {"aws": raw, "store": {"path": str(tmp_path / "bot.db")}}
        deps = build_deps(parse_config(config), SlackSettings(bot_token="xoxb-test"))
        try:
            assert deps.gateway.pacer.learning == learning
        finally:
            deps.worker.shutdown()
