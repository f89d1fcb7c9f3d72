"""The benchmark EC2 stand-in (benchmarks/fake_ec2.py), driven by unmodified boto3 and by our gateway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fake_ec2 import ACCOUNT_ID, AMAZON_ID, FakeEc2
from bot import errors
from bot.aws.gateway import Ec2Gateway, assume_role_session
from bot.aws.pacing import Learning, Pacer, Rate
from bot.config import Account

ROOT = Path(__file__).resolve().parents[2]
NO_RETRIES = {"retries": {"mode": "standard", "total_max_attempts": 1}}
# One botocore session for the module: it caches the (large) EC2 model, which
# otherwise takes most of a second to load for every new client.
BOTOCORE = botocore.session.get_session()


class ManualClock:
    """A monotonic clock that moves only when told, so token buckets refill on cue."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def make_fake(monkeypatch):
    started: list[FakeEc2] = []

    def make(**options) -> FakeEc2:
        fake = FakeEc2(**options)
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.start())
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake(make_fake) -> FakeEc2:
    return make_fake()


@pytest.fixture(scope="module")
def unthrottled_fake():
    """One fake for every example of a property test (reset per example; reached by explicit URL)."""
    with FakeEc2(throttling=False) as fake:
        yield fake


def session() -> boto3.session.Session:
    return boto3.session.Session(botocore_session=BOTOCORE)


def client(region: str = "us-east-1", service: str = "ec2", endpoint_url: str | None = None, **config):
    return session().client(
        service, region_name=region, endpoint_url=endpoint_url, config=botocore.config.Config(**config)
    )


def all_snapshots(ec2, page_size: int = 1000, **params) -> list[dict]:
    pages = ec2.get_paginator("describe_snapshots").paginate(**params, PaginationConfig={"PageSize": page_size})
    return [s for page in pages for s in page["Snapshots"]]


def error_of(call, *args, **kwargs) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


# --- paging -----------------------------------------------------------------------


def test_boto3_pages_through_every_snapshot_once(fake):
    seeded = fake.seed_snapshots("us-east-1", 2500)
    ec2 = client()

    pages = list(
        ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 1000})
    )

    assert [len(p["Snapshots"]) for p in pages] == [1000, 1000, 500]
    got = [s["SnapshotId"] for p in pages for s in p["Snapshots"]]
    assert sorted(got) == sorted(seeded)
    assert fake.stats()["calls"] == {"DescribeSnapshots": 3}


def test_an_exact_multiple_of_the_page_ends_without_an_empty_page(fake):
    fake.seed_snapshots("us-east-1", 2000)

    assert len(all_snapshots(client())) == 2000
    assert fake.stats()["calls"]["DescribeSnapshots"] == 2


def test_without_max_results_a_describe_returns_everything(fake):
    fake.seed_snapshots("us-east-1", 1500)

    response = client().describe_snapshots(OwnerIds=["self"])

    assert len(response["Snapshots"]) == 1500
    assert "NextToken" not in response


def test_page_size_outside_five_to_a_thousand_is_refused(fake):
    ec2 = client()
    assert error_of(ec2.describe_snapshots, MaxResults=4) == ("InvalidParameterValue", 400)
    assert error_of(ec2.describe_images, MaxResults=1001) == ("InvalidParameterValue", 400)
    assert error_of(ec2.describe_snapshots, NextToken="garbage", MaxResults=5) == ("InvalidPaginationToken", 400)


def test_deletions_between_pages_neither_repeat_nor_skip_survivors(fake):
    seeded = fake.seed_snapshots("us-east-1", 30)
    ec2 = client()
    first = ec2.describe_snapshots(MaxResults=10)
    for snap in seeded[5:15]:  # half from the page already seen, half from the next
        ec2.delete_snapshot(SnapshotId=snap)

    rest = ec2.describe_snapshots(MaxResults=1000, NextToken=first["NextToken"])

    seen = [s["SnapshotId"] for s in first["Snapshots"] + rest["Snapshots"]]
    assert seen == seeded[:10] + seeded[15:]


# --- filters -----------------------------------------------------------------------


