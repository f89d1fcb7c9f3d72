"""The approval workflow: open a request, decide it, execute it once, expire it, reconcile it.

Every state change is one conditional UPDATE in the store (`Store.transition`),
so however many clicks arrive — double clicks, several approvers at once,
clicks after a decision — exactly one caller wins each step and a request's
plan is executed at most once.  After a crash, `reconcile_unfinished` looks
at AWS to tell what was done and never executes again.

This module is the glue between the store, the executors (bot/approvals/registry.py)
and Slack (the message with the buttons is updated at every step).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict

from bot.approvals.registry import UnknownPlanKind, executor_for
from bot.domain.access import check_decider
from bot.domain.lifecycle import ARCHIVED
from bot.domain.plans import ItemResult, Plan, summarise
from bot.errors import BotError, NotAllowed
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.send import SLACK_FAILURES, error_of
from bot.state.store import from_iso

log = logging.getLogger(__name__)

Tell = Callable[[blocks.Message], None]  # an ephemeral answer to the clicking user


def open_request(deps: Deps, plan: Plan, requester: str, channel: str) -> dict:
    """Store the request and post it with Approve/Deny; returns the stored row."""
    target = deps.config.slack.approval_channel or channel
    expires = deps.now() + deps.config.access.approval_ttl
    approval_id = deps.store.create_approval(plan.kind, plan.region, plan.to_dict(), requester, target, expires)
    row = deps.store.get_approval(approval_id)
    try:
        posted_in, ts = send.post(
            deps.slack, target, blocks.approval_message(row, deps.now(), frozen=_frozen(deps, row))
        )
    except SLACK_FAILURES as exc:
        # Nobody could ever click it: close it rather than leave it pending.
        deps.store.transition(approval_id, "pending", "denied", decided_by="")
        why = error_of(exc)
        deps.store.audit(requester, channel, f"approval {approval_id}: {plan.title}", "not-posted", why)
        raise BotError(
            f"I could not post the approval request in <#{target}> ({why}); nothing will be done.",
            "Invite me to that channel (`/invite @bot`), check the Slack token, and ask again.",
        ) from exc
    deps.store.set_approval_message(approval_id, posted_in, ts)
    if len(plan.items) > blocks.APPROVAL_ITEMS_SHOWN:
        _post_full_list(deps, row, posted_in, ts)
    ids = ", ".join(i.resource_id for i in plan.items)
    deps.store.audit(requester, channel, f"approval {approval_id} requested: {plan.title}", "pending", ids)
    return deps.store.get_approval(approval_id)


def _post_full_list(deps: Deps, row: dict, channel: str, ts: str) -> None:
    """Every item of a large request in its message's thread; if Slack refuses, the request says so in its audit."""
    try:
        for part in blocks.approval_full_list(row["plan"]):
            send.post(deps.slack, channel, part, thread_ts=ts)
    except SLACK_FAILURES as exc:
        log.error("could not list every item of %s in its thread: %s", row["id"], error_of(exc))
        deps.store.audit("", channel, f"approval {row['id']}: full list", "not-posted", error_of(exc))


def permalinks(deps: Deps, rows: list[dict], most: int = 20) -> dict[str, str]:
    """Request ID → a link to its message, for the first `most` (a link Slack will not give is left out)."""
    links = {}
    for row in rows[:most]:
        if row.get("channel") and row.get("message_ts"):
            try:
                links[row["id"]] = send.permalink(deps.slack, row["channel"], row["message_ts"])
            except SLACK_FAILURES as exc:
                log.warning("no permalink for %s: %s", row["id"], error_of(exc))
    return links


def show_request(deps: Deps, row: dict, results: list[dict] | None = None) -> None:
    """Update the request's message to its current state (and its per-resource results, once executed)."""
    if not row.get("message_ts"):
        return
    try:
        message = blocks.approval_message(row, deps.now(), results, frozen=_frozen(deps, row))
        send.update(deps.slack, row["channel"], row["message_ts"], message)
    except SLACK_FAILURES:
        # The decision stands and is audited; only the message is stale.
        log.exception("could not update the message of approval %s", row["id"])


def _frozen(deps: Deps, row: dict) -> str:
    """The freeze a request's message shows at its top: only while it can still be stopped by one."""
    if row["state"] in ("pending", "approved", "held") and deletes(row):
        return deps.frozen(row["plan"].get("account", ""))
    return ""


