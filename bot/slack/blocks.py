"""Block Kit builders: pure functions from result objects to Slack messages.

Every builder returns `{"text": …, "blocks": […]}` — `text` is the
notification / screen-reader fallback.  Everything that came from a user or
from AWS goes through `escape()` (so `<!channel>` in a description pings no
one), and every message stays inside Slack's limits: 50 blocks, 3000
characters a section, long lists cut with an "and N more" line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from bot.aws.models import BackingSnapshot, Image, Instance, Snapshot, Volume
from bot.domain.amis import ImageRow
from bot.domain.costs import monthly_usd, usd
from bot.domain.digest import Digest
from bot.domain.plans import ItemResult
from bot.domain.sweep_report import PolicyReport, SweepReport
from bot.errors import BotError
from bot.slack.commands import COMMAND_SUMMARIES, COMMANDS, Verb

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000
LIST_LIMIT = 50  # items shown in a list before "and N more"

Message = dict


def escape(text: object) -> str:
    """Escape Slack's control characters so user/AWS text is shown, never parsed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def age(now: datetime, then: datetime | None) -> str:
    """A short human age: 45s, 12m, 3h, 5d."""
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def duration(delta: timedelta) -> str:
    return age(datetime.min + delta, datetime.min)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


def header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True}}


def message(text: str, blocks: Sequence[dict]) -> Message:
    blocks = list(blocks)
    if len(blocks) > MAX_BLOCKS:  # last line of defence; builders summarise before this
        blocks = blocks[: MAX_BLOCKS - 1] + [context(f"…{len(blocks) - MAX_BLOCKS + 1} more blocks not shown")]
    return {"text": clip(text, MAX_FALLBACK), "blocks": blocks}


def packed_sections(lines: Sequence[str], max_sections: int) -> tuple[list[dict], int]:
    """Pack lines into as few ≤3000-char sections as possible; returns (blocks, lines shown)."""
    blocks: list[dict] = []
    current: list[str] = []
    size = 0
    shown = 0
    for line in lines:
        line = clip(line, MAX_SECTION)
        if current and size + len(line) + 1 > MAX_SECTION:
            if len(blocks) + 1 >= max_sections:
                break
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
        shown += 1
    if current:
        blocks.append(section("\n".join(current)))
    return blocks, shown


def item_list(title: str, lines: Sequence[str], total: int, empty: str, more_hint: str = "") -> Message:
    """A titled list, newest first, capped with an "and N more" line."""
    if not lines:
        return message(f"{title}: {empty}", [section(f"*{title}*\n{empty}")])
    blocks, shown = packed_sections(list(lines)[:LIST_LIMIT], MAX_BLOCKS - 2)
    blocks.insert(0, section(f"*{title}*"))
    if total > shown:
        blocks.append(context(f"…and {total - shown} more. {more_hint}".strip()))
    return message(f"{title}: {total}", blocks)


def tags_text(tags: Mapping[str, str]) -> str:
    if not tags:
        return "_none_"
    return ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(tags.items()))


STATE_ICONS = {
    "completed": ":white_check_mark:",
    "available": ":white_check_mark:",
    "running": ":large_green_circle:",
    "in-use": ":link:",
    "pending": ":hourglass_flowing_sand:",
    "creating": ":hourglass_flowing_sand:",
    "stopped": ":black_circle:",
    "error": ":x:",
    "failed": ":x:",
}


def state(value: str) -> str:
    return f"{STATE_ICONS.get(value, ':grey_question:')} {escape(value)}"


# --- errors and help --------------------------------------------------------


def error(exc: BotError) -> Message:
    text = f":warning: {escape(exc.message)}"
    if exc.hint:
        text += f"\n{escape(exc.hint)}"
    return message(text, [section(text)])


def apology(reference: str) -> Message:
    text = (
        ":boom: Sorry, something went wrong on my side. It is logged"
        f" (reference `{escape(reference)}`); please try again or tell the bot's owners."
    )
    return message(text, [section(text)])


def unposted(msg: Message, channel: str, why: str, no_channel: bool, followed: bool) -> Message:
    """The requester's copy of a channel message Slack refused or did not confirm (the AWS work is done)."""
    if no_channel:
        note = ":information_source: Invite me to this channel (`/invite @bot`) to get " + (
            "the result there when it finishes." if followed else "these messages there."
        )
    else:
        note = f":warning: Slack did not confirm my message in <#{escape(channel)}> ({escape(why)}), so here it is" + (
            "; I will post the result there when it finishes." if followed else "."
        )
    return message(msg["text"], [*msg["blocks"][: MAX_BLOCKS - 1], context(note)])


