"""Follow-ups for slow AWS work: poll what is pending, update its Slack message.

A command that starts something slow (a snapshot, a restore, a copy) records
a watch in the store, then posts a message; this job polls each watch and
updates the message when the resource finishes, fails, or the watch times
out (AWS carries on; the user is told how to check).  Watches live in the
store, so a restart resumes them.  `WATCHERS` maps a watch kind to the
function that advances it; feature modules add their own kinds.

Every watch ends, and what ends stays ended (`Store.update_watch`): when the
resource is gone, when Slack will not update the message any more (deleted,
channel archived, bot removed), and when polls keep failing past the
deadline.  A watch whose message could not be posted (Slack failed after the
AWS action succeeded) has nothing to update: it posts the final state once, as
a new message in the channel (in the thread it belongs to, if any), when the
resource finishes.  Once means at most once: the watch is ended before that
post, and a post whose answer is lost is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.domain import snapshots
from bot.errors import BotError, NotFound
from bot.flows.approval_flow import SLACK_FAILURES
from bot.flows.deps import Deps
from bot.slack import blocks
from bot.state.store import from_iso

log = logging.getLogger(__name__)

Watcher = Callable[[Deps, Mapping], None]
WATCHERS: dict[str, Watcher] = {}
# Where a user checks a resource by hand once its watch gave up: kind → command ({ids}, {region}).
STATUS_HINTS: dict[str, str] = {}
# A watch still "posting" this long after it was recorded was left so by a
# crash mid-post: it is followed as one without a message.  Far longer than a
# post can take, rate-limit waits and timeouts included.
POSTING_GRACE = timedelta(minutes=10)
# chat.update errors that mean the message can never be updated again.
MESSAGE_GONE = {
    "message_not_found",
    "channel_not_found",
    "is_archived",
    "not_in_channel",
    "cant_update_message",
    "edit_window_closed",
}


class MessageGone(Exception):
    """Slack will never update this watch's message: the watch ends."""


def watcher(kind: str, status_hint: str) -> Callable[[Watcher], Watcher]:
    def add(fn: Watcher) -> Watcher:
        WATCHERS[kind] = fn
        STATUS_HINTS[kind] = status_hint
        return fn

    return add


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
        show(deps, row, _timed_out_message(deps, row))
    except Exception:  # best effort: the watch has ended either way
        log.exception("watch %s: could not say it stopped", row["id"])


def update_message(deps: Deps, row: Mapping, msg: blocks.Message) -> None:
    """Update the watch's message; nothing to do for a watch without one (its final state is posted at the end)."""
    if not row["ts"]:
        return
    try:
        deps.slack.chat_update(channel=row["channel"], ts=row["ts"], **msg)
    except SlackApiError as exc:
        error = exc.response.get("error", "")
        if error in MESSAGE_GONE:
            raise MessageGone(error) from exc
        raise


def timed_out(deps: Deps, row: Mapping) -> bool:
    return deps.now() >= from_iso(row["deadline"])


def finish(deps: Deps, row: Mapping, msg: blocks.Message, state: str = "done") -> None:
    """End the watch with its final message.

    With a message: update it, then end the watch (an update that fails is
    tried again next poll; updating twice is harmless).  Without one: end the
    watch first, and only the caller that ended it posts the final state, once.
    """
    if row["ts"]:
        update_message(deps, row, msg)
        deps.store.update_watch(row["id"], state=state)
    elif deps.store.update_watch(row["id"], state=state):
        show(deps, row, msg)


def show(deps: Deps, row: Mapping, msg: blocks.Message) -> None:
    """The final state: on the watch's message, or as a new message when it has none (at most once)."""
    if row["ts"]:
        update_message(deps, row, msg)
        return
    thread = {"thread_ts": row["data"]["thread_ts"]} if row["data"].get("thread_ts") else {}
    try:
        deps.slack.chat_postMessage(channel=row["channel"], unfurl_links=False, unfurl_media=False, **thread, **msg)
    except SLACK_FAILURES:
        log.exception("watch %s: could not post the final state of %s", row["id"], row["resource_ids"])


def _timed_out_message(deps: Deps, row: Mapping) -> blocks.Message:
    waited = deps.now() - from_iso(row["created_at"])
    hint = STATUS_HINTS[row["kind"]].format(ids=" ".join(row["resource_ids"]), region=row["region"])
    return blocks.watch_timed_out(", ".join(row["resource_ids"]), waited, hint)


def give_up(deps: Deps, row: Mapping) -> None:
    finish(deps, row, _timed_out_message(deps, row), "timed-out")


@watcher("snapshot", "/snapshot status {ids} region={region}")
def watch_snapshot(deps: Deps, row: Mapping) -> None:
    """Snapshot creation or copy: update when completed or failed."""
    region, (snapshot_id,) = row["region"], row["resource_ids"]
    verb = row["data"].get("verb", "Snapshot")
    try:
        snap = deps.gateway.get_snapshot(region, snapshot_id)
    except NotFound as exc:
        finish(deps, row, blocks.error(exc), "failed")
        return
    if snap.state in ("completed", "error"):
        finish(deps, row, blocks.snapshot_progress(snap, deps.now(), verb=verb, requested_by=row["user"]))
    elif timed_out(deps, row):
        give_up(deps, row)
    elif snap.progress != row["data"].get("progress"):
        update_message(deps, row, blocks.snapshot_progress(snap, deps.now(), verb=verb, requested_by=row["user"]))
        deps.store.update_watch(row["id"], data={**row["data"], "progress": snap.progress})


@watcher("volume", "/volume list region={region}")
def watch_volume(deps: Deps, row: Mapping) -> None:
    """Restore: wait for the volume, attach it once (if asked), report the end state."""
    region, (volume_id,) = row["region"], row["resource_ids"]
    data = row["data"]
    snapshot_id, attach = data.get("snapshot_id", ""), data.get("attach")
    try:
        volume = deps.gateway.get_volume(region, volume_id)
    except NotFound as exc:
        finish(deps, row, blocks.error(exc), "failed")
        return
    render = lambda vol, err="": blocks.volume_progress(vol, snapshot_id, row["user"], attach, err)  # noqa: E731
    if volume.state == "error":
        finish(deps, row, render(volume), "failed")
    elif volume.state == "in-use" or (volume.state == "available" and not attach):
        finish(deps, row, render(volume))
    elif volume.state == "available" and not data.get("attach_started"):
        # Record the attempt before the call: a crash afterwards must not attach twice,
        # nor may another process polling the same watch (nor a watch that ended meanwhile).
        if not deps.store.claim_watch_step(row["id"], "attach_started", deps.now().isoformat()):
            return
        try:
            snapshots.attach_volume(deps.gateway, region, volume_id, attach["instance_id"], attach["device"])
        except BotError as exc:
            finish(deps, row, render(volume, exc.message), "failed")
            return
        update_message(deps, row, render(volume))
    elif timed_out(deps, row):
        give_up(deps, row)
