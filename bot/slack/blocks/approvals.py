"""Approval requests: the plan, its buttons while pending, who decided, and every resource's outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.slack.blocks.common import (
    MAX_BLOCKS,
    Message,
    age,
    clip,
    context,
    escape,
    header,
    item_list,
    message,
    packed_sections,
    section,
)
from bot.slack.blocks.freeze import freeze_banner
from bot.slack.blocks.keep import item_value, keep_menus

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"
RESULT_ICONS = {"done": ":white_check_mark:", "skipped": ":heavy_minus_sign:", "spared": ":shield:", "failed": ":x:"}
# A request shows its first items; a larger one lists every item in its message's thread.
APPROVAL_ITEMS_SHOWN = 50

STATE_LINES = {
    "approved": ":arrow_forward: Approved by {who} — executing…",
    "held": ":snowflake: Approved by {who} — held: deletions are frozen. It runs after the thaw, or expires.",
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


def approval_message(
    row: Mapping, now: datetime, results: Sequence[Mapping] | None = None, frozen: str = ""
) -> Message:
    """The approval request: the exact plan, who asked, expiry, and buttons while pending.

    Once decided the buttons go and the message says who decided and, after
    execution, the result for every resource.  `frozen` (why deletions are
    frozen, plain text) is shown first: Approve is refused until the thaw.
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
    blocks = [header(f":lock: {title}")]
    if frozen:
        blocks.append(freeze_banner(frozen))
    blocks.append(section("\n".join(lines)))
    budget = MAX_BLOCKS - 10  # header, freeze, who, warnings, results, state, keep menus, actions, more, id
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
    # Before the decision, the first items (the thread lists every one); after it, as many outcomes as fit.
    cap = 200 if results else APPROVAL_ITEMS_SHOWN
    item_blocks, shown = packed_sections(item_lines[:cap], budget // 2)
    blocks += item_blocks
    if len(item_lines) > shown:
        where = "" if results else ": every item is listed in this message's thread"
        blocks.append(context(f"…and {len(item_lines) - shown:,} more{where}."))
    if plan.get("warnings"):
        warn = "\n".join(f":warning: {escape(w)}" for w in plan["warnings"][:10])
        more = len(plan["warnings"]) - 10
        blocks.append(section(warn + (f"\n…and {more} more warnings" if more > 0 else "")))
    if state_ == "pending" and plan.get("kind") == "sweep-delete" and plan["items"]:
        account = plan.get("account", "")
        choices = []
        for i in plan["items"]:
            region = i.get("region") or plan.get("region", "")
            where = f"{account}/{region}" if account else region
            choices.append((f"{i['resource_id']} ({region})", item_value(where, i["resource_id"])))
        blocks.append(keep_menus(choices, f"keep:{row['id']}"))
    if state_ == "pending":
        blocks.append(decision_buttons(row["id"], plan["title"], f"approval:{row['id']}"))
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


def approval_full_list(plan: Mapping) -> list[Message]:
    """Every item of a large request, numbered, for the thread under its message (nobody approves items unseen).

    As few messages as Slack's limits allow (about 1,000 items each).
    """
    items = plan["items"]
    lines = [f"{n}. {_plan_item_line(i)}" for n, i in enumerate(items, start=1)]
    messages: list[Message] = []
    while lines:
        packed, shown = packed_sections(lines, MAX_BLOCKS - 1)
        first = len(items) - len(lines) + 1
        label = f"Items {first:,}–{first + shown - 1:,} of {len(items):,}"
        messages.append(message(f"{escape(plan['title'])}: {label}", [context(label), *packed]))
        lines = lines[shown:]
    return messages


def decision_buttons(approval_id: str, title: str, block_id: str) -> dict:
    """Approve (with a confirm dialog) and Deny for one request: the same buttons wherever they are shown."""
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "value": approval_id,
                "style": "danger",
                "text": {"type": "plain_text", "text": "Approve"},
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve this change?"},
                    "text": {"type": "mrkdwn", "text": clip(f"{escape(title)}. This cannot be undone.", 300)},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                },
            },
            {
                "type": "button",
                "action_id": DENY_ACTION,
                "value": approval_id,
                "text": {"type": "plain_text", "text": "Deny"},
            },
        ],
    }


PENDING_IDS_SHOWN = 3


def pending_line(r: Mapping, now: datetime, link: str = "") -> str:
    """One waiting request, told apart from the others: its resources, who asked, expiry, a link to its message."""
    plan = r["plan"]
    ids = [i["resource_id"] for i in plan["items"]]
    named = ", ".join(f"`{escape(i)}`" for i in ids[:PENDING_IDS_SHOWN])
    more = f" and {len(ids) - PENDING_IDS_SHOWN:,} more" if len(ids) > PENDING_IDS_SHOWN else ""
    who = f"<@{escape(r['requester'])}>" if r.get("requester") else "the scheduler"
    expires = datetime.fromisoformat(r["expires_at"])
    left = age(expires, now) if expires > now else "0s"
    where = f" · <{escape(link)}|open the request>" if link else ""
    held = " · :snowflake: approved, held by a freeze" if r.get("state") == "held" else ""
    return (
        f"`{escape(r['id'])}` *{escape(plan['title'])}*\n      {named}{more} · asked by {who} · "
        f"expires in {left} ({expires:%H:%M} UTC){where}{held}"
    )


def approvals_list(rows: Sequence[Mapping], now: datetime, links: Mapping[str, str] | None = None) -> Message:
    """Requests waiting for an approver, each told apart: its resources, who asked, expiry, a link to its message."""
    links = links or {}
    lines = [pending_line(r, now, links.get(r["id"], "")) for r in rows]
    return item_list("Pending approvals", lines, len(rows), "Nothing is waiting for an approver.")


def refusal(text: str) -> Message:
    return message(escape(text), [section(f":no_entry: {escape(text)}")])


def already_decided(state: str, decided_by: str = "") -> Message:
    """A click on a request that is no longer pending: its state, and who decided it (a real mention)."""
    by = f" by <@{escape(decided_by)}>" if decided_by else ""
    text = f"This request is already {escape(state)}{by}; nothing changed."
    return message(text, [section(f":no_entry: {text}")])
