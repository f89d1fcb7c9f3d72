"""Restore drills: which backup to restore, whether the restore passed, what it cost, who is overdue (pure).

A drill proves a backup restores: a snapshot becomes a volume that reaches
`available` at the snapshot's size, an AMI becomes an instance that reaches
`running` and passes its status checks.  The flow that does it is
bot/flows/drill_flow.py; here are the rules it follows, free of AWS and Slack:

- `pick`: one backup per source (per region, so DR copies are proven too), the
  newest (`drill_pick = "latest"`) or a random completed one of the last
  `drill_window` (`"random"`, as AWS Backup's restore testing picks).
- `snapshot_refusal` / `image_refusal`: what cannot be drilled, and why.
- `volume_verdict`: does the restored volume match its snapshot.
- `Drill`: one drill as the store keeps it, with its restore time and its cost
  (volume GiB-hours, instance minutes) priced by `drill_cost`.
- `overdue`: the sources with no successful drill within twice the interval.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot import errors
from bot.aws.models import Image, Snapshot, Volume
from bot.domain.retention import snapshot_source
from bot.domain.tags import DRILL, SOURCE, managed_tags

SNAPSHOT = "snapshot"
IMAGE = "image"
# How a drill ends; "running" while it goes (a row left running by a dead process becomes "interrupted").
OK, FAILED, TIMED_OUT, INTERRUPTED = "ok", "failed", "timed-out", "interrupted"
DRILL_STATES = ("running", OK, FAILED, TIMED_OUT, INTERRUPTED)
# The smallest instance type of each architecture EC2 offers everywhere (drill_instance_type overrides it).
SMALLEST_TYPE = {"x86_64": "t3.micro", "arm64": "t4g.micro", "i386": "t3.micro"}
DEFAULT_TYPE = "t3.micro"
DRILL_VOLUME_TYPE = "gp3"
DRILL_DEVICE = "/dev/sdx"  # on the scratch instance: an unusual name, unlikely to be taken
HOURS_A_MONTH = 730


@dataclass(frozen=True)
class Target:
    """A backup to drill: a snapshot (restored as a volume) or an AMI (launched as an instance)."""

    kind: str  # SNAPSHOT | IMAGE
    region: str
    backup_id: str
    source_id: str  # the volume or instance it backs up ("" when unknown)
    created: datetime
    size_gib: int = 0

    @property
    def source_key(self) -> str:
        """How the digest names a source: its region and ID (a DR copy's source is drilled in its own region)."""
        return f"{self.region}/{self.source_id or self.backup_id}"


def snapshot_target(snap: Snapshot) -> Target:
    return Target(SNAPSHOT, snap.region, snap.id, snapshot_source(snap), snap.start_time, snap.size_gib)


def image_target(image: Image) -> Target:
    source = image.tags.get(SOURCE, "")
    return Target(IMAGE, image.region, image.id, source, image.creation_date, image.backing_gib)


def snapshot_refusal(snap: Snapshot) -> str:
    """Why this snapshot cannot be drilled now ("" = it can)."""
    if snap.archived:
        return f"{snap.id} is in the archive tier; restore it first with `/snapshot unarchive {snap.id}`."
    if snap.state != "completed":
        return f"{snap.id} is {snap.state}; only a completed snapshot can be drilled."
    return ""


def image_refusal(image: Image) -> str:
    if image.state != "available":
        return f"{image.id} is {image.state}; only an available AMI can be drilled."
    return ""


def drillable_snapshot(snap: Snapshot) -> Target:
    """The snapshot as a drill target, or Conflict saying why it cannot be one."""
    why = snapshot_refusal(snap)
    if why:
        raise errors.Conflict(why, f"`/snapshot status {snap.id}` shows its state.")
    return snapshot_target(snap)


def drillable_image(image: Image) -> Target:
    why = image_refusal(image)
    if why:
        raise errors.Conflict(why, "`/ami list` shows its state.")
    return image_target(image)


def pick(
    targets: Iterable[Target], how: str, window: timedelta, now: datetime, rng: random.Random | None = None
) -> list[Target]:
    """One target per source: the newest, or (`how = "random"`) a random one created within `window` of `now`.

    A source whose backups are all older than the window has nothing to pick
    at random: it is left out this time, and the digest flags it once it is
    overdue.  The result is ordered by region, then source, for a stable run.
    """
    rng = rng or random.Random()
    by_source: dict[str, list[Target]] = {}
    for target in targets:
        by_source.setdefault(target.source_key, []).append(target)
    picked = []
    for key in sorted(by_source):
        items = sorted(by_source[key], key=lambda t: (t.created, t.backup_id))
        if how == "random":
            recent = [t for t in items if now - t.created <= window]
            if recent:
                picked.append(rng.choice(recent))
        else:
            picked.append(items[-1])
    return picked


def instance_type_for(image: Image, configured: str = "") -> str:
    """`drill_instance_type` if set, else the smallest type the AMI's architecture runs on."""
    return configured or SMALLEST_TYPE.get(image.architecture, DEFAULT_TYPE)


def drill_tags(run_id: str, user: str) -> dict[str, str]:
    """What a drill's volume or instance carries: the run, managed, who asked.

    Never the source's tags nor `chatops:policy`: a policy that targets volumes
    by tag must not back up a drill volume, and a drill is never a backup.
    """
    return {**managed_tags(user), DRILL: run_id, "Name": f"chatops restore drill {run_id}"}


def is_drill_resource(tags: Mapping[str, str] | None, run_id: str | None = None) -> bool:
    """Carries chatops:drill (with this run's ID, when given): the only resources a drill may remove."""
    value = (tags or {}).get(DRILL, "")
    return bool(value) and (run_id is None or value == run_id)


def volume_verdict(volume: Volume, size_gib: int) -> str:
    """Why the restored volume does not prove its snapshot ("" = it does)."""
    if volume.state != "available":
        return f"{volume.id} is {volume.state}, not available"
    if volume.size_gib < size_gib:
        return f"{volume.id} has {volume.size_gib} GiB, less than the snapshot's {size_gib} GiB"
    return ""


@dataclass(frozen=True)
class DrillCost:
    gib_hours: float
    instance_minutes: float
    usd: float


def drill_cost(
    size_gib: int, volume_seconds: float, instance_seconds: float, volume_gb_month: float, instance_hour: float
) -> DrillCost:
    """What the drill's resources cost while they lived: GiB-hours of volume, minutes of instance, in USD (~)."""
    gib_hours = size_gib * volume_seconds / 3600
    minutes = instance_seconds / 60
    usd = gib_hours * volume_gb_month / HOURS_A_MONTH + minutes / 60 * instance_hour
    return DrillCost(round(gib_hours, 6), round(minutes, 4), round(usd, 6))


@dataclass(frozen=True)
class Drill:
    """One drill, as recorded: what was restored from which backup, how long it took, how it ended."""

    id: str
    kind: str
    region: str
    backup_id: str
    source_id: str
    backup_created: datetime
    started_at: datetime
    state: str
    account: str = ""
    policy: str = ""
    trigger: str = "manual"
    user: str = ""
    restored_id: str = ""
    finished_at: datetime | None = None
    ready_seconds: float | None = None  # to `available` (volume) or `running` (instance): the restore time
    checked_seconds: float | None = None  # an instance: until its status checks passed
    reason: str = ""
    size_gib: int = 0
    instance_type: str = ""
    gib_hours: float = 0.0
    instance_minutes: float = 0.0
    cost_usd: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def backup_age(self) -> timedelta:
        return max(self.started_at - self.backup_created, timedelta(0))  # clocks apart never make it negative

    @property
    def source_key(self) -> str:
        return f"{self.region}/{self.source_id or self.backup_id}"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Drill:
        names = cls.__dataclass_fields__
        values = {k: v for k, v in row.items() if k in names and v is not None}
        for key in ("backup_created", "started_at", "finished_at"):
            if isinstance(values.get(key), str):
                values[key] = datetime.fromisoformat(values[key]) if values[key] else None
        return cls(**values)


@dataclass(frozen=True)
class PolicyDrills:
    """A policy's drills as the digest shows them."""

    policy: str
    interval: timedelta
    last_ok: Drill | None = None
    overdue: tuple[str, ...] = ()  # source keys with no successful drill within twice the interval
    failed_recently: tuple[Drill, ...] = field(default_factory=tuple)
    sources: int = 0


def overdue(
    sources: Iterable[str], last_ok: Mapping[str, datetime], interval: timedelta, now: datetime, since: datetime
) -> tuple[str, ...]:
    """The sources whose newest successful drill is older than twice `interval` (or that never had one).

    `since` is when drills of the policy began (its drill job first seen): a
    source cannot be late before two intervals have passed since then.
    """
    limit = now - 2 * interval
    if since > limit:
        return ()
    return tuple(sorted(s for s in set(sources) if last_ok.get(s) is None or last_ok[s] < limit))


def fmt_seconds(seconds: float | None) -> str:
    """4.2 s, 3 min 5 s, 1 h 2 min — a restore time."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def summary(drills: Sequence[Drill]) -> dict[str, int]:
    return {"drills": len(drills), "ok": sum(d.ok for d in drills), "failed": sum(not d.ok for d in drills)}
