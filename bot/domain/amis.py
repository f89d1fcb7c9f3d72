"""Domain functions for AMIs: create, list, launch, copy, share, unshare, deregister.

Plain functions over the gateway: no Slack here.  Everything that can be
checked is checked before acting (the AMI is available and ours or shared with
us, the key pair exists, the count is within the cap), so the user gets a clear
refusal rather than half-done work or a raw AWS error.

The operations that need an approver (share, deregister, create with a
reboot) come in two halves so the approval flow can sit between them:
`*_plan` builds the `Plan` (bot/domain/plans.py) that says exactly what will
happen and is what the approver sees; `execute_*` re-checks that the plan
still holds, acts, and returns one `ItemResult` per resource, failures
included, never hidden.  Their executors are in bot/approvals/amis.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.aws.models import BackingSnapshot, Image, Instance
from bot.domain.costs import monthly_usd
from bot.domain.pages import Page
from bot.domain.plans import ItemResult, Plan, PlanItem
from bot.domain.recycle_bin import Locks, protection_refusal, read_locks, read_rules
from bot.domain.tags import KEEP, SOURCE, carried_over, is_pinned, managed_tags, manual_copy_tags
from bot.domain.uses import describe_uses

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway

# EC2's rule for AMI names: 3-128 characters of letters, digits and ()[] ./'@_-
AMI_NAME_PATTERN = re.compile(r"^[A-Za-z0-9()\[\] ./'@_-]{3,128}$")
DEFAULT_INSTANCE_TYPE = "t3.micro"
MAX_DESCRIPTION = 255


def check_ami_name(name: str) -> str:
    """AWS's AMI name rule (3–128 letters, numbers, ( ) [ ] space . / - ' @ _); raises InvalidParameter."""
    if not AMI_NAME_PATTERN.match(name or ""):
        raise errors.InvalidParameter(
            f"{name!r} is not a valid AMI name.",
            "Use 3–128 letters, numbers, spaces or ( ) [ ] . / - ' @ _",
        )
    return name


def _require_own(gw: Ec2Gateway, image: Image, what: str) -> None:
    if image.owner_id and image.owner_id != gw.account_id(image.region):
        raise errors.NotAllowed(
            f"{image.id} belongs to account {image.owner_id}; only its owner can {what} it.",
            "See your own AMIs with `/ami list`.",
        )


# --- create ---------------------------------------------------------------------------


def create_image(
    gw: Ec2Gateway,
    region: str,
    instance_id: str,
    name: str,
    description: str,
    user: str,
    *,
    reboot: bool = False,
) -> Image:
    """Create an AMI of `instance_id`, without a reboot unless asked; returns the (usually pending) image.

    The image gets the managed tags, its source instance and the instance's
    Name; its backing snapshots get the same tags as soon as they are known
    (here for those already listed, and again by the watch once the image is
    available).
    """
    check_ami_name(name)
    instance = gw.get_instance(region, instance_id)
    if instance.state not in ("running", "stopped"):
        raise errors.Conflict(f"{instance_id} is {instance.state}; an AMI needs a running or stopped instance.")
    tags = managed_tags(user, **{SOURCE: instance.id})
    if instance.name:
        tags["Name"] = instance.name
    description = description or f"AMI of {instance_id}" + (f" ({instance.name})" if instance.name else "")
    image_id = gw.create_image(region, instance.id, name, description[:MAX_DESCRIPTION], tags, no_reboot=not reboot)
    image = gw.get_image(region, image_id)
    # Snapshots already listed are tagged now (even while pending): if the
    # progress message cannot be posted there is no watch to do it later.
    tag_backing_snapshots(gw, image)
    return image


def reboot_create_plan(
    gw: Ec2Gateway, region: str, instance_id: str, name: str, description: str, requester: str
) -> Plan:
    """`/ami create … reboot` reboots a running instance: that needs an approver (this is the plan)."""
    check_ami_name(name)
    instance = gw.get_instance(region, instance_id)
    if instance.state not in ("running", "stopped"):
        raise errors.Conflict(f"{instance_id} is {instance.state}; an AMI needs a running or stopped instance.")
    label = f" ({instance.name})" if instance.name else ""
    return Plan(
        kind="create-image-reboot",
        region=region,
        title=f"Reboot {instance_id}{label} to create AMI “{name}”",
        items=(
            PlanItem(
                instance_id,
                "instance",
                0,
                f"{instance.instance_type}, {instance.state}: rebooted for a consistent image",
            ),
        ),
        warnings=(f"{instance_id}{label} will be unavailable while it reboots",) if instance.state == "running" else (),
        params={"instance_id": instance_id, "name": name, "description": description, "requester": requester},
    )


def tag_backing_snapshots(gw: Ec2Gateway, image: Image) -> None:
    """Give an AMI's backing snapshots the AMI's own tags (what the bot made, for whom, from what)."""
    tags = carried_over(image.tags)
    if image.snapshot_ids and tags:
        gw.create_tags(image.region, image.snapshot_ids, tags)


# --- list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRow:
    """One line of `/ami list`: the AMI, who it is shared with, and how many instances run from it."""

    image: Image
    shared_with: tuple[str, ...]
    instance_count: int

    @property
    def in_use(self) -> bool:
        return self.instance_count > 0


def list_images(gw: Ec2Gateway, region: str, limit: int) -> Page[ImageRow]:
    """Own AMIs, newest first, with sharing and usage for the ones shown.

    One paginated DescribeImages, one paginated DescribeInstances for the
    usage counts, and one DescribeImageAttribute per AMI shown (AWS has no
    batch form), so the cost is bounded by `limit`, not by the inventory.
    """
    images = sorted(gw.describe_images(region), key=lambda i: i.creation_date, reverse=True)
    shown = images[:limit]
    counts = gw.count_instances_by_image(region) if shown else {}
    rows = [ImageRow(img, gw.image_launch_permissions(region, img.id), counts.get(img.id, 0)) for img in shown]
    return Page(rows, len(images))


def image_names(gw: Ec2Gateway, region: str, image_ids: Sequence[str]) -> dict[str, str]:
    """AMI ID → name for the AMIs that still exist and are visible (for `/instance list`)."""
    ids = [i for i in dict.fromkeys(image_ids) if i]
    if not ids:
        return {}
    return {image_id: image.name for image_id, image in gw.find_images(region, ids).items() if image.name}


# --- launch ---------------------------------------------------------------------------


def request_token(request_id: str, *parts: object) -> str:
    """An idempotency ClientToken for one Slack request: the same request always gives the same token.

    `request_id` identifies the Slack request (its response_url), so a retry
    of that request is deduplicated by AWS while a new, identical command
    acts anew; `parts` are what the request asks for.  ClientToken allows 64
    ASCII characters.
    """
    raw = "\n".join([request_id, *("" if p is None else str(p) for p in parts)])
    return "chatops-" + hashlib.sha256(raw.encode()).hexdigest()[:56]


def launch_token(request_id: str, region: str, image_id: str, instance_type: str, key: str | None, count: int) -> str:
    """The RunInstances ClientToken of a `/ami launch` request (see request_token)."""
    return request_token(request_id, "launch", region, image_id, instance_type, key, count)


def launchable_image(gw: Ec2Gateway, region: str, image_id: str) -> Image:
    """The AMI, if it is available and owned by or shared with this account; else a clear refusal."""
    image = gw.get_image(region, image_id)
    if image.state != "available":
        raise errors.Conflict(
            f"{image_id} is {image.state}; only available AMIs can be launched.",
            f"Check it with `/ami list region={region}`.",
        )
    if image.owner_id and image.owner_id != gw.account_id(region):
        if image_id not in gw.executable_images(region, [image_id]):
            raise errors.NotAllowed(
                f"{image_id} is neither owned by nor shared with this account.",
                "Launch your own AMIs (`/ami list`) or ask the owner to share it.",
            )
    return image


def launch_instances(
    gw: Ec2Gateway,
    region: str,
    image_id: str,
    user: str,
    *,
    client_token: str,
    max_count: int,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    key_name: str | None = None,
    count: int = 1,
) -> tuple[Image, list[Instance]]:
    """Run `count` identical instances from an AMI, tagged with the requester; returns (image, instances).

    Checks, in order and before launching: the count against `max_count`
    (no AWS call at all), the AMI, the key pair.  `client_token` (see
    launch_token) makes a retried request return the first launch instead of
    starting more instances.
    """
    if count > max_count:
        raise errors.NotAllowed(
            f"count={count} is more than the {max_count} instances one request may launch.",
            "Launch fewer, or raise aws.launch_max_count in config.toml.",
        )
    image = launchable_image(gw, region, image_id)
    if key_name and not gw.key_pair_exists(region, key_name):
        raise errors.InvalidParameter(
            f"key pair {key_name!r} does not exist in {region}.",
            "Check the name in the EC2 console (key pairs are per region), or omit key=.",
        )
    tags = managed_tags(user, **{SOURCE: image.id})
    instances = gw.run_instances(region, image.id, instance_type, count, client_token, tags, key_name)
    return image, instances


# --- copy -----------------------------------------------------------------------------


def copy_image(
    gw: Ec2Gateway,
    region: str,
    image_id: str,
    to_region: str,
    user: str,
    name: str | None = None,
    description: str | None = None,
    client_token: str = "",
) -> str:
    """Start a cross-region copy of an available AMI (DR); returns the new AMI ID in `to_region`.

    The copy keeps the source's tags (but `aws:` ones) plus the managed tags
    and its source; CopyImage's own tag options are not portable (moto ignores
    them), so the copy is tagged with CreateTags right after the call, and its
    backing snapshots when it becomes available.  `client_token` (see
    request_token) keeps a retried request from making a second copy.
    """
    if to_region == region:
        raise errors.InvalidParameter(f"{image_id} is already in {region}.", "Pick another region with to=….")
    if name is not None:
        check_ami_name(name)
    image = gw.get_image(region, image_id)
    if image.state != "available":
        raise errors.Conflict(
            f"{image_id} is {image.state}; only available AMIs can be copied.",
            f"Check it with `/ami list region={region}`.",
        )
    name = name or image.name
    description = description or f"Copy of {image_id} from {region}" + (
        f": {image.description}" if image.description else ""
    )
    new_id = gw.copy_image(region, image.id, to_region, name, description[:MAX_DESCRIPTION], client_token)
    tags = {**manual_copy_tags(image.tags), **managed_tags(user, **{SOURCE: f"{region}/{image_id}"})}
    gw.create_tags(to_region, [new_id], tags)
    return new_id


# --- deregister -----------------------------------------------------------------------
#
# A deregister-image plan's params, as stored with the request (this format must
# not change: a request stored before an upgrade is executed after it):
#   region, image_id, name, keep_snapshots,
#   snapshots: [{id, size_gib, device, encrypted}],  the AMI's backing snapshots when asked
#   instances: [instance ID],  launched from it (a warning: they keep running)
#   pinned: the AMI was tagged chatops:keep=true when asked (the approver saw it and decides)
#   pinned_snapshots: [snapshot ID],  backing snapshots tagged chatops:keep=true: never deleted with it


def _snapshots_to_dicts(snaps: Sequence[BackingSnapshot]) -> list[dict[str, Any]]:
    return [{"id": s.id, "size_gib": s.size_gib, "device": s.device, "encrypted": s.encrypted} for s in snaps]


def _snapshot_ids(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The backing snapshots a stored AMI plan names."""
    return tuple(s["id"] for s in params["snapshots"])


