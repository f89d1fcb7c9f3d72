"""Retention rules by example (SPEC §5, §7); the properties are in test_retention_properties.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.aws.models import Image, Snapshot
from bot.config import Policy, load_config, parse_config
from bot.domain.costs import Cost, estimate, monthly_usd
from bot.domain.retention import (
    EXPIRE,
    IGNORE,
    KEEP_ACTION,
    Item,
    build_inventory,
    decide,
    expired,
    item_from_image,
    item_from_snapshot,
)
from bot.errors import ConfigError

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def policy(**overrides) -> Policy:
    values = dict(
        name="daily-db", resource="volume", target_tags={"Backup": "daily"}, every=timedelta(hours=12), keep=3
    )
    values.update(overrides)
    return Policy(**values)


def snap(n: int, days_old: float, source: str = "vol-1", **kw) -> Item:
    """Snapshot n of `source`, `days_old` days before NOW, created by daily-db unless tags say otherwise."""
    tags = kw.pop("tags", {"chatops:policy": "daily-db"})
    return Item(
        id=f"snap-{n:04d}",
        region=kw.pop("region", "us-east-1"),
        kind="snapshot",
        source_id=source,
        created=NOW - timedelta(days=days_old),
        state=kw.pop("state", "completed"),
        size_gib=kw.pop("size_gib", 8),
        tags=tags,
        **kw,
    )


def actions(decisions) -> dict[str, str]:
    return {d.item.id: d.action for d in decisions}


def reasons(decisions) -> dict[str, str]:
    return {d.item.id: d.reason for d in decisions}


def daily(count: int, source: str = "vol-1", start: int = 0, **kw) -> list[Item]:
    """One snapshot a day, snap-start is today's."""
    return [snap(start + i, i, source, **kw) for i in range(count)]


def test_keeps_newest_n_and_expires_the_rest_without_max_age():
    decisions = decide(daily(5), policy(keep=3), NOW)
    assert actions(decisions) == {
        "snap-0000": "keep",
        "snap-0001": "keep",
        "snap-0002": "keep",
        "snap-0003": "expire",
        "snap-0004": "expire",
    }
    assert reasons(decisions)["snap-0000"] == "#1 of the newest 3 of vol-1"
    assert reasons(decisions)["snap-0004"] == "#5 of vol-1, outside the newest 3"


@pytest.mark.parametrize(
    ("max_age", "expected_expired"),
    [
        (None, ["snap-0003", "snap-0004", "snap-0005"]),
        (timedelta(days=30), []),  # outside keep but young: kept
        (timedelta(days=4), ["snap-0005"]),  # only the one older than 4 days
        (timedelta(days=5), []),  # exactly max_age old is not *older* than it
        (timedelta(hours=1), ["snap-0003", "snap-0004", "snap-0005"]),  # the newest 3 stay whatever their age
    ],
)
def test_max_age_only_expires_items_outside_keep_that_are_older(max_age, expected_expired):
    decisions = decide(daily(6), policy(keep=3, max_age=max_age), NOW)
    assert [i.id for i in expired(decisions)] == expected_expired


def test_expire_reason_names_rank_and_age():
    decisions = decide(daily(6), policy(keep=3, max_age=timedelta(days=4)), NOW)
    assert reasons(decisions)["snap-0005"] == "#6 of vol-1, outside the newest 3, 5d old > max_age 4d"
    assert reasons(decisions)["snap-0004"] == "4d old, within max_age 4d"


def test_keep_counts_per_source_and_per_region():
    inventory = daily(4, "vol-1") + daily(4, "vol-2", start=100) + daily(4, "vol-1", start=200, region="us-west-2")
    decisions = decide(inventory, policy(keep=2), NOW)
    assert sorted(i.id for i in expired(decisions)) == [
        "snap-0002",
        "snap-0003",
        "snap-0102",
        "snap-0103",
        "snap-0202",
        "snap-0203",
    ]


