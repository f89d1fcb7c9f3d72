"""The App Home view builder: what it shows, escaping, and Slack's limits however large the fleet."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.trend import DayTotal
from bot.slack.blocks.common import MAX_SECTION
from bot.slack.blocks.home import HOME_PENDING_SHOWN, MAX_HOME_BLOCKS, HomeData, home_view
from bot.testing.fakeslack import message_text
from tests.support.factories import daily_policy

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> *bold* <https://evil.example|click>"


def request(n: int, state: str = "pending", title: str = "Delete 1 snapshot in us-east-1", items: int = 1) -> dict:
    return {
        "id": f"req-{n:08x}",
        "state": state,
        "requester": "U0ALICE",
        "decided_by": "U0BOB" if state != "pending" else None,
        "created_at": (NOW - timedelta(minutes=n)).isoformat(),
        "expires_at": (NOW + timedelta(hours=1)).isoformat(),
        "plan": {"title": title, "items": [{"resource_id": f"snap-{n:04x}{i:04x}"} for i in range(items)]},
    }


def blocks_text(view: dict) -> str:
    return message_text({"blocks": view["blocks"]})


def test_an_empty_home_says_what_is_not_there_yet():
    view = home_view(HomeData(user="U0ALICE", now=NOW))
    text = blocks_text(view)
    assert view["type"] == "home"
    assert "Deletions allowed" in text and "Nothing is waiting" in text and "No policies" in text
    assert "No totals yet" in text and "You have asked for nothing" in text
    assert not any(b["type"] == "actions" for b in view["blocks"])


def test_pending_requests_have_approve_and_deny_held_ones_only_their_line():
    view = home_view(HomeData(user="U0BOB", now=NOW, pending=[request(1), request(2, state="held")]))
    buttons = [(e["action_id"], e["value"]) for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [("approval_approve", "req-00000001"), ("approval_deny", "req-00000001")]
    assert "held by a freeze" in blocks_text(view)


def test_a_freeze_replaces_the_all_clear_and_comes_first():
    view = home_view(HomeData(user="U0ALICE", now=NOW, frozen=["frozen by U0BOB: change window"]))
    assert "change window" in json.dumps(view["blocks"][1]) and "<@U0BOB>" in json.dumps(view["blocks"][1])
    assert "Deletions allowed" not in blocks_text(view)


def test_what_people_and_aws_wrote_is_escaped():
    policy = daily_policy()
    view = home_view(
        HomeData(
            user="U0ALICE",
            now=NOW,
            pending=[request(1, title=HOSTILE)],
            policies=[(policy, NOW + timedelta(hours=1), None, ())],
            places=[(HOSTILE, 1, 2, 0.1)],
            storage_day="2026-12-03",
            mine=[request(1, title=HOSTILE)],
            notice="",
        )
    )
    raw = json.dumps(view)
    assert "<!channel>" not in raw and "<https://evil" not in raw
    assert "&lt;!channel&gt;" in raw


def test_storage_shows_totals_the_trend_and_the_largest_places_first():
    trend = [DayTotal(date(2026, 12, 1) + timedelta(days=i), 10, 100 + 10 * i, 5.0) for i in range(3)]
    places = [("prod/us-east-1", 3, 300, 15.0), ("dev/us-west-2", 1, 10, 0.5)]
    view = home_view(HomeData(user="U0A", now=NOW, places=places, storage_day="2026-12-03", trend=trend))
    text = blocks_text(view)
    assert "4 snapshots" in text and "310 GiB" in text and "2 places" in text
    assert "+10 GiB" in text and "Last 3 days" in text
    assert text.index("prod/us-east-1") < text.index("dev/us-west-2")


def test_the_viewer_s_requests_say_where_each_stands():
    view = home_view(HomeData(user="U0ALICE", now=NOW, mine=[request(1), request(2, state="done")]))
    text = blocks_text(view)
    assert "waiting for an approver" in text and "Approved by <@U0BOB> — done" in text


@settings(max_examples=30, deadline=None)
@given(
    pending=st.integers(0, 400),
    policies=st.integers(0, 120),
    places=st.integers(0, 600),
    mine=st.integers(0, 30),
    items=st.integers(1, 3000),
    frozen=st.integers(0, 12),
    title_len=st.integers(1, 3000),
)
def test_any_fleet_fits_the_home_tab(pending, policies, places, mine, items, frozen, title_len):
    title = "x" * title_len
    home = HomeData(
        user="U0ALICE",
        now=NOW,
        frozen=[f"frozen in account a{i} by U0BOB: {title}" for i in range(frozen)],
        pending=[request(i, title=title, items=items) for i in range(pending)],
        policies=[(daily_policy(name=f"p{i}"), NOW, None, tuple(f"a{j}" for j in range(20))) for i in range(policies)],
        places=[(f"a{i}/us-east-1", i, i, float(i)) for i in range(places)],
        storage_day="2026-12-03",
        mine=[request(i, title=title) for i in range(mine)],
        notice="y" * 5000,
    )
    view = home_view(home)
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert len(actions) == min(pending, HOME_PENDING_SHOWN)
    if pending > HOME_PENDING_SHOWN:
        assert f"and {pending - HOME_PENDING_SHOWN:,} more" in blocks_text(view)
