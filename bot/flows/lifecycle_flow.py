"""Running policies for real: create, copy, sweep, then tell the channel.

The glue between the lifecycle domain (bot/domain/lifecycle.py), the store (run
leases, events, audit), approvals (one request per sweep batch) and Slack (the
summary in `slack.digest_channel`).  The scheduler, `/lifecycle run|preview`
and `python -m bot sweep` all come through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Config, Policy
from bot.domain import lifecycle
from bot.domain.digest import Activity, Digest, RegionInventory, RegionSummary, combine, live_volumes, summarise_region
from bot.domain.freeze import freeze_text
from bot.domain.plans import ItemResult, Plan
from bot.domain.sweep_report import Created, PolicyReport, SweepReport, policy_report
from bot.domain.trend import TREND_DAYS, DayTotal
from bot.errors import BotError
from bot.flows import approval_flow, drill_flow
from bot.flows.deps import Deps
from bot.flows.progress import RunProgress
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES

log = logging.getLogger(__name__)


class AlreadyRunning(BotError):
    outcome = "busy"


JOB_PREFIX = "policy:"  # every policy's runs are recorded under its job name, this prefix and its name


# Runs a policy's accounts somewhere else (other processes) and returns a report per account, in their order.
FanOut = Callable[[Policy, Sequence[str]], list[PolicyReport]]


def job_name(policy: Policy) -> str:
    return f"{JOB_PREFIX}{policy.name}"


def policy_trigger(policy: Policy, timezone: str, start: datetime | None = None) -> BaseTrigger:
    if policy.every is not None:
        return IntervalTrigger(seconds=policy.every.total_seconds(), start_date=start, timezone=timezone)
    return CronTrigger.from_crontab(policy.cron, timezone=timezone)


def trigger_for(deps: Deps, policy: Policy) -> BaseTrigger:
    # Interval slots count from when the store first saw the job (or, for a store
    # older than that rule, from its last run then): the same in every process,
    # and unchanged by a restart or a manual run.
    anchor = deps.store.first_seen(job_name(policy))
    return policy_trigger(policy, deps.config.schedule.timezone, start=anchor + policy.every if policy.every else None)


def next_run(deps: Deps, policy: Policy) -> datetime | None:
    """When the policy runs next (from config and the store; no scheduler needed)."""
    return trigger_for(deps, policy).get_next_fire_time(None, deps.now())


def run_policy(
    deps: Deps,
    policy: Policy,
    *,
    user: str = lifecycle.SCHEDULER_USER,
    create: bool = True,
    dry_run: bool = False,
    trigger: str = "manual",
    slot: datetime | None = None,
    progress: RunProgress | None = None,
    fan_out: FanOut | None = None,
) -> list[PolicyReport]:
    """One run of a policy under its lease: create + copy (unless create=False), then sweep; a report per account.

    Every account the policy covers runs at once, each on its own: an account
    whose role cannot be assumed reports its failures, the others complete.
    With `fan_out`, the accounts run where it puts them (`python -m bot sweep`
    spreads a fleet over child processes, each calling `run_accounts`); the
    lease, the run's record and the reports stay here.
    Raises AlreadyRunning when a run of this policy is under way (in this
    process or another), so two runs never overlap, or when the scheduled
    `slot` already ran (in any process sharing the store).
    """
    if dry_run:
        return preview_policy(deps, policy)
    run_id = deps.store.start_run(job_name(policy), trigger, slot=slot)
    if run_id is None:
        raise AlreadyRunning(
            f"policy {policy.name} is running right now; not started again.",
            "See `/lifecycle list` for its last result.",
        )
    reports = None
    try:
        accounts = deps.config.policy_accounts(policy)
        if fan_out is not None and len(accounts) > 1:
            reports = fan_out(policy, accounts)
        else:
            reports = run_accounts(deps, policy, accounts, user=user, create=create, progress=progress)
        return reports
    finally:
        state = "ok" if reports is not None and all(r.ok for r in reports) else "failed"
        if deps.stopping.is_set() and state != "ok":
            state = "interrupted"  # stopped between items by a shutdown; the next run picks up the rest
        summary = _summary(reports) if reports is not None else {"error": "crashed; see the logs"}
        deps.store.finish_run(run_id, state, summary)


def run_accounts(
    deps: Deps,
    policy: Policy,
    accounts: Sequence[str],
    *,
    user: str = lifecycle.SCHEDULER_USER,
    create: bool = True,
    progress: RunProgress | None = None,
) -> list[PolicyReport]:
    """The work of a run in `accounts`, at once, a report each, without taking the run's lease.

    `run_policy` calls it under the lease; a child process of a fleet sweep
    calls it for its share of the accounts while its parent holds the lease.
    """
    return _each_account(
        deps, policy, accounts, lambda account: _run(deps, policy, account, user=user, create=create, progress=progress)
    )


def preview_accounts(deps: Deps, policy: Policy, accounts: Sequence[str]) -> list[PolicyReport]:
    """Dry run in `accounts` only: what `preview_policy` does, for a share of a fleet."""
    return _each_account(deps, policy, accounts, lambda account: _preview(deps, policy, account))


def _each_account(deps: Deps, policy: Policy, accounts: Sequence[str], work) -> list[PolicyReport]:
    """`work(account)` for each account, at once; one that raises reports the error."""
    outcome = lifecycle.in_parallel(list(accounts), work)
    reports = []
    for account in accounts:
        value = outcome[account]
        if isinstance(value, Exception):
            log.error("policy %s in account %s failed: %s", policy.name, account, value)
            why = value.message if isinstance(value, BotError) else f"unexpected error: {value}"
            value = failed_report(deps.config, policy, account, why)
        reports.append(value)
    return reports


def failed_report(config: Config, policy: Policy, account: str, why: str) -> PolicyReport:
    """The report of an account where the policy could not run at all."""
    return PolicyReport(policy.name, policy.on_expired, account=config.account_label(account), error=why)


def _summary(reports: list[PolicyReport]) -> dict:
    """What `/lifecycle list` shows of a run: totals, and each account's part when it named one."""
    by_account = {
        r.account: {
            "created": len(r.created),
            "deleted": len(r.deleted),
            "archived": len(r.archived),
            "failed": len(r.failed),
            "error": r.error or (r.failed[0].reason if r.failed else ""),
        }
        for r in reports
        if r.account
    }
    return ({"accounts": by_account} if by_account else {}) | {
        "created": sum(len(r.created) for r in reports),
        "expired": sum(len(r.expired) for r in reports),
        "deleted": sum(len(r.deleted) for r in reports),
        "archived": sum(len(r.archived) for r in reports),
        "failed": sum(len(r.failed) for r in reports),
        "approval_id": ", ".join(r.approval_id for r in reports if r.approval_id),
        "error": "; ".join(f"{r.account}: {r.error}" if r.account else r.error for r in reports if r.error),
        "frozen": "; ".join(dict.fromkeys(r.frozen for r in reports if r.frozen)),
    }


