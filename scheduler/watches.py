"""Follow-ups for slow AWS work: poll what is pending, update its Slack message.

A command that starts something slow (a snapshot, a restore, a copy) posts a
message and records a watch in the store; this job polls each watch and
updates the message when the resource finishes, fails, or the watch times
out (AWS carries on; the user is told how to check).  Watches live in the
store, so a restart resumes them.  `WATCHERS` maps a watch kind to the
function that advances it; feature modules add their own kinds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bot import blocks, snapshots
from bot.deps import Deps
from bot.errors import BotError, NotFound
from bot.store import from_iso

log = logging.getLogger(__name__)

Watcher = Callable[[Deps, Mapping], None]
WATCHERS: dict[str, Watcher] = {}


def watcher(kind: str) -> Callable[[Watcher], Watcher]:
    def add(fn: Watcher) -> Watcher:
        WATCHERS[kind] = fn
        return fn

    return add


def poll_watches(deps: Deps) -> int:
    """Advance every active watch once; returns how many were looked at."""
    rows = deps.store.active_watches()
    for row in rows:
        try:
            WATCHERS[row["kind"]](deps, row)
        except Exception:  # one broken watch must not starve the others; it is retried next poll
            log.exception("watch %s (%s %s) failed this poll", row["id"], row["kind"], row["resource_ids"])
    return len(rows)


def update_message(deps: Deps, row: Mapping, msg: blocks.Message) -> None:
    deps.slack.chat_update(channel=row["channel"], ts=row["ts"], **msg)


def timed_out(deps: Deps, row: Mapping) -> bool:
    return deps.now() >= from_iso(row["deadline"])


def finish(deps: Deps, row: Mapping, msg: blocks.Message, state: str = "done") -> None:
    update_message(deps, row, msg)
    deps.store.update_watch(row["id"], state=state)


def give_up(deps: Deps, row: Mapping, status_hint: str) -> None:
    waited = deps.now() - from_iso(row["created_at"])
    finish(deps, row, blocks.watch_timed_out(", ".join(row["resource_ids"]), waited, status_hint), "timed-out")


@watcher("snapshot")
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
        give_up(deps, row, f"/snapshot status {snapshot_id} region={region}")
    elif snap.progress != row["data"].get("progress"):
        update_message(deps, row, blocks.snapshot_progress(snap, deps.now(), verb=verb, requested_by=row["user"]))
        deps.store.update_watch(row["id"], data={**row["data"], "progress": snap.progress})


@watcher("volume")
def watch_volume(deps: Deps, row: Mapping) -> None:
    """Restore: wait for the volume, attach it once (if asked), report the end state."""
    region, (volume_id,) = row["region"], row["resource_ids"]
    data = row["data"]
    snapshot_id, attach = data.get("snapshot_id", ""), data.get("attach")
    volume = deps.gateway.get_volume(region, volume_id)
    render = lambda vol, err="": blocks.volume_progress(vol, snapshot_id, row["user"], attach, err)  # noqa: E731
    if volume.state == "error":
        finish(deps, row, render(volume), "failed")
    elif volume.state == "in-use" or (volume.state == "available" and not attach):
        finish(deps, row, render(volume))
    elif volume.state == "available" and not data.get("attach_started"):
        # Record the attempt before the call: a crash afterwards must not attach twice,
        # nor may another process polling the same watch.
        if not deps.store.claim_watch_step(row["id"], "attach_started", deps.now().isoformat()):
            return
        try:
            snapshots.attach_volume(deps.gateway, region, volume_id, attach["instance_id"], attach["device"])
        except BotError as exc:
            finish(deps, row, render(volume, exc.message), "failed")
            return
        update_message(deps, row, render(volume))
    elif timed_out(deps, row):
        give_up(deps, row, f"/volume list region={region}")