def test_filters_by_tag_tag_key_volume_id_status_and_wildcards(fake):
    daily = fake.seed_snapshots("us-east-1", 1200, tags={"policy": "daily", "team": "web"}, volumes=["vol-0000000a"])
    weekly = fake.seed_snapshots("us-east-1", 300, tags={"policy": "weekly"}, volumes=["vol-0000000b"])
    bare = fake.seed_snapshots("us-east-1", 50, volumes=["vol-0000000c"])
    ec2 = client()

    def ids(*filters, page_size=500):
        return {s["SnapshotId"] for s in all_snapshots(ec2, page_size, OwnerIds=["self"], Filters=list(filters))}

    assert ids({"Name": "tag:policy", "Values": ["daily"]}) == set(daily)
    assert ids({"Name": "tag:policy", "Values": ["daily", "weekly"]}) == set(daily + weekly)
    assert ids({"Name": "tag:policy", "Values": ["w*"]}) == set(weekly)
    assert ids({"Name": "tag-key", "Values": ["team"]}) == set(daily)
    assert ids({"Name": "volume-id", "Values": ["vol-0000000c"]}) == set(bare)
    assert ids({"Name": "tag:policy", "Values": ["daily"]}, {"Name": "volume-id", "Values": ["vol-0000000b"]}) == set()
    assert ids({"Name": "status", "Values": ["completed"]}, page_size=1000) == set(daily + weekly + bare)
    assert ids({"Name": "snapshot-id", "Values": [bare[0], weekly[0]]}) == {bare[0], weekly[0]}
    assert ids({"Name": "tag:missing", "Values": ["*"]}) == set()


def test_seeded_failed_snapshots_are_in_the_error_state(fake):
    good = fake.seed_snapshots("us-east-1", 3)
    bad = fake.seed_snapshots("us-east-1", 2, failed=True)
    ec2 = client()

    states = {s["SnapshotId"]: s["State"] for s in all_snapshots(ec2, OwnerIds=["self"])}
    errored = all_snapshots(ec2, OwnerIds=["self"], Filters=[{"Name": "status", "Values": ["error"]}])

    assert states == {**dict.fromkeys(good, "completed"), **dict.fromkeys(bad, "error")}
    assert {s["SnapshotId"] for s in errored} == set(bad)


def test_an_unknown_filter_is_refused_like_ec2(fake):
    assert error_of(client().describe_snapshots, Filters=[{"Name": "colour", "Values": ["red"]}]) == (
        "InvalidParameterValue",
        400,
    )


def test_owner_self_leaves_out_public_snapshots_and_images(fake):
    own = fake.seed_snapshots("us-east-1", 5)
    public = fake.seed_snapshots("us-east-1", 3, owner_id=AMAZON_ID, owner_alias="amazon", public=True)
    own_image = fake.seed_images("us-east-1", 1)[0]
    amazon_image = fake.seed_images("us-east-1", 1, owner_id=AMAZON_ID, owner_alias="amazon", public=True)[0]
    ec2 = client()

    assert {s["SnapshotId"] for s in all_snapshots(ec2, OwnerIds=["self"])} >= set(own)
    assert not {s["SnapshotId"] for s in all_snapshots(ec2, OwnerIds=["self"])} & set(public)
    assert {s["SnapshotId"] for s in all_snapshots(ec2)} >= set(own + public)
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [own_image]
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]] == [amazon_image]
    assert {i["ImageId"] for i in ec2.describe_images()["Images"]} == {own_image, amazon_image}


def test_describe_by_ids_and_the_errors_ec2_gives(fake):
    snaps = fake.seed_snapshots("us-east-1", 3)
    images = fake.seed_images("us-east-1", 2)
    ec2 = client()

    assert [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=snaps[1:])["Snapshots"]] == snaps[1:]
    assert [i["ImageId"] for i in ec2.describe_images(ImageIds=[images[1]])["Images"]] == [images[1]]
    assert error_of(ec2.describe_snapshots, SnapshotIds=["snap-0000000000000dead"]) == ("InvalidSnapshot.NotFound", 400)
    assert error_of(ec2.describe_images, ImageIds=["ami-0000000000000dead"]) == ("InvalidAMIID.NotFound", 400)
    assert error_of(ec2.describe_snapshots, SnapshotIds=["nonsense"]) == ("InvalidSnapshotID.Malformed", 400)
    assert error_of(ec2.describe_snapshots, SnapshotIds=snaps, MaxResults=5) == ("InvalidParameterCombination", 400)