def decide(deps: Deps, approval_id: str, user: str, approve: bool, tell: Tell) -> str:
    """Handle one Approve/Deny click; returns the audit outcome.  Never raises BotError."""
    verb = "approve" if approve else "deny"
    row = deps.store.get_approval(approval_id)
    action = f"{verb} {approval_id}"
    if row is None:
        tell(blocks.refusal(f"I have no request {approval_id}; nothing changed."))
        deps.store.audit(user, "", action, "unknown")
        return "unknown"
    channel = row["channel"]
    try:
        check_decider(deps.config.access, row["requester"], user, approve)
    except NotAllowed as exc:
        tell(blocks.error(exc))
        deps.store.audit(user, channel, action, "refused", exc.message)
        return "refused"
    if row["state"] == "pending" and deps.now() >= from_iso(row["expires_at"]):
        expire(deps, row)
        row = deps.store.get_approval(approval_id)
    if row["state"] != "pending":
        tell(blocks.already_decided(row["state"], row.get("decided_by") or ""))
        deps.store.audit(user, channel, action, "refused", f"already {row['state']}")
        return "refused"
    frozen = deletes(row) and deps.frozen(row["plan"].get("account", ""))
    if approve and frozen:
        tell(blocks.refusal(f"Not approved: {frozen}. The request stays pending; approve it after the thaw."))
        deps.store.audit(user, channel, action, "refused", frozen)
        return "refused"
    if not deps.store.transition(
        approval_id, "pending", "approved" if approve else "denied", unexpired=True, decided_by=user
    ):
        row = deps.store.get_approval(approval_id)
        tell(blocks.refusal(f"Too late: this request is already {row['state']}; nothing changed."))
        deps.store.audit(user, channel, action, "refused", f"lost the race: already {row['state']}")
        return "refused"
    row = deps.store.get_approval(approval_id)
    deps.store.audit(user, channel, action, "approved" if approve else "denied", row["plan"]["title"])
    show_request(deps, row)
    if approve:
        execute(deps, row)
    return "approved" if approve else "denied"


def deletes(row: dict) -> bool:
    """Whether the request deletes (a freeze stops it); a kind this version does not know is treated as one."""
    try:
        return executor_for(row["plan"]["kind"]).deletes
    except UnknownPlanKind:
        return True


def execute(deps: Deps, row: dict) -> str:
    """Run an approved plan once: approved → executing → done | failed, or → held while deletions are frozen.

    The freeze is asked here, at the moment the request would start (it may
    have landed since the click); the gateway asks again before every delete.
    """
    approval_id = row["id"]
    plan = Plan.from_dict(row["plan"])
    channel = row["channel"]
    frozen = deletes(row) and deps.frozen(plan.account)
    if frozen:
        if deps.store.transition(approval_id, "approved", "held"):
            deps.store.audit(row.get("decided_by", ""), channel, f"approval {approval_id} held", "held", frozen)
            show_request(deps, deps.store.get_approval(approval_id))
            return "held"
        return "skipped"
    if not deps.store.transition(approval_id, "approved", "executing"):
        return "skipped"  # someone else (a reconcile) already took it

    def progress(result: ItemResult) -> None:
        deps.store.audit(
            row.get("decided_by", ""),
            channel,
            f"{plan.kind} {result.resource_id} ({approval_id})",
            result.outcome,
            result.reason,
        )
        record_event(deps, plan, result)

    try:
        results = executor_for(plan.kind).execute(deps.context(plan.account, row["requester"]), plan, progress)
    except Exception as exc:  # the request must end failed and say why, never stay "executing"
        log.exception("executing approval %s failed", approval_id)
        results = [ItemResult(i.resource_id, "failed", f"not attempted: {exc}") for i in plan.items]
    state = "done" if all(r.ok for r in results) else "failed"
    as_dicts = [asdict(r) for r in results]
    deps.store.transition(approval_id, "executing", state, result=as_dicts)
    deps.store.audit(row.get("decided_by", ""), channel, f"approval {approval_id} executed", state, summarise(results))
    show_request(deps, deps.store.get_approval(approval_id), as_dicts)
    source = plan.params.get("instance_id", "")
    for result in results:
        if result.started_image:
            follow_image(deps, row, result.region or plan.region, result.started_image, source, plan.account)
    return state


