"""The blast radius: `max_delete` parsed, the cap computed, and a large request listing every item in its thread."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import parse_config
from bot.domain.lifecycle import blast_radius_cap, over_blast_radius
from bot.errors import ConfigError
from bot.slack import blocks
from bot.testing.fakeslack import message_text
from tests.support.factories import daily_policy

POLICY = {"name": "daily-db", "resource": "volume", "target_tags": {"Backup": "daily"}, "every": "12h"}


@pytest.mark.parametrize(("typed", "kept"), [(0, "0"), (50, "50"), ("20%", "20%"), ("100%", "100%"), ("1%", "1%")])
def test_max_delete_takes_a_count_or_a_share(typed, kept):
    assert parse_config({"policies": [{**POLICY, "max_delete": typed}]}).policies[0].max_delete == kept


@pytest.mark.parametrize("typed", [-1, "0%", "101%", "20", "twenty", 2.5, True, "20 %"])
def test_a_bad_max_delete_names_the_key(typed):
    with pytest.raises(ConfigError, match=r"policies\[0\]\.max_delete"):
        parse_config({"policies": [{**POLICY, "max_delete": typed}]})


@pytest.mark.parametrize(
    ("max_delete", "managed", "cap"),
    [("", 100, None), ("0", 100, 0), ("30", 10, 30), ("50%", 4, 2), ("50%", 5, 2), ("20%", 3, 0), ("100%", 7, 7)],
)
def test_the_cap_is_a_count_or_a_share_of_what_is_managed_rounded_down(max_delete, managed, cap):
    assert blast_radius_cap(max_delete, managed) == cap


def test_over_the_cap_says_how_many_of_how_many_and_which_setting():
    policy = daily_policy(max_delete="50%")
    assert over_blast_radius(policy, 2, 4) == ""
    why = over_blast_radius(policy, 3, 4)
    assert why == "3 of the 4 items the policy manages would go (75%), more than max_delete = 50% allows (2)"
    assert over_blast_radius(daily_policy(), 3000, 3000) == ""  # no cap configured


def test_a_large_request_shows_its_first_items_and_lists_every_item_in_its_thread():
    items = [
        {"resource_id": f"snap-{n:017x}", "kind": "snapshot", "size_gib": 8, "detail": f"of vol-1: expired <{n}>"}
        for n in range(3000)
    ]
    plan = {"kind": "sweep-delete", "title": "Policy daily-db: delete 3000 expired snapshots", "items": items}
    row = {"id": "req-1", "state": "pending", "requester": "", "expires_at": "2026-12-02T21:00:00+00:00", "plan": plan}
    plan["region"] = "us-east-1"
    message = blocks.approval_message(row, datetime(2026, 12, 2, 20, tzinfo=UTC))
    shown = message_text(message)
    listed = "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")  # not the menus
    assert items[0]["resource_id"] in listed and items[blocks.APPROVAL_ITEMS_SHOWN]["resource_id"] not in listed
    assert "…and 2,950 more: every item is listed in this message's thread." in shown

    parts = blocks.approval_full_list(plan)
    listed = "\n".join(message_text(p) for p in parts)
    assert all(i["resource_id"] in listed for i in items)
    assert "3000. " in listed and "&lt;2999&gt;" in listed and "<2999>" not in listed
    assert 1 < len(parts) <= 5
    for part in parts:
        assert len(part["blocks"]) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in part["blocks"])
    assert message_text(parts[0]).startswith("Policy daily-db: delete 3000 expired snapshots: Items 1–")
