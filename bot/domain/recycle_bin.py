"""Recycle Bin, snapshot locks and AMI deregistration protection: what a deletion leaves, and what refuses one.

Pure decisions first, then the few functions that read AWS for them (one
call set per region, never one per item) and the undelete commands.

* *Recoverability.*  A Recycle Bin retention rule of the item's type covers
  it when it is available and either region-level (no tags; then none of its
  exclusion tags may be on the item) or tag-level with one of its tag pairs
  on the item (a pair with an empty value matches the key with any value).
  When several cover it, the longest retention wins.  A covered deletion is
  "recoverable until" the deletion time plus that retention; otherwise it is
  permanent.  Rules the bot may not read make it "unknown", said so in the
  plan, never a reason to fail the plan.
* *Refusals.*  A snapshot locked (governance, compliance, or compliance in
  its cooling-off period) and not yet past its lock expiry, and an AMI whose
  deregistration protection is on or in its cooldown, may not be deleted: the
  reason says when they can go.  They sit beside the keep tag, the snooze,
  backing an AMI and being in use: refused by `/snapshot delete` and
  `/ami deregister`, decided again by the executors, kept by the retention
  decision (bot/domain/retention.py) so no sweep selects them.  EC2 refuses
  such a deletion itself too; the bot's check is what makes the refusal
  say when.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot import errors
from bot.aws.models import BinEntry, RetentionRule, SnapshotLock

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway

RESOURCE_TYPE = {"snapshot": "EBS_SNAPSHOT", "image": "EC2_IMAGE"}
LOCKED_STATES = frozenset({"governance", "compliance", "compliance-cooloff"})
PERMANENT = "permanent delete (no Recycle Bin rule covers it)"


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# --- recoverability (pure) ------------------------------------------------------------------


def _has(tags: Mapping[str, str], pairs: Iterable[tuple[str, str]]) -> bool:
    return any(key in tags and (not value or tags[key] == value) for key, value in pairs)


def covering_rule(rules: Iterable[RetentionRule], kind: str, tags: Mapping[str, str]) -> RetentionRule | None:
    """The rule that would keep a deleted snapshot or AMI (`kind`) with these tags: the longest retention wins."""
    wanted = RESOURCE_TYPE[kind]
    covering = [
        r
        for r in rules
        if r.resource_type == wanted
        and r.status == "available"
        and r.retention_days > 0
        and (_has(tags, r.resource_tags) if r.resource_tags else not _has(tags, r.exclude_tags))
    ]
    return max(covering, key=lambda r: (r.retention_days, r.id), default=None)


@dataclass(frozen=True)
class BinRules:
    """A region's Recycle Bin rules as read, or why they could not be read (`unknown`)."""

    rules: tuple[RetentionRule, ...] = ()
    unknown: str = ""

    def recoverability(self, kind: str, tags: Mapping[str, str], deleted_at: datetime) -> str:
        """ "recoverable until DATE (…)", "permanent delete (…)" or "recoverability unknown (…)"."""
        if self.unknown:
            return f"recoverability unknown ({self.unknown})"
        rule = covering_rule(self.rules, kind, tags)
        if rule is None:
            return PERMANENT
        until = deleted_at + timedelta(days=rule.retention_days)
        locked = ", a locked rule" if rule.lock_state != "unlocked" else ""
        return f"recoverable until {_day(until)} ({rule.retention_days} d, Recycle Bin rule {rule.name}{locked})"


# --- refusals (pure) ------------------------------------------------------------------------


def lock_refusal(lock: SnapshotLock | None, now: datetime) -> str:
    """Why a locked snapshot may not be deleted, and when it can go ("" = not locked)."""
    if lock is None or lock.state not in LOCKED_STATES:
        return ""
    if lock.expires is not None and lock.expires <= now:
        return ""
    until = f" until {_day(lock.expires)}" if lock.expires else ""
    if lock.state == "compliance":
        how = "nobody can unlock it; it can go once the lock expires"
    elif lock.state == "compliance-cooloff":
        ends = f" (cooling off until {_day(lock.cool_off_ends)})" if lock.cool_off_ends else ""
        how = f"it can be unlocked during its cooling-off period{ends}, else it goes once the lock expires"
    else:
        how = "unlock it (ec2:UnlockSnapshot) or wait for the lock to expire"
    return f"locked in {lock.state} mode{until}: {how}"


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+)?(?:Z|[+-]\d{2}:?\d{2})?")


