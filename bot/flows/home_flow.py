"""App Home: gather what one viewer's tab shows (store and config only, no AWS call) and publish it."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from bot.domain.trend import TREND_DAYS, DayTotal
from bot.flows import approval_flow, freeze_flow, lifecycle_flow
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.blocks.home import HOME_PENDING_SHOWN
from bot.slack.send import SLACK_FAILURES, error_of

log = logging.getLogger(__name__)


def home_data(deps: Deps, user: str, notice: str = "") -> blocks.HomeData:
    config, store, now = deps.config, deps.store, deps.now()
    waiting = store.approvals_in("pending", "held")
    policies = [
        (
            p,
            lifecycle_flow.next_run(deps, p),
            store.last_run(lifecycle_flow.job_name(p)),
            config.policy_accounts(p) if config.accounts else (),
        )
        for p in config.policies
    ]
    last = store.latest_run(lifecycle_flow.JOB_PREFIX)
    day, places = store.storage_places()
    since = (now.date() - timedelta(days=TREND_DAYS - 1)).isoformat()
    trend = [DayTotal(date.fromisoformat(d), n, g, u) for d, n, g, u in store.storage_days(since)]
    return blocks.HomeData(
        user=user,
        now=now,
        frozen=freeze_flow.in_force(deps),
        pending=waiting,
        policies=policies,
        last_sweep=(last["job"].removeprefix(lifecycle_flow.JOB_PREFIX), last) if last else None,
        storage_day=day,
        places=places,
        trend=trend,
        mine=store.approvals_requested_by(user),
        links=approval_flow.permalinks(deps, waiting, most=HOME_PENDING_SHOWN),
        notice=notice,
    )


def publish_home(deps: Deps, user: str, notice: str = "") -> bool:
    """Publish `user`'s Home tab; False (logged) when Slack refused: it is only a view, nothing depends on it."""
    try:
        send.publish_home(deps.slack, user, blocks.home_view(home_data(deps, user, notice)))
    except SLACK_FAILURES as exc:
        log.warning("could not publish the Home tab of %s: %s", user, error_of(exc))
        return False
    return True


DECIDED = {
    "approved": ":white_check_mark: You approved `{id}`: it is now *{state}*; its message in {where} shows each item.",
    "denied": ":no_entry: You denied `{id}`; nothing was changed.",
}


def decide_from_home(deps: Deps, approval_id: str, user: str, approve: bool) -> str:
    """Approve or Deny clicked in the Home tab: the channel's decision (same rules, at most once), then the tab again.

    A refusal the channel would answer only to the clicker is shown at the top of their tab instead.
    """
    told: list[str] = []
    outcome = approval_flow.decide(deps, approval_id, user, approve, lambda msg: told.append(msg["text"]))
    notice = told[-1] if told else ""
    row = deps.store.get_approval(approval_id)
    if not told and row is not None and outcome in DECIDED:
        where = f"<#{blocks.escape(row['channel'])}>" if row.get("channel") else "its channel"
        notice = DECIDED[outcome].format(id=blocks.escape(approval_id), state=blocks.escape(row["state"]), where=where)
    publish_home(deps, user, notice)
    return outcome
