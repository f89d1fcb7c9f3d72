"""Client-side token buckets mirroring EC2's request limits.

EC2 throttles per account, region and action with token buckets (mutating
deletes: a burst of 100, then 5 a second; paginated Describe*: 100, then 20 a
second).  Spending our own bucket first means a large sweep runs at the
refill rate instead of hammering the API, collecting RequestLimitExceeded and
backing off (which also starves everything else the account does).
`scale` speeds every rate alike (benchmarks against a sped-up fake).

EC2's buckets are shared with every other client of the account (console,
CLI, DLM, scripts), so a pacer that assumed it owned them would be throttled
whenever someone else spends part of one.  With `Learning` (the default) each
bucket learns what is left to it, AIMD-style: a throttle means EC2's bucket is
empty (a throttled request spends no token), so the rate is cut, once per
epoch, and it climbs back toward the published rate with every token taken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import ShuttingDown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    burst: float
    per_second: float


# Published EC2 limits (per account and region) for what the bot does in bulk.
EC2_RATES: dict[str, Rate] = {
    "DeleteSnapshot": Rate(100, 5),
    "DeregisterImage": Rate(100, 5),
    "CreateSnapshot": Rate(100, 5),
    "DescribeSnapshots": Rate(100, 20),
    "DescribeImages": Rate(100, 20),
    "DescribeVolumes": Rate(100, 20),
    "DescribeInstances": Rate(100, 20),
}


class TokenBucket:
    """Thread-safe; `take()` blocks until its token is available."""

    def __init__(
        self, rate: Rate, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep
    ):
        self.rate = rate
        self._tokens = float(rate.burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, waiting for the refill if needed; returns the seconds waited.

        A reservation: the token is taken at once (the balance may go negative)
        and the caller sleeps off the debt, so concurrent callers queue in order
        and no caller loops on rounding errors.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate.burst, self._tokens + (now - self._last) * self.rate.per_second)
            self._last = now
            self._tokens -= 1
            wait = max(0.0, -self._tokens / self.rate.per_second)
        if wait:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class Learning:
    """How a bucket learns the share of EC2's bucket other clients leave it (additive increase, multiplicative cut).

    `cut`: a throttle multiplies the rate by this, once per epoch: an epoch
    starts at a cut, and a throttle of a request that took its token before
    the cut belongs to the epoch already cut (eight threads throttled at the
    same moment are one event, not eight).  `climb`: every token taken adds
    this share of the published rate, up to the published rate.
    `clean_stretch`: this many tokens taken with no throttle in between mean
    the last cuts worked.  `give_up_after`: that many cuts in a row without a
    clean stretch did not stop the throttling, so it is not our rate (random
    throttles, faults, a client taking nearly everything): the cuts are undone,
    with the tokens the throttles took from our count, and throttles no longer
    cut, leaving them to botocore's retries, until a clean stretch again.
    """

    cut: float = 0.8
    climb: float = 0.002
    clean_stretch: int = 30
    give_up_after: int = 6


class LearningBucket(TokenBucket):
    """A TokenBucket whose rate learns from throttles (see Learning); the burst stays as it is."""

    def __init__(
        self,
        rate: Rate,
        learning: Learning,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ):
        super().__init__(rate, clock, sleep)
        self.name = name
        self.published = rate.per_second
        self.learning = learning
        self.epoch = 0  # cuts so far; a request remembers the epoch it took its token in
        self.cuts = 0  # cuts in a row without a clean stretch
        self.given_up = False
        self._before_cuts = rate.per_second
        self._dropped = 0.0  # tokens the throttles of this run of cuts took from our count
        self._clean = 0  # tokens taken since the last throttle
        self._local = threading.local()

    @property
    def per_second(self) -> float:
        return self.rate.per_second

    def _set_rate(self, per_second: float) -> None:
        self.rate = Rate(self.rate.burst, per_second)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.rate.burst, self._tokens + (now - self._last) * self.rate.per_second)
        self._last = now

    def take(self) -> float:
        with self._lock:
            self._refill()
            self._tokens -= 1
            wait = max(0.0, -self._tokens / self.rate.per_second)
            self._local.epoch = self.epoch
            self._clean += 1
            if self._clean >= self.learning.clean_stretch:
                self.cuts, self.given_up = 0, False
            self._set_rate(min(self.published, self.rate.per_second + self.learning.climb * self.published))
        if wait:
            self._sleep(wait)
        return wait

    def throttled(self) -> bool:
        """EC2 throttled this thread's last request: its bucket is empty.  True when that cut the rate."""
        with self._lock:
            self._clean = 0
            if self.given_up:
                return False
            self._refill()
            if self.cuts == 0:
                self._before_cuts, self._dropped = self.rate.per_second, 0.0
            self._dropped += max(0.0, self._tokens)
            self._tokens = min(self._tokens, 0.0)  # whatever our own count said, EC2's bucket is empty
            if getattr(self._local, "epoch", self.epoch) != self.epoch:
                return False  # sent before the last cut: that cut already answered it
            self.cuts += 1
            if self.cuts > self.learning.give_up_after:
                self._set_rate(self._before_cuts)
                self._tokens = min(self.rate.burst, self._tokens + self._dropped)
                self.cuts, self.given_up = 0, True
                log.warning(
                    "EC2 kept throttling %s whatever our pace: back to %.3g/s, throttles left to botocore's retries",
                    self.name or "a bucket",
                    self.rate.per_second,
                )
                return False
            self._set_rate(self.rate.per_second * self.learning.cut)
            self.epoch += 1
            return True


