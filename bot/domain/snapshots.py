"""Domain functions for snapshots: create, list, status, restore, copy.

Plain functions over the gateway: no Slack here.  They check what can be
checked before acting (the volume exists, the regions differ, the AZ matches)
so the user gets a clear refusal rather than a raw AWS error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import errors
from bot.aws.models import Snapshot, Volume
from bot.domain.pages import Page
from bot.domain.tags import SOURCE, managed_tags, manual_copy_tags

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway


def create_snapshot(gw: Ec2Gateway, region: str, volume_id: str, description: str, user: str) -> Snapshot:
    """Snapshot `volume_id`, tagged as made by `user`; returns the pending snapshot."""
    volume = gw.get_volume(region, volume_id)
    description = description or f"Snapshot of {volume_id} requested from Slack by {user}"
    tags = managed_tags(user, **{SOURCE: volume.id})
    if volume.tags.get("Name"):
        tags["Name"] = volume.tags["Name"]
    return gw.create_snapshot(region, volume.id, description[:255], tags)


def list_snapshots(gw: Ec2Gateway, region: str, volume_id: str | None, limit: int) -> Page[Snapshot]:
    """Own snapshots, newest first (optionally of one volume)."""
    filters = [{"Name": "volume-id", "Values": [volume_id]}] if volume_id else []
    snaps = sorted(gw.describe_snapshots(region, filters=filters), key=lambda s: s.start_time, reverse=True)
    return Page(snaps[:limit], len(snaps))


def snapshot_status(gw: Ec2Gateway, region: str, snapshot_id: str) -> Snapshot:
    return gw.get_snapshot(region, snapshot_id)


def restore_snapshot(
    gw: Ec2Gateway,
    region: str,
    snapshot_id: str,
    user: str,
    az: str | None = None,
    volume_type: str = "gp3",
    instance_id: str | None = None,
) -> Volume:
    """Create a volume from a snapshot, in `az`, or the instance's AZ when it will be attached."""
    snap = gw.get_snapshot(region, snapshot_id)
    if snap.state == "error":
        raise errors.Conflict(f"{snapshot_id} is in state error and cannot be restored.")
    if instance_id:
        instance = gw.get_instance(region, instance_id)
        if az and az != instance.az:
            raise errors.InvalidParameter(
                f"{instance_id} is in {instance.az}, not {az}; a volume attaches only within its AZ.",
                f"Drop az= or use az={instance.az}.",
            )
        az = instance.az
    if not az:
        zones = gw.availability_zones(region)
        if not zones:
            raise errors.AwsError(f"no availability zone is available in {region}.")
        az = zones[0]
    elif not az.startswith(region):
        raise errors.InvalidParameter(f"{az} is not in {region}.", f"Use an AZ of {region}, or region=….")
    tags = managed_tags(user, **{SOURCE: snapshot_id})
    if snap.tags.get("Name"):
        tags["Name"] = snap.tags["Name"]
    return gw.create_volume(region, snapshot_id, az, volume_type, tags)


def copy_snapshot(
    gw: Ec2Gateway, region: str, snapshot_id: str, to_region: str, user: str, description: str | None = None
) -> str:
    """Start a cross-region copy; returns the new snapshot's ID in `to_region`."""
    if to_region == region:
        raise errors.InvalidParameter(f"{snapshot_id} is already in {region}.", "Pick another region with to=….")
    snap = gw.get_snapshot(region, snapshot_id)
    if snap.state != "completed":
        raise errors.Conflict(
            f"{snapshot_id} is {snap.state}; only completed snapshots can be copied.",
            f"Wait for it: `/snapshot status {snapshot_id}`.",
        )
    tags = {**manual_copy_tags(snap.tags), **managed_tags(user, **{SOURCE: f"{region}/{snapshot_id}"})}
    description = description or f"Copy of {snapshot_id} from {region}" + (
        f": {snap.description}" if snap.description else ""
    )
    return gw.copy_snapshot(region, snapshot_id, to_region, description[:255], tags)


def unarchive_snapshot(gw: Ec2Gateway, region: str, snapshot_id: str, days: int | None) -> Snapshot:
    """Restore an archived snapshot: for `days` (then it goes back to the archive), or permanently.

    Refused up front when it is not in the archive tier.  A permanent restore
    keeps its chatops:archived-at tag: an archive policy then knows it was
    restored on purpose and does not archive it again.
    """
    snap = gw.get_snapshot(region, snapshot_id)
    if not snap.archived:
        raise errors.Conflict(
            f"{snapshot_id} is in the {snap.storage_tier} tier, not the archive; nothing to restore.",
            "`/snapshot status snap-…` shows a snapshot's tier.",
        )
    gw.restore_snapshot_tier(region, snapshot_id, days)
    return snap
