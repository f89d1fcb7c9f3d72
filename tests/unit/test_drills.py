"""Restore drills: the pure rules (pick, verdicts, cost, overdue), the config keys, the grammar, the rendering,
and what moto cannot show — a restore slower than drill_timeout — against the project's fake EC2, whose
volumes stay `creating` for as long as it is told (a fake clock makes the wait instant)."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from benchmarks.fake_ec2 import FakeEc2
from bot.aws.gateway import Ec2Gateway
from bot.aws.models import Image, Snapshot, Volume
from bot.config import Config, parse_config, with_overrides
from bot.domain import drills
from bot.domain.drills import Drill, PolicyDrills, Target
from bot.errors import ConfigError, Conflict, UsageError
from bot.flows import drill_flow
from bot.flows.deps import Deps
from bot.flows.worker import Worker
from bot.process.app import make_slack_client
from bot.slack import blocks
from bot.slack.commands import parse
from bot.state.store import Store
from tests.support.factories import daily_policy

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REGION = "us-east-1"


def target(backup: str, source: str, hours_old: float, region: str = REGION) -> Target:
    return Target(drills.SNAPSHOT, region, backup, source, NOW - timedelta(hours=hours_old), 8)


# --- pick --------------------------------------------------------------------------------------------------


def test_latest_picks_the_newest_backup_of_each_source():
    items = [target("snap-a1", "vol-a", 30), target("snap-a2", "vol-a", 2), target("snap-b1", "vol-b", 400)]
    assert [t.backup_id for t in drills.pick(items, "latest", timedelta(days=7), NOW)] == ["snap-a2", "snap-b1"]


def test_random_picks_only_within_the_window_and_skips_a_source_with_nothing_recent():
    items = [target(f"snap-a{i}", "vol-a", 24 * i + 1) for i in range(10)] + [target("snap-b", "vol-b", 24 * 30)]
    seen = {
        t.backup_id
        for seed in range(200)
        for t in drills.pick(items, "random", timedelta(days=7), NOW, random.Random(seed))
    }
    assert seen == {f"snap-a{i}" for i in range(7)}  # 1 h … 6 d old; 7 d 1 h is outside; vol-b has none


def test_a_dr_copy_is_its_own_source_in_its_own_region():
    items = [target("snap-1", "vol-a", 1), target("snap-2", "vol-a", 1, region="us-west-2")]
    assert {t.source_key for t in drills.pick(items, "latest", timedelta(days=7), NOW)} == {
        "us-east-1/vol-a",
        "us-west-2/vol-a",
    }


# --- what can be drilled, and the verdicts -----------------------------------------------------------------


def snapshot(state: str = "completed", tier: str = "standard") -> Snapshot:
    return Snapshot("snap-0123456789abcdef0", REGION, "vol-1", state, "100%", 8, NOW, storage_tier=tier)


@pytest.mark.parametrize(
    ("snap", "says"),
    [(snapshot("pending"), "is pending"), (snapshot("error"), "is error"), (snapshot(tier="archive"), "archive tier")],
)
def test_a_snapshot_that_cannot_restore_now_is_refused_with_the_reason(snap, says):
    with pytest.raises(Conflict) as caught:
        drills.drillable_snapshot(snap)
    assert says in caught.value.message


def test_an_unavailable_ami_is_refused():
    image = Image("ami-0123456789abcdef0", REGION, "web", "pending", NOW)
    with pytest.raises(Conflict, match="only an available AMI"):
        drills.drillable_image(image)


def test_the_restored_volume_must_be_available_and_at_least_the_snapshots_size():
    volume = Volume("vol-1", REGION, "available", 8, "gp3", "us-east-1a", NOW)
    assert drills.volume_verdict(volume, 8) == ""
    assert "less than the snapshot's 10 GiB" in drills.volume_verdict(volume, 10)
    assert "is error" in drills.volume_verdict(dataclasses.replace(volume, state="error"), 8)


def test_the_drill_type_follows_the_amis_architecture_unless_configured():
    image = Image("ami-1", REGION, "x", "available", NOW, architecture="arm64")
    assert drills.instance_type_for(image) == "t4g.micro"
    assert drills.instance_type_for(dataclasses.replace(image, architecture="x86_64")) == "t3.micro"
    assert drills.instance_type_for(image, "m7g.medium") == "m7g.medium"


def test_drill_resources_carry_the_run_and_never_the_policy_or_source_tags():
    tags = drills.drill_tags("drill-abc", "U1")
    assert tags["chatops:drill"] == "drill-abc" and tags["chatops:managed"] == "true"
    assert "chatops:policy" not in tags and "chatops:source" not in tags
    assert drills.is_drill_resource(tags, "drill-abc") and not drills.is_drill_resource(tags, "drill-other")
    assert not drills.is_drill_resource({"chatops:managed": "true"})


def test_cost_counts_volume_gib_hours_and_instance_minutes():
    cost = drills.drill_cost(100, 1800, 600, volume_gb_month=0.08, instance_hour=0.0104)
    assert cost.gib_hours == 50.0 and cost.instance_minutes == 10.0
    assert cost.usd == pytest.approx(50 * 0.08 / 730 + 10 / 60 * 0.0104, abs=1e-6)


# --- overdue ------------------------------------------------------------------------------------------------


def test_a_source_without_a_successful_drill_in_twice_the_interval_is_overdue():
    week = timedelta(days=7)
    last = {"r/vol-fresh": NOW - timedelta(days=3), "r/vol-stale": NOW - timedelta(days=15)}
    sources = ["r/vol-fresh", "r/vol-stale", "r/vol-never"]
    assert drills.overdue(sources, last, week, NOW, since=NOW - timedelta(days=60)) == ("r/vol-never", "r/vol-stale")


def test_nothing_is_overdue_before_two_intervals_since_drills_began():
    assert drills.overdue(["r/vol-never"], {}, timedelta(days=7), NOW, since=NOW - timedelta(days=13)) == ()


# --- config and grammar -------------------------------------------------------------------------------------


def raw_policy(**keys) -> dict:
    return {"policies": [{"name": "p", "resource": "volume", "target_tags": {"a": "b"}, "every": "1d", **keys}]}


def test_drill_keys_parse_with_their_defaults():
    [policy] = parse_config(raw_policy(drill="7d")).policies
    assert policy.drills and policy.drill == timedelta(days=7)
    assert (policy.drill_pick, policy.drill_window, policy.drill_timeout) == (
        "latest",
        timedelta(days=7),
        timedelta(minutes=30),
    )
    assert not parse_config(raw_policy()).policies[0].drills


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        ({"drill": "7d", "drill_cron": "0 4 * * 0"}, "policies[0]"),
        ({"drill_pick": "oldest"}, "policies[0].drill_pick"),
        ({"drill_instance": "i-nope"}, "policies[0].drill_instance"),
        ({"drill_subnet": "subnet-0123456789abcdef0"}, "policies[0].drill_subnet"),
        ({"resource": "instance", "drill_instance": "i-0123456789abcdef0"}, "policies[0].drill_instance"),
        ({"drill_az": "us-east-1a", "drill_instance": "i-0123456789abcdef0"}, "policies[0].drill_az"),
    ],
)
def test_bad_drill_keys_stop_start_up_naming_the_key(keys, where):
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_policy(**keys))
    assert caught.value.key == where


def test_drill_verbs_parse_and_refuse_a_malformed_id():
    inv = parse("snapshot", "drill snap-0123456789abcdef0", REGION)
    assert inv.verb.name == "drill" and inv.args["snapshot_id"] == "snap-0123456789abcdef0"
    assert parse("ami", "drill ami-0123456789abcdef0 region=us-west-2", REGION).region == "us-west-2"
    with pytest.raises(UsageError, match="not a valid snapshot ID"):
        parse("snapshot", "drill snap-xyz", REGION)
    with pytest.raises(UsageError, match="missing image ID"):
        parse("ami", "drill", REGION)
    assert parse("lifecycle", "drills", REGION).args["policy"] is None
    assert parse("lifecycle", "drills daily-db", REGION).args["policy"] == "daily-db"


# --- rendering -----------------------------------------------------------------------------------------------


def drill(**changes) -> Drill:
    base = Drill(
        id="drill-1",
        kind=drills.SNAPSHOT,
        region=REGION,
        backup_id="snap-1",
        source_id="vol-1",
        backup_created=NOW - timedelta(hours=5),
        started_at=NOW - timedelta(minutes=3),
        state=drills.OK,
        restored_id="vol-9",
        ready_seconds=4.25,
        size_gib=8,
        gib_hours=0.02,
        cost_usd=0.0001,
    )
    return dataclasses.replace(base, **changes)


def test_a_drill_result_shows_the_evidence_and_escapes_aws_text():
    msg = blocks.drill_result(drill(state="failed", reason="<!channel> broke"), NOW)
    text = msg["blocks"][0]["text"]["text"]
    assert "`snap-1`" in text and "4h old" in text and "vol-9" in text and "4.2 s" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in str(msg)
    assert "0.020 GiB-hours of volume ≈ $0.0001" in text


def test_the_digest_names_overdue_sources_and_the_last_restore_time():
    section = blocks.digest_drill_section(
        [PolicyDrills("daily-db", timedelta(days=7), drill(), ("us-east-1/vol-stale",), (), 2)], NOW
    )
    text = section[0]["text"]["text"]
    assert "*daily-db*" in text and "restored in *4.2 s*" in text
    assert "1 source of 2 without a successful drill in 14d" in text and "`us-east-1/vol-stale`" in text


# --- a slow restore: the timeout, against the fake EC2 -------------------------------------------------------


class FakeTime:
    """A monotonic clock the drill's sleep moves: a 30-minute wait takes no time."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def slow_ec2(monkeypatch):
    """The fake EC2 with volumes `creating` for a simulated day: no drill sees one available."""
    with FakeEc2(pending_for=86400) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        yield fake


