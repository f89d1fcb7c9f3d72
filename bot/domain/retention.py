"""Retention: which of a policy's snapshots and AMIs to keep, and which have expired.

Pure logic (SPEC §5 and §7): `decide()` takes an inventory of `Item`s, a
policy and the current time, and returns one `Decision` — keep, expire or
ignore, always with a reason a human can check — for every item.  No AWS, no
Slack: the sweep lists the inventory through the gateway, calls `decide()`,
and deletes (or asks approval for) what expired.

The rules, in the order they are applied to each item:

1. *Scope.*  Only items the policy created (`chatops:policy=NAME`) and of the
   kind it makes (volume policy → snapshots, instance policy → AMIs) are
   considered; everything else is `ignore`.  An instance policy's AMI-backing
   snapshots are therefore ignored: they go with their AMI.  The exception is
   a *leftover*: an instance policy's snapshot tagged `chatops:ami=ami-…` that
   backs no registered AMI any more (its AMI was deregistered but deleting it
   failed).  After the protections below it is expired, whatever its age: it
   restores nothing on its own and no later run would ever count it.
2. *Protection.*  Never expired, whatever their age: items tagged
   `chatops:keep=true`, items snoozed (`chatops:snooze-until` in the future),
   snapshots under a lock (`LockSnapshot`, until it expires), AMIs with
   deregistration protection (or in its cooldown), snapshots backing a registered AMI, anything not
   `completed` (snapshots) / `available` (AMIs) — pending, error, …, items
   whose source volume/instance is unknown (nothing to count `keep` against),
   and an ID listed twice with different details (the listing is inconsistent;
   decide next time).
   *Archive tier.*  An archived snapshot is never ranked: it does not count
   toward `keep` (as DLM keeps archived snapshots out of the standard-tier
   count) and is never archived again.  It expires only under a policy with
   `on_expired = "archive"` and `archive_delete_after`, once archived that
   long (from its `chatops:archived-at` tag; without the tag, when is
   unknown and it is kept), and not while temporarily restored.  Under an
   archive policy a standard-tier snapshot carrying `chatops:archived-at`
   was restored on purpose: it is kept, not archived again.
3. *Rolling window.*  Per region and source, the remaining (completed,
   unprotected) items are ranked newest first; the newest `keep` are kept.
   Protected items do not count toward `keep` — this is the safe reading:
   a pinned snapshot, an AMI's snapshot or a pending snapshot that may yet
   fail never pushes an ordinary backup out of the window, so at least
   min(keep, ordinary items) ordinary backups survive every sweep.
4. *Grandfather-father-son* (optional, `keep_daily` / `keep_weekly` /
   `keep_monthly`).  Of the same ranked items, the newest of each of the
   newest N calendar days / ISO weeks / months *that have an item* is kept
   (restic's semantics: a source that was down for a week does not lose its
   history).  Days and weeks are taken in `tz` (pass schedule.timezone).
5. *Age.*  With `max_age` set, an item outside the window and the GFS tiers
   is expired only when older than `max_age`; without it, it is expired.

Consequences the property tests pin down: the result depends only on the set
of items, not their order; removing the expired items and deciding again at
the same `now` expires nothing more and keeps the same items; an item expired
now stays expired later; raising `keep`, a GFS tier or `max_age` never
expires more.  Regions are grouped separately, so a DR copy (`copy_to`)
keeps its own newest `keep` in its own region.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from bot.aws.models import Image, Snapshot, SnapshotLock
from bot.config import Policy, format_duration
from bot.domain.recycle_bin import lock_refusal, protection_refusal
from bot.domain.tags import AMI, ARCHIVED_AT, KEEP, POLICY, SNOOZE_UNTIL, SOURCE, archived_at, is_pinned, snoozed_until

SNAPSHOT = "snapshot"
IMAGE = "image"
KEEP_ACTION = "keep"
EXPIRE = "expire"
IGNORE = "ignore"

# The state in which an item is finished and may be expired.
DONE_STATE = {SNAPSHOT: "completed", IMAGE: "available"}
# What each kind of policy creates.
KIND_OF = {"volume": SNAPSHOT, "instance": IMAGE}
# CopySnapshot and CreateImage leave this placeholder as the snapshot's VolumeId.
PLACEHOLDER_VOLUME = "vol-ffffffff"


@dataclass(frozen=True)
class Item:
    """One snapshot or AMI as retention sees it.

    `source_id` is the volume or instance it is a backup of ("" when unknown);
    `size_gib` is the volume size (for an AMI, the sum of its snapshots'), and
    `backs_image` the ID of a registered AMI this snapshot backs, if any.
    """

    id: str
    region: str
    kind: str  # "snapshot" | "image"
    source_id: str
    created: datetime
    state: str
    size_gib: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    backs_image: str | None = None
    tier: str = "standard"  # a snapshot's storage tier: standard | archive
    restore_expiry: datetime | None = None  # an archived snapshot temporarily restored: until when
    lock: SnapshotLock | None = None  # a snapshot's lock (bot/domain/recycle_bin.py)
    protection: str = ""  # an AMI's deregistration protection, as DescribeImages says it

    @property
    def archived(self) -> bool:
        return self.tier == "archive"

    @property
    def policy(self) -> str:
        return self.tags.get(POLICY, "")

    @property
    def pinned(self) -> bool:
        return is_pinned(self.tags)

    @property
    def done(self) -> bool:
        return self.state == DONE_STATE.get(self.kind)


@dataclass(frozen=True)
class Decision:
    item: Item
    action: str  # "keep" | "expire" | "ignore"
    reason: str


# --- adapters from gateway results -------------------------------------------


def snapshot_source(snap: Snapshot) -> str:
    """The volume a snapshot backs up: the `chatops:source` tag, else its VolumeId."""
    source = snap.tags.get(SOURCE) or snap.volume_id
    return "" if source == PLACEHOLDER_VOLUME else source


def item_from_snapshot(snap: Snapshot, backs_image: str | None = None, lock: SnapshotLock | None = None) -> Item:
    return Item(
        id=snap.id,
        region=snap.region,
        kind=SNAPSHOT,
        source_id=snapshot_source(snap),
        created=_aware(snap.start_time),
        state=snap.state,
        size_gib=snap.size_gib,
        tags=dict(snap.tags),
        backs_image=backs_image,
        tier=snap.storage_tier,
        restore_expiry=snap.restore_expiry,
        lock=lock,
    )


def item_from_image(image: Image, size_gib: int = 0) -> Item:
    return Item(
        id=image.id,
        region=image.region,
        kind=IMAGE,
        source_id=image.tags.get(SOURCE, ""),
        created=_aware(image.creation_date),
        state=image.state,
        size_gib=size_gib,
        tags=dict(image.tags),
        protection=image.deregistration_protection,
    )


def build_inventory(
    snapshots: Iterable[Snapshot], images: Iterable[Image], locks: Mapping[str, SnapshotLock] | None = None
) -> list[Item]:
    """Items for one listing of snapshots and AMIs (any regions), with the snapshots' locks when known.

    Works out which snapshots back a registered AMI (every listed image that
    is not deregistered counts: a pending or failed AMI still holds its
    snapshots) and sizes each AMI as the sum of its listed snapshots.
    """
    images = [i for i in images if i.state != "deregistered"]
    backing = {(i.region, s): i.id for i in images for s in i.snapshot_ids}
    items = []
    sizes: dict[tuple[str, str], int] = {}
    for snap in snapshots:
        sizes[(snap.region, snap.id)] = snap.size_gib
        items.append(item_from_snapshot(snap, backing.get((snap.region, snap.id)), (locks or {}).get(snap.id)))
    for image in images:
        size = sum(sizes.get((image.region, s), 0) for s in image.snapshot_ids)
        items.append(item_from_image(image, size))
    return items


# --- the decision ------------------------------------------------------------


def decide(inventory: Iterable[Item], policy: Policy, now: datetime, *, tz: tzinfo = UTC) -> list[Decision]:
    """One Decision (keep / expire / ignore, with its reason) for every distinct item.

    Applies the rules in the module docstring.  The result is in a canonical
    order (region, kind, source, newest first) so it does not depend on the
    order of `inventory`; an item listed twice yields one decision.
    """
    now = _aware(now)
    decisions: list[Decision] = []
    groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item, consistent in _distinct(inventory):
        verdict = _screen(item, policy, consistent, now)
        if verdict is None:
            groups[(item.region, item.source_id)].append(item)
        else:
            decisions.append(Decision(item, *verdict))
    for members in groups.values():
        decisions.extend(_rank(members, policy, now, tz))
    return sorted(decisions, key=_canonical)


def expired(decisions: Iterable[Decision]) -> list[Item]:
    return [d.item for d in decisions if d.action == EXPIRE]


def _screen(item: Item, policy: Policy, consistent: bool, now: datetime) -> tuple[str, str] | None:
    """Scope and protection: a (action, reason) verdict, or None to rank the item."""
    if item.policy != policy.name:
        owner = f"policy {item.policy}" if item.policy else "no policy (no chatops:policy tag)"
        return IGNORE, f"created by {owner}, not {policy.name}"
    wanted = KIND_OF.get(policy.resource)
    leftover = _leftover_of(item, policy)
    if item.kind != wanted and not leftover:
        return IGNORE, f"a {_kind_name(item.kind)}; policy {policy.name} manages {_kind_name(wanted)}s"
    if not consistent:
        return KEEP_ACTION, "listed twice with different details; kept until a consistent listing"
    if item.pinned:
        return KEEP_ACTION, f"pinned with {KEEP}=true"
    snoozed = snoozed_until(item.tags, now)
    if snoozed is not None:
        return KEEP_ACTION, f"snoozed until {snoozed:%Y-%m-%d %H:%M} UTC ({SNOOZE_UNTIL})"
    refused = lock_refusal(item.lock, now) if item.kind == SNAPSHOT else protection_refusal(item.protection, now)
    if refused:
        return KEEP_ACTION, refused
    if item.backs_image:
        return KEEP_ACTION, f"backs registered AMI {item.backs_image}"
    if not item.done:
        done = DONE_STATE.get(item.kind, "completed")
        return KEEP_ACTION, f"state {item.state or 'unknown'}; only {done} {_kind_name(item.kind)}s expire"
    if leftover:
        return EXPIRE, f"left behind by AMI {leftover}, which is no longer registered; it backs no AMI"
    if item.kind == SNAPSHOT and (item.archived or (policy.on_expired == "archive" and ARCHIVED_AT in item.tags)):
        return _archived(item, policy, now)
    if not item.source_id:
        return KEEP_ACTION, f"source unknown (no {SOURCE} tag); nothing to count keep against"
    return None


def _archived(item: Item, policy: Policy, now: datetime) -> tuple[str, str]:
    """An archived snapshot (or, under an archive policy, one restored from the archive): kept or expired."""
    since = archived_at(item.tags)
    if not item.archived:
        when = f" (archived {since:%Y-%m-%d})" if since else ""
        return KEEP_ACTION, f"restored from the archive tier{when}; not archived again"
    after = policy.archive_delete_after if policy.on_expired == "archive" else None
    if after is None:
        return KEEP_ACTION, "archived; no archive_delete_after, so it stays in the archive tier"
    if since is None:
        return KEEP_ACTION, f"archived, but when is unknown (no {ARCHIVED_AT} tag); archive_delete_after cannot apply"
    if item.restore_expiry is not None and _aware(item.restore_expiry) > now:
        return KEEP_ACTION, f"archived, temporarily restored until {_aware(item.restore_expiry):%Y-%m-%d %H:%M} UTC"
    archived_for = now - since
    if archived_for < after:
        return KEEP_ACTION, f"archived {_age(archived_for)} ago, within archive_delete_after {format_duration(after)}"
    return EXPIRE, f"archived {_age(archived_for)} ago > archive_delete_after {format_duration(after)}"


def _leftover_of(item: Item, policy: Policy) -> str:
    """The deregistered AMI an instance policy's snapshot was left behind by, or ""."""
    if policy.resource != "instance" or item.kind != SNAPSHOT or item.backs_image:
        return ""
    return item.tags.get(AMI, "")


def _rank(members: list[Item], policy: Policy, now: datetime, tz: tzinfo) -> list[Decision]:
    """Window, GFS tiers and age for the ordinary items of one region and source."""
    members.sort(key=_newest_first)
    tiers = _gfs_keepers(members, policy, tz)
    source = members[0].source_id
    decisions = []
    for rank, item in enumerate(members, 1):
        keeps = []
        if rank <= policy.keep:
            keeps.append(f"#{rank} of the newest {policy.keep} of {source}")
        keeps += tiers.get(item.id, [])
        item_age = now - _aware(item.created)
        if not keeps and policy.max_age is not None and item_age <= policy.max_age:
            keeps.append(f"{_age(item_age)} old, within max_age {format_duration(policy.max_age)}")
        if keeps:
            decisions.append(Decision(item, KEEP_ACTION, "; ".join(keeps)))
            continue
        why = [f"#{rank} of {source}, outside the newest {policy.keep}"]
        if _gfs_on(policy):
            why.append("not the newest of a kept day/week/month")
        if policy.max_age is not None:
            why.append(f"{_age(item_age)} old > max_age {format_duration(policy.max_age)}")
        decisions.append(Decision(item, EXPIRE, ", ".join(why)))
    return decisions


_TIERS: tuple[tuple[str, str, Callable[[datetime], str]], ...] = (
    ("keep_daily", "day", lambda t: t.strftime("%Y-%m-%d")),
    ("keep_weekly", "week", lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
    ("keep_monthly", "month", lambda t: t.strftime("%Y-%m")),
)


def _gfs_on(policy: Policy) -> bool:
    return any(getattr(policy, name, 0) for name, _, _ in _TIERS)


def _gfs_keepers(members: list[Item], policy: Policy, tz: tzinfo) -> dict[str, list[str]]:
    """item ID → reasons, for the newest item of each of the newest N periods per tier.

    `members` is newest first and local time is monotonic in the instant, so
    the first item seen in a period is that period's newest.
    """
    keepers: dict[str, list[str]] = defaultdict(list)
    for name, period, label in _TIERS:
        wanted = getattr(policy, name, 0)
        seen: set[str] = set()
        for item in members:
            if len(seen) >= wanted:
                break
            bucket = label(_aware(item.created).astimezone(tz))
            if bucket not in seen:
                seen.add(bucket)
                keepers[item.id].append(f"newest of {period} {bucket} ({name} {wanted})")
    return keepers


def _distinct(inventory: Iterable[Item]) -> list[tuple[Item, bool]]:
    """One entry per (region, ID); False marks an ID listed twice with different details.

    A paginated listing can return an item twice; counting it twice toward
    `keep` would expire another item, so duplicates collapse here.
    """
    seen: dict[tuple[str, str], tuple[Item, bool]] = {}
    for item in inventory:
        key = (item.region, item.id)
        if key in seen:
            first, consistent = seen[key]
            if not consistent or first != item:
                # Keep the "smallest" record so input order cannot matter.
                seen[key] = (min(first, item, key=_record_key), False)
        else:
            seen[key] = (item, True)
    return list(seen.values())


def _record_key(item: Item) -> tuple:
    return (
        item.kind,
        item.source_id,
        _aware(item.created).isoformat(),
        item.state,
        item.size_gib,
        sorted(item.tags.items()),
        item.backs_image or "",
        item.tier,
        item.restore_expiry.isoformat() if item.restore_expiry else "",
        repr(item.lock),
        item.protection,
    )


def _newest_first(item: Item) -> tuple:
    return (-_aware(item.created).timestamp(), item.id)


def _canonical(decision: Decision) -> tuple:
    item = decision.item
    return (item.region, item.kind, item.source_id, *_newest_first(item))


def _kind_name(kind: str | None) -> str:
    return {SNAPSHOT: "snapshot", IMAGE: "AMI"}.get(kind or "", kind or "unknown")


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (AWS always answers in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
