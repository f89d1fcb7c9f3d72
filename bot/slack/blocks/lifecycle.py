"""Lifecycle policies: the policy list, and the report of a sweep or its preview."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.domain.costs import usd
from bot.domain.sweep_report import PolicyReport, SweepReport
from bot.slack.blocks.archive import archive_line
from bot.slack.blocks.common import (
    MAX_BLOCKS,
    Message,
    age,
    clip,
    context,
    duration,
    escape,
    estimate_note,
    fit,
    header,
    id_list,
    item_list,
    message,
    plural,
    section,
)
from bot.slack.blocks.freeze import freeze_banners


def _account_results(accounts: dict) -> str:
    """Each account's part of a run: `prod` 3 created, 1 deleted · `staging` :x: role cannot be assumed."""
    parts = []
    for name, r in accounts.items():
        counts = f"{r.get('created', 0)} created, {r.get('deleted', 0)} deleted" + (
            f", {r['failed']} failed" if r.get("failed") else ""
        )
        why = f" :x: {escape(clip(r['error'], 200))}" if r.get("error") else ""
        parts.append(f"`{escape(name)}` {counts}{why}")
    return " · ".join(parts)


def policy_line(policy, next_at: datetime | None, last: Mapping | None, accounts: Sequence[str], now: datetime) -> str:
    """One policy: what it targets, its schedule and retention, its next run and its last result."""
    schedule = f"every {duration(policy.every)}" if policy.every else f"cron `{escape(policy.cron)}`"
    tags = ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in policy.target_tags.items())
    keep = f"keep {policy.keep}" + (f", max age {duration(policy.max_age)}" if policy.max_age else "")
    gfs = [
        f"{n} {unit}"
        for n, unit in (
            (policy.keep_daily, "daily"),
            (policy.keep_weekly, "weekly"),
            (policy.keep_monthly, "monthly"),
        )
        if n
    ]
    if gfs:
        keep += " + " + ", ".join(gfs)
    nxt = f"next in {age(next_at, now)}" if next_at else "not scheduled"
    where = f" · in {', '.join(f'`{escape(a)}`' for a in accounts)}" if accounts else ""
    return (
        f"*{escape(policy.name)}*{where} · {escape(policy.resource)}s tagged {tags} · {schedule} · {keep} · "
        f"on expiry: {escape(policy.on_expired)}"
        + (f" · DR copy to {', '.join(policy.copy_to)}" if policy.copy_to else "")
        + f"\n      {nxt} · {last_result(last, now)}"
    )


def last_result(last: Mapping | None, now: datetime) -> str:
    """`last run 3h ago: *done* (2 created, 1 deleted, 0 failed)`, each account's part when there are several."""
    if not last:
        return "never run"
    s = last.get("summary") or {}
    result = f"last run {age(now, datetime.fromisoformat(last['started_at']))} ago: *{escape(last['state'])}*" + (
        f" ({s.get('created', 0)} created, {s.get('deleted', 0)} deleted, {s.get('failed', 0)} failed)" if s else ""
    )
    if len(s.get("accounts") or {}) > 1:
        result += f"\n      {_account_results(s['accounts'])}"
    return result


def lifecycle_list(rows: Sequence[tuple], now: datetime, frozen: Sequence[str] = ()) -> Message:
    """rows: (Policy, next run or None, last run row or None, accounts it covers: () while the bot reaches one).

    `frozen`: every freeze in force (plain text), shown above the list.
    """
    lines = [policy_line(policy, next_at, last, accounts, now) for policy, next_at, last, accounts in rows]
    listing = item_list("Lifecycle policies", lines, len(rows), "No policies. Add [[policies]] to config.toml.")
    if not frozen:
        return listing
    return message(listing["text"], [*freeze_banners(frozen), *listing["blocks"]][:MAX_BLOCKS])


SWEEP_POLICY_SECTIONS = MAX_BLOCKS - 5  # header, summary, "and N more", note


