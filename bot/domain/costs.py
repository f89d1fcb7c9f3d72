"""Storage cost estimates for snapshots and AMIs (pure).

EBS snapshots are incremental: each one stores only the blocks changed since
the previous snapshot of the same volume, and AWS does not report a single
snapshot's stored size.  These estimates therefore price the full volume size
of every snapshot (for an AMI, the sum of its snapshots) at
`pricing.snapshot_gb_month`: an upper bound.  Deleting one snapshot of a chain
frees only the blocks no other snapshot references, so real savings are
usually lower; messages say "up to" / "~" accordingly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class Sized(Protocol):
    size_gib: int


@dataclass(frozen=True)
class Cost:
    count: int = 0
    gib: int = 0
    usd_month: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.count + other.count, self.gib + other.gib, round(self.usd_month + other.usd_month, 2))


def monthly_usd(gib: float, price_gb_month: float) -> float:
    """Estimated USD a month for `gib` GiB of snapshot storage (upper bound, see module doc)."""
    return round(gib * price_gb_month, 2)


def estimate(items: Iterable[Sized], price_gb_month: float) -> Cost:
    """Count, GiB and estimated $/month of `items` (snapshots, AMIs or retention Items).

    Streams: `items` may be a generator of any length.
    """
    count = gib = 0
    for item in items:
        count += 1
        gib += item.size_gib
    return Cost(count, gib, monthly_usd(gib, price_gb_month))


def usd(amount: float) -> str:
    """$1,234.56 — for messages."""
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class ArchiveCost:
    """What archiving `count` snapshots of `gib` GiB (full size) costs a month, against keeping them standard.

    The archive tier bills every snapshot's *full* size, while the standard
    tier's figure is an upper bound (incremental: shared blocks are billed
    once).  So the saving is "up to": a snapshot whose blocks are mostly
    shared with its neighbours can cost more archived than standard.
    """

    count: int
    gib: int
    archive_usd_month: float
    standard_usd_month: float

    @property
    def saving_usd_month(self) -> float:
        return round(self.standard_usd_month - self.archive_usd_month, 2)


def archive_estimate(count: int, gib: int, price_gb_month: float, archive_gb_month: float) -> ArchiveCost:
    return ArchiveCost(count, gib, monthly_usd(gib, archive_gb_month), monthly_usd(gib, price_gb_month))
