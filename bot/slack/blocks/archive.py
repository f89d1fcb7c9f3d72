"""The snapshot archive tier: its price line, and the replies of `/snapshot archive` and `/snapshot unarchive`."""

from __future__ import annotations

from bot.domain.costs import ArchiveCost, usd
from bot.slack.blocks.common import Message, escape, message, section

ARCHIVE_CATCH = "archive is billed on the full size, not incrementally, and a restore takes hours"


def archive_line(cost: ArchiveCost, verb: str = "archiving") -> str:
    """`archiving 12 snapshots (96 GiB full size) ≈ $1.20/month in archive vs up to $4.80/month standard; …`."""
    noun = "snapshot" if cost.count == 1 else "snapshots"
    return (
        f"{verb} {cost.count:,} {noun} ({cost.gib:,} GiB full size) ≈ {usd(cost.archive_usd_month)}/month in archive"
        f" vs up to {usd(cost.standard_usd_month)}/month standard; {ARCHIVE_CATCH}"
    )


def unarchived(snapshot_id: str, region: str, days: int | None, user: str) -> Message:
    """`/snapshot unarchive`: the restore started (it takes hours; the snapshot is usable once it is done)."""
    how = "permanently (standard tier)"
    if days:
        how = f"for {days} day{'s' if days != 1 else ''}, then back to the archive"
    text = (
        f":package: <@{escape(user)}> started restoring `{escape(snapshot_id)}` ({escape(region)}) from the archive "
        f"tier {how}. A restore takes hours; `/snapshot status {escape(snapshot_id)}` shows its tier."
    )
    return message(f"Restoring {snapshot_id} from the archive tier {how}", [section(text)])