def _policy_text(p: PolicyReport, price: float, archive_price: float = 0.0125) -> str:
    """One policy's part of a sweep report or preview."""
    icon = ":x:" if not p.ok else ":mag:" if p.dry_run else ":snowflake:" if p.frozen else ":white_check_mark:"
    mode = f"{escape(p.on_expired)}, preview" if p.dry_run else escape(p.on_expired)
    where = f" in account *{escape(p.account)}*" if p.account else ""
    head = [f"{icon} *{escape(p.policy)}*{where} ({mode})"]
    if p.error:
        head.append(f":x: Could not run: {escape(clip(p.error, 500))}")
    if p.created:
        copies = sum(bool(c.copy_of) for c in p.created)
        extra = f" (incl. {plural(copies, 'DR copy', 'DR copies')})" if copies else ""
        if p.dry_run:
            head.append(f"Would create {len(p.created):,}{extra} from {id_list([c.source_id for c in p.created])}")
        else:
            head.append(f"Created {len(p.created):,}{extra}: {id_list([c.id for c in p.created])}")
    if p.expired:
        stake = p.at_stake(price, archive_price)
        gross = f"{len(p.expired):,} expired ({stake.gib:,} GiB, up to {usd(stake.usd_month)}/month)"
        if p.on_expired == "archive":
            gone = len(p.expired) - len(p.to_archive)
            also = f", {gone:,} archived past archive_delete_after to delete" if gone else ""
            gross = (
                f"{len(p.expired):,} expired: {len(p.to_archive):,} to archive{also}"
                f" ({stake.gib:,} GiB deleted, {usd(stake.usd_month)}/month)"
            )
        if p.dry_run:
            head.append(gross)
        elif p.on_expired == "approve" or p.capped:
            ref = f" (request `{escape(p.approval_id)}`)" if p.approval_id else ""
            head.append(f"{gross}: awaiting approval{ref}")
            if p.capped:
                head.append(f":octagonal_sign: Not deleted on its own: {escape(clip(p.capped, 400))}.")
        elif p.frozen:
            head.append(f"{gross}: *not deleted*, {escape(clip(p.frozen, 500))}")
        elif p.on_expired == "report":
            head.append(f"{gross}: reported only, nothing deleted")
        else:
            freed = p.freed(price, archive_price)
            moved = f"archived {len(p.archived):,}, " if p.on_expired == "archive" else ""
            head.append(
                f"{gross}: {moved}deleted {len(p.deleted):,}, freeing {freed.gib:,} GiB"
                f" (up to {usd(freed.usd_month)}/month)"
            )
        if p.to_archive:
            cost = p.archiving(price, archive_price)
            verb = "archived" if p.deletes else "archiving"
            head.append(f":file_cabinet: {archive_line(cost, verb).capitalize()}.")
    elif not p.error:
        head.append("Nothing expired.")
    if not p.error:  # a policy that could not list kept nothing it could tell
        head.append(f"Kept {p.kept:,}.")
    if p.failed or p.undone:
        head.append(f":x: {len(p.failed) + len(p.undone):,} failed:")

    failures = [
        f"• :x: `{escape(f.id)}` ({escape(f.region)}) {escape(f.action)}: {escape(clip(f.reason, 300))}"
        for f in p.failed
    ]
    failures += [f"• :x: `{escape(i.id)}` ({escape(i.region)}) delete: no outcome recorded" for i in p.undone]
    spared = [f"• :shield: `{escape(x.id)}` ({escape(x.region)}) {escape(clip(x.reason, 300))}" for x in p.spared]
    listed = [] if p.deletes else list(p.expired)
    expired_lines = [
        f"• `{escape(d.item.id)}` of `{escape(d.item.source_id)}` ({escape(d.item.region)}) · "
        f"{d.item.size_gib:,} GiB — {escape(d.reason)}"
        for d in listed
    ]
    verb = "archive (archived ones: delete)" if p.on_expired == "archive" else "delete"
    if p.dry_run:
        title = f"Would {verb}:"
    elif p.frozen:
        title = f"Would have {'archived or deleted' if p.on_expired == 'archive' else 'deleted'} (frozen):"
    elif p.on_expired == "approve" or p.capped:
        title = f"To {verb} once approved:"
    else:
        title = "Expired, not deleted:"
    spared_title = f":shield: {len(p.spared):,} not deleted after all:"
    groups = [("", failures, "failure"), (spared_title, spared, "spared item"), (title, expired_lines, "expired item")]
    return fit(head, groups)