def working(line: str) -> Message:
    text = f":hourglass_flowing_sand: Working on `{escape(line)}`…"
    return message(text, [context(text)])


def verb_help(verb: Verb) -> str:
    return f"`{escape(verb.usage)}`{' :lock:' if verb.destructive else ''}\n{escape(verb.summary)}"


def help_message(command: str | None = None, verb: Verb | None = None) -> Message:
    """Help for one verb, one command, or (command None / chatops) everything."""
    if verb is not None:
        return message(f"Help: {verb.usage}", [section(verb_help(verb))])
    commands = [command] if command and command != "chatops" else list(COMMANDS)
    blocks = []
    for name in commands:
        lines = [f"*/{name}* — {escape(COMMAND_SUMMARIES.get(name, ''))}"]
        lines += [verb_help(v) for v in COMMANDS[name].values()]
        blocks.append(section("\n".join(lines)))
    blocks.append(
        context(
            "Every command takes `region=…` and `help`. :lock: = needs an approver. "
            "IDs look like `vol-0123456789abcdef0`."
        )
    )
    title = f"/{command} help" if command and command != "chatops" else "Snapshot & AMI bot help"
    return message(title, blocks)


def audit_line(row: Mapping, now: datetime) -> str:
    who = f"<@{escape(row['user'])}>" if row.get("user") else "_bot_"
    detail = f" — {escape(clip(row['detail'], 300))}" if row.get("detail") else ""
    return (
        f"`{age(now, datetime.fromisoformat(row['at']))} ago` {who} `{escape(clip(row['action'], 200))}`"
        f" → *{escape(row['outcome'])}*{detail}"
    )


def audit_list(rows: Sequence[Mapping], now: datetime) -> Message:
    return item_list("Audit log, newest first", [audit_line(r, now) for r in rows], len(rows), "No entries yet.")


# --- snapshots -----------------------------------------------------------------


def snapshot_line(snap: Snapshot, now: datetime) -> str:
    progress = f" {escape(snap.progress)}" if snap.state == "pending" and snap.progress else ""
    desc = f" · {escape(clip(snap.description, 120))}" if snap.description else ""
    return (
        f"`{snap.id}` {state(snap.state)}{progress} · {snap.size_gib} GiB · {age(now, snap.start_time)} ago"
        f" · `{escape(snap.volume_id)}`{desc}"
    )


def snapshot_list(snaps: Sequence[Snapshot], total: int, region: str, now: datetime, volume_id: str | None) -> Message:
    title = f"Snapshots of {volume_id} in {region}" if volume_id else f"Snapshots in {region}"
    return item_list(
        title,
        [snapshot_line(s, now) for s in snaps],
        total,
        "No snapshots yet. Create one with `/snapshot vol-…`.",
        "Narrow it with `/snapshot list vol-…`.",
    )