@pytest.mark.parametrize(
    ("item", "action", "reason"),
    [
        (snap(9, 90, tags={}), IGNORE, "created by no policy (no chatops:policy tag), not daily-db"),
        (snap(9, 90, tags={"chatops:policy": "weekly"}), IGNORE, "created by policy weekly, not daily-db"),
        (
            snap(9, 90, tags={"chatops:policy": "daily-db", "chatops:keep": "true"}),
            KEEP_ACTION,
            "pinned with chatops:keep=true",
        ),
        (
            snap(9, 90, tags={"chatops:policy": "daily-db", "chatops:keep": "TRUE"}),
            KEEP_ACTION,
            "pinned with chatops:keep=true",
        ),
        (snap(9, 90, backs_image="ami-12345678"), KEEP_ACTION, "backs registered AMI ami-12345678"),
        (snap(9, 90, state="pending"), KEEP_ACTION, "state pending; only completed snapshots expire"),
        (snap(9, 90, state="error"), KEEP_ACTION, "state error; only completed snapshots expire"),
        (snap(9, 90, source=""), KEEP_ACTION, "source unknown (no chatops:source tag); nothing to count keep against"),
    ],
    ids=["untagged", "other-policy", "pinned", "pinned-uppercase", "backs-ami", "pending", "error", "no-source"],
)
def test_out_of_scope_and_protected_items(item, action, reason):
    decisions = decide([*daily(3), item], policy(keep=3), NOW)
    assert (actions(decisions)[item.id], reasons(decisions)[item.id]) == (action, reason)
    assert expired(decisions) == []


def test_keep_false_tag_does_not_protect():
    item = snap(9, 90, tags={"chatops:policy": "daily-db", "chatops:keep": "false"})
    assert actions(decide([*daily(3), item], policy(keep=3), NOW))[item.id] == EXPIRE


def test_protected_items_do_not_count_toward_keep():
    # The three newest are pinned, pending and AMI-backing: the window of 2
    # still holds the two newest ordinary snapshots, so nothing ordinary is
    # lost to them.
    inventory = [
        snap(0, 0, tags={"chatops:policy": "daily-db", "chatops:keep": "true"}),
        snap(1, 1, state="pending"),
        snap(2, 2, backs_image="ami-12345678"),
        snap(3, 3),
        snap(4, 4),
        snap(5, 5),
    ]
    assert actions(decide(inventory, policy(keep=2), NOW)) == {
        "snap-0000": "keep",
        "snap-0001": "keep",
        "snap-0002": "keep",
        "snap-0003": "keep",
        "snap-0004": "keep",
        "snap-0005": "expire",
    }


def test_volume_policy_ignores_amis_and_instance_policy_ignores_snapshots():
    ami = Item("ami-1", "us-east-1", "image", "i-1", NOW - timedelta(days=90), "available", 8, {"chatops:policy": "x"})
    backing = snap(1, 90, "", tags={"chatops:policy": "x"})
    assert actions(decide([ami, backing], policy(name="x", resource="volume", keep=1), NOW)) == {
        "ami-1": IGNORE,
        "snap-0001": KEEP_ACTION,  # source unknown: the volume policy keeps it
    }
    images = [
        Item(f"ami-{n}", "us-east-1", "image", "i-1", NOW - timedelta(days=n), "available", 8, {"chatops:policy": "x"})
        for n in range(3)
    ]
    decisions = decide([*images, backing], policy(name="x", resource="instance", keep=1), NOW)
    assert actions(decisions) == {"ami-0": KEEP_ACTION, "ami-1": EXPIRE, "ami-2": EXPIRE, "snap-0001": IGNORE}
    assert reasons(decisions)["snap-0001"] == "a snapshot; policy x manages AMIs"


def test_failed_ami_is_never_expired():
    images = [
        Item("ami-0", "us-east-1", "image", "i-1", NOW, "available", 8, {"chatops:policy": "x"}),
        Item("ami-1", "us-east-1", "image", "i-1", NOW - timedelta(days=9), "failed", 8, {"chatops:policy": "x"}),
    ]
    decisions = decide(images, policy(name="x", resource="instance", keep=1), NOW)
    assert reasons(decisions)["ami-1"] == "state failed; only available AMIs expire"


