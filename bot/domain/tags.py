"""The tags the bot puts on everything it creates (SPEC §3) and reads back."""

from __future__ import annotations

from datetime import UTC, datetime

MANAGED = "chatops:managed"
REQUESTED_BY = "chatops:requested-by"
POLICY = "chatops:policy"
KEEP = "chatops:keep"
SOURCE = "chatops:source"  # the volume/instance/snapshot/AMI a copy or policy item came from
COPY_OF = "chatops:copy-of"  # a policy's DR copy: REGION/ID of the item it copies
# On an AMI's backing snapshots: the AMI they were made for.  A policy AMI's snapshots
# carry it with the policy tag, so a snapshot left behind when its AMI is gone (a
# deregistration whose snapshot deletes failed) is found and collected by a later sweep.
AMI = "chatops:ami"


# Kept from Slack (the Keep menu): who pinned it and when, beside chatops:keep=true.
KEPT_BY = "chatops:kept-by"
KEPT_AT = "chatops:kept-at"
# Snoozed from Slack: no sweep expires it until then (an ISO 8601 UTC time), as Swabbie's opt-out.
SNOOZE_UNTIL = "chatops:snooze-until"
SNOOZED_BY = "chatops:snoozed-by"
# Archived by the bot (on_expired = "archive", /snapshot archive): when (ISO 8601 UTC). archive_delete_after
# counts from it, and a snapshot back in the standard tier that carries it was restored on purpose: an
# archive policy does not archive it again.
ARCHIVED_AT = "chatops:archived-at"
# On what a restore drill creates (a volume, an instance): the drill's run ID.  Only resources carrying it
# are ever removed by a drill's clean-up or the leftover sweep (bot/flows/drill_flow.py).
DRILL = "chatops:drill"


def archived_at(tags) -> datetime | None:
    """When the bot archived it (None: no tag, or one that does not parse)."""
    raw = (tags or {}).get(ARCHIVED_AT, "").strip()
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def archived_tags(now: datetime) -> dict[str, str]:
    return {ARCHIVED_AT: now.astimezone(UTC).isoformat(timespec="seconds")}


def snoozed_until(tags, now: datetime) -> datetime | None:
    """When a snooze ends, if it is still in force at `now` (a tag that does not parse snoozes nothing)."""
    raw = (tags or {}).get(SNOOZE_UNTIL, "").strip()
    try:
        until = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until if until > now else None


def keep_tags(user: str, now: datetime) -> dict[str, str]:
    return {KEEP: "true", KEPT_BY: user, KEPT_AT: now.astimezone(UTC).isoformat(timespec="seconds")}


def snooze_tags(user: str, until: datetime) -> dict[str, str]:
    return {SNOOZE_UNTIL: until.astimezone(UTC).isoformat(timespec="seconds"), SNOOZED_BY: user}


def is_pinned(tags) -> bool:
    """Tagged chatops:keep=true (any case, surrounding spaces ignored): never deleted by a sweep."""
    return (tags or {}).get(KEEP, "").strip().lower() == "true"


def managed_tags(user: str, policy: str | None = None, **extra: str) -> dict[str, str]:
    """Tags for a resource the bot creates on behalf of `user` (or a policy)."""
    tags = {MANAGED: "true", REQUESTED_BY: user or "scheduler"}
    if policy:
        tags[POLICY] = policy
    tags.update({k: v for k, v in extra.items() if v})
    return tags


def carried_over(tags: dict[str, str] | None) -> dict[str, str]:
    """Tags a copy keeps from its source: everything but AWS-reserved `aws:` keys."""
    return {k: v for k, v in (tags or {}).items() if not k.startswith("aws:")}


def backing_snapshot_tags(image_id: str, image_tags: dict[str, str] | None) -> dict[str, str]:
    """Tags for an AMI's backing snapshots: the AMI's own (who, what policy, from what) and which AMI they back.

    Never the AMI's chatops:keep: a snapshot's pin is its own, and copying the
    AMI's (say "false") over it would unpin a snapshot someone pinned.
    """
    return {**{k: v for k, v in carried_over(image_tags).items() if k != KEEP}, AMI: image_id}


def manual_copy_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """Tags a copy made by hand (`/snapshot copy`, `/ami copy`) keeps from its source.

    The source's own tags (Name, Team, …) go with it, but not the marks that
    make an item a policy's: a policy sweeps what carries `chatops:policy`, so
    a copy someone made of a policy backup would otherwise be counted in that
    policy's retention and deleted by its sweep.  A policy's DR copies set
    these tags themselves (bot/domain/lifecycle.py copy_to_dr).
    """
    return {k: v for k, v in carried_over(tags).items() if k not in (POLICY, COPY_OF)}