def snapshot_progress(snap: Snapshot, now: datetime, verb: str = "Snapshot", requested_by: str = "") -> Message:
    """The message for a snapshot being created or copied; updated as it completes."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    if snap.state == "completed":
        head = f":white_check_mark: {verb} `{snap.id}` of `{escape(snap.volume_id)}` completed"
    elif snap.state == "error":
        head = f":x: {verb} `{snap.id}` of `{escape(snap.volume_id)}` failed"
    else:
        pct = f" ({escape(snap.progress)})" if snap.progress else ""
        head = f":hourglass_flowing_sand: {verb} `{snap.id}` of `{escape(snap.volume_id)}` in progress{pct}"
    lines = [f"{head} in {snap.region}{who}."]
    if snap.description:
        lines.append(f"Description: {escape(clip(snap.description, 500))}")
    lines.append(f"{snap.size_gib} GiB · started {age(now, snap.start_time)} ago")
    status = f"Details: `/snapshot status {snap.id} region={snap.region}`"
    return message(lines[0], [section("\n".join(lines)), context(status)])


def snapshot_status(snap: Snapshot, now: datetime) -> Message:
    fields = [
        f"*State*\n{state(snap.state)}",
        f"*Progress*\n{escape(snap.progress or '—')}",
        f"*Volume*\n`{escape(snap.volume_id)}`",
        f"*Size*\n{snap.size_gib} GiB",
        f"*Started*\n{snap.start_time:%Y-%m-%d %H:%M} UTC ({age(now, snap.start_time)} ago)",
        f"*Encrypted*\n{'yes' if snap.encrypted else 'no'}",
    ]
    blocks = [
        section(
            f"*Snapshot `{snap.id}`* in {snap.region}"
            + (f"\n{escape(clip(snap.description, 1000))}" if snap.description else "")
        ),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        section(f"*Tags*\n{tags_text(snap.tags)}"),
    ]
    return message(f"Snapshot {snap.id}: {escape(snap.state)}", blocks)


def watch_timed_out(resource_id: str, waited: timedelta, status_hint: str) -> Message:
    text = (
        f":hourglass: `{escape(resource_id)}` is still not finished after {duration(waited)}; "
        f"I stopped watching it (AWS carries on). Check it with `{escape(status_hint)}`."
    )
    return message(text, [section(text)])


def watched_gone(what: str, resource_ids: Sequence[str], region: str, why: str = "") -> Message:
    """A watched resource vanished before it finished: the watch ends with this."""
    ids = ", ".join(f"`{escape(i)}`" for i in resource_ids)
    text = f":x: {escape(what)} {ids} no longer exist{'s' if len(resource_ids) == 1 else ''} in {escape(region)}"
    text += f" ({escape(why)})." if why else "."
    return message(text, [section(text)])


# --- volumes -------------------------------------------------------------------


def volume_line(vol: Volume, now: datetime, last_snapshot: datetime | None) -> str:
    attached = ", ".join(f"`{escape(a.instance_id)}` {escape(a.device)}" for a in vol.attachments) or "not attached"
    name = f" *{escape(vol.tags['Name'])}*" if vol.tags.get("Name") else ""
    last = f"last snapshot {age(now, last_snapshot)} ago" if last_snapshot else ":warning: never snapshotted"
    return (
        f"`{vol.id}`{name} {state(vol.state)} · {vol.size_gib} GiB {escape(vol.volume_type)} · "
        f"{escape(vol.az)} · {attached} · {last}"
    )


def volume_list(rows: Sequence[tuple[Volume, datetime | None]], total: int, region: str, now: datetime) -> Message:
    return item_list(
        f"Volumes in {region}",
        [volume_line(v, now, last) for v, last in rows],
        total,
        "No volumes in this region.",
    )


def volume_progress(
    vol: Volume, snapshot_id: str, requested_by: str, attach: Mapping | None = None, attach_error: str = ""
) -> Message:
    """Restore message: creating → available → (attached | attach failed)."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    if attach_error:
        head = (
            f":warning: Volume `{vol.id}` was restored from `{snapshot_id}` but attaching it failed: "
            f"{escape(attach_error)}"
        )
    elif vol.attachments:
        a = vol.attachments[0]
        head = (
            f":white_check_mark: Volume `{vol.id}` restored from `{snapshot_id}` and attached to "
            f"`{escape(a.instance_id)}` as {escape(a.device)}"
        )
    elif vol.state == "available" and attach:
        head = (
            f":hourglass_flowing_sand: Volume `{vol.id}` restored from `{snapshot_id}`; attaching to "
            f"`{escape(attach['instance_id'])}` as {escape(attach['device'])}"
        )
    elif vol.state in ("available", "in-use"):
        head = f":white_check_mark: Volume `{vol.id}` restored from `{snapshot_id}` and available"
    elif vol.state == "error":
        head = f":x: Restoring `{snapshot_id}` into `{vol.id}` failed"
    else:
        head = f":hourglass_flowing_sand: Restoring `{snapshot_id}` into volume `{vol.id}`"
    body = f"{head}{who}.\n{vol.size_gib} GiB {escape(vol.volume_type)} in {escape(vol.az)} ({vol.region})"
    return message(head, [section(body)])


def volume_attached(volume_id: str, instance_id: str, device: str, region: str) -> Message:
    text = f":link: Attaching `{volume_id}` to `{instance_id}` as {escape(device)} in {region}."
    return message(text, [section(text)])


# --- instances -------------------------------------------------------------------


def instance_line(inst: Instance, now: datetime, image_names: Mapping[str, str] | None = None) -> str:
    name = f" *{escape(inst.name)}*" if inst.name else ""
    image = f"`{escape(inst.image_id)}`"
    if image_names and image_names.get(inst.image_id):
        image += f" ({escape(image_names[inst.image_id])})"
    return (
        f"`{inst.id}`{name} {state(inst.state)} · {escape(inst.instance_type)} · AMI {image} · "
        f"{escape(inst.az)} · up {age(now, inst.launch_time)}"
    )