# Tokens of EC2's burst the bot leaves unspent.  Our bucket starts when we
# send the first request, EC2's when it receives it; the first request also
# pays for the connection, so later ones arrive relatively sooner and, with
# both buckets empty, a few would find EC2's a hair short of a whole token
# (a throttled call, and a retry).  A few tokens of slack absorb that jitter
# at the price of a second of burst.
HEADROOM = 5


class Pacer:
    """One bucket per (region, action), created on first use.

    With `learning` (the default) each bucket learns the share of EC2's
    bucket other clients leave it, from the throttles `throttled()` reports;
    `learning=None` paces to the published rates whatever happens.

    With `stop`, a wait for a token ends as soon as `stop` is set and raises
    ShuttingDown instead of sending the call: at 5 deletions a second, eight
    deleters queued for tokens would otherwise hold a shutdown for seconds,
    each then making one more deletion nobody is left to record.
    `clock` and `sleep` are for tests (a fake clock that `sleep` advances).
    """

    def __init__(
        self,
        rates: dict[str, Rate] | None = None,
        scale: float = 1.0,
        headroom: int = HEADROOM,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        learning: Learning | None = Learning(),
        sleep: Callable[[float], object] | None = None,
    ):
        self._rates = {
            k: Rate(max(1, r.burst - headroom), r.per_second * scale) for k, r in (rates or EC2_RATES).items()
        }
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._stop = stop
        self._clock = clock
        self._sleep_for = sleep
        self.learning = learning

    def _sleep(self, seconds: float) -> None:
        if self._sleep_for is not None:
            self._sleep_for(seconds)
            stopped = self._stop is not None and self._stop.is_set()
        elif self._stop is None:
            time.sleep(seconds)
            return
        else:
            stopped = self._stop.wait(seconds)
        if stopped:
            raise ShuttingDown()

    def rate(self, action: str) -> Rate | None:
        """The published rate this pacer keeps `action` to (None: not paced)."""
        return self._rates.get(action)

    def _bucket(self, region: str, action: str) -> TokenBucket | None:
        rate = self._rates.get(action)
        if rate is None:
            return None
        with self._lock:
            bucket = self._buckets.get((region, action))
            if bucket is None:
                if self.learning is None:
                    bucket = TokenBucket(rate, self._clock, self._sleep)
                else:
                    bucket = LearningBucket(rate, self.learning, f"{action} in {region}", self._clock, self._sleep)
                self._buckets[(region, action)] = bucket
            return bucket

    def take(self, region: str, action: str) -> float:
        bucket = self._bucket(region, action)
        if bucket is None:
            return 0.0
        if self._stop is not None and self._stop.is_set():
            raise ShuttingDown()
        return bucket.take()

    def throttled(self, region: str, action: str) -> None:
        """EC2 throttled this thread's last `action` request in `region` (a no-op without learning)."""
        if self.learning is None:
            return
        bucket = self._bucket(region, action)
        if isinstance(bucket, LearningBucket):
            bucket.throttled()

    def per_second(self, region: str, action: str) -> float | None:
        """The rate `action` in `region` is paced to now (learned, or the published one); None: not paced."""
        with self._lock:
            bucket = self._buckets.get((region, action))
        return bucket.rate.per_second if bucket is not None else getattr(self._rates.get(action), "per_second", None)
