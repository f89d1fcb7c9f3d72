"""Domain functions for volumes: list them with their newest snapshot, attach one to an instance."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot import errors
from bot.aws.models import Volume
from bot.domain.pages import Page

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway

DEFAULT_DEVICE = "/dev/sdf"


def list_volumes(gw: Ec2Gateway, region: str, limit: int) -> Page[tuple[Volume, datetime | None]]:
    """Volumes, newest first, each with the start time of its newest snapshot (one describe pass)."""
    last: dict[str, datetime] = {}
    for snap in gw.describe_snapshots(region):
        if snap.volume_id and (snap.volume_id not in last or snap.start_time > last[snap.volume_id]):
            last[snap.volume_id] = snap.start_time
    vols = sorted(gw.describe_volumes(region), key=lambda v: v.create_time, reverse=True)
    return Page([(v, last.get(v.id)) for v in vols[:limit]], len(vols))


def attach_volume(gw: Ec2Gateway, region: str, volume_id: str, instance_id: str, device: str) -> None:
    """Attach after checking the volume is free and in the instance's AZ."""
    volume = gw.get_volume(region, volume_id)
    instance = gw.get_instance(region, instance_id)
    if volume.state != "available":
        where = ", ".join(a.instance_id for a in volume.attachments)
        raise errors.Conflict(
            f"{volume_id} is {volume.state}" + (f" (attached to {where})" if where else "") + ".",
            "Detach it first, or restore a copy with `/snapshot restore`.",
        )
    if volume.az != instance.az:
        raise errors.InvalidParameter(
            f"{volume_id} is in {volume.az} but {instance_id} is in {instance.az}.",
            f"Snapshot it and restore into {instance.az}: `/snapshot restore snap-… az={instance.az}`.",
        )
    if instance.state not in ("running", "stopped"):
        raise errors.Conflict(f"{instance_id} is {instance.state}; attach needs a running or stopped instance.")
    gw.attach_volume(region, volume_id, instance_id, device)