def deregister_plan(
    gw: Ec2Gateway,
    region: str,
    image_id: str,
    *,
    keep_snapshots: bool = False,
    usd_per_gb_month: float,
    now: datetime | None = None,
) -> Plan:
    """Describe what deregistering `image_id` would do (no change to AWS): the approval plan.

    Refuses AMIs of other accounts, and one with deregistration protection
    (saying when it can go).  Lists each backing snapshot with its size,
    whether the Recycle Bin would keep each (AMI and snapshots), and keeps
    the backing snapshots that are locked.
    """
    now = now or datetime.now(UTC)
    image = gw.get_image(region, image_id)
    _require_own(gw, image, "deregister")
    protected = protection_refusal(image.deregistration_protection, now)
    if protected:
        raise errors.Conflict(f"{image.id}: {protected}. Nothing was requested.", "Ask again once it can go.")
    uses = gw.image_uses(region).get(image.id, [])
    if uses:
        raise errors.Conflict(
            f"{image.id} is in use by {describe_uses(uses)}; nothing was done.",
            "Terminate those instances and point the launch templates and Auto Scaling groups at another AMI first.",
        )
    snapshot_tags = _snapshot_tags(gw, region, image.snapshot_ids)
    pinned_snapshots = {s for s, tags in snapshot_tags.items() if is_pinned(tags)}
    locks = read_locks(gw, region) if image.snapshot_ids and not keep_snapshots else Locks()
    rules = read_rules(gw, region)
    recoverable = {image.id: rules.recoverability("image", image.tags, now)}
    if not keep_snapshots:
        recoverable |= {s: rules.recoverability("snapshot", tags, now) for s, tags in snapshot_tags.items()}
    notes = [n for n in (rules.unknown, locks.unknown) if n]
    gone = [s for s in image.snapshot_ids if s not in pinned_snapshots and not locks.refusal(s, now)]
    if not rules.unknown and not keep_snapshots:
        permanent = [s for s in gone if recoverable.get(s, "").startswith("permanent")]
        if permanent and recoverable[image.id].startswith("recoverable"):
            notes.append(
                f"the AMI goes to the Recycle Bin but {', '.join(permanent)} would be deleted permanently: "
                "a restored AMI could not launch without them"
            )
    plan = deregister_plan_of(
        image,
        (),
        pinned_snapshots,
        keep_snapshots=keep_snapshots,
        usd_per_gb_month=usd_per_gb_month,
        locked={s: locks.refusal(s, now) for s in image.snapshot_ids if locks.refusal(s, now)},
        recoverable=recoverable,
    )
    shared = gw.image_launch_permissions(region, image.id)
    if shared:
        notes.append(f"shared with account(s) {', '.join(shared)}: they can no longer launch it")
    return replace(plan, warnings=(*plan.warnings, *notes))