def in_account(config, policy: Policy, account: str) -> Policy:
    """The policy as it runs in one account: its regions made explicit (its own list, else the account's)."""
    return replace(policy, regions=config.policy_regions(policy, account))


def _run(
    deps: Deps, policy: Policy, account: str, *, user: str, create: bool, progress: RunProgress | None = None
) -> PolicyReport:
    config, now = deps.config, deps.now()
    label = config.account_label(account)
    own = config.account_key(account)  # how plans and events name it
    gw = deps.gateway_for(own)
    policy = in_account(config, policy, account)
    created, failed = (
        lifecycle.create_backups(gw, config, policy, now, user, stopping=deps.stopping) if create else ([], [])
    )
    for c in created:
        deps.store.record_event(c.region, "created", c.id, f"policy {policy.name} of {c.source_id}", own)
    decisions, list_failed, listings = lifecycle.decide_policy(gw, config, policy, now)
    failed += list_failed
    failed += lifecycle.tag_policy_image_snapshots(gw, policy, listings)
    if create:
        copies, copy_failed = lifecycle.copy_to_dr(gw, config, policy, decisions, user)
        for c in copies:
            deps.store.record_event(c.region, "created", c.id, f"policy {policy.name} copy of {c.copy_of}", own)
        created += copies
        failed += copy_failed
    for f in failed:
        deps.store.record_event(f.region, "failed", f.id, f"{f.action}: {f.reason}", own)
    expired = [d for d in decisions if d.action == "expire"]
    price, archive_price = config.pricing.snapshot_gb_month, config.pricing.snapshot_archive_gb_month
    # A freeze and max_delete hold an archiving run as they hold a deleting one (README, "Archive tier").
    acts = policy.on_expired in ("delete", "archive")
    frozen = deps.frozen(own) if expired and acts else ""
    capped = "" if frozen or not acts else lifecycle.over_blast_radius(policy, len(expired), len(decisions))
    if not expired or policy.on_expired == "report" or frozen:
        report = policy_report(policy.name, policy.on_expired, decisions, created=created, failed=failed, account=label)
        report = replace(report, frozen=frozen)
    elif acts and not capped:
        plan = _account_plan(lifecycle.sweep_plan(policy, expired, price, archive_price), own, label)

        def item_done(result: ItemResult) -> None:
            deps.store.audit(
                "",
                config.slack.digest_channel,
                f"sweep {policy.name} {'archive' if result.reason == lifecycle.ARCHIVED else 'delete'} "
                f"{result.resource_id}",
                result.outcome,
                result.reason,
            )
            approval_flow.record_event(deps, plan, result)
            if shown is not None:
                shown.step()

        shown = progress
        if shown is not None:
            shown.add(len(plan.items))
        results = lifecycle.execute_sweep(deps.context(own), plan, item_done, listings)
        report = replace(lifecycle.report_from_results(policy, decisions, results, created, failed), account=label)
    else:
        plan = _account_plan(lifecycle.sweep_plan(policy, expired, price, archive_price), own, label)
        plan = lifecycle.with_recoverability(gw, plan, now)
        if capped:
            why = f"Blast radius: {capped}. The sweep stopped and asks you instead of deleting on its own."
            plan = replace(plan, warnings=(why, *plan.warnings))
        try:
            row = approval_flow.open_request(deps, plan, user, config.slack.digest_channel)
            approval_id = row["id"]
        except BotError as exc:
            report = policy_report(
                policy.name, policy.on_expired, decisions, created=created, failed=failed, account=label
            )
            return _with_error(report, f"could not ask for approval: {exc.message}")
        report = policy_report(
            policy.name,
            policy.on_expired,
            decisions,
            created=created,
            failed=failed,
            approval_id=approval_id,
            account=label,
        )
        report = replace(report, capped=capped)
    deps.store.audit(
        user if user != lifecycle.SCHEDULER_USER else "",
        config.slack.digest_channel,
        f"lifecycle run {policy.name}" + (f" in account {label}" if label else ""),
        "ok" if report.ok else "failed",
        f"{len(report.created)} created, {len(report.expired)} expired, {len(report.deleted)} deleted, "
        + (f"{len(report.archived)} archived, " if report.archived else "")
        + f"{len(report.failed)} failed",
    )
    return report