def test_volumes_and_instances_page_and_filter(fake):
    instances = fake.seed_instances("us-east-1", 12, tags={"Name": "web"}, volumes_per_instance=2)
    spare = fake.seed_volumes("us-east-1", 7)
    ec2 = client()

    reservations = [
        r
        for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5})
        for r in page["Reservations"]
    ]
    assert sorted(i["InstanceId"] for r in reservations for i in r["Instances"]) == sorted(instances)
    volumes = [
        v
        for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": "status", "Values": ["available"]}], PaginationConfig={"PageSize": 5}
        )
        for v in page["Volumes"]
    ]
    assert sorted(v["VolumeId"] for v in volumes) == sorted(spare)
    attached = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instances[3]]}])["Volumes"]
    assert len(attached) == 2 and {a["InstanceId"] for v in attached for a in v["Attachments"]} == {instances[3]}


def test_each_region_has_its_own_inventory(fake):
    east = fake.seed_snapshots("us-east-1", 4)
    west = fake.seed_snapshots("us-west-2", 6)

    assert {s["SnapshotId"] for s in all_snapshots(client("us-east-1"))} == set(east)
    assert {s["SnapshotId"] for s in all_snapshots(client("us-west-2"))} == set(west)
    assert error_of(client("us-west-2").delete_snapshot, SnapshotId=east[0]) == ("InvalidSnapshot.NotFound", 400)
    by_region = fake.stats()["by_region"]
    assert by_region["us-east-1"]["calls"] == {"DescribeSnapshots": 1}
    assert by_region["us-west-2"]["calls"] == {"DescribeSnapshots": 1, "DeleteSnapshot": 1}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=0, max_size=40),
    retag=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(["a", "b", "c"])), max_size=8),
    deletes=st.lists(st.integers(0, 39), max_size=8),
    wanted=st.sets(st.sampled_from(["a", "b", "c"]), min_size=1),
    page_size=st.integers(5, 12),
)
def test_filtered_paging_matches_a_plain_scan(unthrottled_fake, values, retag, deletes, wanted, page_size):
    fake = unthrottled_fake
    fake.reset()
    ec2 = client(endpoint_url=fake.url)
    ids = fake.seed_snapshots("us-east-1", len(values), tags=lambda i: {"k": values[i]} if values[i] else {})
    truth = {sid: v for sid, v in zip(ids, values, strict=True)}
    query = {"OwnerIds": ["self"], "Filters": [{"Name": "tag:k", "Values": sorted(wanted)}]}
    all_snapshots(ec2, page_size, **query)  # builds the tag index before the changes below
    for index, value in retag:
        if index < len(ids) and ids[index] in truth:
            ec2.create_tags(Resources=[ids[index]], Tags=[{"Key": "k", "Value": value}])
            truth[ids[index]] = value
    for index in deletes:
        if index < len(ids) and ids[index] in truth:
            ec2.delete_snapshot(SnapshotId=ids[index])
            del truth[ids[index]]

    got = [s["SnapshotId"] for s in all_snapshots(ec2, page_size, **query)]

    assert got == [sid for sid in ids if sid in truth and truth[sid] in wanted]


# --- throttling ------------------------------------------------------------------------


def test_deletes_past_the_burst_get_request_limit_exceeded(make_fake):
    clock = ManualClock()
    fake = make_fake(clock=clock)
    snaps = fake.seed_snapshots("us-east-1", 120)
    ec2 = client(**NO_RETRIES)

    outcomes = []
    for snap in snaps[:110]:
        try:
            ec2.delete_snapshot(SnapshotId=snap)
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append((exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]))

    assert outcomes == ["ok"] * 100 + [("RequestLimitExceeded", 503)] * 10
    assert fake.stats()["throttled"] == {"DeleteSnapshot": 10}
    assert fake.count("us-east-1") == 20
    assert len(ec2.describe_snapshots(MaxResults=5)["Snapshots"]) == 5  # Describe has its own bucket

    clock.advance(1.0)  # DeleteSnapshot refills 5 tokens a second
    for snap in snaps[100:105]:
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_of(ec2.delete_snapshot, SnapshotId=snaps[105]) == ("RequestLimitExceeded", 503)


