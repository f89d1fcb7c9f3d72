"""AMIs: create and copy progress, the list, launches, and unsharing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.aws.models import BackingSnapshot, Image, Instance
from bot.domain.amis import ImageRow
from bot.slack.blocks.common import (
    LIST_LIMIT,
    Message,
    age,
    clip,
    context,
    escape,
    item_list,
    message,
    packed_sections,
    section,
    state,
)
from bot.slack.blocks.menus import item_menu


def backing_text(snaps: Sequence[BackingSnapshot]) -> str:
    """`snap-…` 8 GiB, … (total): an AMI's backing snapshots."""
    if not snaps:
        return "no EBS snapshots"
    shown = ", ".join(f"`{escape(b.id)}` {b.size_gib} GiB" for b in snaps[:10])
    more = f", …and {len(snaps) - 10} more" if len(snaps) > 10 else ""
    total = f" ({sum(b.size_gib for b in snaps)} GiB in all)" if len(snaps) > 1 else ""
    return f"{shown}{more}{total}"


def image_progress(image: Image, now: datetime, verb: str = "AMI", requested_by: str = "", source: str = "") -> Message:
    """The message for an AMI being created or copied; updated when it is available (or failed)."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    src = f" from `{escape(source)}`" if source else ""
    name = f" *{escape(image.name)}*" if image.name else ""
    if image.state == "available":
        head = f":white_check_mark: {verb} `{image.id}`{name}{src} is available"
    elif image.state in ("failed", "error", "invalid", "deregistered"):
        head = f":x: {verb} `{image.id}`{name}{src} is {escape(image.state)}"
    else:
        head = f":hourglass_flowing_sand: {verb} `{image.id}`{name}{src} is {escape(image.state or 'pending')}"
    lines = [f"{head} in {image.region}{who}."]
    if image.description:
        lines.append(f"Description: {escape(clip(image.description, 500))}")
    if image.state == "available":
        lines.append(f"Backing snapshots: {backing_text(image.backing)}")
    lines.append(f"Started {age(now, image.creation_date)} ago")
    hint = (
        f"Launch it: `/ami launch {image.id} region={image.region}`"
        if image.state == "available"
        else f"Check it: `/ami list region={image.region}`"
    )
    return message(lines[0], [section("\n".join(lines)), context(hint)])


def ami_line(row: ImageRow, now: datetime) -> str:
    image = row.image
    if image.public:
        shared = ":globe_with_meridians: public"
    elif row.shared_with:
        shared = "shared with " + ", ".join(f"`{escape(a)}`" for a in row.shared_with[:10])
        if len(row.shared_with) > 10:
            shared += f" …and {len(row.shared_with) - 10} more"
    else:
        shared = "not shared"
    if row.in_use:
        use = f":warning: *in use* by {row.instance_count} instance{'s' if row.instance_count != 1 else ''}"
    else:
        use = "no instances"
    return (
        f"*{escape(image.name) or '_unnamed_'}* `{image.id}` {state(image.state)} · {age(now, image.creation_date)} ago"
        f"\n      snapshots {backing_text(image.backing)} · {shared} · {use}"
    )


def ami_list(rows: Sequence[ImageRow], total: int, region: str, now: datetime, place: str = "") -> Message:
    """`place` (the region, or ACCOUNT/REGION): each AMI gets its menu (Launch…, Copy…, Share…, Deregister)."""
    return item_list(
        f"AMIs in {region}, newest first",
        [ami_line(r, now) for r in rows],
        total,
        "No AMIs of this account here. Create one with `/ami create i-… name=NAME`.",
        "Show fewer or more with `limit=N`.",
        menus=[item_menu("image", r.image.id, place) for r in rows] if place else (),
    )


def launch_progress(
    instances: Sequence[Instance], image_id: str, image_name: str, region: str, requested_by: str = ""
) -> Message:
    """The `/ami launch` message: instance IDs and states, updated until they are all running."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    count = len(instances)
    noun = f"{count} instance{'s' if count != 1 else ''}"
    name = f" *{escape(image_name)}*" if image_name else ""
    states = {i.state for i in instances}
    if states == {"running"}:
        head = f":white_check_mark: {noun} running from `{escape(image_id)}`{name}"
    elif states & {"terminated", "shutting-down", "stopped", "stopping"}:
        head = f":warning: {noun} launched from `{escape(image_id)}`{name}; not all are running"
    else:
        head = f":rocket: Launching {noun} from `{escape(image_id)}`{name}"
    lines = [
        f"`{i.id}` {state(i.state)} · {escape(i.instance_type)} · {escape(i.az) or '—'}" for i in instances[:LIST_LIMIT]
    ]
    if count > LIST_LIMIT:
        lines.append(f"…and {count - LIST_LIMIT} more")
    blocks, _ = packed_sections([f"{head} in {region}{who}.", *lines], 3)
    blocks.append(context(f"See them with `/instance list region={region}`"))
    return message(head, blocks)


class Outcome(Protocol):
    """What happened to one resource: the result of an unshare."""

    @property
    def resource_id(self) -> str: ...

    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str: ...


def image_unshared(result: Outcome, region: str) -> Message:
    icon = ":white_check_mark:" if result.ok else ":x:"
    line = f"{icon} `{escape(result.resource_id)}` {escape(result.reason)}"
    fallback = f"{escape(result.resource_id)}: {escape(result.reason)}"
    return message(fallback, [section(f"{line} ({region})")])
