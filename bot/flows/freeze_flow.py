"""The kill switch: freeze and thaw deletions, lift a freeze whose `until` passed, release the requests it held.

The freeze itself is a store row (bot/state/store.py) that every deletion path
reads at the moment it would delete: the gateway before each delete call
(bot/process/runtime.py gives it the guard), a sweep before it starts
(bot/flows/lifecycle_flow.py), Approve and execution (bot/flows/approval_flow.py).
This module only changes the row, says so, and refreshes what shows it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.domain.freeze import freeze_text, scope_name
from bot.flows.approval_flow import deletes, release_held, show_request
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES

log = logging.getLogger(__name__)


def in_force(deps: Deps) -> list[str]:
    """Every freeze in force, as plain text (the fleet's first)."""
    config = deps.config
    return [freeze_text(f, config.aws.account_name, bool(config.accounts)) for f in deps.store.freezes()]


def freeze(deps: Deps, scope: str, reason: str, user: str, channel: str, until: datetime | None) -> blocks.Message:
    """Freeze deletions in `scope` ("*" or an account key) at once; returns the announcement."""
    deps.store.freeze(scope, reason, user, until)
    config = deps.config
    [row] = [f for f in deps.store.freezes() if f["scope"] == scope]
    text = freeze_text(row, config.aws.account_name, bool(config.accounts))
    deps.store.audit(user, channel, f"lifecycle freeze {scope_name(scope, config.aws.account_name)}", "frozen", text)
    log.info("%s", text)
    waiting = _requests(deps, scope)
    return blocks.frozen_now(
        text,
        user,
        held=sum(r["state"] == "held" for r in waiting),
        pending=sum(r["state"] == "pending" for r in waiting),
    )


def thaw(deps: Deps, scope: str | None, user: str, channel: str) -> tuple[blocks.Message, bool]:
    """Lift `scope`'s freeze (None: every freeze); returns the answer and whether anything was lifted."""
    lifted = deps.store.thaw(scope)
    own = deps.config.aws.account_name
    if not lifted:
        return blocks.not_frozen(in_force(deps)), False
    names = [scope_name(f["scope"], own) for f in lifted]
    for f in lifted:
        deps.store.audit(user, channel, f"lifecycle thaw {scope_name(f['scope'], own)}", "thawed", f["reason"])
    log.info("deletions thawed in %s by %s", ", ".join(names), user or "their until=")
    held = sum(1 for r in deps.store.approvals_in("held") if not deps.frozen(r["plan"].get("account", "")))
    return blocks.thawed_now(names, user, held, in_force(deps)), True


def after_thaw(deps: Deps) -> int:
    """Run what the freeze held and redraw the requests that showed it; returns the requests released."""
    released = release_held(deps)
    for row in deps.store.approvals_in("pending"):
        if deletes(row):
            show_request(deps, row)
    return released


def after_freeze(deps: Deps, scope: str) -> None:
    """Redraw the open requests the freeze covers, so each shows it at its top."""
    for row in _requests(deps, scope):
        show_request(deps, row)


def lift_lapsed(deps: Deps) -> int:
    """Scheduler job: lift every freeze whose `until=` passed (saying so), then release what no freeze holds.

    Also releases requests whose freeze was lifted by another process sharing
    the store, or before a restart.
    """
    lapsed = deps.store.lapsed_freezes()
    for f in lapsed:
        if not deps.store.thaw(f["scope"]):
            continue  # another process lifted it first
        name = scope_name(f["scope"], deps.config.aws.account_name)
        deps.store.audit("", "", f"lifecycle thaw {name}", "thawed", "its until= passed")
        channel = deps.config.slack.digest_channel
        if channel:
            try:
                send.post(deps.slack, channel, blocks.thawed_now([name], "", 0, in_force(deps)))
            except SLACK_FAILURES as exc:  # the thaw stands; only its announcement is lost
                log.error("could not announce the thaw of %s: %s", name, exc)
    if lapsed:
        after_thaw(deps)
    else:
        release_held(deps)  # lifted elsewhere (another process, before a restart)
    return len(lapsed)


def _requests(deps: Deps, scope: str) -> list[dict]:
    """Open deletion requests (pending or held) in `scope`."""
    rows = deps.store.approvals_in("pending", "held")
    return [r for r in rows if deletes(r) and scope in ("*", r["plan"].get("account", ""))]