def test_speedup_scales_the_refill_rate(make_fake):
    clock = ManualClock()
    fake = make_fake(clock=clock, speedup=10)
    snaps = fake.seed_snapshots("us-east-1", 200)
    ec2 = client(**NO_RETRIES)
    for snap in snaps[:100]:
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_of(ec2.delete_snapshot, SnapshotId=snaps[100]) == ("RequestLimitExceeded", 503)

    clock.advance(1.0)  # 5/s × 10
    for snap in snaps[100:150]:
        ec2.delete_snapshot(SnapshotId=snap)

    assert error_of(ec2.delete_snapshot, SnapshotId=snaps[150]) == ("RequestLimitExceeded", 503)
    assert fake.stats()["throttled"] == {"DeleteSnapshot": 2}


def test_a_competitor_spends_its_share_of_every_refill_but_not_the_burst(make_fake):
    clock = ManualClock()
    fake = make_fake(clock=clock, competitor_share=0.4)
    snaps = fake.seed_snapshots("us-east-1", 200)
    ec2 = client(**NO_RETRIES)
    for snap in snaps[:100]:  # the buckets start full: another client only nibbles at them
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_of(ec2.delete_snapshot, SnapshotId=snaps[100]) == ("RequestLimitExceeded", 503)
    for _ in range(100):
        ec2.describe_snapshots(MaxResults=5)
    assert error_of(ec2.describe_snapshots, MaxResults=5) == ("RequestLimitExceeded", 503)

    clock.advance(1.0)  # every bucket: DescribeSnapshots refills 20/s, 40 % of it spent elsewhere
    for _ in range(12):
        ec2.describe_snapshots(MaxResults=5)
    assert error_of(ec2.describe_snapshots, MaxResults=5) == ("RequestLimitExceeded", 503)

    clock.advance(9.0)  # DeleteSnapshot refills 5/s: 30 tokens left to us in 10 s, not 50
    for snap in snaps[100:130]:
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_of(ec2.delete_snapshot, SnapshotId=snaps[130]) == ("RequestLimitExceeded", 503)
    assert fake.stats()["throttled"] == {"DeleteSnapshot": 2, "DescribeSnapshots": 2}


def test_a_competitor_share_is_a_share(make_fake):
    for share in (-0.1, 0.95):
        with pytest.raises(ValueError, match="competitor_share"):
            FakeEc2(competitor_share=share)


def test_unpaginated_unfiltered_describes_draw_on_the_smaller_bucket(make_fake):
    fake = make_fake(clock=ManualClock())
    fake.seed_snapshots("us-east-1", 10)
    ec2 = client(**NO_RETRIES)

    for _ in range(50):
        ec2.describe_snapshots(OwnerIds=["self"])
    assert error_of(ec2.describe_snapshots, OwnerIds=["self"]) == ("RequestLimitExceeded", 503)
    for _ in range(100):  # paginated: the standard Describe bucket, untouched so far
        ec2.describe_snapshots(OwnerIds=["self"], MaxResults=5)
    assert error_of(ec2.describe_snapshots, OwnerIds=["self"], MaxResults=5) == ("RequestLimitExceeded", 503)
    assert fake.stats()["throttled"] == {"DescribeSnapshots": 2}


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["RequestLimitExceeded", "InternalError", "drop"])
def test_injected_faults_are_retried_to_success_by_standard_retries(make_fake, fault):
    fake = make_fake()
    snap = fake.seed_snapshots("us-east-1", 1)[0]
    fake.fail_next("DeleteSnapshot", fault)
    ec2 = client(retries={"mode": "standard", "total_max_attempts": 3})

    response = ec2.delete_snapshot(SnapshotId=snap)

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert fake.ids("us-east-1") == set()
    stats = fake.stats()
    assert stats["faults"] == {fault: 1}
    assert stats["calls"] == {"DeleteSnapshot": 2}
    assert stats["deletions"] == {snap: 1}  # the faulted attempt never reached the inventory


def test_a_response_lost_after_the_delete_shows_as_a_repeated_deletion(make_fake):
    fake = make_fake()
    snap = fake.seed_snapshots("us-east-1", 1)[0]
    fake.fail_next("DeleteSnapshot", "drop", after=True)
    ec2 = client(retries={"mode": "standard", "total_max_attempts": 3})

    # The first attempt deleted it; the retry finds it gone, as against real EC2.
    assert error_of(ec2.delete_snapshot, SnapshotId=snap) == ("InvalidSnapshot.NotFound", 400)
    assert fake.ids("us-east-1") == set()
    assert fake.stats()["repeated_deletions"] == {snap: 2}