def deregister_plan_of(
    image: Image,
    instances: Sequence[str],
    pinned_snapshots: Iterable[str],
    *,
    keep_snapshots: bool,
    usd_per_gb_month: float,
    locked: Mapping[str, str] | None = None,
    recoverable: Mapping[str, str] | None = None,
) -> Plan:
    """The deregister-image plan for an AMI as described (pure): the AMI, and its snapshots unless keep-snapshots.

    `locked`: backing snapshot → why its lock keeps it; `recoverable`: resource
    → what the Recycle Bin would do with it (bot/domain/recycle_bin.py).
    """
    pinned_snaps = sorted(pinned_snapshots)
    locked, recoverable = locked or {}, recoverable or {}
    snaps = ", ".join(f"{s.id} ({s.size_gib} GiB)" for s in image.backing) or "none"
    fate = "kept" if keep_snapshots else "deleted"
    bin_note = f"; {recoverable[image.id]}" if image.id in recoverable else ""
    items = [
        PlanItem(image.id, "image", image.backing_gib, f"“{image.name}”; backing snapshots {fate}: {snaps}{bin_note}")
    ]

    def snapshot_fate(snapshot_id: str) -> str:
        if snapshot_id in pinned_snaps:
            return f"; kept: pinned with {KEEP}=true"
        if snapshot_id in locked:
            return f"; kept: {locked[snapshot_id]}"
        return f"; {recoverable[snapshot_id]}" if snapshot_id in recoverable else ""

    if not keep_snapshots:
        items += [
            PlanItem(s.id, "snapshot", s.size_gib, f"backs {image.id}{snapshot_fate(s.id)}") for s in image.backing
        ]
    warnings = []
    if is_pinned(image.tags):
        warnings.append(f"{image.id} is tagged {KEEP}=true: approving deregisters it anyway")
    if instances:
        shown = ", ".join(instances[:10]) + (" …" if len(instances) > 10 else "")
        warnings.append(
            f"{len(instances)} instance(s) were launched from it and keep running, "
            f"but cannot be relaunched from it: {shown}"
        )
    gib = 0 if keep_snapshots else sum(s.size_gib for s in image.backing if s.id not in pinned_snaps + list(locked))
    return Plan(
        kind="deregister-image",
        region=image.region,
        title=f"Deregister {image.id} ({image.name})" + ("" if keep_snapshots else " and delete its snapshots"),
        items=tuple(items),
        gib_freed=gib,
        usd_month_freed=monthly_usd(gib, usd_per_gb_month),
        warnings=tuple(warnings),
        params={
            "region": image.region,
            "image_id": image.id,
            "name": image.name,
            "snapshots": _snapshots_to_dicts(image.backing),
            "keep_snapshots": keep_snapshots,
            "instances": list(instances),
            "pinned": is_pinned(image.tags),
            "pinned_snapshots": pinned_snaps,
        },
    )