def _account_plan(plan: Plan, account: str, label: str) -> Plan:
    """A sweep's plan acts in its account, and its title names it when the bot reaches several."""
    return replace(plan, account=account, title=f"{plan.title} (account {label})" if label else plan.title)


def _with_error(report: PolicyReport, error: str) -> PolicyReport:
    return replace(report, error=error)


def preview_policy(deps: Deps, policy: Policy, fan_out: FanOut | None = None) -> list[PolicyReport]:
    """Dry run: what the policy would create and delete now, a report per account. Reads only."""
    accounts = deps.config.policy_accounts(policy)
    if fan_out is not None and len(accounts) > 1:
        return fan_out(policy, accounts)
    return preview_accounts(deps, policy, accounts)


def _preview(deps: Deps, policy: Policy, account: str) -> PolicyReport:
    config, now = deps.config, deps.now()
    gw = deps.gateway_for(config.account_key(account))
    policy = in_account(config, policy, account)
    would_create = []
    for region in lifecycle.policy_regions(config, policy):
        try:
            would_create += [Created(region, s.id) for s in lifecycle.matching_sources(gw, policy, region)]
        except BotError as exc:
            log.warning("preview of %s in %s: %s", policy.name, region, exc)
    decisions, failed, _ = lifecycle.decide_policy(gw, config, policy, now)
    return policy_report(
        policy.name,
        policy.on_expired,
        decisions,
        dry_run=True,
        created=would_create,
        failed=failed,
        account=config.account_label(account),
    )


def sweep_report(deps: Deps, reports: list[PolicyReport]) -> SweepReport:
    pricing = deps.config.pricing
    return SweepReport(tuple(reports), deps.now(), pricing.snapshot_gb_month, pricing.snapshot_archive_gb_month)


def post_report(
    deps: Deps, report: SweepReport, channel: str | None = None, progress: RunProgress | None = None
) -> None:
    """Post a run's summary to the digest channel, in place of its progress message if it showed one.

    A Slack failure is logged; the run stands.
    """
    channel = channel or deps.config.slack.digest_channel
    if not channel:
        return
    msg = blocks.sweep_report_message(report)
    if progress is not None and progress.finish(msg):
        return
    try:
        send.post(deps.slack, channel, msg)
    except SLACK_FAILURES:
        log.exception("could not post the sweep report to %s", channel)


