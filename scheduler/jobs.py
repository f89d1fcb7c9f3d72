"""Policy and digest jobs: stable IDs, one run per slot across processes, a missed run made up once at start.

APScheduler decides *when*; the store remembers what ran (`runs`), which is
how a slot missed while the bot was down is noticed at start and run once —
not once per missed slot.  A policy never seen before is not "missed": it
first runs at its first slot (or now, with `/lifecycle run`).

Every firing claims its slot (the fire time it stands for) in the store, so
when several processes share the store (two replicas) each slot runs once.
For that every process must see the same slots: interval slots count from
the job's `first_seen` in the store, which they all share, not from when a
process started or what it saw run last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.flows import drill_flow, lifecycle_flow
from bot.flows.deps import Deps
from bot.flows.progress import RunProgress
from bot.state.store import from_iso

log = logging.getLogger(__name__)

DIGEST_JOB = "digest"


def slot_of(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The trigger's latest fire time at or before `now` (None if it never fired): the slot a firing stands for.

    Computed from the trigger, not from when the job happened to start, so
    every process firing the slot (a little late, or with a clock a little
    off) names the same one.
    """
    span = timedelta(minutes=1)
    first = trigger.get_next_fire_time(None, now - span)
    while first is None or first > now:
        if span > timedelta(days=3700):  # longer than any cron's period (29 February: 8 years): it never fired
            return None
        span *= 2
        first = trigger.get_next_fire_time(None, now - span)
    slot = first
    while True:
        later = trigger.get_next_fire_time(slot, slot + timedelta(microseconds=1))
        if later is None or later > now:
            return slot
        slot = later


def missed(deps: Deps, job: str, trigger: BaseTrigger) -> bool:
    """Was a slot of `job` due, since its last run (or since the bot first saw it), before now?"""
    last = deps.store.last_run(job)
    since = from_iso(last["started_at"]) if last else deps.store.first_seen(job)
    nxt = trigger.get_next_fire_time(None, since + timedelta(seconds=1))
    return nxt is not None and nxt <= deps.now()


def scheduled_policy_run(deps: Deps, policy_name: str, trigger: str) -> None:
    """The job body: run the policy's current slot and post its summary; never raises into APScheduler."""
    policy = deps.config.policy(policy_name)
    slot = slot_of(lifecycle_flow.trigger_for(deps, policy), deps.now())
    if slot is None:
        log.warning("policy %s fired before its first slot; skipped", policy_name)
        return
    progress = RunProgress(deps, f"Policy {policy.name}")
    try:
        reports = lifecycle_flow.run_policy(deps, policy, trigger=trigger, slot=slot, progress=progress)
    except lifecycle_flow.AlreadyRunning:
        log.info(
            "policy %s: slot %s already ran, or a run is going (here or in another process); skipped",
            policy_name,
            slot.isoformat(),
        )
        return
    except Exception:
        log.exception("policy %s failed", policy_name)
        return
    lifecycle_flow.post_report(deps, lifecycle_flow.sweep_report(deps, reports), progress=progress)


def scheduled_drill(deps: Deps, policy_name: str, trigger: str) -> None:
    """The drill job body: the policy's restore drills for the current slot; never raises into APScheduler."""
    policy = deps.config.policy(policy_name)
    slot = slot_of(drill_flow.drill_trigger(deps, policy), deps.now())
    if slot is None:
        log.warning("drills of %s fired before their first slot; skipped", policy_name)
        return
    try:
        done = drill_flow.drill_policy(deps, policy, trigger=trigger, slot=slot)
    except drill_flow.AlreadyRunning:
        log.info("drills of %s: slot %s already ran, or they are running; skipped", policy_name, slot.isoformat())
        return
    except Exception:
        log.exception("drills of %s failed", policy_name)
        return
    log.info("drills of %s: %s", policy_name, ", ".join(f"{d.backup_id} {d.state}" for d in done) or "nothing to drill")


def sweep_drill_leftovers(deps: Deps) -> None:
    """At start: what interrupted drills left (tagged chatops:drill) is removed; nothing else is touched."""
    try:
        drill_flow.sweep_all_leftovers(deps)
    except Exception:
        log.exception("the sweep of drill leftovers failed; the next drill run sweeps again")


def digest_trigger(deps: Deps) -> BaseTrigger:
    return CronTrigger.from_crontab(deps.config.schedule.digest, timezone=deps.config.schedule.timezone)


def scheduled_digest(deps: Deps, trigger: str) -> None:
    slot = slot_of(digest_trigger(deps), deps.now())
    run_id = deps.store.start_run(DIGEST_JOB, trigger, slot=slot) if slot is not None else None
    if run_id is None:
        log.info("digest: slot %s already ran, or is running in another process; skipped", slot and slot.isoformat())
        return
    state, summary = "failed", {}
    try:
        summary = {"ts": lifecycle_flow.post_digest(deps)}
        state = "ok"
    except Exception:
        log.exception("the digest failed")
    finally:
        deps.store.finish_run(run_id, state, summary)


def add_lifecycle_jobs(scheduler: BaseScheduler, deps: Deps) -> list[str]:
    """Add one job per policy (and one per policy with drills), the digest, and the sweep of drill leftovers.

    Returns the IDs of jobs caught up at start.
    """
    caught_up = []
    specs: list[tuple[str, BaseTrigger, Callable, list]] = []
    for policy in deps.config.policies:
        specs.append(
            (
                lifecycle_flow.job_name(policy),
                lifecycle_flow.trigger_for(deps, policy),
                scheduled_policy_run,
                [deps, policy.name],
            )
        )
        if policy.drills:
            specs.append(
                (
                    drill_flow.job_name(policy),
                    drill_flow.drill_trigger(deps, policy),
                    scheduled_drill,
                    [deps, policy.name],
                )
            )
    specs.append((DIGEST_JOB, digest_trigger(deps), scheduled_digest, [deps]))
    if drill_flow.has_drills(deps):
        scheduler.add_job(sweep_drill_leftovers, "date", args=[deps], id="drill-leftovers", replace_existing=True)
    for job, trigger, func, args in specs:
        scheduler.add_job(
            func,
            trigger,
            args=[*args, "schedule"],
            id=job,
            name=job,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )
        if missed(deps, job, trigger):
            # Claims the latest missed slot when it runs: two processes starting
            # together both catch up, and that slot still runs once.
            scheduler.add_job(
                func,
                "date",
                args=[*args, "missed-at-start"],
                id=f"{job}:catch-up",
                max_instances=1,
                replace_existing=True,
            )
            caught_up.append(job)
    return caught_up
