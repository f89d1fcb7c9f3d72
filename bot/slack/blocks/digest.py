"""The daily digest: totals, one line per region, the top cleanup candidates."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.costs import archive_estimate, monthly_usd, usd
from bot.domain.digest import Digest
from bot.domain.trend import DayTotal, change, sparkline
from bot.slack.blocks.archive import archive_line
from bot.slack.blocks.common import (
    Message,
    age,
    clip,
    context,
    escape,
    estimate_note,
    header,
    message,
    packed_sections,
    plural,
    section,
)
from bot.slack.blocks.drills import digest_drill_section
from bot.slack.blocks.freeze import freeze_banners
from bot.slack.blocks.keep import item_value, keep_menus
from bot.slack.blocks.menus import item_menu

DIGEST_REGION_SECTIONS = 10  # region lines pack into at most this many sections


def digest_message(digest: Digest, frozen: Sequence[str] = ()) -> Message:
    """The daily digest: any freeze in force first, totals, one line per region, the top cleanup candidates."""
    t = digest.totals
    day = f"{digest.now:%Y-%m-%d}"
    failed = f":x: {t.failed_24h:,} failed" if t.failed_24h else "0 failed"
    summary = [
        f"*{plural(t.snapshots, 'snapshot')}* · {t.snapshot_gib:,} GiB · up to {usd(t.usd_month)}/month"
        f" across {plural(len(digest.regions), 'region')}",
        f"Last 24 h: {t.created_24h:,} created · {t.deleted_24h:,} deleted · {failed}",
    ]
    if t.errors:
        summary.append(f":x: {plural(t.errors, 'snapshot')} in state error")
    if t.archived:
        cost = archive_estimate(t.archived, t.archived_gib, digest.price_gb_month, digest.archive_gb_month)
        summary.append(f":file_cabinet: Of these, {archive_line(cost, 'in the archive tier:')}")
    if digest.pending_approvals:
        summary.append(
            f":hourglass_flowing_sand: {plural(digest.pending_approvals, 'approval')} pending — `/chatops approvals`"
        )
    else:
        summary.append("No approvals pending.")
    summary.append(
        f":broom: {plural(t.candidates, 'cleanup candidate')} ({t.candidate_gib:,} GiB, up to "
        f"{usd(digest.candidate_usd_month)}/month): {plural(t.orphaned, 'orphaned snapshot')}, "
        f"{plural(t.unused_images, 'AMI')} no instance uses"
    )
    if len(digest.trend) > 1:
        summary.append(trend_line(digest.trend))
    blocks = [header(f"Snapshot & AMI digest — {day}"), *freeze_banners(frozen), section("\n".join(summary))]

    region_lines = []
    for r in digest.regions:
        line = (
            f"*{escape(r.region)}* — {plural(r.snapshots, 'snapshot')} · {r.snapshot_gib:,} GiB · "
            f"~{usd(r.usd_month)}/mo · 24 h: +{r.created_24h:,} / −{r.deleted_24h:,}"
        )
        if r.failed_24h:
            line += f" · :x: {r.failed_24h:,} failed"
        if r.unfinished:
            line += f" · {r.unfinished:,} unfinished"
        line += f" · {r.orphaned:,} orphaned ({r.orphaned_gib:,} GiB) · {plural(r.unused_images, 'unused AMI')}"
        region_lines.append(line)
    region_blocks, shown = packed_sections(region_lines, DIGEST_REGION_SECTIONS)
    blocks += region_blocks
    if len(region_lines) > shown:
        blocks.append(context(f"…and {len(region_lines) - shown:,} more regions"))

    blocks += digest_drill_section(digest.drills, digest.now)

    if digest.top_candidates:
        blocks.append(section(f"*Top cleanup candidates* ({t.candidates:,} in all)"))
        for c in digest.top_candidates:  # each with its menu: act on it from here
            label = f" “{escape(clip(c.label, 80))}”" if c.label else ""
            kind = "AMI" if c.kind == "image" else "snapshot"
            line = (
                f"• {kind} `{escape(c.id)}`{label} ({escape(c.region)}) · {c.size_gib:,} GiB · "
                f"~{usd(monthly_usd(c.size_gib, digest.price_gb_month))}/mo · {age(digest.now, c.created)} old"
                f" — {escape(clip(c.reason, 200))}"
            )
            blocks.append({**section(clip(line, 3000)), "accessory": item_menu(c.kind, c.id, c.region)})
        if t.candidates > len(digest.top_candidates):
            blocks.append(context(f"…and {t.candidates - len(digest.top_candidates):,} more"))
        choices = [(f"{c.id} ({c.region})", item_value(c.region, c.id)) for c in digest.top_candidates]
        blocks.append(keep_menus(choices, "digest-candidates"))
    blocks.append(estimate_note(digest.price_gb_month))
    fallback = (
        f"Digest {day}: {plural(t.snapshots, 'snapshot')}, {t.snapshot_gib:,} GiB (up to {usd(t.usd_month)}/month), "
        f"{plural(t.candidates, 'cleanup candidate')}, {plural(digest.pending_approvals, 'approval')} pending"
    )
    overdue = sum(len(p.overdue) for p in digest.drills)
    if overdue:
        fallback += f", {plural(overdue, 'source')} overdue for a restore drill"
    return message(fallback, blocks)


def trend_line(days: Sequence[DayTotal]) -> str:
    """`Last 14 days ▁▂▃▅▆▇█ · +56 GiB (+4.8%) since yesterday`: GiB per recorded day, oldest first."""
    spark = sparkline([d.gib for d in days])
    delta = change(days)
    since = ""
    if delta is not None:
        gib, percent = delta
        share = f" ({percent:+.1f}%)" if percent is not None else ""
        since = f" · {gib:+,} GiB{share} since {days[-2].day:%b %-d}"
    return f":chart_with_upwards_trend: Last {plural(len(days), 'day')}: `{spark}`{since}"