def follow_image(deps: Deps, row: dict, region: str, image_id: str, source: str, account: str = "") -> None:
    """Post an AMI an approved action started in the request's thread; a watch updates it when available.

    The watch is recorded before the post: if Slack fails (or its answer is
    lost; the post is never repeated), the watch still follows the AMI and
    posts its final state in the thread once.  The request's own message
    already names the AMI.
    """
    try:
        image = deps.gateway_for(account, row["requester"]).find_images(region, [image_id]).get(image_id)
    except BotError as exc:
        log.warning("approval %s: could not look up %s: %s", row["id"], image_id, exc.message)
        return
    if image is None:
        return  # the result on the request already names it
    watch_id = None
    if image.state == "pending":
        deadline = deps.now() + deps.config.aws.poll_timeout
        watched = {"verb": "AMI", "source": source}
        if account:
            watched["account"] = account
        if row.get("message_ts"):
            watched["thread_ts"] = row["message_ts"]
        watch_id = deps.store.add_watch(
            "image", region, [image_id], row["channel"], None, row["requester"], deadline, watched
        )
    ts = None
    try:
        msg = blocks.image_progress(image, deps.now(), requested_by=row["requester"], source=source)
        _, ts = send.post(deps.slack, row["channel"], msg, thread_ts=row.get("message_ts"))
    except SLACK_FAILURES as exc:
        log.warning("approval %s: could not post the progress of %s: %s", row["id"], image_id, error_of(exc))
        deps.store.audit(
            row["requester"],
            row["channel"],
            f"approval {row['id']}: progress of {image_id}",
            "ok",
            f"Slack: not confirmed ({error_of(exc)})" + ("; its final state will be posted once" if watch_id else ""),
        )
    finally:
        if watch_id is not None:
            deps.store.set_watch_message(watch_id, ts)


# What a done item of each plan kind did to the inventory (for the digest).
EVENT_OF_KIND = {
    "delete-snapshots": "deleted",
    "deregister-image": "deleted",
    "sweep-delete": "deleted",
    "create-image-reboot": "created",
}


def record_event(deps: Deps, plan: Plan, result: ItemResult) -> None:
    if result.outcome == "failed":
        kind = "failed"
    elif result.outcome == "done":
        # An archive policy's sweep archives most of its batch: archived is not deleted.
        kind = None if result.reason == ARCHIVED else EVENT_OF_KIND.get(plan.kind)
    else:
        return
    if kind:
        deps.store.record_event(result.region or plan.region, kind, result.resource_id, result.reason, plan.account)


def release_held(deps: Deps) -> int:
    """Run the requests a freeze held, once no freeze covers their account; returns how many were released.

    A request held for longer than requests last (`access.approval_ttl` after
    its approval) is expired instead: the approver agreed to it then, not now.
    Called at the thaw and by the upkeep job (a freeze's `until`, a thaw in
    another process, a restart); the held → approved move runs each once.
    """
    released = 0
    for row in deps.store.approvals_in("held"):
        if deps.frozen(row["plan"].get("account", "")):
            continue
        if deps.now() - from_iso(row["decided_at"]) > deps.config.access.approval_ttl:
            if deps.store.transition(row["id"], "held", "expired"):
                why = "held by a freeze for longer than requests last; request it again"
                deps.store.audit("", row["channel"], f"approval {row['id']} expired", "expired", why)
                show_request(deps, deps.store.get_approval(row["id"]))
            continue
        if deps.store.transition(row["id"], "held", "approved"):
            deps.store.audit("", row["channel"], f"approval {row['id']} released", "approved", "the freeze is lifted")
            execute(deps, deps.store.get_approval(row["id"]))
            released += 1
    return released


def expire(deps: Deps, row: dict) -> bool:
    if not deps.store.transition(row["id"], "pending", "expired"):
        return False
    deps.store.audit("", row["channel"], f"approval {row['id']} expired", "expired", row["plan"]["title"])
    show_request(deps, deps.store.get_approval(row["id"]))
    return True


def expire_due(deps: Deps) -> int:
    """Scheduler job: expire every pending request past its TTL and say so on its message."""
    return sum(expire(deps, row) for row in deps.store.due_approvals())


def reconcile_unfinished(deps: Deps) -> int:
    """Settle requests a crash left approved/executing, without executing anything.

    Only requests whose owner process is dead (bot/state/heartbeat.py): another live
    process (a replica) may be executing its own right now.  What AWS shows as
    done is reported done; the rest is failed with "request again".  Runs at
    start-up, and periodically for processes that die while we run.
    """
    count = 0
    for row in deps.store.orphaned_approvals():
        plan = Plan.from_dict(row["plan"])
        try:
            results = executor_for(plan.kind).reconcile(deps.context(plan.account), plan)
        except BotError as exc:
            results = [
                ItemResult(i.resource_id, "failed", f"interrupted; could not check: {exc.message}") for i in plan.items
            ]
        state = "done" if all(r.ok for r in results) else "failed"
        as_dicts = [asdict(r) for r in results]
        if deps.store.transition(row["id"], row["state"], state, result=as_dicts):
            deps.store.audit(
                "", row["channel"], f"approval {row['id']} reconciled after restart", state, summarise(results)
            )
            show_request(deps, deps.store.get_approval(row["id"]), as_dicts)
            count += 1
    return count
