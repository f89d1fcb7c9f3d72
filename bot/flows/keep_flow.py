"""Keep and Snooze from Slack: tag the item the menu named, in its account, as the person who chose it.

Keeping only ever protects: it adds `chatops:keep=true` (or a snooze) and
deletes nothing, so any operator may do it.  Every sweep decides again at the
moment an item would go, so a keep chosen while a request waits spares the
item when the request runs.
"""

from __future__ import annotations

from datetime import timedelta

from bot.domain.tags import keep_tags, snooze_tags
from bot.errors import BotError, UsageError
from bot.flows.deps import Deps
from bot.slack import blocks

ID_PREFIXES = ("snap-", "ami-")


def keep_item(deps: Deps, user: str, channel: str, value: str, snooze: bool) -> blocks.Message:
    """Tag the item `value` (from a Keep/Snooze menu) names; returns the answer for the person who chose it."""
    verb = "snooze" if snooze else "keep"
    try:
        account, region, resource_id = _where(deps, value)
        now = deps.now()
        if snooze:
            until = now + timedelta(days=blocks.SNOOZE_DAYS)
            tags = snooze_tags(user, until)
        else:
            tags = keep_tags(user, now)
        deps.gateway_for(deps.config.account_key(account) if account else "", user).create_tags(
            region, [resource_id], tags
        )
    except BotError as exc:
        deps.store.audit(user, channel, f"{verb} {value[:80]}", exc.outcome, exc.message)
        return blocks.error(exc)
    deps.store.audit(user, channel, f"{verb} {resource_id}", "ok", ", ".join(f"{k}={v}" for k, v in tags.items()))
    if snooze:
        return blocks.snoozed(resource_id, user, f"{until:%Y-%m-%d %H:%M} UTC")
    return blocks.kept(resource_id, user)


def _where(deps: Deps, value: str) -> tuple[str, str, str]:
    """(account name or "", region, ID) of a menu's value, checked against the config: a forged one changes nothing."""
    usage = "choose an item from the Keep or Snooze menu of a sweep request or the digest"
    try:
        account, region, resource_id = blocks.parse_item_value(value)
    except ValueError:
        raise UsageError("that choice names no item; nothing changed.", usage) from None
    name = account or deps.config.aws.account_name
    if name not in deps.config.account_names or region not in deps.config.account_regions(name):
        raise UsageError(f"no account {name} with region {region} is configured; nothing changed.", usage)
    if not resource_id.startswith(ID_PREFIXES):
        raise UsageError(f"`{resource_id}` is not a snapshot or AMI; nothing changed.", usage)
    return account, region, resource_id
