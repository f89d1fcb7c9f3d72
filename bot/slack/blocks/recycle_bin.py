"""The Recycle Bin: what is in it (`/snapshot recycle-bin`), and an undelete done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.aws.models import BinEntry
from bot.slack.blocks.common import Message, age, clip, escape, item_list, message, section

_KIND = {"snapshot": "snapshot", "image": "AMI"}


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "unknown"


def bin_line(entry: BinEntry, now: datetime) -> str:
    what = f"*{escape(entry.name)}*" if entry.name else (f"of `{escape(entry.volume_id)}`" if entry.volume_id else "")
    desc = f" · {escape(clip(entry.description, 80))}" if entry.description else ""
    left = f" (in {age(entry.purged_at, now)})" if entry.purged_at and entry.purged_at > now else ""
    return (
        f"`{escape(entry.id)}` {_KIND.get(entry.kind, entry.kind)} {what} · deleted {age(now, entry.entered)} ago"
        f" · purged for good {_when(entry.purged_at)}{left}{desc}"
    )


def recycle_bin_list(entries: Sequence[BinEntry], region: str, now: datetime) -> Message:
    """`/snapshot recycle-bin`: snapshots and AMIs in the bin, the first to be purged first."""
    return item_list(
        f"Recycle Bin in {region}",
        [bin_line(e, now) for e in entries],
        len(entries),
        "Empty: nothing deleted here is retained by a Recycle Bin rule (or everything was purged).",
        "Undelete one with `/snapshot undelete snap-…` or `/ami undelete ami-…`.",
    )


def undeleted(entry: BinEntry, user: str) -> Message:
    """An undelete done: the snapshot or AMI is back (a snapshot is usable once it is completed again)."""
    noun = _KIND.get(entry.kind, entry.kind)
    check = f"/snapshot status {entry.id}" if entry.kind == "snapshot" else f"/ami list region={entry.region}"
    text = (
        f":recycle: <@{escape(user)}> restored {noun} `{escape(entry.id)}` ({escape(entry.region)}) from the "
        f"Recycle Bin; it was due to be purged {_when(entry.purged_at)}. Check it with `{escape(check)}`."
    )
    return message(f"Restored {entry.id} from the Recycle Bin", [section(text)])
