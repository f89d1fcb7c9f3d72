"""The kill switch's pure parts: what a freeze says, `until=`, and how messages show it (escaped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.freeze import LONGEST_UNTIL, freeze_text, scope_name, until_from
from bot.domain.sweep_report import PolicyReport, SweepReport
from bot.slack import blocks
from bot.testing.fakeslack import message_text

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
FREEZE = {"scope": "*", "reason": "incident <!channel> & co", "by_user": "U1", "at": NOW.isoformat(), "until": None}


def test_freeze_text_names_who_when_until_and_why():
    assert freeze_text(FREEZE) == "deletions are frozen by U1 since 2026-12-02 20:00 UTC: incident <!channel> & co"
    later = {**FREEZE, "scope": "prod", "until": (NOW + timedelta(hours=4)).isoformat()}
    assert freeze_text(later, "default", several=True) == (
        "deletions are frozen in prod by U1 since 2026-12-02 20:00 UTC until 2026-12-03 00:00 UTC: "
        "incident <!channel> & co"
    )
    assert scope_name("*", "default") == "every account" and scope_name("", "default") == "default"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("4h", NOW + timedelta(hours=4)),
        ("2d", NOW + timedelta(days=2)),
        ("2026-12-24", datetime(2026, 12, 24, tzinfo=UTC)),
        ("2026-12-24T09:30", datetime(2026, 12, 24, 9, 30, tzinfo=UTC)),
        ("2026-12-24T09:30+01:00", datetime(2026, 12, 24, 8, 30, tzinfo=UTC)),
    ],
)
def test_until_takes_a_duration_or_a_utc_moment(typed, expected):
    assert until_from(typed, NOW) == expected


@pytest.mark.parametrize(
    ("typed", "why"),
    [("soon", "a duration like"), ("2026-12-01", "in the future"), ("91d", "at most 90 days"), ("0h", "a duration")],
)
def test_until_refuses_the_past_the_far_future_and_nonsense(typed, why):
    with pytest.raises(ValueError, match=why):
        until_from(typed, NOW)
    assert LONGEST_UNTIL == timedelta(days=90)


def test_every_surface_escapes_the_reason():
    text = freeze_text(FREEZE)
    row = {
        "id": "req-1",
        "state": "pending",
        "requester": "U2",
        "expires_at": (NOW + timedelta(hours=1)).isoformat(),
        "plan": {"kind": "delete-snapshots", "title": "Delete 1 snapshot", "items": [{"resource_id": "snap-1"}]},
    }
    surfaces = [
        blocks.approval_message(row, NOW, frozen=text),
        blocks.frozen_now(text, "U1", held=1, pending=2),
        blocks.thawed_now(["prod"], "", 0, [text]),
        blocks.not_frozen([text]),
        blocks.lifecycle_list([], NOW, [text]),
    ]
    for msg in surfaces:
        shown = message_text(msg)
        assert "<!channel>" not in shown and "&lt;!channel&gt; &amp; co" in shown, shown
    approval = blocks.approval_message(row, NOW, frozen=text)
    assert approval["blocks"][1]["text"]["text"].startswith(":snowflake: *Deletions are frozen by U1")
    assert "1 approved request held" in message_text(surfaces[1]) and "2 pending requests" in message_text(surfaces[1])


def test_a_frozen_deleting_run_is_not_a_deleting_run_and_says_why():
    report = PolicyReport("daily-db", "delete", frozen="deletions are frozen by U1")
    assert not report.deletes and report.ok
    sweep = SweepReport((report, PolicyReport("other", "delete", frozen="deletions are frozen by U1")), NOW, 0.05)
    assert sweep.frozen == ("deletions are frozen by U1",)
    assert SweepReport((PolicyReport("x", "delete"),), NOW, 0.05).frozen == ()