def instance_list(
    insts: Sequence[Instance], total: int, region: str, now: datetime, image_names: Mapping[str, str] | None = None
) -> Message:
    return item_list(
        f"Instances in {region}",
        [instance_line(i, now, image_names) for i in insts],
        total,
        "No instances in this region.",
    )


# --- AMIs (lines shared by lists and plans) -------------------------------------------


def image_line(image: Image, now: datetime) -> str:
    return (
        f"`{image.id}` *{escape(image.name)}* {state(image.state)} · {age(now, image.creation_date)} ago · "
        f"snapshots {', '.join(f'`{s}`' for s in image.snapshot_ids) or '—'}"
    )


def bullet_lines(items: Iterable[str]) -> str:
    return "\n".join(f"• {item}" for item in items)


# --- approvals -------------------------------------------------------------------

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"
RESULT_ICONS = {"done": ":white_check_mark:", "skipped": ":heavy_minus_sign:", "spared": ":shield:", "failed": ":x:"}
STATE_LINES = {
    "approved": ":arrow_forward: Approved by {who} — executing…",
    "executing": ":arrow_forward: Approved by {who} — executing…",
    "done": ":white_check_mark: Approved by {who} — done.",
    "failed": ":x: Approved by {who} — finished with failures.",
    "denied": ":no_entry: Denied by {who}. Nothing was changed.",
    "expired": ":hourglass: Expired without a decision. Nothing was changed.",
}


def _plan_item_line(item: Mapping) -> str:
    size = f" · {item['size_gib']} GiB" if item.get("size_gib") else ""
    extra = f" + {', '.join(f'`{escape(g)}`' for g in item['goes_with'])}" if item.get("goes_with") else ""
    detail = f" {escape(item['detail'])}" if item.get("detail") else ""
    return f"`{escape(item['resource_id'])}`{size}{detail}{extra}"


def approval_message(row: Mapping, now: datetime, results: Sequence[Mapping] | None = None) -> Message:
    """The approval request: the exact plan, who asked, expiry, and buttons while pending.

    Once decided the buttons go and the message says who decided and, after
    execution, the result for every resource.
    """
    plan = row["plan"]
    state_ = row["state"]
    expires = datetime.fromisoformat(row["expires_at"])
    lines = [f"Requested by <@{escape(row['requester'])}>" if row.get("requester") else "Requested by the scheduler"]
    if state_ == "pending":
        lines.append(f"Expires in {age(expires, now) if expires > now else '0s'} ({expires:%H:%M} UTC)")
    if plan.get("gib_freed"):
        lines.append(f"Frees up to *{plan['gib_freed']} GiB* ≈ *${plan['usd_month_freed']:.2f}/month*")
    title = escape(plan["title"])  # names AWS resources (an instance Name, an AMI name): never raw
    blocks = [header(f":lock: {title}"), section("\n".join(lines))]
    budget = MAX_BLOCKS - 8  # header, who, warnings, results, state, actions, more, id
    results = results if results is not None else (row.get("result") or None)
    if results:
        outcome = {r["resource_id"]: r for r in results}
        item_lines = [
            f"{RESULT_ICONS.get(outcome[i['resource_id']]['outcome'], '')} {_plan_item_line(i)} — "
            f"{escape(outcome[i['resource_id']]['reason'])}"
            if i["resource_id"] in outcome
            else _plan_item_line(i)
            for i in plan["items"]
        ]
        # What went with the plan's items (an AMI's backing snapshots), each with its own outcome.
        planned = {i["resource_id"] for i in plan["items"]}
        item_lines += [
            f"{RESULT_ICONS.get(r['outcome'], '')} `{escape(r['resource_id'])}` — {escape(r['reason'])}"
            for r in results
            if r["resource_id"] not in planned
        ]
    else:
        item_lines = [f"• {_plan_item_line(i)}" for i in plan["items"]]
    item_blocks, shown = packed_sections(item_lines[:200], budget // 2)
    blocks += item_blocks
    if len(item_lines) > shown:
        blocks.append(context(f"…and {len(item_lines) - shown} more (full list: `/chatops approvals`)."))
    if plan.get("warnings"):
        warn = "\n".join(f":warning: {escape(w)}" for w in plan["warnings"][:10])
        more = len(plan["warnings"]) - 10
        blocks.append(section(warn + (f"\n…and {more} more warnings" if more > 0 else "")))
    if state_ == "pending":
        blocks.append(
            {
                "type": "actions",
                "block_id": f"approval:{row['id']}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE_ACTION,
                        "value": row["id"],
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Approve this change?"},
                            "text": {
                                "type": "mrkdwn",
                                "text": clip(f"{escape(plan['title'])}. This cannot be undone.", 300),
                            },
                            "confirm": {"type": "plain_text", "text": "Approve"},
                            "deny": {"type": "plain_text", "text": "Cancel"},
                            "style": "danger",
                        },
                    },
                    {
                        "type": "button",
                        "action_id": DENY_ACTION,
                        "value": row["id"],
                        "text": {"type": "plain_text", "text": "Deny"},
                    },
                ],
            }
        )
    else:
        who = f"<@{escape(row['decided_by'])}>" if row.get("decided_by") else "someone"
        line = STATE_LINES.get(state_, escape(state_)).format(who=who)
        if results and state_ in ("done", "failed"):
            counts = {k: sum(r["outcome"] == k for r in results) for k in ("done", "skipped", "spared", "failed")}
            line += " " + ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "done")
        blocks.append(section(line))
    blocks.append(context(f"Request `{escape(row['id'])}`"))
    text = f"{title}: {'needs approval' if state_ == 'pending' else escape(state_)}"
    return message(text, blocks)