def test_fault_shares_inject_each_kind_and_are_counted(make_fake):
    fake = make_fake(throttle_share=0.2, error_share=0.2, drop_share=0.2, seed=7)
    fake.seed_snapshots("us-east-1", 10)
    ec2 = client(**NO_RETRIES)

    seen = {"ok": 0, "RequestLimitExceeded": 0, "InternalError": 0, "drop": 0}
    for _ in range(100):
        try:
            ec2.describe_snapshots(MaxResults=5)
            seen["ok"] += 1
        except botocore.exceptions.ClientError as exc:
            seen[exc.response["Error"]["Code"]] += 1
        except botocore.exceptions.ConnectionClosedError:
            seen["drop"] += 1

    faults = fake.stats()["faults"]
    assert {k: seen[k] for k in faults} == faults
    assert all(faults.get(k, 0) > 0 for k in ("RequestLimitExceeded", "InternalError", "drop"))
    assert seen["ok"] + sum(faults.values()) == 100


# --- mutations ----------------------------------------------------------------------------


def test_delete_snapshot_refuses_ami_backing_and_missing_snapshots(fake):
    free, backing = fake.seed_snapshots("us-east-1", 2)
    image = fake.register_image("us-east-1", [backing], name="golden")
    ec2 = client()

    assert error_of(ec2.delete_snapshot, SnapshotId=backing) == ("InvalidSnapshot.InUse", 400)
    ec2.delete_snapshot(SnapshotId=free)
    assert error_of(ec2.delete_snapshot, SnapshotId=free) == ("InvalidSnapshot.NotFound", 400)
    ec2.deregister_image(ImageId=image)
    ec2.delete_snapshot(SnapshotId=backing)

    assert fake.ids("us-east-1") == set()
    assert error_of(ec2.deregister_image, ImageId=image) == ("InvalidAMIID.NotFound", 400)
    assert fake.stats()["deletions"] == {free: 2, backing: 2, image: 2}


def test_create_image_snapshot_copy_and_tags(make_fake):
    fake = make_fake(pending_for=3600)
    instance = fake.seed_instances("us-west-2", 1, volumes_per_instance=2)[0]
    west = client("us-west-2")

    image_id = west.create_image(
        InstanceId=instance,
        Name="nightly-1",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "managed-by", "Value": "chatops"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "managed-by", "Value": "chatops"}]},
        ],
    )["ImageId"]
    image = west.describe_images(ImageIds=[image_id])["Images"][0]
    backing = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]]
    assert image["State"] == "pending" and len(backing) == 2
    snaps = west.describe_snapshots(SnapshotIds=backing)["Snapshots"]
    assert {s["State"] for s in snaps} == {"pending"}
    assert all(s["Tags"] == [{"Key": "managed-by", "Value": "chatops"}] for s in snaps)
    assert error_of(west.create_image, InstanceId=instance, Name="nightly-1") == ("InvalidAMIName.Duplicate", 400)

    fake.pending_for = 0
    volume = west.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance]}])["Volumes"][0]
    made = west.create_snapshot(VolumeId=volume["VolumeId"], Description="before upgrade")
    assert made["State"] == "pending" and made["VolumeSize"] == volume["Size"]
    copy_id = client("eu-west-1").copy_snapshot(
        SourceRegion="us-west-2", SourceSnapshotId=made["SnapshotId"], Description="dr copy"
    )["SnapshotId"]
    client("eu-west-1").create_tags(Resources=[copy_id], Tags=[{"Key": "dr", "Value": "yes"}])

    copied = client("eu-west-1").describe_snapshots(Filters=[{"Name": "tag:dr", "Values": ["yes"]}])["Snapshots"]
    assert [(s["SnapshotId"], s["Description"]) for s in copied] == [(copy_id, "dr copy")]
    assert error_of(west.create_snapshot, VolumeId="vol-0000000000000dead") == ("InvalidVolume.NotFound", 400)


def test_availability_zones_and_caller_identity(fake):
    zones = client("eu-west-1").describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])

    assert [z["ZoneName"] for z in zones["AvailabilityZones"]] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert client(service="sts").get_caller_identity()["Account"] == "123456789012"
    assert error_of(client().describe_key_pairs) == ("InvalidAction", 400)


