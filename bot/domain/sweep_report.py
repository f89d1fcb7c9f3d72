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

from bot.domain.costs import Cost, estimate
from bot.domain.retention import Decision, Item

APPROVE, DELETE, REPORT = "approve", "delete", "report"


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
    on_expired: str  # approve | delete | report
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

    @property
    def deletes(self) -> bool:
        """Whether this run was meant to delete its expired items itself (a frozen or capped one did not)."""
        return self.on_expired == DELETE and not self.dry_run and not self.frozen and not self.capped

    @property
    def undone(self) -> tuple[Item, ...]:
        """Expired items a deleting run neither deleted, spared nor reported as failed."""
        if not self.deletes:
            return ()
        accounted = set(self.deleted) | {f.id for f in self.failed} | {s.id for s in self.spared}
        return tuple(d.item for d in self.expired if d.item.id not in accounted)

    @property
    def ok(self) -> bool:
        return not (self.error or self.failed or self.undone)

    def freed(self, price_gb_month: float) -> Cost:
        """What this run's deletions freed (nothing unless it deleted)."""
        gone = set(self.deleted)
        return estimate((d.item for d in self.expired if d.item.id in gone), price_gb_month)

    def at_stake(self, price_gb_month: float) -> Cost:
        """What deleting every expired item frees: a preview's, an approval's or a report's figure."""
        return estimate((d.item for d in self.expired), price_gb_month)


@dataclass(frozen=True)
class SweepReport:
    policies: tuple[PolicyReport, ...]
    now: datetime
    price_gb_month: float

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
        return sum((p.freed(self.price_gb_month) for p in self.policies), Cost())

    def at_stake(self) -> Cost:
        return sum((p.at_stake(self.price_gb_month) for p in self.policies), Cost())


def policy_report(
    policy: str,
    on_expired: str,
    decisions: Sequence[Decision],
    *,
    dry_run: bool = False,
    created: Sequence[Created] = (),
    deleted: Sequence[str] = (),
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
        failed=tuple(failed),
        spared=tuple(spared),
        kept=sum(d.action == "keep" for d in decisions),
        approval_id=approval_id,
        account=account,
    )