def approvals_list(rows: Sequence[Mapping], now: datetime) -> Message:
    lines = [
        f"`{escape(r['id'])}` {escape(r['plan']['title'])} · by <@{escape(r['requester'])}> · expires in "
        f"{age(datetime.fromisoformat(r['expires_at']), now)}"
        for r in rows
    ]
    return item_list("Pending approvals", lines, len(rows), "Nothing is waiting for an approver.")


def refusal(text: str) -> Message:
    return message(escape(text), [section(f":no_entry: {escape(text)}")])


def already_decided(state: str, decided_by: str = "") -> Message:
    """A click on a request that is no longer pending: its state, and who decided it (a real mention)."""
    by = f" by <@{escape(decided_by)}>" if decided_by else ""
    text = f"This request is already {escape(state)}{by}; nothing changed."
    return message(text, [section(f":no_entry: {text}")])


# --- lifecycle: digest and sweep reports ------------------------------------------

DIGEST_REGION_SECTIONS = 10  # region lines pack into at most this many sections
ESTIMATE_NOTE = (
    "Costs price every snapshot at its full volume size × ${price}/GB-month. EBS snapshots are incremental, "
    "so the real bill (and what deleting frees) is usually lower: read them as upper bounds."
)


def _plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def _estimate_note(price: float) -> dict:
    return context(ESTIMATE_NOTE.replace("{price}", f"{price:g}"))


def _fit(head: Sequence[str], groups: Sequence[tuple], limit: int = MAX_SECTION) -> str:
    """Head lines, then titled groups of lines, cut with "…and N more" to stay within `limit` characters.

    A group is (title, lines, noun) or (title, lines, noun, total) when only
    the first of `total` entries were passed in.
    """
    text = "\n".join(head)
    reserve = 100  # room for the "…and N more" line
    for title, lines, noun, *rest in groups:
        total = rest[0] if rest else len(lines)
        if not total:
            continue
        first = clip(lines[0], 500) if lines else ""
        if len(text) + len(title) + len(first) + 2 > limit - reserve:
            text += f"\n…{_plural(total, noun)} not listed"
            continue
        if title:
            text += f"\n{title}" if text else title
        shown = 0
        for line in lines:
            line = clip(line, 500)
            if len(text) + len(line) + 1 > limit - reserve:
                break
            text += f"\n{line}"
            shown += 1
        if total > shown:
            text += f"\n…and {total - shown:,} more"
    return clip(text, limit)


