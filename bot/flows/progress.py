"""A long run shows its progress: one message in the digest channel, updated as items go, then the report.

A run that ends within `slack.progress_every` posts nothing until its report,
as before.  A longer one posts "deleted 120 / 3,000 · about 9 min left" and
updates it at most once every `progress_every` (chat.update is a Tier 3
method: about 50 a minute), then its report replaces it.  Slack failing to
show progress never stops or fails the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES, error_of

log = logging.getLogger(__name__)


class RunProgress:
    def __init__(self, deps: Deps, title: str, channel: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.deps, self.title, self._clock = deps, title, clock
        self.channel = channel if channel is not None else deps.config.slack.digest_channel
        self.every = deps.config.slack.progress_every.total_seconds()
        self.total = 0
        self.done = 0
        self.ts: str | None = None
        self._started = self._last = clock()
        self._posting = False
        self._lock = threading.Lock()

    def add(self, items: int) -> None:
        """More items to go (each account's batch adds its own)."""
        with self._lock:
            self.total += items

    def step(self) -> None:
        """One item went (or was decided otherwise); shows it if the last showing is `every` old."""
        with self._lock:
            self.done += 1
            now = self._clock()
            if not self.channel or now - self._last < self.every or self._posting:
                return
            self._last, self._posting = now, True
            elapsed, done, total, ts = now - self._started, self.done, self.total, self.ts
        left = (total - done) * elapsed / done if done else None
        msg = blocks.run_progress(self.title, done, total, left)
        try:
            if ts is None:
                _, ts = send.post(self.deps.slack, self.channel, msg)
            else:
                send.update(self.deps.slack, self.channel, ts, msg)
        except SLACK_FAILURES as exc:
            log.warning("could not show the progress of %s: %s", self.title, error_of(exc))
        finally:
            with self._lock:
                self.ts, self._posting = ts, False

    def finish(self, msg: blocks.Message) -> bool:
        """Replace the progress message with the report; False when there is none (the caller posts the report)."""
        with self._lock:
            ts = self.ts
        if ts is None:
            return False
        try:
            send.update(self.deps.slack, self.channel, ts, msg)
            return True
        except SLACK_FAILURES as exc:
            log.warning("could not replace the progress of %s with its report: %s", self.title, error_of(exc))
            return False