def protection_refusal(protection: str, now: datetime) -> str:
    """Why an AMI with deregistration protection may not be deregistered, and when it can ("" = it may)."""
    text = (protection or "").strip().lower()
    if not text or text == "disabled":
        return ""
    if text == "enabled":
        return "deregistration protection is enabled: disable it first (ec2:DisableImageDeregistrationProtection)"
    if text == "enabled-with-cooldown":
        return (
            "deregistration protection is enabled with a 24 h cooldown: disable it first, "
            "then it can be deregistered 24 h later"
        )
    found = _DATE.search(protection)
    if text.startswith("disabled") and found:
        try:
            until = datetime.fromisoformat(found.group().replace("Z", "+00:00"))
        except ValueError:
            until = None
        if until is not None:
            until = until if until.tzinfo else until.replace(tzinfo=UTC)
            return "" if until <= now else f"deregistration protection was disabled; its cooldown ends {_day(until)}"
    # A state this version does not know: refuse rather than guess.
    return f"deregistration protection is {protection!r}: check it with DescribeImages"


# --- reading AWS: one call set per region ---------------------------------------------------


def read_rules(gw: Ec2Gateway, region: str) -> BinRules:
    """The region's rules; a refusal (no rbin:ListRules, say) makes them unknown instead of failing the plan."""
    try:
        return BinRules(gw.retention_rules(region))
    except errors.BotError as exc:
        return BinRules(unknown=f"could not read the Recycle Bin rules: {exc.message}")


@dataclass(frozen=True)
class Locks:
    """The snapshots locked in a region, or why that could not be read (EC2 still refuses deleting them)."""

    locks: Mapping[str, SnapshotLock] = field(default_factory=dict)
    unknown: str = ""

    def refusal(self, snapshot_id: str, now: datetime) -> str:
        return lock_refusal(self.locks.get(snapshot_id), now)


def read_locks(gw: Ec2Gateway, region: str) -> Locks:
    try:
        return Locks(gw.locked_snapshots(region))
    except errors.BotError as exc:
        return Locks(unknown=f"could not read snapshot locks: {exc.message}; EC2 still refuses deleting a locked one")


def refuse_locked(locks: Locks, snapshot_ids: Sequence[str], now: datetime) -> None:
    """Conflict naming every locked snapshot and when it can go (a plan refused up front)."""
    refused = [(sid, locks.refusal(sid, now)) for sid in snapshot_ids]
    refused = [(sid, why) for sid, why in refused if why]
    if refused:
        raise errors.Conflict(
            "; ".join(f"{sid} is {why}" for sid, why in refused) + ". Nothing was requested.",
            "Ask again once the lock has expired or been removed.",
        )


# --- the bin: list, undelete ----------------------------------------------------------------


def recycle_bin(gw: Ec2Gateway, region: str) -> list[BinEntry]:
    """What is in the region's Recycle Bin, snapshots and AMIs, the first to be purged first."""
    entries = gw.snapshots_in_recycle_bin(region) + gw.images_in_recycle_bin(region)
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: (e.purged_at or far, e.id))


def undelete(gw: Ec2Gateway, region: str, kind: str, resource_id: str) -> BinEntry:
    """Restore a snapshot or AMI from the Recycle Bin; NotFound (nothing changed) when it is not there.

    Not destructive: it brings back what a deletion took, so it needs no approver.
    """
    listed = gw.snapshots_in_recycle_bin if kind == "snapshot" else gw.images_in_recycle_bin
    try:
        found = [e for e in listed(region, [resource_id]) if e.id == resource_id]
    except errors.NotFound:
        found = []
    if not found:
        noun = "snapshot" if kind == "snapshot" else "AMI"
        raise errors.NotFound(
            f"{resource_id} is not in the Recycle Bin of {region}; nothing was changed.",
            f"`/snapshot recycle-bin region={region}` lists what is there; a {noun} deleted without a "
            "retention rule covering it, or purged after its retention, cannot be brought back.",
        )
    if kind == "snapshot":
        gw.restore_snapshot_from_recycle_bin(region, resource_id)
    else:
        gw.restore_image_from_recycle_bin(region, resource_id)
    return found[0]