# --- our gateway against it -------------------------------------------------------------------


def test_the_gateway_lists_pages_and_deletes_against_the_fake(fake):
    keep = fake.seed_snapshots("us-east-1", 2300, tags={"managed-by": "chatops"})
    backing = keep[0]
    image = fake.register_image("us-east-1", [backing], name="golden")
    gateway = Ec2Gateway(session())

    listed = list(gateway.describe_snapshots("us-east-1", filters=[{"Name": "tag:managed-by", "Values": ["chatops"]}]))
    assert sorted(s.id for s in listed) == sorted(keep)
    assert gateway.calls["DescribeSnapshots"] == 3
    assert gateway.images_using_snapshots("us-east-1", [backing, keep[1]]) == {backing: image}

    gateway.delete_snapshot("us-east-1", keep[1])
    with pytest.raises(errors.NotFound):
        gateway.delete_snapshot("us-east-1", keep[1])
    with pytest.raises(errors.Conflict):
        gateway.delete_snapshot("us-east-1", backing)
    assert gateway.get_snapshot("us-east-1", keep[2]).tags == {"managed-by": "chatops"}
    assert keep[1] not in fake.ids("us-east-1")
    assert gateway.account_id("us-east-1") == "123456789012"


def test_the_gateway_turns_lasting_throttling_into_throttled(make_fake):
    fake = make_fake(clock=ManualClock())
    snaps = fake.seed_snapshots("us-east-1", 102)
    gateway = Ec2Gateway(session(), max_attempts=1)  # one attempt: no retries
    for snap in snaps[:100]:
        gateway.delete_snapshot("us-east-1", snap)

    with pytest.raises(errors.Throttled):
        gateway.delete_snapshot("us-east-1", snaps[100])


def test_the_gateway_tells_its_pacer_of_every_throttle_and_of_nothing_else(make_fake):
    # A pacer believing in a deeper burst than EC2's: the 101st delete is throttled, and the pacer learns.
    fake = make_fake(clock=ManualClock())
    snaps = fake.seed_snapshots("us-east-1", 102)
    frozen = 50.0
    pacer = Pacer({"DeleteSnapshot": Rate(200, 5)}, headroom=0, clock=lambda: frozen, sleep=lambda _: None)
    gateway = Ec2Gateway(session(), max_attempts=1, pacer=pacer)
    with pytest.raises(errors.NotFound):  # an error, but not a throttle: nothing learned
        gateway.delete_snapshot("us-east-1", "snap-0123456789abcdef0")
    for snap in snaps[:99]:
        gateway.delete_snapshot("us-east-1", snap)
    assert pacer.per_second("us-east-1", "DeleteSnapshot") == pytest.approx(5.0)

    with pytest.raises(errors.Throttled):
        gateway.delete_snapshot("us-east-1", snaps[99])

    assert pacer.per_second("us-east-1", "DeleteSnapshot") == pytest.approx(5.0 * Learning().cut)
    assert pacer.per_second("us-west-2", "DeleteSnapshot") == 5.0  # another region's bucket is its own


def test_the_gateway_paces_every_attempt_retries_included(fake):
    # EC2 charges every request that reaches it; pacing only first attempts lets retries overdraw the bucket.
    class CountingPacer(Pacer):
        def __init__(self):
            super().__init__()
            self.taken: Counter[str] = Counter()

        def take(self, region: str, action: str) -> float:
            self.taken[action] += 1
            return super().take(region, action)

    [snap] = fake.seed_snapshots("us-east-1", 1)
    fake.fail_next("DeleteSnapshot", "InternalError", times=2)
    pacer = CountingPacer()
    Ec2Gateway(session(), pacer=pacer).delete_snapshot("us-east-1", snap)

    assert snap not in fake.ids("us-east-1")
    assert fake.stats()["calls"]["DeleteSnapshot"] == 3
    assert pacer.taken["DeleteSnapshot"] == 3


# --- accounts: STS AssumeRole and per-account state ------------------------------------------

PROD, STAGING = "111111111111", "222222222222"
PROD_ROLE, STAGING_ROLE = f"arn:aws:iam::{PROD}:role/chatops", f"arn:aws:iam::{STAGING}:role/chatops"