def _snapshot_tags(gw: Ec2Gateway, region: str, snapshot_ids: Sequence[str]) -> dict[str, Mapping[str, str]]:
    """Snapshot ID → its tags, for those of `snapshot_ids` that exist (one describe call)."""
    if not snapshot_ids:
        return {}
    found = gw.describe_snapshots(region, filters=[{"Name": "snapshot-id", "Values": list(snapshot_ids)}])
    return {s.id: s.tags for s in found}


def _pinned_snapshots(gw: Ec2Gateway, region: str, snapshot_ids: Sequence[str]) -> set[str]:
    """Those of `snapshot_ids` tagged chatops:keep=true (one describe call)."""
    if not snapshot_ids:
        return set()
    found = gw.describe_snapshots(region, filters=[{"Name": "snapshot-id", "Values": list(snapshot_ids)}])
    return {s.id for s in found if is_pinned(s.tags)}


def execute_deregister(gw: Ec2Gateway, plan: Plan, now: datetime | None = None) -> list[ItemResult]:
    """Carry out an approved deregister-image plan; one result per resource, the image first.

    Re-checks first: the AMI must still exist with the same backing snapshots,
    and must not have been pinned (chatops:keep=true) since the request,
    otherwise nothing is done and the image's result says why.  A snapshot that
    also backs another registered AMI, or is pinned or locked now, is never
    deleted (spared); an AMI given deregistration protection since fails.
    One failed snapshot does not stop the others; a snapshot already gone
    counts as deleted.
    """
    region, params = plan.region, plan.params
    image_id, snapshot_ids = params["image_id"], _snapshot_ids(params)
    keep_snapshots = bool(params["keep_snapshots"])
    try:
        image = _current_image(gw, region, image_id)
    except errors.BotError as exc:
        return [ItemResult(image_id, "failed", f"could not re-check the AMI: {exc.message}")]
    if image is None:
        return [ItemResult(image_id, "failed", "no longer exists; nothing was done")]
    if set(image.snapshot_ids) != set(snapshot_ids):
        return [ItemResult(image_id, "failed", "its backing snapshots changed since the request; nothing was done")]
    if is_pinned(image.tags) and not bool(params.get("pinned", False)):
        return [ItemResult(image_id, "failed", "pinned with chatops:keep=true since the request; nothing was done")]
    now = now or datetime.now(UTC)
    protected = protection_refusal(image.deregistration_protection, now)
    if protected:
        return [ItemResult(image_id, "failed", f"{protected}; nothing was done")]
    try:
        uses = gw.image_uses(region).get(image_id, [])
    except errors.BotError as exc:
        return [ItemResult(image_id, "failed", f"could not check what uses it: {exc.message}")]
    if uses:
        return [ItemResult(image_id, "failed", f"in use by {describe_uses(uses)} since the request; nothing was done")]
    try:
        pinned = set() if keep_snapshots else _pinned_snapshots(gw, region, snapshot_ids)
    except errors.BotError as exc:
        return [ItemResult(image_id, "failed", f"could not re-check its snapshots: {exc.message}")]
    locks = read_locks(gw, region) if snapshot_ids and not keep_snapshots else Locks()
    try:
        gw.deregister_image(region, image_id)
    except errors.BotError as exc:
        return [ItemResult(image_id, "failed", exc.message)] + [
            ItemResult(s, "failed", "not deleted: the AMI was not deregistered") for s in snapshot_ids
        ]
    results = [ItemResult(image_id, "done", "deregistered")]
    if keep_snapshots:
        return results + [ItemResult(s, "spared", "kept (keep-snapshots)") for s in snapshot_ids]
    try:
        still_backing = _other_images_using(gw, region, image_id, snapshot_ids)
    except errors.BotError as exc:
        reason = f"not deleted: could not check other AMIs using it ({exc.message})"
        return results + [ItemResult(s, "failed", reason) for s in snapshot_ids]
    for snapshot_id in snapshot_ids:
        if snapshot_id in pinned:
            results.append(ItemResult(snapshot_id, "spared", "kept: pinned with chatops:keep=true"))
            continue
        if locks.refusal(snapshot_id, now):
            results.append(ItemResult(snapshot_id, "spared", f"kept: {locks.refusal(snapshot_id, now)}"))
            continue
        results.append(_delete_snapshot(gw, region, snapshot_id, still_backing.get(snapshot_id)))
    return results