def test_duplicate_listing_counts_once():
    # A pagination overlap lists snap-0000 twice; counting it twice would push snap-0001 out.
    inventory = daily(2)
    decisions = decide([inventory[0], *inventory], policy(keep=2), NOW)
    assert len(decisions) == 2
    assert expired(decisions) == []


def test_conflicting_duplicate_is_kept():
    first = snap(7, 30)
    again = snap(7, 30, state="pending")
    decisions = decide([*daily(2), first, again], policy(keep=1), NOW)
    assert [d.action for d in decisions if d.item.id == "snap-0007"] == [KEEP_ACTION]
    assert reasons(decisions)["snap-0007"] == "listed twice with different details; kept until a consistent listing"


def test_a_duplicate_that_differs_only_in_the_ami_it_backs_is_decided_alike_in_either_order():
    plain, backing = snap(7, 30), snap(7, 30, backs_image="ami-12345678")
    one_way = decide([*daily(2), plain, backing], policy(keep=1), NOW)
    assert decide([*daily(2), backing, plain], policy(keep=1), NOW) == one_way
    assert actions(one_way)["snap-0007"] == KEEP_ACTION


def test_an_item_with_no_state_is_kept_and_says_its_state_is_unknown():
    decisions = decide([*daily(3), snap(9, 90, state="")], policy(keep=1), NOW)
    assert reasons(decisions)["snap-0009"] == "state unknown; only completed snapshots expire"


def ami_item(n: int, days_old: float, **tags: str) -> Item:
    return Item(f"ami-{n}", "us-east-1", "image", "i-1", NOW - timedelta(days=days_old), "available", 8,
                {"chatops:policy": "x", **tags})  # fmt: skip


def test_an_instance_policy_expires_a_snapshot_its_deregistered_ami_left_behind_whatever_its_age():
    tags = {"chatops:policy": "x", "chatops:ami": "ami-gone"}
    leftover = snap(1, 0, "", tags=tags)  # newest of all, no source: still expired, it restores nothing alone
    still_backing = snap(2, 90, "", tags={**tags, "chatops:ami": "ami-0"}, backs_image="ami-0")
    pinned = snap(3, 90, "", tags={**tags, "chatops:keep": "true"})
    pending = snap(4, 90, "", tags=tags, state="pending")
    decisions = decide(
        [ami_item(0, 1), leftover, still_backing, pinned, pending], policy(name="x", resource="instance", keep=1), NOW
    )
    assert actions(decisions) == {
        "ami-0": KEEP_ACTION,
        "snap-0001": EXPIRE,
        "snap-0002": IGNORE,  # goes with its AMI
        "snap-0003": KEEP_ACTION,
        "snap-0004": KEEP_ACTION,
    }
    assert reasons(decisions)["snap-0001"] == (
        "left behind by AMI ami-gone, which is no longer registered; it backs no AMI"
    )
    assert reasons(decisions)["snap-0002"] == "a snapshot; policy x manages AMIs"


def test_a_volume_policy_s_snapshot_with_an_ami_tag_is_an_ordinary_backup():
    tagged = [snap(n, n, tags={"chatops:policy": "daily-db", "chatops:ami": "ami-gone"}) for n in range(3)]
    assert actions(decide(tagged, policy(keep=2), NOW)) == {
        "snap-0000": "keep",
        "snap-0001": "keep",
        "snap-0002": "expire",
    }


def test_ages_in_reasons_are_in_days_hours_minutes_or_seconds():
    ages = {"snap-0000": 5 / 86400, "snap-0001": 45 / 1440, "snap-0002": 3 / 24, "snap-0003": 9}
    inventory = [snap(int(i[-1]), days) for i, days in ages.items()]
    decisions = reasons(decide(inventory, policy(keep=0, max_age=timedelta(days=30)), NOW))
    assert [decisions[i].split(" old")[0] for i in ages] == ["5s", "45m", "3h", "9d"]


