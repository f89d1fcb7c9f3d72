"""Restore drills for real: restore a backup, time it, prove it, clean up, record, tell the channel.

A snapshot drill creates a volume from the snapshot (tagged `chatops:drill=<run
ID>`, nothing of the source's), waits until it is `available` (bounded by
`drill_timeout`), checks its state and size, optionally attaches it to a
scratch instance and detaches it, then deletes it.  An AMI drill launches one
instance of the smallest type of the AMI's architecture (no public IP), waits
until it is `running` and its status checks pass, then terminates it.

Clean-up is in `finally`, and only ever removes what carries this run's tag,
described again just before.  A drill cut short harder than that (kill -9, a
power cut) leaves its resources tagged with its run: `sweep_leftovers` (at
start, and after every drill run) removes what carries `chatops:drill` and
belongs to no drill still going, and never touches anything else.

Drills never count as backups (their resources carry no `chatops:policy`) and
never touch the source.  The scheduler (one job per policy with `drill`),
`/snapshot drill`, `/ami drill` and the digest come through here.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import errors
from bot.config import Policy
from bot.domain import drills, lifecycle
from bot.domain.drills import Drill, PolicyDrills, Target
from bot.domain.tags import DRILL, POLICY
from bot.errors import BotError
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES

log = logging.getLogger(__name__)

# A drill started by hand of a backup no drill policy covers: these settings.
DEFAULT_TIMEOUT = timedelta(minutes=30)
# A leftover volume still attached (a drill killed mid-attach) is detached first; how long to wait for that.
DETACH_WAIT = timedelta(minutes=2)


class DrillTimedOut(BotError):
    outcome = "timed-out"


class DrillInterrupted(BotError):
    outcome = "stopped"


class DrillFailed(BotError):
    outcome = "failed"


@dataclass
class Waiting:
    """How a drill waits: a monotonic clock and a sleep (the tests give fakes), polling every `interval` s."""

    monotonic: Callable[[], float]
    sleep: Callable[[float], object]
    interval: float


def waiting_for(deps: Deps) -> Waiting:
    # Sleeping on the stop event: a shutdown wakes a waiting drill at once, and it cleans up.
    return Waiting(time.monotonic, deps.stopping.wait, deps.config.aws.poll_interval.total_seconds())


def new_run_id() -> str:
    return f"drill-{secrets.token_hex(6)}"


def job_name(policy: Policy) -> str:
    return f"drill:{policy.name}"


# --- one drill -------------------------------------------------------------------------------


def run_drill(
    deps: Deps,
    target: Target,
    *,
    account: str = "",
    policy: Policy | None = None,
    user: str = "",
    trigger: str = "manual",
    wait: Waiting | None = None,
    sweep_after: bool = True,
) -> Drill:
    """Restore `target`, prove it, clean up and record; returns the drill. Never raises for the drill's sake.

    `account` is as events name it ("" = the bot's own).  `policy` gives the
    drill settings (AZ, timeout, scratch instance, subnet, instance type); a
    backup no drill policy covers is drilled with the defaults.
    """
    wait = wait or waiting_for(deps)
    settings = policy or Policy(name="", resource="volume", target_tags={"-": "-"}, drill_timeout=DEFAULT_TIMEOUT)
    gw = deps.gateway_for(account, user or None)
    run_id = new_run_id()
    deps.store.start_drill(
        {
            "id": run_id,
            "account": account,
            "policy": policy.name if policy else "",
            "region": target.region,
            "kind": target.kind,
            "backup_id": target.backup_id,
            "source_id": target.source_id,
            "backup_created": target.created.isoformat(),
            "trigger": trigger,
            "user": user,
            "size_gib": target.size_gib,
        }
    )
    deadline = wait.monotonic() + settings.drill_timeout.total_seconds()
    run = _Run(deps, gw, target, run_id, settings, user or lifecycle.SCHEDULER_USER, wait, deadline)
    state, reason = drills.FAILED, ""
    try:
        run.restore()
        state = drills.OK
    except DrillTimedOut as exc:
        state, reason = drills.TIMED_OUT, exc.message
    except DrillInterrupted as exc:
        state, reason = drills.INTERRUPTED, exc.message
    except BotError as exc:
        reason = exc.message
    except Exception as exc:
        log.exception("drill %s of %s crashed", run_id, target.backup_id)
        reason = f"unexpected error: {type(exc).__name__}: {exc}"
    finally:
        cleanup = run.clean_up()
        if cleanup:
            reason = "; ".join(filter(None, [reason, cleanup]))
        pricing = deps.config.pricing
        cost = drills.drill_cost(
            run.size_gib, run.volume_seconds, run.instance_seconds, pricing.volume_gb_month, pricing.drill_instance_hour
        )
        row = deps.store.finish_drill(
            run_id,
            state,
            reason=reason,
            ready_seconds=run.ready_seconds,
            checked_seconds=run.checked_seconds,
            size_gib=run.size_gib,
            instance_type=run.instance_type,
            gib_hours=cost.gib_hours,
            instance_minutes=cost.instance_minutes,
            cost_usd=cost.usd,
        )
    drill = Drill.from_row(row)
    deps.store.audit(
        user,
        "",
        f"restore drill {run_id} of {target.backup_id}" + (f" (policy {policy.name})" if policy else ""),
        state,
        reason or f"{run.restored_id} ready in {drills.fmt_seconds(run.ready_seconds)}",
    )
    if not drill.ok:
        post_failure(deps, drill)
    if sweep_after:
        sweep_leftovers(deps, account, [target.region])
    return drill


class _Run:
    """One drill's steps and what it created (for clean-up and cost)."""

    def __init__(self, deps, gw, target: Target, run_id: str, policy: Policy, user: str, wait: Waiting, deadline):
        self.deps, self.gw, self.target, self.run_id, self.policy = deps, gw, target, run_id, policy
        self.user, self.wait, self.deadline = user, wait, deadline
        self.region = target.region
        self.restored_id = ""
        self.size_gib = target.size_gib
        self.instance_type = ""
        self.ready_seconds: float | None = None
        self.checked_seconds: float | None = None
        self.attached_to = ""
        self._created_at: float | None = None
        self.volume_seconds = 0.0
        self.instance_seconds = 0.0

    # -- waiting, bounded --

    def _until(self, what: str, describe: Callable[[], object], done: Callable, failed: Callable) -> object:
        while True:
            value = describe()
            why = failed(value)
            if why:
                raise DrillFailed(why)
            if done(value):
                return value
            now = self.wait.monotonic()
            if now >= self.deadline:
                raise DrillTimedOut(
                    f"{what} not reached within drill_timeout ({_duration(self.policy.drill_timeout)})",
                    "A slow restore is a finding: check the snapshot's size and fast snapshot restore.",
                )
            if self.deps.stopping.is_set():
                raise DrillInterrupted("the bot was shutting down; the drill was cleaned up")
            self.wait.sleep(min(self.wait.interval, max(self.deadline - now, 0.0)))

    def restore(self) -> None:
        if self.target.kind == drills.SNAPSHOT:
            self._restore_volume()
        else:
            self._launch_instance()

    # -- a snapshot: a volume --

    def _restore_volume(self) -> None:
        snap = self.gw.get_snapshot(self.region, self.target.backup_id)
        why = drills.snapshot_refusal(snap)
        if why:
            raise DrillFailed(why)
        self.size_gib = snap.size_gib
        scratch = None
        if self.policy.drill_instance:
            scratch = self.gw.get_instance(self.region, self.policy.drill_instance)
        az = scratch.az if scratch else self.policy.drill_az or _first_az(self.gw, self.region)
        started = self.wait.monotonic()
        self._created_at = started
        volume = self.gw.create_volume(
            self.region, snap.id, az, drills.DRILL_VOLUME_TYPE, drills.drill_tags(self.run_id, self.user)
        )
        self.restored_id = volume.id
        self.deps.store.set_drill_restored(self.run_id, volume.id)
        volume = self._until(
            f"{volume.id} available",
            lambda: self.gw.get_volume(self.region, volume.id),
            lambda v: v.state == "available",
            lambda v: f"{v.id} went to state {v.state}" if v.state in ("error", "deleting", "deleted") else "",
        )
        self.ready_seconds = round(self.wait.monotonic() - started, 3)
        verdict = drills.volume_verdict(volume, snap.size_gib)
        if verdict:
            raise DrillFailed(verdict)
        if scratch is not None:
            self._attach_and_detach(volume.id, scratch.id)

    def _attach_and_detach(self, volume_id: str, instance_id: str) -> None:
        self.gw.attach_volume(self.region, volume_id, instance_id, drills.DRILL_DEVICE)
        self.attached_to = instance_id
        self._until(
            f"{volume_id} attached to {instance_id}",
            lambda: self.gw.get_volume(self.region, volume_id),
            lambda v: any(a.instance_id == instance_id and a.state == "attached" for a in v.attachments),
            lambda v: f"{v.id} went to state {v.state}" if v.state in ("error", "deleting", "deleted") else "",
        )
        self.gw.detach_volume(self.region, volume_id, instance_id)
        self._until(
            f"{volume_id} detached",
            lambda: self.gw.get_volume(self.region, volume_id),
            lambda v: v.state == "available" and not v.attachments,
            lambda v: f"{v.id} went to state {v.state}" if v.state in ("error", "deleting", "deleted") else "",
        )
        self.attached_to = ""

    # -- an AMI: an instance --

    def _launch_instance(self) -> None:
        image = self.gw.get_image(self.region, self.target.backup_id)
        why = drills.image_refusal(image)
        if why:
            raise DrillFailed(why)
        self.size_gib = image.backing_gib
        self.instance_type = drills.instance_type_for(image, self.policy.drill_instance_type)
        subnet = self.policy.drill_subnet or self.gw.default_subnet(self.region)
        if not subnet:
            raise DrillFailed(
                f"{self.region} has no default subnet to launch the drill instance in.",
                "Set drill_subnet on the policy (a private subnet).",
            )
        started = self.wait.monotonic()
        self._created_at = started
        instance = self.gw.launch_drill_instance(
            self.region,
            image.id,
            self.instance_type,
            subnet,
            client_token=self.run_id,
            tags=drills.drill_tags(self.run_id, self.user),
        )
        self.restored_id = instance.id
        self.deps.store.set_drill_restored(self.run_id, instance.id)
        gone = ("shutting-down", "terminated", "stopping", "stopped")

        def failed(status) -> str:
            if status.state in gone:
                return f"{instance.id} went to state {status.state}"
            impaired = [
                name for name, s in (("system", status.system), ("instance", status.instance)) if s == "impaired"
            ]
            return f"{instance.id}: {' and '.join(impaired)} status check impaired" if impaired else ""

        def running(status) -> bool:
            if status.state == "running" and self.ready_seconds is None:
                self.ready_seconds = round(self.wait.monotonic() - started, 3)
            return status.passed

        self._until(
            f"{instance.id} running with its status checks passed",
            lambda: self.gw.instance_status(self.region, instance.id),
            running,
            failed,
        )
        self.checked_seconds = round(self.wait.monotonic() - started, 3)

    # -- clean-up: only what carries this run's tag --

    def clean_up(self) -> str:
        """Remove what this drill created; returns what could not be removed ("" = all gone)."""
        if not self.restored_id:
            return ""
        try:
            if self.target.kind == drills.SNAPSHOT:
                self._delete_volume()
            else:
                self._terminate_instance()
        except BotError as exc:
            log.error("drill %s: clean-up of %s failed: %s", self.run_id, self.restored_id, exc)
            return f"clean-up of {self.restored_id} failed ({exc.message}); the leftover sweep removes it"
        finally:
            if self._created_at is not None:
                lived = max(self.wait.monotonic() - self._created_at, 0.0)
                if self.target.kind == drills.SNAPSHOT:
                    self.volume_seconds = lived
                else:
                    self.instance_seconds = lived
        return ""

    def _delete_volume(self) -> None:
        try:
            volume = self.gw.get_volume(self.region, self.restored_id)
        except errors.NotFound:
            return
        if not drills.is_drill_resource(volume.tags, self.run_id):
            raise DrillFailed(f"{volume.id} does not carry {DRILL}={self.run_id}; left alone")
        if volume.attachments:
            for attachment in volume.attachments:
                self.gw.detach_volume(self.region, volume.id, attachment.instance_id)
            self.deadline = self.wait.monotonic() + DETACH_WAIT.total_seconds()
            try:
                self._until(
                    f"{volume.id} detached",
                    lambda: self.gw.get_volume(self.region, volume.id),
                    lambda v: v.state == "available",
                    lambda v: "",
                )
            except DrillInterrupted:
                pass  # shutting down: try the delete anyway; the sweep catches it if refused
        self.gw.delete_volume(self.region, volume.id)

    def _terminate_instance(self) -> None:
        try:
            instance = self.gw.get_instance(self.region, self.restored_id)
        except errors.NotFound:
            return
        if not drills.is_drill_resource(instance.tags, self.run_id):
            raise DrillFailed(f"{instance.id} does not carry {DRILL}={self.run_id}; left alone")
        if instance.state != "terminated":
            self.gw.terminate_instances(self.region, [instance.id])


def _first_az(gw, region: str) -> str:
    zones = gw.availability_zones(region)
    if not zones:
        raise errors.AwsError(f"no availability zone is available in {region}.")
    return zones[0]


def _duration(delta: timedelta) -> str:
    from bot.config import format_duration

    return format_duration(delta)


# --- on demand ------------------------------------------------------------------------------------


def drill_policy_of(deps: Deps, tags) -> Policy | None:
    """The policy that made a backup (its chatops:policy tag): its drill settings apply, and the drill counts for it."""
    return deps.config.policy((tags or {}).get(POLICY, ""))


def snapshot_target(deps: Deps, account: str, region: str, snapshot_id: str, user: str) -> tuple[Target, Policy | None]:
    """Check `/snapshot drill snap-…` before anything is created: it exists, is completed, not archived."""
    snap = deps.gateway_for(account, user).get_snapshot(region, snapshot_id)
    return drills.drillable_snapshot(snap), drill_policy_of(deps, snap.tags)


def image_target(deps: Deps, account: str, region: str, image_id: str, user: str) -> tuple[Target, Policy | None]:
    image = deps.gateway_for(account, user).get_image(region, image_id)
    return drills.drillable_image(image), drill_policy_of(deps, image.tags)


# --- scheduled: a policy's drills ---------------------------------------------------------------------


class AlreadyRunning(BotError):
    outcome = "busy"


def drill_trigger(deps: Deps, policy: Policy) -> BaseTrigger:
    """When a policy drills: every `drill` counted from when the store first saw the job, or on `drill_cron`."""
    tz = deps.config.schedule.timezone
    if policy.drill is not None:
        anchor = deps.store.first_seen(job_name(policy))
        return IntervalTrigger(seconds=policy.drill.total_seconds(), start_date=anchor + policy.drill, timezone=tz)
    return CronTrigger.from_crontab(policy.drill_cron, timezone=tz)


def drill_interval(deps: Deps, policy: Policy) -> timedelta:
    """The drill interval: `drill`, or the gap between two fire times of `drill_cron`."""
    if policy.drill is not None:
        return policy.drill
    trigger = CronTrigger.from_crontab(policy.drill_cron, timezone=deps.config.schedule.timezone)
    first = trigger.get_next_fire_time(None, deps.now())
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    return (second - first) if first and second else timedelta(days=7)


def policy_targets(gw, policy: Policy, region: str) -> list[Target]:
    """The policy's completed backups in a region, as drill targets (one describe, filtered on its tag)."""
    tag = [{"Name": f"tag:{POLICY}", "Values": [policy.name]}]
    if policy.resource == "volume":
        return [
            drills.snapshot_target(s)
            for s in gw.describe_snapshots(region, filters=tag)
            if not drills.snapshot_refusal(s)
        ]
    return [drills.image_target(i) for i in gw.describe_images(region, filters=tag) if not drills.image_refusal(i)]


def drill_policy(
    deps: Deps, policy: Policy, *, trigger: str = "manual", slot: datetime | None = None, wait: Waiting | None = None
) -> list[Drill]:
    """One drill run of a policy under its lease: one backup per source, in every account and region it covers.

    Accounts drill at once, each one's drills one after the other (each
    waits for its restore); a region that cannot be listed is logged and
    skipped.  Leftovers of the accounts are swept after the run.
    """
    run_id = deps.store.start_run(job_name(policy), trigger, slot=slot)
    if run_id is None:
        raise AlreadyRunning(f"the drills of {policy.name} are running right now; not started again.")
    done: list[Drill] = []
    try:
        results = lifecycle.in_parallel(
            list(deps.config.policy_accounts(policy)),
            lambda account: _drill_account(deps, policy, account, trigger, wait),
        )
        for account, value in results.items():
            if isinstance(value, Exception):
                log.error("drills of %s in account %s failed: %s", policy.name, account, value)
            else:
                done += value
        return done
    finally:
        state = "ok" if done and all(d.ok for d in done) else ("interrupted" if deps.stopping.is_set() else "failed")
        deps.store.finish_run(run_id, state if done else "ok", drills.summary(done))


def _drill_account(deps: Deps, policy: Policy, account: str, trigger: str, wait: Waiting | None) -> list[Drill]:
    config = deps.config
    own = config.account_key(account)
    gw = deps.gateway_for(own)
    regions = lifecycle.all_regions(config, replace(policy, regions=config.policy_regions(policy, account)))
    targets: list[Target] = []
    for region in regions:
        try:
            targets += policy_targets(gw, policy, region)
        except BotError as exc:
            log.error("drills of %s: listing %s %s failed: %s", policy.name, account, region, exc.message)
    done = []
    for target in drills.pick(targets, policy.drill_pick, policy.drill_window, deps.now()):
        if deps.stopping.is_set():
            break
        done.append(run_drill(deps, target, account=own, policy=policy, trigger=trigger, wait=wait, sweep_after=False))
    sweep_leftovers(deps, own, regions)
    return done


# --- leftovers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removed:
    region: str
    resource_id: str
    run_id: str
    outcome: str  # "terminated" | "deleted" | "detached" | the reason it failed


def sweep_leftovers(deps: Deps, account: str, regions) -> list[Removed]:
    """Remove what drills left behind in `account`'s `regions`: only resources carrying chatops:drill.

    A resource whose drill is still going (in a live process) is not a
    leftover.  Instances are terminated (their root volumes go with them);
    volumes are detached from a scratch instance if need be, then deleted.
    Anything without the tag is never touched, whatever a filter returned.
    """
    gw = deps.gateway_for(account)
    going = deps.store.running_drill_ids()
    removed: list[Removed] = []
    drill_key = [{"Name": "tag-key", "Values": [DRILL]}]
    for region in dict.fromkeys(regions):
        try:
            alive = ["pending", "running", "stopping", "stopped"]
            instances = list(
                gw.describe_instances(region, filters=[*drill_key, {"Name": "instance-state-name", "Values": alive}])
            )
            drill_instances = set()
            for instance in instances:
                run = instance.tags.get(DRILL, "")
                if not drills.is_drill_resource(instance.tags) or instance.state not in alive:
                    continue
                drill_instances.add(instance.id)
                if run in going:
                    continue
                removed.append(_remove(region, instance.id, run, lambda i=instance, r=region: _terminate(gw, r, i.id)))
            for volume in gw.describe_volumes(region, filters=drill_key):
                run = volume.tags.get(DRILL, "")
                if not drills.is_drill_resource(volume.tags) or run in going or volume.state in ("deleting", "deleted"):
                    continue
                if any(a.instance_id in drill_instances for a in volume.attachments):
                    continue  # a drill instance's own disk: it goes with the instance
                removed.append(_remove(region, volume.id, run, lambda v=volume, r=region: _delete(deps, gw, r, v)))
        except BotError as exc:
            log.error("drill leftovers: listing %s %s failed: %s", account, region, exc.message)
    if removed:
        deps.store.audit(
            "",
            "",
            "restore drill leftovers" + (f" in account {account}" if account else ""),
            "ok" if all(r.outcome in ("terminated", "deleted") for r in removed) else "failed",
            ", ".join(f"{r.resource_id} ({r.run_id}): {r.outcome}" for r in removed)[:2000],
        )
    return removed


def _remove(region: str, resource_id: str, run: str, action: Callable[[], str]) -> Removed:
    try:
        return Removed(region, resource_id, run, action())
    except BotError as exc:
        log.error("drill leftover %s: %s", resource_id, exc.message)
        return Removed(region, resource_id, run, exc.message)


def _terminate(gw, region: str, instance_id: str) -> str:
    gw.terminate_instances(region, [instance_id])
    return "terminated"


def _delete(deps: Deps, gw, region: str, volume) -> str:
    if volume.attachments:
        for attachment in volume.attachments:
            gw.detach_volume(region, volume.id, attachment.instance_id)
        deadline = time.monotonic() + DETACH_WAIT.total_seconds()
        interval = deps.config.aws.poll_interval.total_seconds()
        while gw.get_volume(region, volume.id).state != "available":
            if time.monotonic() >= deadline or deps.stopping.is_set():
                return "detached (deleted by the next sweep)"
            deps.stopping.wait(interval)
    gw.delete_volume(region, volume.id)
    return "deleted"


def sweep_all_leftovers(deps: Deps) -> list[Removed]:
    """At start: close the drills a dead process left running, then sweep every place drills could have been."""
    for row in deps.store.interrupt_orphaned_drills():
        log.warning(
            "drill %s of %s was interrupted (its process died); sweeping its leftovers", row["id"], row["backup_id"]
        )
    config = deps.config
    places: dict[str, set[str]] = {}
    for account, region in deps.store.drill_places():
        places.setdefault(account, set()).add(region)
    for policy in config.policies:
        if policy.drills:
            for name in config.policy_accounts(policy):
                account = config.account_key(name)
                regions = replace(policy, regions=config.policy_regions(policy, name))
                places.setdefault(account, set()).update(lifecycle.all_regions(config, regions))
    removed = []
    for account, regions in places.items():
        removed += sweep_leftovers(deps, account, sorted(regions))
    if removed:
        log.warning("swept %d drill leftover(s): %s", len(removed), ", ".join(r.resource_id for r in removed))
    return removed


def has_drills(deps: Deps) -> bool:
    """Anything to sweep at start: a drill policy, or a drill on record."""
    return any(p.drills for p in deps.config.policies) or bool(deps.store.drill_places())


# --- Slack and the digest -----------------------------------------------------------------------


def post_failure(deps: Deps, drill: Drill) -> None:
    """A failed drill goes to the digest channel when it happens; Slack failing is logged."""
    channel = deps.config.slack.digest_channel
    if not channel:
        return
    msg = blocks.drill_result(drill, deps.now(), deps.config.account_label(drill.account))
    try:
        send.post(deps.slack, channel, msg)
    except SLACK_FAILURES:
        log.exception("could not post the failed drill %s to %s", drill.id, channel)


def digest_drills(deps: Deps) -> tuple[PolicyDrills, ...]:
    """Per drill policy: its last successful drill and restore time, and the sources overdue for one."""
    config, now = deps.config, deps.now()
    shown = []
    for policy in config.policies:
        if not policy.drills:
            continue
        interval = drill_interval(deps, policy)
        sources: set[str] = set()
        for name in config.policy_accounts(policy):
            gw = deps.gateway_for(config.account_key(name))
            regions = lifecycle.all_regions(config, replace(policy, regions=config.policy_regions(policy, name)))
            for region in regions:
                try:
                    sources.update(t.source_key for t in policy_targets(gw, policy, region))
                except BotError as exc:
                    log.error("digest: drills of %s: listing %s failed: %s", policy.name, region, exc.message)
        last_ok = {
            key: datetime.fromisoformat(row["started_at"])
            for key, row in deps.store.last_ok_drills(policy.name).items()
        }
        ok_rows = deps.store.drills(policy.name, limit=1, state=drills.OK)
        recent = [
            Drill.from_row(r)
            for r in deps.store.drills(policy.name, limit=20)
            if r["state"] not in (drills.OK, "running")
            and datetime.fromisoformat(r["started_at"]) >= now - 2 * interval
        ]
        shown.append(
            PolicyDrills(
                policy.name,
                interval,
                Drill.from_row(ok_rows[0]) if ok_rows else None,
                drills.overdue(sources, last_ok, interval, now, deps.store.first_seen(job_name(policy))),
                tuple(recent[:3]),
                len(sources),
            )
        )
    return tuple(shown)
