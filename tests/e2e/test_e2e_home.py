"""End to end over HTTP: the App Home tab (app_home_opened → views.publish) and deciding requests from it."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from bot.testing.fakeslack import message_text
from tests.support.approvals import approval_state, exists, request_delete
from tests.support.bot_process import wait_until
from tests.support.factories import base_config, daily_policy, make_snapshot, make_volume
from tests.support.harness import ALICE, BOB, CAROL

pytestmark = pytest.mark.e2e


def home_of(bot, user: str, previous: dict | None = None) -> dict:
    """The view published for `user` after the last open or click (a new one, when `previous` is given)."""
    return wait_until(
        lambda: (v := bot.slack.home_views.get(user)) is not None and v is not previous and v,
        timeout=10,
        interval=0.02,
        what=f"the Home tab of {user} published",
    )


def open_home(bot, user: str) -> dict:
    before = bot.slack.home_views.get(user)
    assert bot.open_home(user).status == 200
    bot.settle()
    return home_of(bot, user, before)


def test_home_shows_freeze_state_pending_requests_policies_storage_and_the_viewer_s_requests(make_bot, ec2, tmp_path):
    config = dataclasses.replace(base_config(tmp_path), policies=(daily_policy(),))
    bot = make_bot(config)
    make_volume(ec2, size=30, Backup="daily")
    bot.command("/lifecycle run daily-db", user=ALICE)
    bot.settle()
    bot.command("/lifecycle digest", user=ALICE)  # records today's storage totals
    bot.settle()
    snap = make_snapshot(ec2)
    request_delete(bot, ec2, snap)
    [row] = bot.deps.store.approvals_in("pending")

    view = open_home(bot, ALICE)
    text = message_text(view)

    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert "Deletions allowed" in text
    assert f"`{row['id']}`" in text and f"`{snap}`" in text and f"asked by <@{ALICE}>" in text
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {(e["action_id"], e["value"]) for e in buttons} == {
        ("approval_approve", row["id"]),
        ("approval_deny", row["id"]),
    }
    assert "*daily-db*" in text and "next in" in text and "last run" in text
    assert "Last sweep: *daily-db*" in text
    assert "us-east-1" in text and "1 snapshot" in text and "30 GiB" in text
    assert "Your requests" in text and "waiting for an approver" in text
    calls_before = dict(bot.deps.gateway.calls)
    open_home(bot, BOB)
    assert dict(bot.deps.gateway.calls) == calls_before  # the tab is built from the store: no AWS call
    assert "You have asked for nothing" in message_text(bot.slack.home_views[BOB])


def test_a_freeze_is_at_the_top_of_the_home_tab(bot, ec2):
    bot.command("/lifecycle freeze change window", user=BOB)
    bot.settle()
    view = open_home(bot, ALICE)
    first = message_text({"blocks": view["blocks"][1:2]})
    assert ":snowflake:" in first and "change window" in first and "Deletions allowed" not in message_text(view)


def test_approve_from_home_executes_once_updates_the_channel_message_and_the_tab(bot, ec2):
    snap = make_snapshot(ec2)
    request_delete(bot, ec2, snap)
    [row] = bot.deps.store.approvals_in("pending")
    before = open_home(bot, BOB)

    assert bot.click_home(BOB, "approval_approve", row["id"]).status == 200
    bot.settle()
    after = home_of(bot, BOB, before)

    assert not exists(ec2, snap) and approval_state(bot) == "done"
    assert bot.deps.gateway.calls["DeleteSnapshot"] == 1
    assert f"You approved `{row['id']}`: it is now *done*" in message_text(after)
    assert not any(b["type"] == "actions" for b in after["blocks"])  # nothing is waiting any more
    channel_message = message_text(bot.approval_messages()[0])
    assert "Approved by" in channel_message and f"<@{BOB}>" in channel_message
    audit = bot.deps.store.recent_audit(20)
    decisions = [(r["user"], r["outcome"]) for r in audit if r["action"].startswith("approve")]
    assert decisions == [(BOB, "approved")]


def test_the_same_rules_hold_in_the_home_tab_a_refusal_is_shown_at_its_top(bot, ec2):
    snap = make_snapshot(ec2)
    request_delete(bot, ec2, snap, user=ALICE)
    [row] = bot.deps.store.approvals_in("pending")
    before = open_home(bot, CAROL)  # Carol is not an approver

    bot.click_home(CAROL, "approval_approve", row["id"])
    bot.settle()
    after = home_of(bot, CAROL, before)

    assert exists(ec2, snap) and approval_state(bot) == "pending"
    assert "only an approver" in message_text({"blocks": after["blocks"][1:2]})
    assert bot.deps.store.recent_audit(1)[0]["outcome"] == "refused"


def test_home_and_channel_clicks_racing_delete_exactly_once(make_bot, ec2):
    bot = make_bot(access={"approvers": (BOB, CAROL)})
    snap = make_snapshot(ec2)
    message = request_delete(bot, ec2, snap)
    [row] = bot.deps.store.approvals_in("pending")
    open_home(bot, BOB)
    barrier = threading.Barrier(10)

    def click(i: int) -> None:
        barrier.wait()
        if i % 2:
            bot.click_home(BOB, "approval_approve", row["id"])
        else:
            bot.click(message, "approval_approve", user=CAROL)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.settle()

    assert bot.deps.gateway.calls["DeleteSnapshot"] == 1
    assert not exists(ec2, snap) and approval_state(bot) == "done"
    decisions = [r for r in bot.deps.store.recent_audit(100) if r["action"].startswith("approve req-")]
    assert sum(r["outcome"] == "approved" for r in decisions) == 1
    assert sum(r["outcome"] == "refused" for r in decisions) == 9


def test_a_large_fleet_s_home_stays_within_slack_s_limits(bot, ec2):
    snaps = [make_snapshot(ec2) for _ in range(15)]
    for snap in snaps:
        bot.command(f"/snapshot delete {snap}", user=ALICE)
    bot.settle()
    bot.deps.store.record_storage(
        bot.deps.now().date().isoformat(),
        [(f"acct-{i:02d}/us-east-{i % 2 + 1}", i, i * 10, i * 0.5) for i in range(400)],
    )

    view = open_home(bot, ALICE)

    assert len(view["blocks"]) <= 100
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in view["blocks"])
    text = message_text(view)
    assert "Waiting for an approver (15)" in text and "and 5 more" in text
    assert "400 places" in text and "smaller places" in text
    assert "`acct-399/us-east-2`" in text  # the largest place is shown, the smallest are cut
    assert len(json.dumps(view)) < 250_000


def test_the_messages_tab_publishes_nothing(bot, ec2):
    from bot.testing import slack_payloads
    from tests.support.harness import SECRET

    body = slack_payloads.event_callback({"type": "app_home_opened", "user": ALICE, "tab": "messages"})
    assert bot.post(body, slack_payloads.signed_headers(SECRET, body)).status == 200
    bot.settle()
    assert not bot.slack.calls_of("views.publish")