def _current_image(gw: Ec2Gateway, region: str, image_id: str) -> Image | None:
    """The AMI as it is now, or None once it is gone (a just-deregistered AMI may still be listed a while)."""
    image = gw.find_images(region, [image_id]).get(image_id)
    return None if image is None or image.state == "deregistered" else image


def _other_images_using(gw: Ec2Gateway, region: str, image_id: str, snapshot_ids: Sequence[str]) -> dict[str, str]:
    """snapshot ID → another registered AMI it backs (AWS lists a just-deregistered AMI for a while: skip it)."""
    wanted = set(snapshot_ids)
    backing: dict[str, str] = {}
    for image in gw.describe_images(region):
        if image.id == image_id or image.state == "deregistered":
            continue
        for snapshot_id in wanted.intersection(image.snapshot_ids):
            backing[snapshot_id] = image.id
    return backing


def _delete_snapshot(gw: Ec2Gateway, region: str, snapshot_id: str, other_image: str | None) -> ItemResult:
    if other_image:
        return ItemResult(snapshot_id, "spared", f"kept: it also backs {other_image}")
    try:
        gw.delete_snapshot(region, snapshot_id)
    except errors.NotFound:
        return ItemResult(snapshot_id, "done", "already deleted")
    except errors.BotError as exc:
        return ItemResult(snapshot_id, "failed", exc.message)
    return ItemResult(snapshot_id, "done", "deleted")