def test_ages_at_a_unit_s_boundary_and_in_the_future():
    inventory = [snap(0, -1 / 24), snap(1, 1 / 24), snap(2, 1), snap(3, 2)]  # an hour ahead (clock skew), 1h, 1d, 2d
    decisions = reasons(decide(inventory, policy(keep=0, max_age=timedelta(days=2)), NOW))
    assert [decisions[f"snap-000{n}"].split(" old")[0] for n in range(4)] == ["0s", "1h", "1d", "2d"]


def test_items_of_an_unknown_kind_are_ignored_and_named_as_they_are():
    weird = [dataclasses.replace(snap(n, 1), kind=kind) for n, kind in enumerate(["volume", ""])]
    assert reasons(decide(weird, policy(), NOW)) == {
        "snap-0000": "a volume; policy daily-db manages snapshots",
        "snap-0001": "a unknown; policy daily-db manages snapshots",
    }


def test_aware_datetimes_in_any_zone_are_ranked_by_the_instant():
    india = ZoneInfo("Asia/Kolkata")  # UTC+05:30: its wall clock reads later than UTC's for the same instant
    inventory = [
        dataclasses.replace(snap(0, 0), created=NOW - timedelta(hours=3)),
        dataclasses.replace(snap(1, 0), created=(NOW - timedelta(hours=4)).astimezone(india)),  # older: expires
    ]
    assert actions(decide(inventory, policy(keep=1), NOW)) == {"snap-0000": KEEP_ACTION, "snap-0001": EXPIRE}


def test_naive_datetimes_are_utc_and_mix_with_aware_ones():
    tags = {"chatops:policy": "p"}
    naive = Item("naive", "r", "snapshot", "v", datetime(2024, 6, 5, 12), "completed", 1, tags)
    aware = Item("aware", "r", "snapshot", "v", NOW - timedelta(hours=1), "completed", 1, tags)
    decisions = decide([naive, aware], policy(name="p", keep=1, max_age=timedelta(days=5)), NOW.replace(tzinfo=None))
    assert reasons(decisions)["naive"] == "#2 of v, outside the newest 1, 10d old > max_age 5d"


# --- grandfather-father-son ---------------------------------------------------


def test_gfs_daily_keeps_newest_of_each_recent_day():
    # Two snapshots a day for 10 days (at 10:00 and 22:00): keep=1, keep_daily=4.
    inventory = []
    for day in range(10):
        for hour, n in ((22, day * 2), (10, day * 2 + 1)):
            created = datetime(2024, 6, 15 - day, hour, tzinfo=UTC)
            inventory.append(
                Item(f"snap-{n:02d}", "r", "snapshot", "vol-1", created, "completed", 1, {"chatops:policy": "p"})
            )
    decisions = decide(inventory, policy(name="p", keep=1, keep_daily=4), datetime(2024, 6, 15, 23, tzinfo=UTC))
    kept = sorted(d.item.id for d in decisions if d.action == KEEP_ACTION)
    assert kept == ["snap-00", "snap-02", "snap-04", "snap-06"]
    assert reasons(decisions)["snap-02"] == "newest of day 2024-06-14 (keep_daily 4)"
    assert reasons(decisions)["snap-00"] == "#1 of the newest 1 of vol-1; newest of day 2024-06-15 (keep_daily 4)"
    assert reasons(decisions)["snap-08"] == "#9 of vol-1, outside the newest 1, not the newest of a kept day/week/month"


def test_gfs_counts_days_that_have_a_snapshot_not_calendar_days():
    # A week-long gap (source down) does not erase the older dailies.
    inventory = [snap(0, 0), snap(1, 1), snap(10, 9), snap(11, 10), snap(12, 11)]
    decisions = decide(inventory, policy(keep=1, keep_daily=4), NOW)
    assert [i.id for i in expired(decisions)] == ["snap-0012"]


