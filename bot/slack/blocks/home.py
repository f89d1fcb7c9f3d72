"""App Home: the bot's tab, one screen of what a person on call needs before touching anything.

The freeze state, what waits for an approver (with the same Approve and Deny
as the channel message), each policy's next run and last result, the last
sweep, storage per account and region with its trend, and the viewer's own
requests.  Built from the store alone (no AWS call), so it opens at once; it
stays inside the Home tab's 100 blocks however large the fleet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.costs import usd
from bot.domain.trend import DayTotal
from bot.slack.blocks.approvals import STATE_LINES, decision_buttons, pending_line
from bot.slack.blocks.common import age, clip, context, escape, header, packed_sections, plural, section
from bot.slack.blocks.digest import trend_line
from bot.slack.blocks.freeze import freeze_banners
from bot.slack.blocks.lifecycle import last_result, policy_line

MAX_HOME_BLOCKS = 100  # Slack's limit for a Home tab view
HOME_PENDING_SHOWN = 10  # requests with their own buttons; the rest are counted (`/chatops approvals` lists all)
HOME_POLICY_SECTIONS = 6
HOME_STORAGE_SECTIONS = 4
HOME_MINE_SHOWN = 5


@dataclass(frozen=True)
class HomeData:
    """What the Home tab shows one viewer; plain values read from the store and config."""

    user: str
    now: datetime
    frozen: Sequence[str] = ()  # each freeze in force, as plain text (bot.domain.freeze.freeze_text)
    pending: Sequence[Mapping] = ()  # approval rows waiting (pending) or approved and held by a freeze
    policies: Sequence[tuple] = ()  # (Policy, next run, last run row, accounts), as `/lifecycle list` takes them
    last_sweep: tuple[str, Mapping] | None = None  # (policy name, run row)
    storage_day: str = ""  # the day of the latest recorded totals
    places: Sequence[tuple[str, int, int, float]] = ()  # (place, snapshots, GiB, $/month)
    trend: Sequence[DayTotal] = ()
    mine: Sequence[Mapping] = ()  # the viewer's latest requests, newest first
    links: Mapping[str, str] = field(default_factory=dict)  # approval ID → permalink of its message
    notice: str = ""  # what became of the viewer's last click here (mrkdwn, already escaped)


def home_view(home: HomeData) -> dict:
    """The `views.publish` view: type home, at most MAX_HOME_BLOCKS blocks."""
    blocks: list[dict] = [header("Snapshot & AMI ChatOps")]
    if home.notice:
        blocks.append(section(clip(home.notice, 3000)))
    blocks += _freeze(home)
    blocks += _pending(home)
    blocks += _policies(home)
    blocks += _storage(home)
    blocks += _mine(home)
    blocks.append(context(f"Updated {home.now:%Y-%m-%d %H:%M} UTC · reopen the tab to refresh"))
    if len(blocks) > MAX_HOME_BLOCKS:  # the sections are capped below; this is the last line of defence
        blocks = blocks[: MAX_HOME_BLOCKS - 1] + [context("…more not shown")]
    return {"type": "home", "blocks": blocks}


def _freeze(home: HomeData) -> list[dict]:
    if home.frozen:
        return freeze_banners(home.frozen)
    return [section(":large_green_circle: *Deletions allowed.* `/lifecycle freeze [reason]` stops every one.")]


def _pending(home: HomeData) -> list[dict]:
    rows = list(home.pending)
    out = [header(f"Waiting for an approver ({len(rows):,})")]
    if not rows:
        return [*out, section("Nothing is waiting for an approver.")]
    for r in rows[:HOME_PENDING_SHOWN]:
        out.append(section(pending_line(r, home.now, home.links.get(r["id"], ""))))
        if r.get("state") == "pending":
            out.append(decision_buttons(r["id"], r["plan"]["title"], f"home-approval:{r['id']}"))
    if len(rows) > HOME_PENDING_SHOWN:
        out.append(context(f"…and {len(rows) - HOME_PENDING_SHOWN:,} more: `/chatops approvals` lists every one"))
    return out


def _policies(home: HomeData) -> list[dict]:
    out = [header(f"Lifecycle policies ({len(home.policies):,})")]
    lines = [policy_line(p, nxt, last, accounts, home.now) for p, nxt, last, accounts in home.policies]
    if not lines:
        out.append(section("No policies. Add `[[policies]]` to config.toml."))
    else:
        packed, shown = packed_sections(lines, HOME_POLICY_SECTIONS)
        out += packed
        if shown < len(lines):
            out.append(context(f"…and {len(lines) - shown:,} more: `/lifecycle list`"))
    if home.last_sweep:
        name, run = home.last_sweep
        out.append(context(f"Last sweep: *{escape(name)}*, {last_result(run, home.now)}"))
    return out


def _storage(home: HomeData) -> list[dict]:
    out = [header("Storage")]
    if not home.places:
        return [*out, section("No totals yet: they are recorded with each digest (`/lifecycle digest`).")]
    places = sorted(home.places, key=lambda p: -p[2])  # the largest first: what a cut leaves out matters least
    total_n, total_gib, total_usd = (sum(p[i] for p in places) for i in (1, 2, 3))
    head = (
        f"*{plural(total_n, 'snapshot')}* · {total_gib:,} GiB · up to {usd(total_usd)}/month"
        f" across {plural(len(places), 'place')} (as of {escape(home.storage_day)})"
    )
    if len(home.trend) > 1:
        head += "\n" + trend_line(home.trend)
    out.append(section(head))
    lines = [f"`{escape(p)}` {plural(n, 'snapshot')} · {g:,} GiB · {usd(u)}/month" for p, n, g, u in places]
    packed, shown = packed_sections(lines, HOME_STORAGE_SECTIONS)
    out += packed
    if shown < len(lines):
        out.append(context(f"…and {len(lines) - shown:,} smaller places: the digest lists every one"))
    return out


def _mine(home: HomeData) -> list[dict]:
    out = [header("Your requests")]
    if not home.mine:
        return [*out, section("You have asked for nothing that needs an approver yet.")]
    lines = []
    for r in list(home.mine)[:HOME_MINE_SHOWN]:
        created = datetime.fromisoformat(r["created_at"])
        who = f"<@{escape(r['decided_by'])}>" if r.get("decided_by") else "someone"
        waiting = ":hourglass_flowing_sand: waiting for an approver"
        state = waiting if r["state"] == "pending" else STATE_LINES.get(r["state"], escape(r["state"])).format(who=who)
        lines.append(
            f"`{escape(r['id'])}` *{escape(r['plan']['title'])}* · asked {age(home.now, created)} ago · {state}"
        )
    return [*out, section("\n".join(clip(line, 500) for line in lines))]
