"""Watches for snapshot work: a snapshot being created or copied, a volume being restored (and attached)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import volumes
from bot.errors import BotError, NotFound
from bot.flows.deps import Deps
from bot.slack import blocks
from scheduler.watch_messages import finish, gateway_of, give_up, timed_out, update_message


def watch_snapshot(deps: Deps, row: Mapping) -> None:
    """Snapshot creation or copy: update when completed or failed."""
    region, (snapshot_id,) = row["region"], row["resource_ids"]
    verb = row["data"].get("verb", "Snapshot")
    try:
        snap = gateway_of(deps, row).get_snapshot(region, snapshot_id)
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


def watch_volume(deps: Deps, row: Mapping) -> None:
    """Restore: wait for the volume, attach it once (if asked), report the end state."""
    region, (volume_id,) = row["region"], row["resource_ids"]
    data = row["data"]
    snapshot_id, attach = data.get("snapshot_id", ""), data.get("attach")
    try:
        volume = gateway_of(deps, row).get_volume(region, volume_id)
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
            volumes.attach_volume(gateway_of(deps, row), region, volume_id, attach["instance_id"], attach["device"])
        except BotError as exc:
            finish(deps, row, render(volume, exc.message), "failed")
            return
        update_message(deps, row, render(volume))
    elif timed_out(deps, row):
        give_up(deps, row)