def test_gfs_weekly_and_monthly_tiers():
    # One snapshot a day, Jan 1 → Jun 15 2024 (168 days); keep=2, 3 weeklies, 4 monthlies.
    inventory = daily(167)
    decisions = decide(inventory, policy(keep=2, keep_weekly=3, keep_monthly=4), NOW)
    kept = {d.item.created.date().isoformat(): d.reason for d in decisions if d.action == KEEP_ACTION}
    assert sorted(kept) == [
        "2024-03-31",  # newest of March
        "2024-04-30",  # newest of April
        "2024-05-31",  # newest of May
        "2024-06-02",  # Sunday: newest of ISO week 22
        "2024-06-09",  # Sunday: newest of ISO week 23
        "2024-06-14",  # #2 of the window
        "2024-06-15",  # #1, newest of week 24 and of June
    ]
    assert kept["2024-06-15"] == (
        "#1 of the newest 2 of vol-1; newest of week 2024-W24 (keep_weekly 3); newest of month 2024-06 (keep_monthly 4)"
    )


def test_gfs_tiers_keep_past_max_age():
    decisions = decide(daily(100), policy(keep=1, keep_monthly=3, max_age=timedelta(days=7)), NOW)
    kept = sorted(d.item.created.date().isoformat() for d in decisions if d.action == KEEP_ACTION)
    assert kept[:2] == ["2024-04-30", "2024-05-31"]
    assert len(kept) == 2 + 8  # two month-ends + today..7 days ago


def test_gfs_days_follow_the_given_time_zone():
    # 23:30 UTC on the 14th is already the 15th in Paris.
    late = Item(
        "late", "r", "snapshot", "v", datetime(2024, 6, 14, 23, 30, tzinfo=UTC), "completed", 1, {"chatops:policy": "p"}
    )
    early = Item(
        "early", "r", "snapshot", "v", datetime(2024, 6, 14, 12, tzinfo=UTC), "completed", 1, {"chatops:policy": "p"}
    )
    newest = Item(
        "newest", "r", "snapshot", "v", datetime(2024, 6, 15, 9, tzinfo=UTC), "completed", 1, {"chatops:policy": "p"}
    )
    rules = policy(name="p", keep=1, keep_daily=2)
    assert actions(decide([late, early, newest], rules, NOW)) == {"newest": "keep", "late": "keep", "early": "expire"}
    in_paris = decide([late, early, newest], rules, NOW, tz=ZoneInfo("Europe/Paris"))
    assert actions(in_paris) == {"newest": "keep", "late": "expire", "early": "keep"}


# --- adapters and costs -----------------------------------------------------------


def gw_snapshot(sid: str, volume: str = "vol-1", size: int = 8, **tags: str) -> Snapshot:
    return Snapshot(sid, "us-east-1", volume, "completed", "100%", size, NOW, tags=tags)


@pytest.mark.parametrize(
    ("volume", "tags", "source"),
    [
        ("vol-1", {}, "vol-1"),
        ("vol-1", {"chatops:source": "vol-2"}, "vol-2"),
        ("vol-ffffffff", {"chatops:source": "vol-2"}, "vol-2"),  # a copy: VolumeId is a placeholder
        ("vol-ffffffff", {}, ""),
    ],
)
def test_snapshot_source(volume, tags, source):
    assert item_from_snapshot(gw_snapshot("snap-1", volume, **tags)).source_id == source


def test_build_inventory_marks_backing_snapshots_and_sizes_amis():
    snaps = [gw_snapshot("snap-a", size=8), gw_snapshot("snap-b", size=100), gw_snapshot("snap-c", size=5)]
    images = [
        Image("ami-1", "us-east-1", "web", "available", NOW, ("snap-a", "snap-b"), tags={"chatops:source": "i-1"}),
        Image("ami-2", "us-east-1", "old", "deregistered", NOW, ("snap-c",)),
    ]
    items = {i.id: i for i in build_inventory(snaps, images)}
    assert items["snap-a"].backs_image == "ami-1"
    assert items["snap-b"].backs_image == "ami-1"
    assert items["snap-c"].backs_image is None
    assert (items["ami-1"].kind, items["ami-1"].size_gib, items["ami-1"].source_id) == ("image", 108, "i-1")
    assert "ami-2" not in items