def digest_message(digest: Digest) -> Message:
    """The daily digest: totals, one line per region, the top cleanup candidates."""
    t = digest.totals
    day = f"{digest.now:%Y-%m-%d}"
    failed = f":x: {t.failed_24h:,} failed" if t.failed_24h else "0 failed"
    summary = [
        f"*{_plural(t.snapshots, 'snapshot')}* · {t.snapshot_gib:,} GiB · up to {usd(t.usd_month)}/month"
        f" across {_plural(len(digest.regions), 'region')}",
        f"Last 24 h: {t.created_24h:,} created · {t.deleted_24h:,} deleted · {failed}",
    ]
    if t.errors:
        summary.append(f":x: {_plural(t.errors, 'snapshot')} in state error")
    if digest.pending_approvals:
        summary.append(
            f":hourglass_flowing_sand: {_plural(digest.pending_approvals, 'approval')} pending — `/chatops approvals`"
        )
    else:
        summary.append("No approvals pending.")
    summary.append(
        f":broom: {_plural(t.candidates, 'cleanup candidate')} ({t.candidate_gib:,} GiB, up to "
        f"{usd(digest.candidate_usd_month)}/month): {_plural(t.orphaned, 'orphaned snapshot')}, "
        f"{_plural(t.unused_images, 'AMI')} no instance uses"
    )
    blocks = [header(f"Snapshot & AMI digest — {day}"), section("\n".join(summary))]

    region_lines = []
    for r in digest.regions:
        line = (
            f"*{escape(r.region)}* — {_plural(r.snapshots, 'snapshot')} · {r.snapshot_gib:,} GiB · "
            f"~{usd(r.usd_month)}/mo · 24 h: +{r.created_24h:,} / −{r.deleted_24h:,}"
        )
        if r.failed_24h:
            line += f" · :x: {r.failed_24h:,} failed"
        if r.unfinished:
            line += f" · {r.unfinished:,} unfinished"
        line += f" · {r.orphaned:,} orphaned ({r.orphaned_gib:,} GiB) · {_plural(r.unused_images, 'unused AMI')}"
        region_lines.append(line)
    region_blocks, shown = packed_sections(region_lines, DIGEST_REGION_SECTIONS)
    blocks += region_blocks
    if len(region_lines) > shown:
        blocks.append(context(f"…and {len(region_lines) - shown:,} more regions"))

    if digest.top_candidates:
        lines = []
        for c in digest.top_candidates:
            label = f" “{escape(clip(c.label, 80))}”" if c.label else ""
            kind = "AMI" if c.kind == "image" else "snapshot"
            lines.append(
                f"• {kind} `{escape(c.id)}`{label} ({escape(c.region)}) · {c.size_gib:,} GiB · "
                f"~{usd(monthly_usd(c.size_gib, digest.price_gb_month))}/mo · {age(digest.now, c.created)} old"
                f" — {escape(clip(c.reason, 200))}"
            )
        blocks.append(section(_fit([], [("*Top cleanup candidates*", lines, "candidate", t.candidates)])))
    blocks.append(_estimate_note(digest.price_gb_month))
    fallback = (
        f"Digest {day}: {_plural(t.snapshots, 'snapshot')}, {t.snapshot_gib:,} GiB (up to {usd(t.usd_month)}/month), "
        f"{_plural(t.candidates, 'cleanup candidate')}, {_plural(digest.pending_approvals, 'approval')} pending"
    )
    return message(fallback, blocks)


SWEEP_POLICY_SECTIONS = MAX_BLOCKS - 5  # header, summary, "and N more", note


