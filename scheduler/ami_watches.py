"""Watches for AMI work: an image being created or copied, instances being launched.

Listed in scheduler.watches.WATCHERS.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import amis
from bot.errors import NotFound
from bot.flows.deps import Deps
from bot.slack import blocks
from scheduler.watch_messages import finish, gateway_of, give_up, timed_out, update_message

_IMAGE_FAILED = ("failed", "error", "invalid", "deregistered")
_INSTANCE_SETTLED = ("running", "stopped", "stopping", "shutting-down", "terminated")


def watch_image(deps: Deps, row: Mapping) -> None:
    """AMI creation or copy: tag its backing snapshots and update the message when it is available or failed."""
    region, (image_id,) = row["region"], row["resource_ids"]
    data = row["data"]
    image = gateway_of(deps, row).find_images(region, [image_id]).get(image_id)
    render = lambda img: blocks.image_progress(  # noqa: E731
        img, deps.now(), verb=data.get("verb", "AMI"), requested_by=row["user"], source=data.get("source", "")
    )
    if image is None:
        finish(deps, row, blocks.watched_gone("AMI", [image_id], region, "it failed or was deregistered"), "failed")
    elif image.state == "available":
        amis.tag_backing_snapshots(gateway_of(deps, row), image)
        finish(deps, row, render(image))
    elif image.state in _IMAGE_FAILED:
        finish(deps, row, render(image), "failed")
    elif timed_out(deps, row):
        give_up(deps, row)


def watch_instances(deps: Deps, row: Mapping) -> None:
    """`/ami launch`: show each instance's state until all are running (or stopped/terminated)."""
    region, ids = row["region"], row["resource_ids"]
    data = row["data"]
    try:
        found = {i.id: i for i in gateway_of(deps, row).describe_instances(region, ids)}
    except NotFound:  # DescribeInstances fails as a whole when one of the IDs is gone
        finish(deps, row, blocks.watched_gone("Instance" if len(ids) == 1 else "Instances", ids, region), "failed")
        return
    instances = [found[i] for i in ids if i in found]
    msg = blocks.launch_progress(instances, data.get("image_id", ""), data.get("image_name", ""), region, row["user"])
    states = [i.state for i in instances]
    if len(instances) == len(ids) and all(s in _INSTANCE_SETTLED for s in states):
        finish(deps, row, msg)
    elif timed_out(deps, row):
        give_up(deps, row)
    elif states != data.get("states"):
        update_message(deps, row, msg)
        deps.store.update_watch(row["id"], data={**data, "states": states})