def test_adapters_carry_every_field_retention_reads():
    when = datetime(2024, 6, 1, 8, 30)  # naive, as some listings are: taken as UTC
    gw = Snapshot("snap-9", "eu-west-1", "vol-9", "pending", "40%", 30, when, tags={"chatops:policy": "p"})
    assert item_from_snapshot(gw, "ami-7") == Item(
        "snap-9", "eu-west-1", "snapshot", "vol-9", when.replace(tzinfo=UTC), "pending", 30, {"chatops:policy": "p"},
        "ami-7",
    )  # fmt: skip
    image = Image("ami-9", "eu-west-1", "web", "pending", when, ("snap-9",), tags={"chatops:source": "i-9"})
    assert item_from_image(image, 30) == Item(
        "ami-9", "eu-west-1", "image", "i-9", when.replace(tzinfo=UTC), "pending", 30, {"chatops:source": "i-9"}
    )
    bare = item_from_image(Image("ami-8", "eu-west-1", "web", "available", NOW, ()))
    assert (bare.source_id, bare.size_gib) == ("", 0)


def test_an_ami_whose_snapshots_are_not_listed_counts_them_as_zero_gib():
    images = [
        Image("ami-1", "us-east-1", "web", "available", NOW, ("snap-a", "snap-x"), tags={"chatops:source": "i-1"})
    ]
    [snapshot_a, ami] = build_inventory([gw_snapshot("snap-a", size=8)], images)
    assert (snapshot_a.backs_image, ami.size_gib) == ("ami-1", 8)
    assert build_inventory([], images)[0].size_gib == 0


def test_costs_of_expired_items():
    decisions = decide(daily(6, size_gib=100), policy(keep=2), NOW)
    assert estimate(expired(decisions), 0.05) == Cost(count=4, gib=400, usd_month=20.0)
    assert estimate([], 0.05) == Cost()
    assert monthly_usd(3, 0.05) == 0.15
    assert Cost(1, 2, 0.1) + Cost(2, 4, 0.2) == Cost(3, 6, 0.3)


# --- config -------------------------------------------------------------------------


def raw_policy(**extra) -> dict:
    return {"policies": [{"name": "p", "resource": "volume", "target_tags": {"B": "1"}, "every": "1d", **extra}]}


def test_gfs_fields_default_off_and_parse():
    assert (Policy.keep_daily, Policy.keep_weekly, Policy.keep_monthly) == (0, 0, 0)
    (p,) = parse_config(raw_policy(keep_daily=7, keep_weekly=4, keep_monthly=12)).policies
    assert (p.keep_daily, p.keep_weekly, p.keep_monthly) == (7, 4, 12)
    shipped = load_config(Path(__file__).resolve().parents[2] / "config.toml", env={})
    assert all(p.keep_daily == p.keep_weekly == p.keep_monthly == 0 for p in shipped.policies)


@pytest.mark.parametrize("value", [-1, 1.5, "7"])
def test_gfs_fields_reject_bad_values(value):
    with pytest.raises(ConfigError, match=r"policies\[0\]\.keep_weekly: expected a whole number, 0 or more"):
        parse_config(raw_policy(keep_weekly=value))


@pytest.mark.parametrize(
    ("until", "snoozed"),
    [
        ((NOW + timedelta(days=3)).isoformat(), True),
        ((NOW + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"), True),  # no zone: UTC
        ((NOW - timedelta(seconds=1)).isoformat(), False),  # over: an ordinary item again
        ("next tuesday", False),  # does not parse: protects nothing
        ("", False),
    ],
)
def test_a_snoozed_item_is_kept_until_its_snooze_ends_and_counts_toward_nothing(until, snoozed):
    item = snap(9, 90, tags={"chatops:policy": "daily-db", "chatops:snooze-until": until})
    decisions = decide([*daily(3), item], policy(keep=3), NOW)
    assert actions(decisions)[item.id] == ("keep" if snoozed else EXPIRE)
    if snoozed:
        assert reasons(decisions)[item.id].startswith("snoozed until ")
    newest_snoozed = snap(10, 0, tags={"chatops:policy": "daily-db", "chatops:snooze-until": until})
    window = actions(decide([newest_snoozed, *daily(3, start=20, source="vol-1")], policy(keep=3), NOW))
    assert list(window.values()).count(EXPIRE) == (0 if snoozed else 1)