@pytest.fixture
def deps(slow_ec2, fake_slack):
    config = with_overrides(Config(), slack={"digest_channel": "C0DIGEST"}, aws={"poll_interval": timedelta(minutes=1)})
    config = dataclasses.replace(config, policies=(daily_policy(drill=timedelta(days=7)),))
    deps = Deps(
        config=config,
        gateway=Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1),
        store=Store(":memory:", lambda: NOW),
        worker=Worker(1),
        slack=make_slack_client("xoxb-test", fake_slack.api_url),
        clock=lambda: NOW,
    )
    yield deps
    deps.worker.shutdown()
    deps.store.close()


def test_a_restore_slower_than_drill_timeout_is_reported_cleaned_up_and_not_retried(deps, slow_ec2, fake_slack):
    [snap] = slow_ec2.seed_snapshots(REGION, 1, size_gib=20)
    time = FakeTime()
    policy = dataclasses.replace(deps.config.policies[0], drill_timeout=timedelta(minutes=30))
    ec2 = boto3.session.Session(region_name=REGION).client("ec2")
    target, _ = drill_flow.snapshot_target(deps, "", REGION, snap, "U1")

    result = drill_flow.run_drill(
        deps, target, policy=policy, user="U1", wait=drill_flow.Waiting(time.monotonic, time.sleep, 60.0)
    )

    assert result.state == drills.TIMED_OUT
    assert "not reached within drill_timeout (30m)" in result.reason
    assert sum(time.slept) == 1800 and len(time.slept) == 30  # polled each minute until the deadline, then stopped
    assert result.ready_seconds is None
    assert result.gib_hours == pytest.approx(20 * 0.5)  # the volume lived half an hour at 20 GiB
    assert ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["chatops:drill"]}])["Volumes"] == []
    [row] = deps.store.drills()
    assert row["state"] == "timed-out" and row["restored_id"].startswith("vol-")
    [posted] = fake_slack.channel_messages("Restore drill")
    assert posted["channel"] == "C0DIGEST" and "timed-out" in posted["text"]


