"""What the gateway returns: small frozen dataclasses read from EC2's responses (no boto3 here).

Every layer above the gateway (domain rules, rendering, the store's callers)
works with these, so they can be imported, built and tested without boto3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime


def _tags(raw: Iterable[Mapping] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in raw or ()}


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Snapshot:
    id: str
    region: str
    volume_id: str
    state: str  # pending | completed | error | recoverable | recovering
    progress: str
    size_gib: int
    start_time: datetime
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    encrypted: bool = False
    owner_id: str = ""
    storage_tier: str = "standard"  # standard | archive (DescribeSnapshots' StorageTier)
    restore_expiry: datetime | None = None  # a temporarily restored archived snapshot: when it goes back

    @property
    def archived(self) -> bool:
        return self.storage_tier == "archive"

    @classmethod
    def from_api(cls, raw: Mapping, region: str) -> Snapshot:
        return cls(
            id=raw["SnapshotId"],
            region=region,
            volume_id=raw.get("VolumeId", ""),
            state=raw.get("State", ""),
            progress=raw.get("Progress", "") or "",
            size_gib=int(raw.get("VolumeSize", 0) or 0),
            start_time=_utc(raw.get("StartTime")) or datetime.now(UTC),
            description=raw.get("Description", "") or "",
            tags=_tags(raw.get("Tags")),
            encrypted=bool(raw.get("Encrypted", False)),
            owner_id=raw.get("OwnerId", "") or "",
            storage_tier=raw.get("StorageTier", "") or "standard",
            restore_expiry=_utc(raw.get("RestoreExpiryTime")),
        )


@dataclass(frozen=True)
class Attachment:
    instance_id: str
    device: str
    state: str


@dataclass(frozen=True)
class Volume:
    id: str
    region: str
    state: str  # creating | available | in-use | deleting | error
    size_gib: int
    volume_type: str
    az: str
    create_time: datetime
    attachments: tuple[Attachment, ...] = ()
    snapshot_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, raw: Mapping, region: str) -> Volume:
        return cls(
            id=raw["VolumeId"],
            region=region,
            state=raw.get("State", ""),
            size_gib=int(raw.get("Size", 0) or 0),
            volume_type=raw.get("VolumeType", ""),
            az=raw.get("AvailabilityZone", ""),
            create_time=_utc(raw.get("CreateTime")) or datetime.now(UTC),
            attachments=tuple(
                Attachment(a.get("InstanceId", ""), a.get("Device", ""), a.get("State", ""))
                for a in raw.get("Attachments", ()) or ()
            ),
            snapshot_id=raw.get("SnapshotId", "") or "",
            tags=_tags(raw.get("Tags")),
        )


@dataclass(frozen=True)
class Instance:
    id: str
    region: str
    state: str
    instance_type: str
    image_id: str
    az: str
    launch_time: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    volume_ids: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.tags.get("Name", "")

    @classmethod
    def from_api(cls, raw: Mapping, region: str) -> Instance:
        return cls(
            id=raw["InstanceId"],
            region=region,
            state=(raw.get("State") or {}).get("Name", ""),
            instance_type=raw.get("InstanceType", ""),
            image_id=raw.get("ImageId", "") or "",
            az=(raw.get("Placement") or {}).get("AvailabilityZone", ""),
            launch_time=_utc(raw.get("LaunchTime")) or datetime.now(UTC),
            tags=_tags(raw.get("Tags")),
            volume_ids=tuple(m["Ebs"]["VolumeId"] for m in raw.get("BlockDeviceMappings", ()) or () if m.get("Ebs")),
        )


@dataclass(frozen=True)
class BackingSnapshot:
    """One EBS snapshot behind an AMI, as its block device mapping describes it."""

    id: str
    size_gib: int
    device: str = ""
    encrypted: bool = False


@dataclass(frozen=True)
class Image:
    id: str
    region: str
    name: str
    state: str  # pending | available | failed | deregistered ...
    creation_date: datetime
    snapshot_ids: tuple[str, ...] = ()
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    public: bool = False
    owner_id: str = ""
    backing: tuple[BackingSnapshot, ...] = ()
    architecture: str = ""  # x86_64 | arm64 | i386 | x86_64_mac | arm64_mac
    # DescribeImages' DeregistrationProtection: "disabled", "enabled", "enabled-with-cooldown",
    # or "disabled-until <date>" (a cooldown running); "" when EC2 did not say (read by bot/domain/recycle_bin.py).
    deregistration_protection: str = ""

    @property
    def backing_gib(self) -> int:
        return sum(b.size_gib for b in self.backing)

    @classmethod
    def from_api(cls, raw: Mapping, region: str) -> Image:
        ebs = [m for m in raw.get("BlockDeviceMappings", ()) or () if m.get("Ebs") and m["Ebs"].get("SnapshotId")]
        return cls(
            id=raw["ImageId"],
            region=region,
            name=raw.get("Name", "") or "",
            state=raw.get("State", ""),
            creation_date=_utc(raw.get("CreationDate")) or datetime.now(UTC),
            snapshot_ids=tuple(m["Ebs"]["SnapshotId"] for m in ebs),
            description=raw.get("Description", "") or "",
            tags=_tags(raw.get("Tags")),
            public=bool(raw.get("Public", False)),
            owner_id=raw.get("OwnerId", "") or "",
            backing=tuple(
                BackingSnapshot(
                    id=m["Ebs"]["SnapshotId"],
                    size_gib=int(m["Ebs"].get("VolumeSize", 0) or 0),
                    device=m.get("DeviceName", "") or "",
                    encrypted=bool(m["Ebs"].get("Encrypted", False)),
                )
                for m in ebs
            ),
            architecture=raw.get("Architecture", "") or "",
            deregistration_protection=raw.get("DeregistrationProtection", "") or "",
        )


@dataclass(frozen=True)
class ImageUse:
    """Something that would launch from an AMI: an instance, a launch template's default or latest version,
    or an Auto Scaling group (through a launch template or a launch configuration)."""

    kind: str  # "instance" | "launch template" | "Auto Scaling group"
    id: str  # i-…, lt-…, the group's name
    via: str = ""  # "$Default", "$Latest", "launch template lt-…", "launch configuration NAME"

    def __str__(self) -> str:
        return f"{self.kind} {self.id}" + (f" ({self.via})" if self.via else "")


@dataclass(frozen=True)
class InstanceStatus:
    """DescribeInstanceStatus of one instance: its state and its two status checks.

    A check is "ok", "impaired", "initializing", "insufficient-data" or
    "not-applicable" (the instance is not running).
    """

    id: str
    state: str
    system: str
    instance: str

    @property
    def passed(self) -> bool:
        return self.state == "running" and self.system == "ok" and self.instance == "ok"

    @classmethod
    def from_api(cls, raw: Mapping) -> InstanceStatus:
        return cls(
            id=raw["InstanceId"],
            state=(raw.get("InstanceState") or {}).get("Name", ""),
            system=(raw.get("SystemStatus") or {}).get("Status", ""),
            instance=(raw.get("InstanceStatus") or {}).get("Status", ""),
        )


# --- Recycle Bin, snapshot locks (bot/domain/recycle_bin.py decides with these) ---------------


@dataclass(frozen=True)
class RetentionRule:
    """A Recycle Bin retention rule of one region: what it keeps (resource type, tags) and for how long.

    A rule without `resource_tags` is region-level: it keeps every resource of
    its type but those carrying one of `exclude_tags`.  A tag pair whose value
    is "" matches the key with any value.
    """

    id: str
    resource_type: str  # EBS_SNAPSHOT | EC2_IMAGE
    retention_days: int
    description: str = ""
    resource_tags: tuple[tuple[str, str], ...] = ()
    exclude_tags: tuple[tuple[str, str], ...] = ()
    lock_state: str = "unlocked"  # locked | pending_unlock | unlocked: a locked rule cannot be deleted or shortened
    status: str = "available"  # pending | available: a pending rule retains nothing yet

    @property
    def name(self) -> str:
        return f"{self.description}/{self.id}" if self.description else self.id

    @classmethod
    def from_api(cls, raw: Mapping) -> RetentionRule:
        period = raw.get("RetentionPeriod") or {}
        return cls(
            id=raw.get("Identifier", ""),
            resource_type=raw.get("ResourceType", ""),
            retention_days=int(period.get("RetentionPeriodValue", 0) or 0),
            description=raw.get("Description", "") or "",
            resource_tags=tuple(
                (t["ResourceTagKey"], t.get("ResourceTagValue", "") or "") for t in raw.get("ResourceTags") or ()
            ),
            exclude_tags=tuple(
                (t["ResourceTagKey"], t.get("ResourceTagValue", "") or "") for t in raw.get("ExcludeResourceTags") or ()
            ),
            lock_state=raw.get("LockState", "") or "unlocked",
            status=raw.get("Status", "") or "available",
        )


@dataclass(frozen=True)
class SnapshotLock:
    """DescribeLockedSnapshots' answer for one snapshot."""

    snapshot_id: str
    state: str  # governance | compliance-cooloff | compliance | expired
    expires: datetime | None = None  # LockExpiresOn
    cool_off_ends: datetime | None = None  # CoolOffPeriodExpiresOn (compliance mode)

    @classmethod
    def from_api(cls, raw: Mapping) -> SnapshotLock:
        return cls(
            snapshot_id=raw["SnapshotId"],
            state=raw.get("LockState", "") or "",
            expires=_utc(raw.get("LockExpiresOn")),
            cool_off_ends=_utc(raw.get("CoolOffPeriodExpiresOn")),
        )


@dataclass(frozen=True)
class BinEntry:
    """A snapshot or AMI in the Recycle Bin: when it went in, and when the bin purges it for good."""

    id: str
    region: str
    kind: str  # snapshot | image
    entered: datetime | None
    purged_at: datetime | None
    description: str = ""
    name: str = ""  # an AMI's name
    volume_id: str = ""  # a snapshot's volume

    @classmethod
    def from_api(cls, raw: Mapping, region: str, kind: str) -> BinEntry:
        return cls(
            id=raw.get("SnapshotId") or raw.get("ImageId", ""),
            region=region,
            kind=kind,
            entered=_utc(raw.get("RecycleBinEnterTime")),
            purged_at=_utc(raw.get("RecycleBinExitTime")),
            description=raw.get("Description", "") or "",
            name=raw.get("Name", "") or "",
            volume_id=raw.get("VolumeId", "") or "",
        )