def _runs(policies: Sequence[PolicyReport]) -> str:
    """ "3 policies", or "1 policy in 20 accounts" when a report per account makes more reports than policies."""
    names = len({p.policy for p in policies})
    accounts = len({p.account for p in policies if p.account})
    where = f" in {plural(accounts, 'account')}" if accounts > 1 else ""
    return f"{plural(names, 'policy', 'policies')}{where}"


def sweep_report_message(report: SweepReport) -> Message:
    """A lifecycle run or preview: totals, then one section per policy, failing ones first."""
    policies = list(report.policies)
    ordered = [p for p in policies if not p.ok] + [p for p in policies if p.ok]
    created = sum(len(p.created) for p in policies)
    expired_count = sum(len(p.expired) for p in policies)
    failed = sum(len(p.failed) + len(p.undone) + bool(p.error) for p in policies)
    when = f"{report.now:%Y-%m-%d %H:%M} UTC"
    runs = _runs(policies)
    if report.dry_run:
        stake = report.at_stake()
        title = f"Lifecycle preview — {when}"
        summary = (
            f":mag: {runs}: would create {created:,}, "
            f"would expire {expired_count:,}, freeing up to {stake.gib:,} GiB ({usd(stake.usd_month)}/month)"
        )
        moving = report.archiving()
        if moving.count:
            summary += f" · :file_cabinet: {archive_line(moving, 'would archive')}"
        if failed:
            summary += f" · :x: {failed:,} failed"
    else:
        freed = report.freed()
        deleted = sum(len(p.deleted) for p in policies)
        icon = ":white_check_mark:" if report.ok else ":x:"
        title = f"Lifecycle sweep — {when}"
        summary = (
            f"{icon} {runs}: {created:,} created · {expired_count:,} expired · {deleted:,} deleted · {failed:,} failed"
        )
        if deleted:
            summary += f" · freed {freed.gib:,} GiB (up to {usd(freed.usd_month)}/month)"
        moved = report.archiving()
        if moved.count:
            summary += f" · :file_cabinet: {archive_line(moved, 'archived')}"
    blocks = [header(title), section(summary)]
    if not policies:
        blocks.append(section("No lifecycle policies ran. Add `[[policies]]` to config.toml."))
    shown = ordered[:SWEEP_POLICY_SECTIONS]
    blocks += [section(_policy_text(p, report.price_gb_month, report.archive_gb_month)) for p in shown]
    hidden = ordered[len(shown) :]
    if hidden:
        bad = sum(not p.ok for p in hidden)
        tail = f" ({bad:,} with failures)" if bad else ""
        more = "policies" if len({p.policy for p in hidden}) == len(hidden) else "reports"
        blocks.append(context(f"…and {len(hidden):,} more {more}{tail}"))
    blocks.append(estimate_note(report.price_gb_month))
    return message(f"{title}: {summary}", blocks)


def run_progress(title: str, done: int, total: int, left_seconds: float | None) -> Message:
    """A long run as it goes: "deleted 1,200 / 3,000 · about 4 min left"."""
    if left_seconds is None:
        eta = ""
    elif left_seconds < 90:
        eta = f" · about {max(1, round(left_seconds))} s left"
    else:
        eta = f" · about {round(left_seconds / 60)} min left"
    text = f":hourglass_flowing_sand: *{escape(title)}*: {done:,} / {total:,} done{eta}"
    return message(f"{escape(title)}: {done:,} / {total:,} done", [section(text)])