# --- the store: drills a dead process left, and pruning -------------------------------------------------------


def test_a_drill_whose_process_died_is_interrupted_and_its_resources_become_leftovers(tmp_path):
    from bot.state import heartbeat

    path = str(tmp_path / "d.db")
    live, doomed, starting = Store(path), Store(path), Store(path)
    row = {"region": REGION, "kind": "snapshot", "backup_id": "snap-1"}
    live.start_drill({"id": "drill-live", **row})
    doomed.start_drill({"id": "drill-dead", **row})
    heartbeat.release(doomed.owner)  # as if that process died
    assert starting.running_drill_ids() == {"drill-live"}  # the dead one's resources are leftovers now
    assert [r["id"] for r in starting.interrupt_orphaned_drills()] == ["drill-dead"]
    states = dict(starting.db.execute("SELECT id, state FROM drills").fetchall())
    assert states == {"drill-live": "running", "drill-dead": "interrupted"}
    for s in (live, doomed, starting):
        s.close()


def test_pruning_keeps_each_sources_newest_good_and_newest_bad_drill():
    moment = [NOW]
    store = Store(":memory:", lambda: moment[0])
    for i, (state, source) in enumerate(
        [(drills.OK, "v1"), (drills.OK, "v1"), (drills.FAILED, "v1"), (drills.OK, "v2")]
    ):
        store.start_drill(
            {"id": f"d{i}", "policy": "p", "region": REGION, "kind": "snapshot", "backup_id": "s", "source_id": source}
        )
        store.finish_drill(f"d{i}", state)
        moment[0] += timedelta(minutes=1)
    moment[0] += timedelta(days=365)
    counts = store.prune(
        audit=timedelta(days=1),
        events=timedelta(days=1),
        watches=timedelta(days=1),
        runs=timedelta(days=1),
        approvals=timedelta(days=1),
    )
    assert counts["drills"] == 1
    assert sorted(r["id"] for r in store.drills(limit=10)) == ["d1", "d2", "d3"]
    assert set(store.last_ok_drills("p")) == {f"{REGION}/v1", f"{REGION}/v2"}
    store.close()


def test_a_drill_of_a_pending_snapshot_is_refused_before_anything_is_created(deps, slow_ec2):
    # moto completes every snapshot at once; the fake EC2 keeps this one pending for a simulated day.
    ec2 = boto3.session.Session(region_name=REGION).client("ec2")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    pending = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}

    with pytest.raises(Conflict) as caught:
        drill_flow.snapshot_target(deps, "", REGION, pending, "U1")

    assert caught.value.message == f"{pending} is pending; only a completed snapshot can be drilled."
    assert "/snapshot status" in caught.value.hint
    assert {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} == before and deps.store.drills() == []