# --- share / unshare ------------------------------------------------------------------


# A share-image plan's params, as stored with the request (this format must not change):
#   region, image_id, name, account_id,
#   shared_with: [account ID],  the accounts it was already shared with when asked
#   snapshots: [{id, size_gib, device, encrypted}],  its backing snapshots when asked


def share_plan(gw: Ec2Gateway, region: str, image_id: str, account_id: str) -> Plan:
    """Describe sharing `image_id` with `account_id` (no change to AWS): the approval plan.

    Refuses an AMI of another account, one that is not available, sharing
    with this very account, and an account it is already shared with.
    """
    image = gw.get_image(region, image_id)
    _require_own(gw, image, "share")
    if account_id == gw.account_id(region):
        raise errors.InvalidParameter(f"{account_id} is this bot's own account; it can already launch {image_id}.")
    if image.state != "available":
        raise errors.Conflict(f"{image_id} is {image.state}; only available AMIs can be shared.")
    shared_with = gw.image_launch_permissions(region, image_id)
    if account_id in shared_with:
        raise errors.Conflict(f"{image_id} is already shared with {account_id}.", "Nothing to do.")
    already = ", ".join(shared_with) or "no other account"
    encrypted = [s.id for s in image.backing if s.encrypted]
    return Plan(
        kind="share-image",
        region=region,
        title=f"Share {image.id} ({image.name}) with account {account_id}",
        items=(
            PlanItem(
                image.id,
                "image",
                0,
                f"“{image.name}”: account {account_id} gets launch permission (now shared with {already})",
            ),
        ),
        warnings=tuple(
            f"encrypted snapshot {s}: {account_id} also needs use of its KMS key to launch" for s in encrypted
        ),
        params={
            "region": region,
            "image_id": image.id,
            "name": image.name,
            "account_id": account_id,
            "shared_with": list(shared_with),
            "snapshots": _snapshots_to_dicts(image.backing),
        },
    )


def execute_share(gw: Ec2Gateway, plan: Plan) -> list[ItemResult]:
    """Carry out an approved share-image plan after re-checking the AMI still exists and is available."""
    region, image_id, account_id = plan.region, plan.params["image_id"], plan.params["account_id"]
    try:
        image = _current_image(gw, region, image_id)
        if image is None:
            return [ItemResult(image_id, "failed", "no longer exists; nothing was done")]
        if image.state != "available":
            return [ItemResult(image_id, "failed", f"is {image.state} now; nothing was done")]
        if account_id in gw.image_launch_permissions(region, image_id):
            return [ItemResult(image_id, "done", f"was already shared with {account_id}")]
        gw.add_launch_permission(region, image_id, account_id)
    except errors.BotError as exc:
        return [ItemResult(image_id, "failed", exc.message)]
    return [ItemResult(image_id, "done", f"shared with {account_id}")]


def unshare_image(gw: Ec2Gateway, region: str, image_id: str, account_id: str) -> ItemResult:
    """Remove `account_id`'s launch permission (no approval: it only takes access away).

    Returns done with "was not shared" when there was nothing to remove.
    Instances the account already launched keep running.
    """
    image = gw.get_image(region, image_id)
    _require_own(gw, image, "unshare")
    if account_id not in gw.image_launch_permissions(region, image_id):
        return ItemResult(image_id, "done", f"was not shared with {account_id}; nothing to do")
    gw.remove_launch_permission(region, image_id, account_id)
    return ItemResult(image_id, "done", f"no longer shared with {account_id}")
