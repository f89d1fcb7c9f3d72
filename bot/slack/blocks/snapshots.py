"""Snapshots, volumes and instances: lists, status, and the progress of a snapshot or a restore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.aws.models import Instance, Snapshot, Volume
from bot.slack.blocks.common import Message, age, clip, context, escape, item_list, message, section, state, tags_text
from bot.slack.blocks.menus import item_menu


def snapshot_line(snap: Snapshot, now: datetime) -> str:
    progress = f" {escape(snap.progress)}" if snap.state == "pending" and snap.progress else ""
    desc = f" · {escape(clip(snap.description, 120))}" if snap.description else ""
    return (
        f"`{snap.id}` {state(snap.state)}{progress} · {snap.size_gib} GiB · {age(now, snap.start_time)} ago"
        f" · `{escape(snap.volume_id)}`{desc}"
    )


def snapshot_list(
    snaps: Sequence[Snapshot], total: int, region: str, now: datetime, volume_id: str | None, place: str = ""
) -> Message:
    """`place` (the region, or ACCOUNT/REGION): each snapshot gets its menu (Status, Restore…, Copy…, Delete)."""
    title = f"Snapshots of {volume_id} in {region}" if volume_id else f"Snapshots in {region}"
    return item_list(
        title,
        [snapshot_line(s, now) for s in snaps],
        total,
        "No snapshots yet. Create one with `/snapshot vol-…`.",
        "Narrow it with `/snapshot list vol-…`.",
        menus=[item_menu("snapshot", s.id, place) for s in snaps] if place else (),
    )


def snapshot_progress(snap: Snapshot, now: datetime, verb: str = "Snapshot", requested_by: str = "") -> Message:
    """The message for a snapshot being created or copied; updated as it completes."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    if snap.state == "completed":
        head = f":white_check_mark: {verb} `{snap.id}` of `{escape(snap.volume_id)}` completed"
    elif snap.state == "error":
        head = f":x: {verb} `{snap.id}` of `{escape(snap.volume_id)}` failed"
    else:
        pct = f" ({escape(snap.progress)})" if snap.progress else ""
        head = f":hourglass_flowing_sand: {verb} `{snap.id}` of `{escape(snap.volume_id)}` in progress{pct}"
    lines = [f"{head} in {snap.region}{who}."]
    if snap.description:
        lines.append(f"Description: {escape(clip(snap.description, 500))}")
    lines.append(f"{snap.size_gib} GiB · started {age(now, snap.start_time)} ago")
    status = f"Details: `/snapshot status {snap.id} region={snap.region}`"
    return message(lines[0], [section("\n".join(lines)), context(status)])


def snapshot_status(snap: Snapshot, now: datetime) -> Message:
    fields = [
        f"*State*\n{state(snap.state)}",
        f"*Progress*\n{escape(snap.progress or '—')}",
        f"*Volume*\n`{escape(snap.volume_id)}`",
        f"*Size*\n{snap.size_gib} GiB",
        f"*Started*\n{snap.start_time:%Y-%m-%d %H:%M} UTC ({age(now, snap.start_time)} ago)",
        f"*Encrypted*\n{'yes' if snap.encrypted else 'no'}",
        f"*Storage tier*\n{escape(snap.storage_tier)}"
        + (f" (restored until {snap.restore_expiry:%Y-%m-%d %H:%M} UTC)" if snap.restore_expiry else ""),
    ]
    blocks = [
        section(
            f"*Snapshot `{snap.id}`* in {snap.region}"
            + (f"\n{escape(clip(snap.description, 1000))}" if snap.description else "")
        ),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        section(f"*Tags*\n{tags_text(snap.tags)}"),
    ]
    return message(f"Snapshot {snap.id}: {escape(snap.state)}", blocks)


# --- volumes -------------------------------------------------------------------


def volume_line(vol: Volume, now: datetime, last_snapshot: datetime | None) -> str:
    attached = ", ".join(f"`{escape(a.instance_id)}` {escape(a.device)}" for a in vol.attachments) or "not attached"
    name = f" *{escape(vol.tags['Name'])}*" if vol.tags.get("Name") else ""
    last = f"last snapshot {age(now, last_snapshot)} ago" if last_snapshot else ":warning: never snapshotted"
    return (
        f"`{vol.id}`{name} {state(vol.state)} · {vol.size_gib} GiB {escape(vol.volume_type)} · "
        f"{escape(vol.az)} · {attached} · {last}"
    )


def volume_list(
    rows: Sequence[tuple[Volume, datetime | None]], total: int, region: str, now: datetime, place: str = ""
) -> Message:
    """`place` (the region, or ACCOUNT/REGION): each volume gets its menu (Snapshot now, Attach…)."""
    return item_list(
        f"Volumes in {region}",
        [volume_line(v, now, last) for v, last in rows],
        total,
        "No volumes in this region.",
        menus=[item_menu("volume", v.id, place) for v, _ in rows] if place else (),
    )


def volume_progress(
    vol: Volume, snapshot_id: str, requested_by: str, attach: Mapping | None = None, attach_error: str = ""
) -> Message:
    """Restore message: creating → available → (attached | attach failed)."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    if attach_error:
        head = (
            f":warning: Volume `{vol.id}` was restored from `{snapshot_id}` but attaching it failed: "
            f"{escape(attach_error)}"
        )
    elif vol.attachments:
        a = vol.attachments[0]
        head = (
            f":white_check_mark: Volume `{vol.id}` restored from `{snapshot_id}` and attached to "
            f"`{escape(a.instance_id)}` as {escape(a.device)}"
        )
    elif vol.state == "available" and attach:
        head = (
            f":hourglass_flowing_sand: Volume `{vol.id}` restored from `{snapshot_id}`; attaching to "
            f"`{escape(attach['instance_id'])}` as {escape(attach['device'])}"
        )
    elif vol.state in ("available", "in-use"):
        head = f":white_check_mark: Volume `{vol.id}` restored from `{snapshot_id}` and available"
    elif vol.state == "error":
        head = f":x: Restoring `{snapshot_id}` into `{vol.id}` failed"
    else:
        head = f":hourglass_flowing_sand: Restoring `{snapshot_id}` into volume `{vol.id}`"
    body = f"{head}{who}.\n{vol.size_gib} GiB {escape(vol.volume_type)} in {escape(vol.az)} ({vol.region})"
    return message(head, [section(body)])


def volume_attached(volume_id: str, instance_id: str, device: str, region: str) -> Message:
    text = f":link: Attaching `{volume_id}` to `{instance_id}` as {escape(device)} in {region}."
    return message(text, [section(text)])


# --- instances -------------------------------------------------------------------


def instance_line(inst: Instance, now: datetime, image_names: Mapping[str, str] | None = None) -> str:
    name = f" *{escape(inst.name)}*" if inst.name else ""
    image = f"`{escape(inst.image_id)}`"
    if image_names and image_names.get(inst.image_id):
        image += f" ({escape(image_names[inst.image_id])})"
    return (
        f"`{inst.id}`{name} {state(inst.state)} · {escape(inst.instance_type)} · AMI {image} · "
        f"{escape(inst.az)} · up {age(now, inst.launch_time)}"
    )


def instance_list(
    insts: Sequence[Instance], total: int, region: str, now: datetime, image_names: Mapping[str, str] | None = None
) -> Message:
    return item_list(
        f"Instances in {region}",
        [instance_line(i, now, image_names) for i in insts],
        total,
        "No instances in this region.",
    )
