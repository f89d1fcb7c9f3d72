"""The bounded pool where AWS work runs after the Slack ack.

A fixed number of threads and a cap on queued jobs: past the cap `submit`
raises Busy (the user is told, nothing starts) instead of queueing without
bound.  `wait_idle` lets the demo console and the tests wait for results
without sleeping blindly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from bot.errors import Busy

log = logging.getLogger(__name__)


def start_threads(pool: ThreadPoolExecutor, n: int) -> None:
    """Start n of the pool's threads now, not one by one during the first burst of work.

    ThreadPoolExecutor starts a thread inside submit() whenever none is idle
    and waits until it runs; under a burst of Slack requests each such start
    costs the submitting request milliseconds of contended GIL
    (benchmarks/ack_latency.py).  Here n tasks wait for each other, so no
    thread is idle until all n run, and each submit starts one.  n must not
    exceed the pool's max_workers (the barrier would time out, harmlessly).
    """
    barrier = threading.Barrier(n)
    for _ in range(n):
        pool.submit(barrier.wait, 10)


class Worker:
    def __init__(self, max_workers: int = 8, max_pending: int = 1000, name: str = "aws"):
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._max_pending = max_pending
        self._pending = 0
        self._closed = False
        self._idle = threading.Condition()

    @property
    def pending(self) -> int:
        with self._idle:
            return self._pending

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        with self._idle:
            if self._closed:
                raise Busy("the bot is restarting; nothing was started.", "Try again in a minute.")
            if self._pending >= self._max_pending:
                raise Busy(
                    f"the bot is busy ({self._pending} jobs queued); nothing was started.", "Try again in a minute."
                )
            self._pending += 1
        try:
            future = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def start_threads(self) -> None:
        """Start every worker thread now (the server does at start; see start_threads)."""
        start_threads(self._pool, self.max_workers)

    def _done(self, future: Future | None) -> None:
        if future is not None and not future.cancelled() and future.exception() is not None:
            log.error("worker job failed", exc_info=future.exception())
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Block until no job is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        """Take no more work (a shutdown began); what is queued or running carries on."""
        with self._idle:
            self._closed = True

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
