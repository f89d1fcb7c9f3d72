"""Scheduler jobs with controlled time: stable IDs, missed runs made up once, no overlapping runs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from bot.config import Config, Policy, with_overrides
from bot.deps import Deps
from bot.lifecycle_flow import AlreadyRunning, job_name, run_policy
from bot.store import Store
from scheduler.jobs import DIGEST_JOB, add_lifecycle_jobs, missed, next_run, policy_trigger


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


def test_a_stale_lease_left_by_a_crash_does_not_block_forever(tmp_path):
    clock = Clock(T0)
    deps = make_deps(tmp_path, clock)
    assert deps.store.start_run("policy:daily-db", "schedule") is not None
    clock.moment = T0 + timedelta(hours=7)
    assert deps.store.start_run("policy:daily-db", "schedule") is not None
    assert deps.store.db.execute("SELECT count(*) FROM runs WHERE state = 'interrupted'").fetchone()[0] == 1
