"""Restore drills: one drill's evidence, `/lifecycle drills`, and the digest's drill lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain.costs import usd
from bot.domain.drills import IMAGE, OK, Drill, PolicyDrills, Target, fmt_seconds
from bot.slack.blocks.common import (
    Message,
    age,
    context,
    duration,
    escape,
    id_list,
    item_list,
    message,
    plural,
    section,
)

ICONS = {OK: ":white_check_mark:", "running": ":hourglass_flowing_sand:", "interrupted": ":warning:"}


def _icon(state: str) -> str:
    return ICONS.get(state, ":x:")


def _what(kind: str) -> tuple[str, str]:
    """(the backup's noun, what it is restored as)."""
    return ("AMI", "instance") if kind == IMAGE else ("snapshot", "volume")


def drill_started(target: Target, user: str) -> Message:
    backup, restored = _what(target.kind)
    text = (
        f":hourglass_flowing_sand: Restore drill of {backup} `{escape(target.backup_id)}` ({escape(target.region)})"
        f" started by <@{escape(user)}>: restoring it as a {restored}, then cleaning up."
    )
    return message(f"Restore drill of {target.backup_id} started", [section(text)])


def cost_text(drill: Drill) -> str:
    """What the drill's resources cost while they lived: volume GiB-hours, or instance minutes."""
    if not drill.restored_id:
        return "nothing created, nothing billed"
    if drill.kind == IMAGE:
        used = f"{drill.instance_minutes:,.2f} instance-minutes ({escape(drill.instance_type)})"
    else:
        used = f"{drill.gib_hours:,.3f} GiB-hours of volume"
    return f"{used} ≈ {small_usd(drill.cost_usd)}"


def small_usd(amount: float) -> str:
    """A drill costs fractions of a cent: $0.0004, not $0.00."""
    return usd(amount) if amount >= 0.01 else f"${amount:.4f}"


def drill_lines(drill: Drill, now: datetime) -> list[str]:
    backup, restored = _what(drill.kind)
    head = (
        f"{_icon(drill.state)} *Restore drill {escape(drill.state)}* — {backup} `{escape(drill.backup_id)}`"
        f" ({escape(drill.region)})"
    )
    lines = [head]
    source = f" of `{escape(drill.source_id)}`" if drill.source_id else ""
    policy = f" · policy *{escape(drill.policy)}*" if drill.policy else ""
    lines.append(f"Backup{source}, {duration(drill.backup_age)} old when drilled{policy}")
    if drill.restored_id:
        ready = "running" if drill.kind == IMAGE else "available"
        line = f"Restored as {restored} `{escape(drill.restored_id)}`: {ready} in *{fmt_seconds(drill.ready_seconds)}*"
        if drill.kind == IMAGE and drill.checked_seconds is not None:
            line += f", status checks passed in {fmt_seconds(drill.checked_seconds)}"
        lines.append(line)
    if drill.reason:
        lines.append(f"Reason: {escape(drill.reason)}")
    lines.append(f"Cost: {cost_text(drill)} · run `{escape(drill.id)}` · {age(now, drill.started_at)} ago")
    return lines


def drill_result(drill: Drill, now: datetime, account: str = "") -> Message:
    """One drill's evidence: what was restored from which backup, its age, the restore time, the outcome, the cost."""
    lines = drill_lines(drill, now)
    if account:
        lines[0] += f" · account *{escape(account)}*"
    fallback = f"Restore drill {escape(drill.state)}: {escape(drill.backup_id)}"
    if drill.ok:
        fallback += f" restored in {fmt_seconds(drill.ready_seconds)}"
    elif drill.reason:
        fallback += f": {escape(drill.reason)}"
    blocks = [section("\n".join(lines))]
    if not drill.ok and drill.restored_id:
        blocks.append(context("What the drill created was removed (only what carries its `chatops:drill` tag)."))
    return message(fallback, blocks)


def drill_list(drills: Sequence[Drill], now: datetime, policy: str | None = None) -> Message:
    """`/lifecycle drills [NAME]`: the latest drills, newest first."""
    title = f"Restore drills of {policy}" if policy else "Restore drills"
    lines = []
    for d in drills:
        _, restored = _what(d.kind)
        where = f"*{escape(d.policy)}* " if d.policy and not policy else ""
        line = (
            f"{_icon(d.state)} {where}`{escape(d.backup_id)}` ({escape(d.region)}, {duration(d.backup_age)} old)"
            f" → {restored} in {fmt_seconds(d.ready_seconds)} · {escape(d.state)} · {age(now, d.started_at)} ago"
            f" · {small_usd(d.cost_usd)}"
        )
        if d.reason and not d.ok:
            line += f" — {escape(d.reason[:200])}"
        lines.append(line)
    empty = 'No drill has run yet. Set `drill = "7d"` on a policy, or try `/snapshot drill snap-…`.'
    return item_list(escape(title), lines, len(lines), empty)


def digest_drill_section(policies: Sequence[PolicyDrills], now: datetime) -> list[dict]:
    """The digest's drill lines: per policy its last successful drill and restore time, and who is overdue."""
    if not policies:
        return []
    lines = []
    for p in policies:
        if p.last_ok is not None:
            d = p.last_ok
            last = (
                f"last good drill {age(now, d.started_at)} ago: `{escape(d.backup_id)}` restored in"
                f" *{fmt_seconds(d.ready_seconds)}*"
            )
        else:
            last = "no successful drill yet"
        line = f"*{escape(p.policy)}* (every {duration(p.interval)}) — {last}"
        if p.overdue:
            line += (
                f"\n  :warning: {plural(len(p.overdue), 'source')} of {p.sources} without a successful drill in"
                f" {duration(2 * p.interval)}: {id_list(list(p.overdue), 5)}"
            )
        for failed in p.failed_recently:
            line += f"\n  :x: `{escape(failed.backup_id)}` {escape(failed.state)}: {escape(failed.reason[:150])}"
        lines.append(line)
    return [section(":test_tube: *Restore drills*\n" + "\n".join(lines))]