def assumed_client(role_arn: str, region: str = "us-east-1", service: str = "ec2", **assume):
    """A boto3 client signed with the keys STS hands out for `role_arn`."""
    creds = client(service="sts").assume_role(RoleArn=role_arn, RoleSessionName="bench", **assume)["Credentials"]
    # Keys on the client, not the session: the module's botocore session is shared.
    return session().client(
        service,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=botocore.config.Config(**NO_RETRIES),
    )


def test_assume_role_answers_credentials_that_act_in_the_roles_account(fake):
    answer = client(service="sts").assume_role(RoleArn=PROD_ROLE, RoleSessionName="chatops-bot")

    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith(f"ASIA{PROD}") and len(creds["AccessKeyId"]) == 20
    assert creds["SecretAccessKey"] and creds["SessionToken"] and creds["Expiration"].tzinfo is not None
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{PROD}:assumed-role/chatops/chatops-bot"
    identity = assumed_client(PROD_ROLE, service="sts").get_caller_identity()
    assert identity["Account"] == PROD
    assert identity["Arn"] == f"arn:aws:sts::{PROD}:assumed-role/chatops/bench"
    assert client(service="sts").get_caller_identity()["Account"] == ACCOUNT_ID  # the bot's own keys


def test_each_account_sees_and_deletes_only_its_own_snapshots(fake):
    own = fake.seed_snapshots("us-east-1", 3)
    prod = fake.seed_snapshots("us-east-1", 4, account=PROD)
    staging = fake.in_account(STAGING).seed_snapshots("us-east-1", 5)
    ec2_prod = assumed_client(PROD_ROLE)

    listed = all_snapshots(ec2_prod, OwnerIds=["self"])
    assert sorted(s["SnapshotId"] for s in listed) == sorted(prod)
    assert {s["OwnerId"] for s in listed} == {PROD}
    assert sorted(s["SnapshotId"] for s in all_snapshots(client(), OwnerIds=["self"])) == sorted(own)
    assert error_of(ec2_prod.delete_snapshot, SnapshotId=staging[0]) == ("InvalidSnapshot.NotFound", 400)
    assert error_of(client(**NO_RETRIES).delete_snapshot, SnapshotId=prod[0]) == ("InvalidSnapshot.NotFound", 400)

    ec2_prod.delete_snapshot(SnapshotId=prod[0])

    assert fake.ids("us-east-1", account=PROD) == set(prod[1:])
    assert fake.ids("us-east-1") == set(own)
    assert fake.in_account(STAGING).ids("us-east-1") == set(staging)
    assert fake.count("us-west-2", account=PROD) == 0  # a region of an account is its own too
    assert fake.accounts == [ACCOUNT_ID, PROD, STAGING]


def test_each_account_has_its_own_token_buckets(make_fake):
    fake = make_fake(clock=ManualClock())
    own = fake.seed_snapshots("us-east-1", 101)
    prod = fake.seed_snapshots("us-east-1", 101, account=PROD)
    ec2, ec2_prod = client(**NO_RETRIES), assumed_client(PROD_ROLE)
    for snap in own[:100]:
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_of(ec2.delete_snapshot, SnapshotId=own[100]) == ("RequestLimitExceeded", 503)

    for snap in prod[:100]:  # the same region and action, another account: a full bucket
        ec2_prod.delete_snapshot(SnapshotId=snap)
    assert error_of(ec2_prod.delete_snapshot, SnapshotId=prod[100]) == ("RequestLimitExceeded", 503)

    stats = fake.stats()
    assert stats["throttled"] == {"DeleteSnapshot": 2}
    assert stats["by_account"][ACCOUNT_ID]["throttled"] == {"DeleteSnapshot": 1}
    assert stats["by_account"][PROD]["calls"] == {"DeleteSnapshot": 101}
    assert stats["by_account"][PROD]["by_region"]["us-east-1"]["throttled"] == {"DeleteSnapshot": 1}