def _ids(values: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(f"`{escape(v)}`" for v in values[:limit])
    return shown + (f" and {len(values) - limit:,} more" if len(values) > limit else "")


def _policy_text(p: PolicyReport, price: float) -> str:
    """One policy's part of a sweep report or preview."""
    icon = ":x:" if not p.ok else ":mag:" if p.dry_run else ":white_check_mark:"
    mode = f"{escape(p.on_expired)}, preview" if p.dry_run else escape(p.on_expired)
    head = [f"{icon} *{escape(p.policy)}* ({mode})"]
    if p.error:
        head.append(f":x: Could not run: {escape(clip(p.error, 500))}")
    if p.created:
        copies = sum(bool(c.copy_of) for c in p.created)
        extra = f" (incl. {_plural(copies, 'DR copy', 'DR copies')})" if copies else ""
        if p.dry_run:
            head.append(f"Would create {len(p.created):,}{extra} from {_ids([c.source_id for c in p.created])}")
        else:
            head.append(f"Created {len(p.created):,}{extra}: {_ids([c.id for c in p.created])}")
    if p.expired:
        stake = p.at_stake(price)
        gross = f"{len(p.expired):,} expired ({stake.gib:,} GiB, up to {usd(stake.usd_month)}/month)"
        if p.dry_run:
            head.append(gross)
        elif p.on_expired == "approve":
            ref = f" (request `{escape(p.approval_id)}`)" if p.approval_id else ""
            head.append(f"{gross}: awaiting approval{ref}")
        elif p.on_expired == "report":
            head.append(f"{gross}: reported only, nothing deleted")
        else:
            freed = p.freed(price)
            head.append(
                f"{gross}: deleted {len(p.deleted):,}, freeing {freed.gib:,} GiB (up to {usd(freed.usd_month)}/month)"
            )
    elif not p.error:
        head.append("Nothing expired.")
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
    if p.dry_run:
        title = "Would delete:"
    elif p.on_expired == "approve":
        title = "To delete once approved:"
    else:
        title = "Expired, not deleted:"
    spared_title = f":shield: {len(p.spared):,} not deleted after all:"
    groups = [("", failures, "failure"), (spared_title, spared, "spared item"), (title, expired_lines, "expired item")]
    return _fit(head, groups)


def sweep_report_message(report: SweepReport) -> Message:
    """A lifecycle run or preview: totals, then one section per policy, failing ones first."""
    policies = list(report.policies)
    ordered = [p for p in policies if not p.ok] + [p for p in policies if p.ok]
    created = sum(len(p.created) for p in policies)
    expired_count = sum(len(p.expired) for p in policies)
    failed = sum(len(p.failed) + len(p.undone) + bool(p.error) for p in policies)
    when = f"{report.now:%Y-%m-%d %H:%M} UTC"
    if report.dry_run:
        stake = report.at_stake()
        title = f"Lifecycle preview — {when}"
        summary = (
            f":mag: {_plural(len(policies), 'policy', 'policies')}: would create {created:,}, "
            f"would expire {expired_count:,}, freeing up to {stake.gib:,} GiB ({usd(stake.usd_month)}/month)"
        )
        if failed:
            summary += f" · :x: {failed:,} failed"
    else:
        freed = report.freed()
        deleted = sum(len(p.deleted) for p in policies)
        icon = ":white_check_mark:" if report.ok else ":x:"
        title = f"Lifecycle sweep — {when}"
        summary = (
            f"{icon} {_plural(len(policies), 'policy', 'policies')}: {created:,} created · "
            f"{expired_count:,} expired · {deleted:,} deleted · {failed:,} failed"
        )
        if deleted:
            summary += f" · freed {freed.gib:,} GiB (up to {usd(freed.usd_month)}/month)"
    blocks = [header(title), section(summary)]
    if not policies:
        blocks.append(section("No lifecycle policies ran. Add `[[policies]]` to config.toml."))
    shown = ordered[:SWEEP_POLICY_SECTIONS]
    blocks += [section(_policy_text(p, report.price_gb_month)) for p in shown]
    hidden = ordered[len(shown) :]
    if hidden:
        bad = sum(not p.ok for p in hidden)
        tail = f" ({bad:,} with failures)" if bad else ""
        blocks.append(context(f"…and {len(hidden):,} more policies{tail}"))
    blocks.append(_estimate_note(report.price_gb_month))
    return message(f"{title}: {summary}", blocks)


# --- AMIs: create, copy, list, launch, share, deregister ---------------------------------


def backing_text(snaps: Sequence[BackingSnapshot]) -> str:
    """`snap-…` 8 GiB, … (total): an AMI's backing snapshots."""
    if not snaps:
        return "no EBS snapshots"
    shown = ", ".join(f"`{escape(b.id)}` {b.size_gib} GiB" for b in snaps[:10])
    more = f", …and {len(snaps) - 10} more" if len(snaps) > 10 else ""
    total = f" ({sum(b.size_gib for b in snaps)} GiB in all)" if len(snaps) > 1 else ""
    return f"{shown}{more}{total}"


def image_progress(image: Image, now: datetime, verb: str = "AMI", requested_by: str = "", source: str = "") -> Message:
    """The message for an AMI being created or copied; updated when it is available (or failed)."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    src = f" from `{escape(source)}`" if source else ""
    name = f" *{escape(image.name)}*" if image.name else ""
    if image.state == "available":
        head = f":white_check_mark: {verb} `{image.id}`{name}{src} is available"
    elif image.state in ("failed", "error", "invalid", "deregistered"):
        head = f":x: {verb} `{image.id}`{name}{src} is {escape(image.state)}"
    else:
        head = f":hourglass_flowing_sand: {verb} `{image.id}`{name}{src} is {escape(image.state or 'pending')}"
    lines = [f"{head} in {image.region}{who}."]
    if image.description:
        lines.append(f"Description: {escape(clip(image.description, 500))}")
    if image.state == "available":
        lines.append(f"Backing snapshots: {backing_text(image.backing)}")
    lines.append(f"Started {age(now, image.creation_date)} ago")
    hint = (
        f"Launch it: `/ami launch {image.id} region={image.region}`"
        if image.state == "available"
        else f"Check it: `/ami list region={image.region}`"
    )
    return message(lines[0], [section("\n".join(lines)), context(hint)])


def ami_line(row: ImageRow, now: datetime) -> str:
    image = row.image
    if image.public:
        shared = ":globe_with_meridians: public"
    elif row.shared_with:
        shared = "shared with " + ", ".join(f"`{escape(a)}`" for a in row.shared_with[:10])
        if len(row.shared_with) > 10:
            shared += f" …and {len(row.shared_with) - 10} more"
    else:
        shared = "not shared"
    if row.in_use:
        use = f":warning: *in use* by {row.instance_count} instance{'s' if row.instance_count != 1 else ''}"
    else:
        use = "no instances"
    return (
        f"*{escape(image.name) or '_unnamed_'}* `{image.id}` {state(image.state)} · {age(now, image.creation_date)} ago"
        f"\n      snapshots {backing_text(image.backing)} · {shared} · {use}"
    )


def ami_list(rows: Sequence[ImageRow], total: int, region: str, now: datetime) -> Message:
    return item_list(
        f"AMIs in {region}, newest first",
        [ami_line(r, now) for r in rows],
        total,
        "No AMIs of this account here. Create one with `/ami create i-… name=NAME`.",
        "Show fewer or more with `limit=N`.",
    )


def launch_progress(
    instances: Sequence[Instance], image_id: str, image_name: str, region: str, requested_by: str = ""
) -> Message:
    """The `/ami launch` message: instance IDs and states, updated until they are all running."""
    who = f" requested by <@{escape(requested_by)}>" if requested_by else ""
    count = len(instances)
    noun = f"{count} instance{'s' if count != 1 else ''}"
    name = f" *{escape(image_name)}*" if image_name else ""
    states = {i.state for i in instances}
    if states == {"running"}:
        head = f":white_check_mark: {noun} running from `{escape(image_id)}`{name}"
    elif states & {"terminated", "shutting-down", "stopped", "stopping"}:
        head = f":warning: {noun} launched from `{escape(image_id)}`{name}; not all are running"
    else:
        head = f":rocket: Launching {noun} from `{escape(image_id)}`{name}"
    lines = [
        f"`{i.id}` {state(i.state)} · {escape(i.instance_type)} · {escape(i.az) or '—'}" for i in instances[:LIST_LIMIT]
    ]
    if count > LIST_LIMIT:
        lines.append(f"…and {count - LIST_LIMIT} more")
    blocks, _ = packed_sections([f"{head} in {region}{who}.", *lines], 3)
    blocks.append(context(f"See them with `/instance list region={region}`"))
    return message(head, blocks)


def result_line(result: ItemResult) -> str:
    icon = ":white_check_mark:" if result.ok else ":x:"
    return f"{icon} `{escape(result.resource_id)}` {escape(result.reason)}"


def image_unshared(result: ItemResult, region: str) -> Message:
    fallback = f"{escape(result.resource_id)}: {escape(result.reason)}"
    return message(fallback, [section(f"{result_line(result)} ({region})")])


# --- lifecycle policies -------------------------------------------------------------


def lifecycle_list(rows: Sequence[tuple], now: datetime) -> Message:
    """rows: (Policy, next run or None, last run row or None)."""
    lines = []
    for policy, next_at, last in rows:
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
        if last:
            s = last.get("summary") or {}
            result = (
                f"last run {age(now, datetime.fromisoformat(last['started_at']))} ago: *{escape(last['state'])}*"
                + (
                    f" ({s.get('created', 0)} created, {s.get('deleted', 0)} deleted, {s.get('failed', 0)} failed)"
                    if s
                    else ""
                )
            )
        else:
            result = "never run"
        lines.append(
            f"*{escape(policy.name)}* · {escape(policy.resource)}s tagged {tags} · {schedule} · {keep} · "
            f"on expiry: {escape(policy.on_expired)}"
            + (f" · DR copy to {', '.join(policy.copy_to)}" if policy.copy_to else "")
            + f"\n      {nxt} · {result}"
        )
    return item_list("Lifecycle policies", lines, len(rows), "No policies. Add [[policies]] to config.toml.")


def posted_elsewhere(what: str, channel: str) -> Message:
    text = f":white_check_mark: {escape(what)} posted in <#{escape(channel)}>."
    return message(text, [section(text)])
