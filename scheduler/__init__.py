"""APScheduler jobs, in the bot's own process: stable IDs, one run at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from bot.flows.approval_flow import expire_due
from bot.flows.deps import Deps
from bot.flows.freeze_flow import lift_lapsed
from bot.state.heartbeat import OWNER_TTL
from scheduler.upkeep import prune_store, reclaim_orphans
from scheduler.watches import poll_watches


def build_scheduler(deps: Deps) -> BackgroundScheduler:
    """The bot's housekeeping jobs (not started: the caller starts it; Runtime.start adds the lifecycle jobs)."""
    scheduler = BackgroundScheduler(timezone=deps.config.schedule.timezone)
    scheduler.add_job(
        poll_watches,
        "interval",
        args=[deps],
        id="watches",
        seconds=deps.config.aws.poll_interval.total_seconds(),
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    scheduler.add_job(
        expire_due,
        "interval",
        args=[deps],
        id="approval-expiry",
        seconds=30,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    # A freeze's until= passing, or a thaw in another process: lift it, say so, run what it held.
    scheduler.add_job(
        lift_lapsed,
        "interval",
        args=[deps],
        id="freeze-lapse",
        seconds=30,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    scheduler.add_job(
        reclaim_orphans,
        "interval",
        args=[deps],
        id="reclaim-orphans",
        seconds=OWNER_TTL.total_seconds(),
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    # Daily, first a little after start: a bot restarted more often than daily still prunes.
    # Several processes may prune the same store; deleting twice is harmless.
    scheduler.add_job(
        prune_store,
        "interval",
        args=[deps],
        id="store-prune",
        hours=24,
        next_run_time=datetime.now(scheduler.timezone) + timedelta(minutes=10),
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    return scheduler
