"""Scheduler jobs with controlled time: stable IDs, missed runs made up once, no overlapping runs, one run a slot."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.aws.gateway import Ec2Gateway
from bot.config import Config, Policy, with_overrides
from bot.flows.deps import Deps
from bot.flows.lifecycle_flow import AlreadyRunning, job_name, next_run, policy_trigger, run_policy
from bot.state.store import Store, iso
from scheduler import build_scheduler
from scheduler.jobs import DIGEST_JOB, add_lifecycle_jobs, missed, slot_of
from scheduler.upkeep import prune_store


class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def make_deps(tmp_path, clock, **policy_changes) -> Deps:
    policy = Policy(name="daily-db", resource="volume", target_tags={"Backup": "daily"}, every=timedelta(hours=12))
    policy = dataclasses.replace(policy, **policy_changes)
    config = dataclasses.replace(with_overrides(Config(), store={"path": str(tmp_path / "s.db")}), policies=(policy,))
    store = Store(config.store.path, clock)
    return Deps(config=config, gateway=None, store=store, worker=None, slack=None, clock=clock)


def test_a_new_policy_is_not_missed(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    policy = deps.config.policies[0]
    assert not missed(deps, job_name(policy), policy_trigger(policy, "UTC", start=T0 + timedelta(hours=12)))
    assert next_run(deps, policy) == T0 + timedelta(hours=12)


def test_interval_policy_missed_while_down_runs_once_at_start(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    run_id = deps.store.start_run("policy:daily-db", "schedule")
    deps.store.finish_run(run_id, "ok", {})
    clock.moment = T0 + timedelta(days=3)  # six slots missed
    scheduler = BackgroundScheduler(timezone="UTC")
    caught_up = add_lifecycle_jobs(scheduler, deps)
    assert caught_up == ["policy:daily-db"]
    ids = sorted(j.id for j in scheduler.get_jobs())
    assert ids == [DIGEST_JOB, "policy:daily-db", "policy:daily-db:catch-up"]  # one catch-up, not six


def test_interval_policy_that_ran_recently_is_not_missed(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    deps.store.finish_run(deps.store.start_run("policy:daily-db", "schedule"), "ok", {})
    clock.moment = T0 + timedelta(hours=11)
    scheduler = BackgroundScheduler(timezone="UTC")
    assert add_lifecycle_jobs(scheduler, deps) == []
    assert next_run(deps, deps.config.policies[0]) == T0 + timedelta(hours=12)


def test_cron_policy_missed_slot(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock, every=None, cron="0 3 * * *")
    deps.store.first_seen("policy:daily-db")  # seen at 08:00
    clock.moment = T0 + timedelta(hours=18)  # 02:00 next day: no 03:00 slot yet
    assert add_lifecycle_jobs(BackgroundScheduler(timezone="UTC"), deps) == []
    clock.moment = T0 + timedelta(hours=20)  # 04:00: the 03:00 slot was missed
    assert "policy:daily-db" in add_lifecycle_jobs(BackgroundScheduler(timezone="UTC"), deps)


def test_digest_missed_slot_runs_once(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    deps.store.first_seen(DIGEST_JOB)
    clock.moment = T0 + timedelta(days=2)
    assert DIGEST_JOB in add_lifecycle_jobs(BackgroundScheduler(timezone="UTC"), deps)


def test_two_runs_of_one_policy_never_overlap(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    held = deps.store.start_run("policy:daily-db", "schedule")
    assert held is not None
    with pytest.raises(AlreadyRunning):
        run_policy(deps, deps.config.policies[0], trigger="manual")
    other_process = Store(deps.config.store.path, clock)
    assert other_process.start_run("policy:daily-db", "cli") is None
    deps.store.finish_run(held, "ok", {})
    assert other_process.start_run("policy:daily-db", "cli") is not None


def test_a_lease_left_by_a_crashed_process_is_taken_over_at_once(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    # A real process takes the lease and dies without a word (no close, no finish).
    crash = (
        "import os, sys; from bot.state.store import Store; "
        "assert Store(sys.argv[1]).start_run('policy:daily-db', 'cli'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", crash, deps.config.store.path], check=True, timeout=60)
    assert deps.store.start_run("policy:daily-db", "schedule") is not None  # its PID is gone: no 6 h wait
    states = deps.store.db.execute("SELECT trigger, state FROM runs ORDER BY id").fetchall()
    assert states == [("cli", "interrupted"), ("schedule", "running")]


def test_a_live_process_s_lease_is_never_stale(tmp_path):
    # A 100,000-item sweep may run for hours: its lease holds as long as its process lives.
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    sweep = Store(deps.config.store.path, clock)  # e.g. `python -m bot sweep`, still going
    assert sweep.start_run("policy:daily-db", "cli") is not None
    clock.moment = T0 + timedelta(days=3)
    assert deps.store.start_run("policy:daily-db", "schedule") is None
    with pytest.raises(AlreadyRunning):
        run_policy(deps, deps.config.policies[0], trigger="manual")
    assert deps.store.db.execute("SELECT state FROM runs").fetchall() == [("running",)]
    sweep.close()


@pytest.mark.parametrize(
    "trigger, now, slot",
    [
        # interval from 08:00 every 12 h: fired on time, late, and never yet
        (IntervalTrigger(hours=12, start_date=T0, timezone="UTC"), T0 + timedelta(hours=12), T0 + timedelta(hours=12)),
        (IntervalTrigger(hours=12, start_date=T0, timezone="UTC"), T0 + timedelta(hours=23), T0 + timedelta(hours=12)),
        (IntervalTrigger(hours=12, start_date=T0, timezone="UTC"), T0 - timedelta(seconds=1), None),
        # cron: daily at 03:00, and a monthly one whose last slot is weeks ago
        (CronTrigger.from_crontab("0 3 * * *", timezone="UTC"), T0, datetime(2026, 11, 20, 3, 0, tzinfo=UTC)),
        (CronTrigger.from_crontab("0 3 1 * *", timezone="UTC"), T0, datetime(2026, 11, 1, 3, 0, tzinfo=UTC)),
        (CronTrigger.from_crontab("*/5 * * * *", timezone="UTC"), T0 + timedelta(minutes=7), T0 + timedelta(minutes=5)),
    ],
)
def test_slot_of_is_the_latest_fire_time_not_after_now(trigger, now, slot):
    assert slot_of(trigger, now) == slot


def policy_deps(tmp_path, clock, aws) -> Deps:
    """Deps whose policy really runs (against moto; no volume matches, so it is quick)."""
    deps = make_deps(tmp_path, clock)
    return dataclasses.replace(deps, gateway=Ec2Gateway(aws))


def runs_of(store: Store, job: str = "policy:daily-db") -> list[tuple]:
    return store.db.execute("SELECT trigger, slot, state FROM runs WHERE job = ? ORDER BY id", [job]).fetchall()


def test_two_processes_fire_interval_slots_at_the_same_times_and_run_each_once(tmp_path, aws):
    clock = Clock(T0)
    first = policy_deps(tmp_path, clock, aws)
    first_scheduler = BackgroundScheduler(timezone="UTC")
    add_lifecycle_jobs(first_scheduler, first)  # the first server starts at 08:00
    clock.moment = T0 + timedelta(hours=12, milliseconds=200)  # its 20:00 slot fires a little late
    job = first_scheduler.get_job("policy:daily-db")
    job.func(*job.args)

    clock.moment = T0 + timedelta(hours=13)  # a second server starts on the same store
    second = dataclasses.replace(first, store=Store(first.config.store.path, clock))
    second_scheduler = BackgroundScheduler(timezone="UTC")
    assert "policy:daily-db" not in add_lifecycle_jobs(second_scheduler, second)  # (the 09:00 digest was)
    jobs = [s.get_job("policy:daily-db") for s in (first_scheduler, second_scheduler)]
    fire_times = [j.trigger.get_next_fire_time(None, clock.moment) for j in jobs]
    assert fire_times == [T0 + timedelta(hours=24)] * 2  # not 08:00:00.2 for the second one

    for j in jobs:  # each process fires its job at that time
        clock.moment = fire_times[0] + timedelta(milliseconds=50)
        j.func(*j.args)
    slot = iso(T0 + timedelta(hours=24))
    assert runs_of(first.store) == [("schedule", iso(T0 + timedelta(hours=12)), "ok"), ("schedule", slot, "ok")]


def test_two_processes_starting_together_catch_up_a_missed_slot_once(tmp_path, aws):
    clock = Clock(T0)
    first = policy_deps(tmp_path, clock, aws)
    first.store.finish_run(first.store.start_run("policy:daily-db", "schedule"), "ok", {})
    clock.moment = T0 + timedelta(days=3, hours=1)  # both were down; both start now
    second = dataclasses.replace(first, store=Store(first.config.store.path, clock))
    schedulers = [BackgroundScheduler(timezone="UTC") for _ in range(2)]
    assert [add_lifecycle_jobs(s, d) for s, d in zip(schedulers, (first, second), strict=True)] == [
        ["policy:daily-db"],
        ["policy:daily-db"],
    ]
    for s in schedulers:
        catch_up = s.get_job("policy:daily-db:catch-up")
        catch_up.func(*catch_up.args)
    triggers = first.store.db.execute("SELECT trigger FROM runs ORDER BY id").fetchall()
    assert triggers == [("schedule",), ("missed-at-start",)]  # once, not once per process
    assert runs_of(first.store)[-1] == ("missed-at-start", iso(T0 + timedelta(days=3)), "ok")  # the latest slot


def test_the_daily_prune_follows_store_retention_and_is_audited(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    retention = dataclasses.replace(deps.config.store.retention, audit=timedelta(days=30))
    deps = dataclasses.replace(
        deps, config=with_overrides(deps.config, store={"path": deps.config.store.path, "retention": retention})
    )
    deps.store.audit("U0ALICE", "C0OPS", "/snapshot list", "ok")
    clock.moment = T0 + timedelta(days=29)
    assert prune_store(deps)["audit"] == 0
    clock.moment = T0 + timedelta(days=31)
    assert prune_store(deps)["audit"] == 1
    entries = deps.store.recent_audit()
    assert [e["action"] for e in entries] == ["store prune", "store prune"]  # the command is gone
    assert entries[0]["detail"].startswith("1 audit, 0 events, 0 watches, 0 runs, 0 approvals")


def test_upkeep_jobs_are_scheduled(tmp_path):
    deps = make_deps(tmp_path, Clock(T0))
    deps = dataclasses.replace(deps, config=with_overrides(deps.config, aws={"poll_interval": timedelta(seconds=15)}))
    jobs = {job.id: job for job in build_scheduler(deps).get_jobs()}
    assert jobs["reclaim-orphans"].trigger.interval == timedelta(seconds=60)
    assert jobs["store-prune"].trigger.interval == timedelta(days=1)
