"""What a lifecycle run (or its preview) did, per policy: pure result objects.

The sweep fills these in as it works; `bot.slack.blocks.sweep_report_message()`
renders them and `python -m bot sweep` exits non-zero unless `ok`.  The
report refuses to call a run successful with work left undone (SPEC §6): in
delete mode every expired item must end up deleted or failed with a reason,
and an item with neither shows up in `undone` and fails the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.costs import ArchiveCost, Cost, archive_estimate, estimate
from bot.domain.retention import Decision, Item

APPROVE, DELETE, REPORT, ARCHIVE = "approve", "delete", "report", "archive"
ARCHIVE_PRICE = 0.0125  # pricing.snapshot_archive_gb_month's default


@dataclass(frozen=True)
class Created:
    """A snapshot/AMI the run created (or, in a preview, would create: `id` is "")."""

    region: str
    source_id: str
    id: str = ""
    copy_of: str = ""  # for a DR copy: the ID it was copied from


@dataclass(frozen=True)
class Failed:
    region: str
    id: str  # the resource (or source volume/instance for a failed create)
    action: str  # "create" | "copy" | "delete" | "list" …
    reason: str


@dataclass(frozen=True)
class Spared:
    """An expired item not deleted after all: decided again at the moment it would go (or already gone)."""

    region: str
    id: str
    reason: str


@dataclass(frozen=True)
class PolicyReport:
    policy: str
    on_expired: str  # approve | delete | report | archive
    dry_run: bool = False
    created: tuple[Created, ...] = ()
    expired: tuple[Decision, ...] = ()  # decided expired, with reasons
    deleted: tuple[str, ...] = ()  # IDs actually deleted
    failed: tuple[Failed, ...] = ()
    spared: tuple[Spared, ...] = ()  # expired when decided, not deleted at execution, with why
    kept: int = 0
    approval_id: str = ""  # on_expired=approve: the batch approval request
    error: str = ""  # the policy could not run at all (e.g. listing failed)
    account: str = ""  # the account it ran in, named when the bot reaches several ("" otherwise)
    frozen: str = ""  # a deleting run that found deletions frozen: why; it reported what it would delete instead
    capped: str = ""  # a deleting run over its max_delete: why; it asked an approver instead (approval_id)
    archived: tuple[str, ...] = ()  # on_expired=archive: IDs moved to the archive tier (not deleted)

    @property
    def deletes(self) -> bool:
        """Whether this run was meant to delete (or archive) its expired items itself (not when frozen or capped)."""
        return self.on_expired in (DELETE, ARCHIVE) and not self.dry_run and not self.frozen and not self.capped

    @property
    def to_archive(self) -> tuple[Item, ...]:
        """Expired items an archive policy moves to the archive tier (the rest, already archived, are deleted)."""
        if self.on_expired != ARCHIVE:
            return ()
        return tuple(d.item for d in self.expired if d.item.kind == "snapshot" and not d.item.archived)

    @property
    def undone(self) -> tuple[Item, ...]:
        """Expired items a deleting run neither deleted, archived, spared nor reported as failed."""
        if not self.deletes:
            return ()
        accounted = set(self.deleted) | set(self.archived) | {f.id for f in self.failed} | {s.id for s in self.spared}
        return tuple(d.item for d in self.expired if d.item.id not in accounted)

    @property
    def ok(self) -> bool:
        return not (self.error or self.failed or self.undone)

    def freed(self, price_gb_month: float, archive_gb_month: float = ARCHIVE_PRICE) -> Cost:
        """What this run's deletions freed (nothing unless it deleted); an archived snapshot at the archive price."""
        gone = set(self.deleted)
        return estimate((d.item for d in self.expired if d.item.id in gone and not d.item.archived), price_gb_month) + (
            estimate((d.item for d in self.expired if d.item.id in gone and d.item.archived), archive_gb_month)
        )

    def at_stake(self, price_gb_month: float, archive_gb_month: float = ARCHIVE_PRICE) -> Cost:
        """What deleting every expired item frees: a preview's, an approval's or a report's figure.

        An archive policy deletes only its archived snapshots past archive_delete_after (at the archive price);
        the rest it archives (see `archiving`).
        """
        moving = {i.id for i in self.to_archive}
        rest = [d.item for d in self.expired if d.item.id not in moving]
        return estimate((i for i in rest if not i.archived), price_gb_month) + estimate(
            (i for i in rest if i.archived), archive_gb_month
        )

    def archiving(self, price_gb_month: float, archive_gb_month: float = ARCHIVE_PRICE) -> ArchiveCost:
        """The archive tier's price for what this run archived (or, not yet archiving, would archive)."""
        done = set(self.archived)
        items = [i for i in self.to_archive if i.id in done] if self.deletes else list(self.to_archive)
        return archive_estimate(len(items), sum(i.size_gib for i in items), price_gb_month, archive_gb_month)


@dataclass(frozen=True)
class SweepReport:
    policies: tuple[PolicyReport, ...]
    now: datetime
    price_gb_month: float
    archive_gb_month: float = ARCHIVE_PRICE

    @property
    def dry_run(self) -> bool:
        """A preview: every policy report in it is a dry run."""
        return bool(self.policies) and all(p.dry_run for p in self.policies)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.policies)

    @property
    def frozen(self) -> tuple[str, ...]:
        """Why deletions were frozen, once per distinct freeze (empty when none was)."""
        return tuple(dict.fromkeys(p.frozen for p in self.policies if p.frozen))

    def freed(self) -> Cost:
        return sum((p.freed(self.price_gb_month, self.archive_gb_month) for p in self.policies), Cost())

    def at_stake(self) -> Cost:
        return sum((p.at_stake(self.price_gb_month, self.archive_gb_month) for p in self.policies), Cost())

    def archiving(self) -> ArchiveCost:
        """Every policy's archiving, added up (what it archived, or in a preview would archive)."""
        parts = [p.archiving(self.price_gb_month, self.archive_gb_month) for p in self.policies]
        return archive_estimate(
            sum(a.count for a in parts), sum(a.gib for a in parts), self.price_gb_month, self.archive_gb_month
        )


def policy_report(
    policy: str,
    on_expired: str,
    decisions: Sequence[Decision],
    *,
    dry_run: bool = False,
    created: Sequence[Created] = (),
    deleted: Sequence[str] = (),
    archived: Sequence[str] = (),
    failed: Sequence[Failed] = (),
    spared: Sequence[Spared] = (),
    approval_id: str = "",
    account: str = "",
) -> PolicyReport:
    """A PolicyReport from retention decisions and what the run then did."""
    return PolicyReport(
        policy=policy,
        on_expired=on_expired,
        dry_run=dry_run,
        created=tuple(created),
        expired=tuple(d for d in decisions if d.action == "expire"),
        deleted=tuple(deleted),
        archived=tuple(archived),
        failed=tuple(failed),
        spared=tuple(spared),
        kept=sum(d.action == "keep" for d in decisions),
        approval_id=approval_id,
        account=account,
    )
