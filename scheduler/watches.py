"""Follow-ups for slow AWS work: poll what is pending, update its Slack message.

A command that starts something slow (a snapshot, a restore, a copy, an AMI,
a launch) records a watch in the store, then posts a message; this job polls
each watch and updates the message when the resource finishes, fails, or the
watch times out (AWS carries on; the user is told how to check).  Watches
live in the store, so a restart resumes them.  `WATCHERS` maps each watch
kind to the function that advances it, listed here, in one place; how a
watch's message is updated and how a watch ends is in watch_messages.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from bot.flows.deps import Deps
from bot.slack.send import SLACK_FAILURES
from scheduler.ami_watches import watch_image, watch_instances
from scheduler.snapshot_watches import watch_snapshot, watch_volume
from scheduler.watch_messages import MessageGone, show, timed_out, timed_out_message

log = logging.getLogger(__name__)

Watcher = Callable[[Deps, Mapping], None]
WATCHERS: Mapping[str, Watcher] = {
    "snapshot": watch_snapshot,
    "volume": watch_volume,
    "image": watch_image,
    "instances": watch_instances,
}
# A watch still "posting" this long after it was recorded was left so by a
# crash mid-post: it is followed as one without a message.  Far longer than a
# post can take, rate-limit waits and timeouts included.
POSTING_GRACE = timedelta(minutes=10)

__all__ = ["POSTING_GRACE", "WATCHERS", "poll_watches", "watch_volume"]


def poll_watches(deps: Deps) -> int:
    """Advance every active watch once; returns how many were looked at."""
    rows = deps.store.active_watches(posting_before=deps.now() - POSTING_GRACE)
    for row in rows:
        if row["state"] == "posting":
            row = {**row, "ts": None}  # left mid-post by a crash: followed without a message
        try:
            WATCHERS[row["kind"]](deps, row)
        except MessageGone as exc:
            log.info("watch %s of %s ends: its message is gone (%s)", row["id"], row["resource_ids"], exc)
            deps.store.update_watch(row["id"], state="message-gone")
        except Exception as exc:  # one broken watch must not starve the others; it is retried next poll
            log.exception("watch %s (%s %s) failed this poll", row["id"], row["kind"], row["resource_ids"])
            if timed_out(deps, row):
                abandon(deps, row, exc)
    return len(rows)


def abandon(deps: Deps, row: Mapping, exc: Exception) -> None:
    """A watch whose polls still fail past its deadline ends, saying so on its message if Slack lets it."""
    if not deps.store.update_watch(row["id"], state="timed-out"):
        return
    if isinstance(exc, SLACK_FAILURES):
        return  # the failure was the message itself: asking again is pointless
    try:
        show(deps, row, timed_out_message(deps, row))
    except Exception:  # best effort: the watch has ended either way
        log.exception("watch %s: could not say it stopped", row["id"])
