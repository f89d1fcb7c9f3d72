"""Act from the message: fill a just-opened modal with choices read from AWS (after the click's ack, in the pool)."""

from __future__ import annotations

import logging

from bot.aws.gateway import known_regions
from bot.errors import BotError
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.blocks.menus import FORMS, MAX_OPTIONS, VOLUME_TYPES
from bot.slack.send import SLACK_FAILURES, error_of

log = logging.getLogger(__name__)


def modal_choices(deps: Deps, choice: blocks.MenuChoice, user: str) -> dict[str, list[str]]:
    """The options of each select of the choice's form, read from AWS (as `user`, in the item's account)."""
    wanted = {f.choices for f in FORMS[(choice.kind, choice.verb)] if f.choices}
    gw = deps.gateway_for(choice.account, user)
    out: dict[str, list[str]] = {}
    if "azs" in wanted:
        out["azs"] = gw.availability_zones(choice.region)
    if "types" in wanted:
        out["types"] = list(VOLUME_TYPES)
    if "regions" in wanted:
        account = choice.account or deps.config.aws.account_name
        configured = [r for r in deps.config.account_regions(account) if r != choice.region]
        others = sorted(known_regions() - {choice.region, *configured})
        out["regions"] = (configured + others)[:MAX_OPTIONS]
    if "instances" in wanted:
        az = gw.get_volume(choice.region, choice.resource_id).az if choice.kind == "volume" else None
        live = [
            i
            for i in gw.describe_instances(choice.region)
            if i.state in ("running", "stopped") and (az is None or i.az == az)
        ]
        out["instances"] = [i.id for i in live][:MAX_OPTIONS]
    return out


def fill_modal(deps: Deps, view_id: str, choice: blocks.MenuChoice, channel: str, user: str) -> None:
    """Replace the modal's "reading the choices" view by its form; an AWS error is shown in the modal."""
    try:
        view = blocks.item_modal(choice, channel, modal_choices(deps, choice, user))
    except BotError as exc:
        view = blocks.item_modal(choice, channel, None)
        view["blocks"][-1] = blocks.section(f":x: {blocks.escape(exc.message)}")
    try:
        send.update_view(deps.slack, view_id, view)
    except SLACK_FAILURES as exc:  # the person closed the modal, or Slack is away: nothing was started
        log.warning("could not fill the modal %s: %s", view_id, error_of(exc))
