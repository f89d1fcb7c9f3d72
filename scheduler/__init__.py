"""APScheduler jobs, in the bot's own process: stable IDs, one run at a time."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from bot.approval_flow import expire_due
from bot.deps import Deps
from scheduler import ami_watches  # noqa: F401  (registers the "image" and "instances" watchers)
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
    return scheduler