def test_stats_count_calls_and_assume_roles_per_account(fake):
    fake.seed_snapshots("us-east-1", 2, account=PROD)
    all_snapshots(assumed_client(PROD_ROLE))
    all_snapshots(assumed_client(PROD_ROLE, region="eu-west-1"))
    fake.deny_role(STAGING_ROLE)
    error_of(client(service="sts").assume_role, RoleArn=STAGING_ROLE, RoleSessionName="bench")

    by_account = fake.stats()["by_account"]
    assert by_account[ACCOUNT_ID]["calls"] == {"AssumeRole": 3}  # the bot's own keys asked STS
    assert by_account[PROD]["calls"] == {"DescribeSnapshots": 2}
    assert by_account[PROD]["by_region"].keys() == {"us-east-1", "eu-west-1"}
    assert (by_account[PROD]["assumed"], by_account[PROD]["denied"]) == (2, 0)
    assert (by_account[STAGING]["assumed"], by_account[STAGING]["denied"]) == (0, 1)
    assert fake.stats()["calls"] == {"AssumeRole": 3, "DescribeSnapshots": 2}


def test_a_denied_role_or_a_wrong_external_id_is_access_denied(fake):
    fake.deny_role(STAGING_ROLE)
    fake.require_external_id(PROD_ROLE, "ext-123")
    sts = client(service="sts", **NO_RETRIES)

    assert error_of(sts.assume_role, RoleArn=STAGING_ROLE, RoleSessionName="bench") == ("AccessDenied", 403)
    assert error_of(sts.assume_role, RoleArn=PROD_ROLE, RoleSessionName="bench") == ("AccessDenied", 403)
    assert error_of(sts.assume_role, RoleArn=PROD_ROLE, RoleSessionName="bench", ExternalId="nope") == (
        "AccessDenied",
        403,
    )
    assert assumed_client(PROD_ROLE, service="sts", ExternalId="ext-123").get_caller_identity()["Account"] == PROD
    assert error_of(sts.assume_role, RoleArn="arn:aws:iam::1:role/x", RoleSessionName="bench")[0] == "ValidationError"
    assert error_of(sts.assume_role, RoleArn=PROD_ROLE, RoleSessionName="a b")[0] == "ValidationError"
    assert fake.stats()["errors"] == {"AccessDenied": 3, "ValidationError": 2}


def test_the_gateway_acts_in_another_account_through_assume_role(fake):
    prod = fake.seed_snapshots("us-east-1", 3, account=PROD)
    fake.seed_snapshots("us-east-1", 2)
    fake.require_external_id(PROD_ROLE, "ext-123")
    role = Account(name="prod", role_arn=PROD_ROLE, external_id="ext-123")
    gateway = Ec2Gateway(assume_role_session(session(), "prod", role, "chatops-bot", "us-east-1"))

    assert sorted(s.id for s in gateway.describe_snapshots("us-east-1")) == sorted(prod)
    gateway.delete_snapshot("us-east-1", prod[0])
    assert fake.ids("us-east-1", account=PROD) == set(prod[1:])
    assert gateway.account_id("us-east-1") == PROD
    assert fake.stats()["by_account"][PROD]["assumed"] == 1  # one AssumeRole, kept for later calls

    fake.deny_role(STAGING_ROLE)
    denied = Ec2Gateway(
        assume_role_session(
            session(), "staging", Account(name="staging", role_arn=STAGING_ROLE), "chatops-bot", "us-east-1"
        )
    )
    with pytest.raises(errors.RoleUnavailable) as caught:
        list(denied.describe_snapshots("us-east-1"))
    assert caught.value.account == "staging" and "AccessDenied" in caught.value.message


def test_seeding_over_http_and_the_command_line_take_an_account(fake):
    request = urllib.request.Request(
        f"{fake.url}/_fake/seed", data=json.dumps({"account": PROD, "snapshots": 7}).encode(), method="POST"
    )
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer)["snapshots"] == 7
    with urllib.request.urlopen(f"{fake.url}/_fake/ids?account={PROD}") as answer:
        assert len(json.load(answer)) == 7
    assert fake.count("us-east-1") == 0


# --- the command line -------------------------------------------------------------------------


def test_the_command_line_serves_a_seeded_inventory_and_prints_stats(monkeypatch):
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fake_ec2", "--port", "0", "--snapshots", "25", "--tag", "team=web"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = proc.stdout.readline().strip()
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        snaps = all_snapshots(client(), OwnerIds=["self"], Filters=[{"Name": "tag:team", "Values": ["web"]}])
        assert len(snaps) == 25
        with urllib.request.urlopen(f"{url}/_fake/stats") as response:
            assert json.load(response)["calls"] == {"DescribeSnapshots": 1}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert json.loads(out.strip().splitlines()[-1])["calls"] == {"DescribeSnapshots": 1}
