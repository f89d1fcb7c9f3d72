"""Client-side token buckets mirroring EC2's request limits.

EC2 throttles per account, region and action with token buckets (mutating
deletes: a burst of 100, then 5 a second; paginated Describe*: 100, then 20 a
second).  Spending our own bucket first means a large sweep runs at the
refill rate instead of hammering the API, collecting RequestLimitExceeded and
backing off (which also starves everything else the account does).
`scale` speeds every rate alike (benchmarks against a sped-up fake).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import ShuttingDown


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


# Tokens of EC2's burst the bot leaves unspent.  Our bucket starts when we
# send the first request, EC2's when it receives it; the first request also
# pays for the connection, so later ones arrive relatively sooner and, with
# both buckets empty, a few would find EC2's a hair short of a whole token
# (a throttled call, and a retry).  A few tokens of slack absorb that jitter
# at the price of a second of burst.
HEADROOM = 5


class Pacer:
    """One bucket per (region, action), created on first use.

    With `stop`, a wait for a token ends as soon as `stop` is set and raises
    ShuttingDown instead of sending the call: at 5 deletions a second, eight
    deleters queued for tokens would otherwise hold a shutdown for seconds,
    each then making one more deletion nobody is left to record.
    """

    def __init__(
        self,
        rates: dict[str, Rate] | None = None,
        scale: float = 1.0,
        headroom: int = HEADROOM,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._rates = {
            k: Rate(max(1, r.burst - headroom), r.per_second * scale) for k, r in (rates or EC2_RATES).items()
        }
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._stop = stop
        self._clock = clock

    def _sleep(self, seconds: float) -> None:
        if self._stop is None:
            time.sleep(seconds)
        elif self._stop.wait(seconds):
            raise ShuttingDown()

    def rate(self, action: str) -> Rate | None:
        """The rate this pacer keeps `action` to (None: not paced)."""
        return self._rates.get(action)

    def take(self, region: str, action: str) -> float:
        rate = self._rates.get(action)
        if rate is None:
            return 0.0
        if self._stop is not None and self._stop.is_set():
            raise ShuttingDown()
        with self._lock:
            bucket = self._buckets.setdefault((region, action), TokenBucket(rate, self._clock, self._sleep))
        return bucket.take()
