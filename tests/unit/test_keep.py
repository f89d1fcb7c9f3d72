"""Keep and Snooze menus: their option values round-trip and stay within Slack's limits; the tags they write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.tags import keep_tags, snooze_tags
from bot.slack.blocks.keep import KEEP_ACTION, SNOOZE_ACTION, item_value, keep_menus, parse_item_value


def test_a_value_names_the_account_region_and_item():
    assert parse_item_value(item_value("us-east-1", "snap-1")) == ("", "us-east-1", "snap-1")
    assert parse_item_value(item_value("prod/eu-west-1", "ami-2")) == ("prod", "eu-west-1", "ami-2")
    for bad in ("", "snap-1", "us-east-1|", "|snap-1", "prod/|snap-1"):
        with pytest.raises(ValueError):
            parse_item_value(bad)


def test_menus_stay_within_slacks_limits():
    items = [(f"snap-{n:017x} ({'x' * 100})", item_value("us-east-1", f"snap-{n:017x}")) for n in range(300)]
    block = keep_menus(items, "keep:req-1")
    keep, snooze = block["elements"]
    assert (keep["action_id"], snooze["action_id"]) == (KEEP_ACTION, SNOOZE_ACTION)
    assert len(keep["options"]) == 100
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in keep["options"])


def test_the_tags_say_who_and_when():
    now = datetime(2026, 12, 2, 20, 30, tzinfo=UTC)
    assert keep_tags("U1", now) == {
        "chatops:keep": "true",
        "chatops:kept-by": "U1",
        "chatops:kept-at": "2026-12-02T20:30:00+00:00",
    }
    assert snooze_tags("U1", now) == {"chatops:snooze-until": "2026-12-02T20:30:00+00:00", "chatops:snoozed-by": "U1"}