# --- digest ---------------------------------------------------------------------------------


def build_region_digest(deps: Deps) -> Digest:
    """The digest: every covered region of every account listed once, in parallel; activity from the events table.

    With several accounts each line is an account's region (`prod/us-east-1`),
    accounts in config order, and the totals are the fleet's.
    """
    config, now = deps.config, deps.now()
    price = config.pricing.snapshot_gb_month
    places: dict[str, tuple[str, str]] = {}  # line label → (account as events name it, region)
    for account in config.account_names:
        for region in config.account_regions(account):
            places[f"{account}/{region}" if config.accounts else region] = (config.account_key(account), region)

    def listing(label: str) -> RegionInventory:
        # Volumes, instances and AMIs are few and listed now (regions in parallel);
        # snapshots, the bulk, stream page by page into the digest, never all held.
        account, region = places[label]
        gw = deps.gateway_for(account)
        return RegionInventory(
            label,
            snapshots=_counted_failures(deps, region, gw.describe_snapshots(region), account),
            images=list(gw.describe_images(region)),
            volumes=list(gw.describe_volumes(region)),
            instances=list(gw.describe_instances(region)),
        )

    regions = list(places)
    inventories = {}
    for label, value in lifecycle.in_parallel(regions, listing).items():
        if isinstance(value, Exception):
            account, region = places[label]
            log.error("digest: listing %s failed: %s", label, value)
            deps.store.record_event(region, "failed", region, f"digest listing: {value}", account)
            inventories[label] = RegionInventory(label)
        else:
            inventories[label] = value
    activity = {}
    label_of = {place: label for label, place in places.items()}
    for account in dict.fromkeys(account for account, _ in places.values()):
        for region, c in deps.store.event_counts(now - timedelta(hours=24), account).items():
            if (account, region) in label_of:
                activity[label_of[account, region]] = Activity(**c)
    volumes = live_volumes(inventories.values())

    # Every region's snapshots stream at once: while one region waits for its
    # next page from EC2, another parses its own (regions one after the other
    # would add up every region's wait).
    def summary(region: str) -> RegionSummary:
        return summarise_region(inventories[region], volumes, activity, price)

    summaries = lifecycle.in_parallel(regions, summary)
    for value in summaries.values():
        if isinstance(value, Exception):
            raise value
    pending = len(deps.store.approvals_in("pending"))
    digest = combine((summaries[r] for r in regions), pending, now, price)
    digest = replace(digest, archive_gb_month=config.pricing.snapshot_archive_gb_month)
    return replace(digest, trend=_storage_trend(deps, digest), drills=drill_flow.digest_drills(deps))


def _storage_trend(deps: Deps, digest: Digest) -> tuple[DayTotal, ...]:
    """Record today's totals per place, then read the last TREND_DAYS days (summed over places) back."""
    today = deps.now().date()
    deps.store.record_storage(
        today.isoformat(), [(r.region, r.snapshots, r.snapshot_gib, r.usd_month) for r in digest.regions]
    )
    since = (today - timedelta(days=TREND_DAYS - 1)).isoformat()
    return tuple(
        DayTotal(date.fromisoformat(day), snapshots, gib, usd)
        for day, snapshots, gib, usd in deps.store.storage_days(since)
    )


def _counted_failures(deps: Deps, region: str, snapshots: Iterable, account: str = ""):
    """Stream snapshots; a listing that breaks off is logged and counted as a failure in the digest."""
    try:
        yield from snapshots
    except BotError as exc:
        log.error("digest: listing snapshots in %s %s failed: %s", account, region, exc)
        deps.store.record_event(region, "failed", region, f"digest listing: {exc.message}", account)


def post_digest(deps: Deps, channel: str | None = None) -> str:
    """Build and post the digest to `slack.digest_channel`; returns the posted message's ts."""
    channel = channel or deps.config.slack.digest_channel
    if not channel:
        raise BotError("no digest channel is configured.", "Set slack.digest_channel in config.toml.")
    digest = build_region_digest(deps)
    frozen = [freeze_text(f, deps.config.aws.account_name, bool(deps.config.accounts)) for f in deps.store.freezes()]
    _, ts = send.post(deps.slack, channel, blocks.digest_message(digest, frozen))
    deps.store.audit("", channel, "digest", "ok", f"{digest.totals.snapshots} snapshots")
    return ts
