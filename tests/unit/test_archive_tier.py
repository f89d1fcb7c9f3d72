"""The archive tier's pure parts: config validation, retention's rules for archived snapshots, the cost lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Policy, parse_config
from bot.domain.costs import archive_estimate
from bot.domain.lifecycle import sweep_plan
from bot.domain.retention import Item, decide
from bot.domain.sweep_report import SweepReport, policy_report
from bot.errors import ConfigError
from bot.slack.blocks import sweep_report_message
from bot.slack.blocks.archive import archive_line
from bot.testing.fakeslack import message_text

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
RAW = {"name": "daily-db", "resource": "volume", "target_tags": {"Backup": "daily"}, "every": "12h"}


def config_error(**policy) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config({"policies": [{**RAW, **policy}]})
    return caught.value


# --- config ------------------------------------------------------------------------


def test_archive_policy_and_price_parse():
    config = parse_config({"policies": [{**RAW, "on_expired": "archive", "archive_delete_after": "180d"}]})
    [policy] = config.policies
    assert policy.on_expired == "archive" and policy.archive_delete_after == timedelta(days=180)
    assert config.pricing.snapshot_archive_gb_month == 0.0125
    assert parse_config({"pricing": {"snapshot_archive_gb_month": 0.01}}).pricing.snapshot_archive_gb_month == 0.01


def test_an_instance_policy_cannot_archive():
    error = config_error(resource="instance", on_expired="archive")
    assert error.key == "policies[0].on_expired" and "only snapshots (volume policies) can be archived" in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize("short", ["89d", "12w", "30d", "2h"])
def test_archive_delete_after_is_at_least_the_archive_minimum(short):
    error = config_error(on_expired="archive", archive_delete_after=short)
    assert error.key == "policies[0].archive_delete_after" and "at least 90d" in str(error)


def test_archive_delete_after_only_with_archive():
    error = config_error(on_expired="delete", archive_delete_after="180d")
    assert error.key == "policies[0].archive_delete_after" and 'on_expired = "archive"' in str(error)


# --- retention ------------------------------------------------------------------------


def archive_policy(**changes) -> Policy:
    values = dict(name="daily-db", resource="volume", target_tags={"B": "d"}, every=timedelta(hours=12), keep=2)
    return Policy(**{**values, "on_expired": "archive", "archive_delete_after": timedelta(days=90), **changes})


def snap(n: int, days_old: float, tier: str = "standard", archived_days: float | None = None, **kw) -> Item:
    tags = {"chatops:policy": "daily-db", **kw.pop("tags", {})}
    if archived_days is not None:
        tags["chatops:archived-at"] = (NOW - timedelta(days=archived_days)).isoformat()
    return Item(
        f"snap-{n:04d}", "us-east-1", "snapshot", "vol-1", NOW - timedelta(days=days_old), "completed", 8, tags,
        tier=tier, **kw,
    )  # fmt: skip


def actions(items, policy) -> dict[str, str]:
    return {d.item.id: d.action for d in decide(items, policy, NOW)}


def test_archived_snapshots_do_not_count_toward_keep_and_are_not_archived_again():
    items = [snap(0, 0), snap(1, 1), snap(2, 2), snap(3, 50, "archive", archived_days=10)]
    got = actions(items, archive_policy())
    # keep = 2 counts standard-tier snapshots only: the archived one neither fills the window nor expires again
    assert got == {"snap-0000": "keep", "snap-0001": "keep", "snap-0002": "expire", "snap-0003": "keep"}


@pytest.mark.parametrize(
    ("archived", "extra", "action"),
    [
        (91, {}, "expire"),
        (89, {}, "keep"),
        (None, {}, "keep"),  # archived outside the bot: when is unknown
        (91, {"tags": {"chatops:keep": "true"}}, "keep"),
        (91, {"tags": {"chatops:snooze-until": (NOW + timedelta(days=1)).isoformat()}}, "keep"),
        (91, {"backs_image": "ami-1"}, "keep"),
        (91, {"restore_expiry": NOW + timedelta(days=2)}, "keep"),  # temporarily restored: in use
        (91, {"restore_expiry": NOW - timedelta(days=2)}, "expire"),
    ],
)
def test_archive_delete_after_deletes_archived_snapshots_only_past_it_and_unprotected(archived, extra, action):
    assert actions([snap(0, 0), snap(9, 200, "archive", archived, **extra)], archive_policy())["snap-0009"] == action


def test_without_archive_delete_after_or_under_another_policy_an_archived_snapshot_stays():
    old = snap(9, 900, "archive", archived_days=800)
    assert actions([old], archive_policy(archive_delete_after=None))["snap-0009"] == "keep"
    assert actions([old], archive_policy(on_expired="delete", archive_delete_after=None))["snap-0009"] == "keep"


def test_a_snapshot_restored_permanently_is_not_archived_again():
    restored = snap(9, 300, "standard", archived_days=100)
    assert actions([snap(0, 0), snap(1, 1), restored], archive_policy())["snap-0009"] == "keep"


# --- costs and messages ---------------------------------------------------------------


def test_the_archive_line_says_both_prices_and_the_catch():
    line = archive_line(archive_estimate(12, 96, 0.05, 0.0125))
    assert line.startswith(
        "archiving 12 snapshots (96 GiB full size) ≈ $1.20/month in archive vs up to $4.80/month standard"
    )
    assert "billed on the full size" in line and "a restore takes hours" in line


def test_an_archive_sweep_plan_archives_standard_snapshots_and_deletes_archived_ones():
    policy = archive_policy()
    items = [snap(0, 0), snap(1, 1), snap(2, 2), snap(3, 3), snap(4, 300, "archive", archived_days=100)]
    expired = [d for d in decide(items, policy, NOW) if d.action == "expire"]
    plan = sweep_plan(policy, expired, 0.05, 0.0125)
    assert plan.params["archive"] == ["snap-0002", "snap-0003"]
    assert "archive 2 expired snapshots, delete 1 archived past archive_delete_after" in plan.title
    assert plan.gib_freed == 8 and plan.usd_month_freed == 0.1
    assert "(16 GiB full size) ≈ $0.20/month in archive vs up to $0.80/month standard" in plan.warnings[0]


def test_the_preview_of_an_archive_policy_shows_the_saving():
    policy = archive_policy()
    decisions = decide([snap(0, 0), snap(1, 1), snap(2, 2), snap(3, 3)], policy, NOW)
    report = policy_report("daily-db", "archive", decisions, dry_run=True)
    text = message_text(sweep_report_message(SweepReport((report,), NOW, 0.05, 0.0125)))
    assert "would archive 2 snapshots (16 GiB full size) ≈ $0.20/month in archive vs up to $0.80/month standard" in text
    assert "Would archive (archived ones: delete):" in text


def test_the_digest_counts_archived_snapshots_and_prices_them_in_the_archive():
    from bot.aws.models import Snapshot
    from bot.domain.digest import RegionInventory, build_digest
    from bot.slack.blocks import digest_message

    def made(n: int, tier: str) -> Snapshot:
        return Snapshot(f"snap-{n}", "us-east-1", "vol-1", "completed", "100%", 8, NOW, storage_tier=tier)

    inventory = RegionInventory("us-east-1", snapshots=[made(1, "archive"), made(2, "archive"), made(3, "standard")])
    digest = build_digest([inventory], {}, 0, NOW, 0.05)
    assert (digest.totals.archived, digest.totals.archived_gib) == (2, 16)
    text = message_text(digest_message(digest))
    assert "in the archive tier: 2 snapshots (16 GiB full size) ≈ $0.20/month in archive vs up to $0.80/month" in text
