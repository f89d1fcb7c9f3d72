"""AMI domain functions (bot/domain/amis.py) against moto, and Stubber where moto cannot tell (ClientToken, states)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from bot import errors
from bot.aws.gateway import Ec2Gateway
from bot.aws.models import Image
from bot.domain import amis
from bot.domain.plans import Plan
from tests.support.factories import make_instance

OWN = "123456789012"  # moto's account
OTHER = "111122223333"
REGION, DR = "us-east-1", "us-west-2"
AMI = "ami-0123456789abcdef0"
PRICE = 0.05  # USD per GiB-month of snapshot storage
IDENTITY = {"Account": OWN, "Arn": f"arn:aws:iam::{OWN}:user/chatops", "UserId": "AIDAEXAMPLE"}


def tags_of(raw) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


@pytest.fixture
def gw(aws) -> Ec2Gateway:
    return Ec2Gateway(aws)


_STUB_SESSION = boto3.session.Session(region_name=REGION)  # one session: its loaded service models are reused


def nothing_uses_it(ec2_stub: Stubber, asg_stub: Stubber) -> None:
    """The answers of a region where no instance, launch template or Auto Scaling group uses any AMI."""
    ec2_stub.add_response("describe_instances", {"Reservations": []}, None)
    ec2_stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, None)
    asg_stub.add_response("describe_launch_configurations", {"LaunchConfigurations": []}, None)
    asg_stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []}, None)


def stub_gateway() -> Ec2Gateway:
    """A gateway for Stubber tests (no moto): every call must be stubbed or the test fails."""
    return Ec2Gateway(_STUB_SESSION)


def make_image(ec2, name: str = "golden-web", **instance_tags: str) -> tuple[str, str]:
    """(image ID, instance ID): an AMI made by moto from a fresh instance."""
    inst = make_instance(ec2, **instance_tags)
    return ec2.create_image(InstanceId=inst, Name=name)["ImageId"], inst


# --- create -----------------------------------------------------------------------------


def test_create_image_tags_the_image_and_its_snapshots(gw, ec2):
    inst = make_instance(ec2, Name="web-1")

    image = amis.create_image(gw, REGION, inst, "web golden (v1) [2026]", "", "U0ALICE")

    raw = ec2.describe_images(ImageIds=[image.id])["Images"][0]
    assert raw["Name"] == "web golden (v1) [2026]"
    expected = {
        "chatops:managed": "true",
        "chatops:requested-by": "U0ALICE",
        "chatops:source": inst,
        "Name": "web-1",
    }
    assert tags_of(raw) == expected
    snap_ids = [m["Ebs"]["SnapshotId"] for m in raw["BlockDeviceMappings"] if "Ebs" in m]
    assert snap_ids and image.snapshot_ids == tuple(snap_ids)
    for snap in ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert tags_of(snap) == expected
    assert image.backing[0].size_gib > 0


@pytest.mark.parametrize("name", ["ab", "x" * 129, "golden*web", "<!channel>", ""])
def test_create_image_refuses_bad_names_before_any_call(name):
    gw = stub_gateway()
    with Stubber(gw.client(REGION)):  # nothing stubbed: any AWS call would raise
        with pytest.raises(errors.InvalidParameter):
            amis.create_image(gw, REGION, "i-0123456789abcdef0", name, "", "U0ALICE")


def test_create_image_of_missing_instance_is_not_found(gw):
    with pytest.raises(errors.NotFound, match="i-0123456789abcdef0"):
        amis.create_image(gw, REGION, "i-0123456789abcdef0", "golden", "", "U0ALICE")


def test_create_image_does_not_reboot_unless_asked():
    """moto does not record NoReboot: check what is sent with a Stubber."""
    gw = stub_gateway()
    inst_id = "i-0123456789abcdef0"
    for reboot in (False, True):
        with Stubber(gw.client(REGION)) as stub:
            stub.add_response(
                "describe_instances",
                {"Reservations": [{"Instances": [{"InstanceId": inst_id, "State": {"Name": "running", "Code": 16}}]}]},
                {"InstanceIds": [inst_id]},
            )
            stub.add_response(
                "create_image",
                {"ImageId": AMI},
                {
                    "InstanceId": inst_id,
                    "Name": "golden",
                    "Description": f"AMI of {inst_id}",
                    "NoReboot": not reboot,
                    "TagSpecifications": [
                        {
                            "ResourceType": "image",
                            "Tags": [
                                {"Key": "chatops:managed", "Value": "true"},
                                {"Key": "chatops:requested-by", "Value": "U0ALICE"},
                                {"Key": "chatops:source", "Value": inst_id},
                            ],
                        }
                    ],
                },
            )
            stub.add_response(
                "describe_images",
                {"Images": [{"ImageId": AMI, "State": "pending", "Name": "golden"}]},
                {"ImageIds": [AMI], "IncludeDisabled": True},
            )
            image = amis.create_image(gw, REGION, inst_id, "golden", "", "U0ALICE", reboot=reboot)
            stub.assert_no_pending_responses()
        assert image.state == "pending"


# --- list --------------------------------------------------------------------------------


def test_list_images_newest_first_with_sizes_sharing_and_usage(gw, ec2):
    old_id, _ = make_image(ec2, "old-image")
    new_id, _ = make_image(ec2, "new-image")
    ec2.modify_image_attribute(ImageId=new_id, LaunchPermission={"Add": [{"UserId": OTHER}]})
    ec2.run_instances(ImageId=new_id, MinCount=2, MaxCount=2, InstanceType="t3.micro")

    page = amis.list_images(gw, REGION, 50)

    by_id = {row.image.id: row for row in page.items}
    assert page.total == 2 and set(by_id) == {old_id, new_id}
    assert by_id[new_id].shared_with == (OTHER,) and by_id[new_id].instance_count == 2 and by_id[new_id].in_use
    assert by_id[old_id].shared_with == () and not by_id[old_id].in_use
    assert all(b.size_gib > 0 for b in by_id[new_id].image.backing)
    dates = [row.image.creation_date for row in page.items]
    assert dates == sorted(dates, reverse=True)


def test_list_images_limit_bounds_the_per_image_calls(gw, ec2):
    for n in range(3):
        make_image(ec2, f"image-{n}")
    page = amis.list_images(gw, REGION, 1)
    assert page.total == 3 and len(page.items) == 1
    assert gw.calls["DescribeImageAttribute"] == 1


def test_image_names_skips_unknown_images(gw, ec2):
    image_id, _ = make_image(ec2, "golden-web")
    assert amis.image_names(gw, REGION, [image_id, "ami-12345678", ""]) == {image_id: "golden-web"}


# --- launch -------------------------------------------------------------------------------


def test_launch_runs_tagged_instances_with_the_key(gw, ec2):
    image_id, _ = make_image(ec2)
    ec2.create_key_pair(KeyName="ops")

    image, instances = amis.launch_instances(
        gw,
        REGION,
        image_id,
        "U0ALICE",
        client_token="tok-1",
        max_count=5,
        instance_type="t3.small",
        key_name="ops",
        count=3,
    )

    assert image.id == image_id and len(instances) == 3
    raw = [
        i
        for r in ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image_id]}])["Reservations"]
        for i in r["Instances"]
    ]
    assert {i["InstanceId"] for i in raw} == {i.id for i in instances}
    for inst in raw:
        assert inst["InstanceType"] == "t3.small" and inst["KeyName"] == "ops"
        assert tags_of(inst)["chatops:requested-by"] == "U0ALICE"
        assert tags_of(inst)["chatops:source"] == image_id


def test_launch_over_the_cap_makes_no_aws_call(gw):
    with pytest.raises(errors.NotAllowed, match="launch_max_count"):
        amis.launch_instances(gw, REGION, AMI, "U0ALICE", client_token="t", max_count=5, count=6)
    assert sum(gw.calls.values()) == 0


def test_launch_with_unknown_key_pair_launches_nothing(gw, ec2):
    image_id, _ = make_image(ec2)
    with pytest.raises(errors.InvalidParameter, match="key pair 'nope'"):
        amis.launch_instances(gw, REGION, image_id, "U0ALICE", client_token="t", max_count=5, key_name="nope")
    assert gw.calls["RunInstances"] == 0


def test_launch_of_missing_image_is_not_found(gw):
    with pytest.raises(errors.NotFound):
        amis.launch_instances(gw, REGION, AMI, "U0ALICE", client_token="t", max_count=5)
    assert gw.calls["RunInstances"] == 0


def test_launch_token_is_stable_per_request_and_fits_aws():
    a = amis.launch_token("https://hooks/1", REGION, AMI, "t3.micro", None, 2)
    assert a == amis.launch_token("https://hooks/1", REGION, AMI, "t3.micro", None, 2)
    assert a != amis.launch_token("https://hooks/2", REGION, AMI, "t3.micro", None, 2)
    assert a != amis.launch_token("https://hooks/1", REGION, AMI, "t3.micro", None, 3)
    assert len(a) <= 64 and a.isascii()
    copy = amis.request_token("https://hooks/1", "copy", REGION, AMI, DR, None)
    assert copy == amis.request_token("https://hooks/1", "copy", REGION, AMI, DR, None) != a


def sent(gw: Ec2Gateway, region: str) -> list[tuple[str, dict]]:
    """What the code asks AWS in `region`: (operation, parameters) of every request, recorded as botocore builds it.

    The Stubber only plays AWS's answers here; assertions are about these requests, which the code decides,
    never about the answers the test scripted.
    """
    requests: list[tuple[str, dict]] = []

    def record(params, model, **_):
        requests.append((model.name, dict(params)))  # returns None: the parameters go on unchanged

    gw.client(region).meta.events.register("provide-client-params.ec2.*", record)
    return requests


def test_copy_sends_the_request_s_token_each_time_so_a_retry_makes_no_second_copy():
    """moto ignores ClientToken; AWS answers a repeated token with the first copy, so a retry must repeat it."""
    gw = stub_gateway()
    tags = [{"Key": "Team", "Value": "web"}, {"Key": "aws:cloudformation:stack", "Value": "s"},
            {"Key": "chatops:policy", "Value": "nightly"}]  # fmt: skip
    image = {**_image(), "Description": "web", "Tags": tags}
    to_dr = sent(gw, DR)
    with Stubber(gw.client(REGION)) as east, Stubber(gw.client(DR)) as west:
        for _ in range(2):  # the request, then Slack's retry of the same request
            east.add_response("describe_images", {"Images": [image]})
            west.add_response("copy_image", {"ImageId": "ami-0fedcba9876543210"})
            west.add_response("create_tags", {})
            token = amis.request_token("https://hooks.slack.test/1", "copy", REGION, AMI, DR, None)
            amis.copy_image(gw, REGION, AMI, DR, "U0BOB", client_token=token)
        west.assert_no_pending_responses()

    copies = [params for op, params in to_dr if op == "CopyImage"]
    assert (
        copies[0]
        == copies[1]
        == {
            "SourceRegion": REGION,
            "SourceImageId": AMI,
            "Name": "golden",
            "Description": f"Copy of {AMI} from {REGION}: web",
            "ClientToken": amis.request_token("https://hooks.slack.test/1", "copy", REGION, AMI, DR, None),
        }
    )
    [tagging, _] = [params for op, params in to_dr if op == "CreateTags"]
    assert tagging["Resources"] == ["ami-0fedcba9876543210"]  # the copy AWS made, in the DR region
    assert {t["Key"]: t["Value"] for t in tagging["Tags"]} == {
        "Team": "web",  # the source's own tags go with it; not aws: ones, nor the policy's mark
        "chatops:managed": "true",
        "chatops:requested-by": "U0BOB",
        "chatops:source": f"{REGION}/{AMI}",
    }


def _image(owner: str = OWN, state: str = "available") -> dict:
    return {"ImageId": AMI, "State": state, "Name": "golden", "OwnerId": owner, "CreationDate": "2026-01-01T00:00:00Z"}


def _stub_launch(ec2_stub, sts_stub, token: str, reservation: list[dict], owner: str = OWN) -> None:
    ec2_stub.add_response("describe_images", {"Images": [_image(owner)]}, {"ImageIds": [AMI], "IncludeDisabled": True})
    sts_stub.add_response("get_caller_identity", IDENTITY, {})
    if owner != OWN:
        ec2_stub.add_response(
            "describe_images",
            {"Images": [_image(owner)]},
            {"Filters": [{"Name": "image-id", "Values": [AMI]}], "ExecutableUsers": ["self"]},
        )
    ec2_stub.add_response(
        "run_instances",
        {"Instances": reservation},
        {
            "ImageId": AMI,
            "InstanceType": "t3.micro",
            "MinCount": 2,
            "MaxCount": 2,
            "ClientToken": token,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "chatops:managed", "Value": "true"},
                        {"Key": "chatops:requested-by", "Value": "U0ALICE"},
                        {"Key": "chatops:source", "Value": AMI},
                    ],
                }
            ],
        },
    )


def test_a_retried_launch_sends_the_same_client_token_and_gets_the_same_instances():
    """moto ignores ClientToken; AWS answers a repeated token with the first reservation.

    The Stubber plays AWS: it insists the retry carries the very same token and
    answers it with the original instances; a new request gets a new token.
    """
    gw = stub_gateway()
    reservation = [
        {"InstanceId": f"i-0{n}23456789abcdef0", "ImageId": AMI, "State": {"Name": "pending", "Code": 0}}
        for n in range(2)
    ]
    first_request = "https://hooks.slack.test/commands/T0/1/abc"
    token = amis.launch_token(first_request, REGION, AMI, "t3.micro", None, 2)
    second_token = amis.launch_token("https://hooks.slack.test/commands/T0/2/def", REGION, AMI, "t3.micro", None, 2)
    assert second_token != token

    launched = []
    with Stubber(gw.client(REGION)) as ec2_stub, Stubber(gw.client(REGION, "sts")) as sts_stub:
        for _ in range(2):  # the original request, then its retry
            _stub_launch(ec2_stub, sts_stub, token, reservation)
            _, instances = amis.launch_instances(
                gw,
                REGION,
                AMI,
                "U0ALICE",
                max_count=5,
                count=2,
                client_token=amis.launch_token(first_request, REGION, AMI, "t3.micro", None, 2),
            )
            launched.append([i.id for i in instances])
        ec2_stub.assert_no_pending_responses()
    assert launched[0] == launched[1] == [r["InstanceId"] for r in reservation]


def test_launch_of_an_image_shared_with_us_asks_ec2_whether_we_may_then_launches_it_tagged():
    gw = stub_gateway()
    reservation = [{"InstanceId": f"i-0{n}23456789abcdef0", "ImageId": AMI} for n in range(2)]
    asked = sent(gw, REGION)
    with Stubber(gw.client(REGION)) as ec2_stub, Stubber(gw.client(REGION, "sts")) as sts_stub:
        _stub_launch(ec2_stub, sts_stub, "tok", reservation, owner=OTHER)
        amis.launch_instances(gw, REGION, AMI, "U0ALICE", client_token="tok", max_count=5, count=2)
        ec2_stub.assert_no_pending_responses()

    assert [op for op, _ in asked] == ["DescribeImages", "DescribeImages", "RunInstances"]
    assert asked[1][1] == {"Filters": [{"Name": "image-id", "Values": [AMI]}], "ExecutableUsers": ["self"]}
    run = asked[2][1]
    assert (run["ImageId"], run["MinCount"], run["MaxCount"], run["ClientToken"]) == (AMI, 2, 2, "tok")
    [spec] = run["TagSpecifications"]
    assert spec["ResourceType"] == "instance"
    assert {t["Key"]: t["Value"] for t in spec["Tags"]} == {
        "chatops:managed": "true",
        "chatops:requested-by": "U0ALICE",
        "chatops:source": AMI,
    }


def test_launch_refuses_an_image_neither_owned_nor_shared():
    gw = stub_gateway()
    with Stubber(gw.client(REGION)) as ec2_stub, Stubber(gw.client(REGION, "sts")) as sts_stub:
        ec2_stub.add_response(
            "describe_images", {"Images": [_image(OTHER)]}, {"ImageIds": [AMI], "IncludeDisabled": True}
        )
        sts_stub.add_response("get_caller_identity", IDENTITY, {})
        ec2_stub.add_response("describe_images", {"Images": []}, None)
        with pytest.raises(errors.NotAllowed, match="neither owned by nor shared"):
            amis.launch_instances(gw, REGION, AMI, "U0ALICE", client_token="t", max_count=5)
        ec2_stub.assert_no_pending_responses()  # an unstubbed RunInstances would have raised


def test_launch_refuses_an_image_that_is_not_available():
    gw = stub_gateway()
    with Stubber(gw.client(REGION)) as ec2_stub:
        ec2_stub.add_response(
            "describe_images", {"Images": [_image(state="pending")]}, {"ImageIds": [AMI], "IncludeDisabled": True}
        )
        with pytest.raises(errors.Conflict, match="pending"):
            amis.launch_instances(gw, REGION, AMI, "U0ALICE", client_token="t", max_count=5)
        ec2_stub.assert_no_pending_responses()  # an unstubbed RunInstances would have raised


# --- copy ---------------------------------------------------------------------------------


def test_copy_image_to_another_region_carries_tags_over(gw, ec2, aws):
    image_id, _ = make_image(ec2, "golden-web")
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "Team", "Value": "web"}, {"Key": "Name", "Value": "gw"}])

    new_id = amis.copy_image(gw, REGION, image_id, DR, "U0BOB")
    amis.tag_backing_snapshots(gw, gw.get_image(DR, new_id))

    west = aws.client("ec2", region_name=DR)
    raw = west.describe_images(ImageIds=[new_id])["Images"][0]
    assert raw["Name"] == "golden-web" and image_id in raw["Description"]
    tags = tags_of(raw)
    assert tags["Team"] == "web" and tags["Name"] == "gw"
    assert tags["chatops:requested-by"] == "U0BOB" and tags["chatops:source"] == f"{REGION}/{image_id}"
    snap_ids = [m["Ebs"]["SnapshotId"] for m in raw["BlockDeviceMappings"] if "Ebs" in m]
    for snap in west.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert tags_of(snap)["Team"] == "web"


def test_copy_image_with_a_new_name_and_to_the_same_region(gw, ec2, aws):
    image_id, _ = make_image(ec2)
    with pytest.raises(errors.InvalidParameter, match="already in"):
        amis.copy_image(gw, REGION, image_id, REGION, "U0BOB")
    with pytest.raises(errors.InvalidParameter):
        amis.copy_image(gw, REGION, image_id, DR, "U0BOB", name="x")
    new_id = amis.copy_image(gw, REGION, image_id, DR, "U0BOB", name="dr copy")
    assert aws.client("ec2", region_name=DR).describe_images(ImageIds=[new_id])["Images"][0]["Name"] == "dr copy"


# --- deregister -----------------------------------------------------------------------------


def snapshot_ids(plan: Plan) -> tuple[str, ...]:
    """The backing snapshots a deregister-image plan names."""
    return tuple(s["id"] for s in plan.params["snapshots"])


def test_deregister_refuses_an_ami_an_instance_was_launched_from_naming_it(gw, ec2):
    image_id, _ = make_image(ec2, "golden-web")
    running = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(errors.Conflict, match=f"{image_id} is in use by instance {running}; nothing was done"):
        amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=PRICE)


def test_deregister_plan_lists_snapshots_and_sizes(gw, ec2):
    image_id, _ = make_image(ec2, "golden-web")

    plan = amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=PRICE)

    raw = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    params = plan.params
    assert plan.kind == "deregister-image"
    assert params["image_id"] == image_id and params["name"] == "golden-web" and not params["keep_snapshots"]
    assert snapshot_ids(plan) == tuple(m["Ebs"]["SnapshotId"] for m in raw["BlockDeviceMappings"])
    gib = sum(m["Ebs"]["VolumeSize"] for m in raw["BlockDeviceMappings"])
    assert sum(s["size_gib"] for s in params["snapshots"]) == gib and plan.items[0].size_gib == gib
    assert params["instances"] == []
    assert ec2.describe_images(ImageIds=[image_id])["Images"]  # planning changed nothing
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_execute_deregister_deletes_the_image_and_its_snapshots(gw, ec2):
    image_id, _ = make_image(ec2)
    plan = amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=PRICE)

    results = amis.execute_deregister(gw, plan)

    assert [(r.resource_id, r.ok) for r in results] == [(image_id, True)] + [(s, True) for s in snapshot_ids(plan)]
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not remaining & set(snapshot_ids(plan))


def test_execute_deregister_keep_snapshots_keeps_them(gw, ec2):
    image_id, _ = make_image(ec2)
    plan = amis.deregister_plan(gw, REGION, image_id, keep_snapshots=True, usd_per_gb_month=PRICE)
    results = amis.execute_deregister(gw, plan)
    assert all(r.ok for r in results) and "kept" in results[1].reason
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert set(snapshot_ids(plan)) <= remaining


def test_execute_deregister_rechecks_that_the_image_still_exists(gw, ec2):
    image_id, _ = make_image(ec2)
    plan = amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=PRICE)
    ec2.deregister_image(ImageId=image_id)  # someone else got there between request and approval

    [result] = amis.execute_deregister(gw, plan)

    assert not result.ok and "no longer exists" in result.reason
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert set(snapshot_ids(plan)) <= remaining  # nothing deleted on a stale plan
    assert gw.calls["DeleteSnapshot"] == 0


def test_execute_deregister_refuses_when_the_backing_snapshots_changed(gw, ec2):
    image_id, _ = make_image(ec2)
    plan = amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=PRICE)
    stale = Plan.from_dict(
        {**plan.to_dict(), "params": {**plan.params, "snapshots": [{"id": "snap-0123456789abcdef0", "size_gib": 8}]}}
    )

    [result] = amis.execute_deregister(gw, stale)

    assert not result.ok and "changed" in result.reason
    assert ec2.describe_images(ImageIds=[image_id])["Images"]
    assert gw.calls["DeregisterImage"] == 0


def _two_snapshot_plan() -> tuple[Plan, list[str], dict]:
    snaps = ["snap-0123456789abcdef0", "snap-0123456789abcdef1"]
    mappings = [
        {"DeviceName": f"/dev/sd{d}", "Ebs": {"SnapshotId": s, "VolumeSize": 8}}
        for d, s in zip("ab", snaps, strict=True)
    ]
    image = {**_image(), "BlockDeviceMappings": mappings}
    plan = amis.deregister_plan_of(Image.from_api(image, REGION), (), (), keep_snapshots=False, usd_per_gb_month=PRICE)
    return plan, snaps, image


def test_execute_deregister_keeps_a_snapshot_that_backs_another_ami_and_says_so():
    """moto's RegisterImage makes its own snapshot, so the shared-snapshot case is played by a Stubber."""
    gw = stub_gateway()
    plan, snaps, image = _two_snapshot_plan()
    other = {
        **_image(),
        "ImageId": "ami-0fedcba9876543210",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snaps[0]}}],
    }
    with Stubber(gw.client(REGION)) as stub, Stubber(gw.client(REGION, "autoscaling")) as asg:
        stub.add_response("describe_images", {"Images": [image]}, None)  # re-check
        nothing_uses_it(stub, asg)  # re-check: who uses it
        stub.add_response("describe_snapshots", {"Snapshots": []}, None)  # re-check: pinned snapshots
        stub.add_response("deregister_image", {}, {"ImageId": AMI})
        stub.add_response("describe_images", {"Images": [other]}, None)  # who else uses the snapshots
        stub.add_response("delete_snapshot", {}, {"SnapshotId": snaps[1]})
        results = amis.execute_deregister(gw, plan)
        stub.assert_no_pending_responses()  # and no DeleteSnapshot of snaps[0] was sent
    by_id = {r.resource_id: r for r in results}
    assert by_id[AMI].ok and by_id[snaps[1]].ok and by_id[snaps[1]].outcome == "done"
    # Kept on purpose (spared: a protection, not a failure), and the message names the AMI that still needs it.
    assert by_id[snaps[0]].outcome == "spared" and "ami-0fedcba9876543210" in by_id[snaps[0]].reason


def test_execute_deregister_reports_a_partial_failure_and_carries_on():
    """The first snapshot's delete is refused; the second is still deleted, and both are reported."""
    gw = stub_gateway()
    plan, snaps, image = _two_snapshot_plan()
    with Stubber(gw.client(REGION)) as stub, Stubber(gw.client(REGION, "autoscaling")) as asg:
        stub.add_response("describe_images", {"Images": [image]}, None)  # re-check
        nothing_uses_it(stub, asg)  # re-check: who uses it
        stub.add_response("describe_snapshots", {"Snapshots": []}, None)  # re-check: pinned snapshots
        stub.add_response("deregister_image", {}, {"ImageId": AMI})
        stub.add_response("describe_images", {"Images": []}, None)  # no other AMI uses them
        stub.add_client_error(
            "delete_snapshot", "UnauthorizedOperation", "not allowed", expected_params={"SnapshotId": snaps[0]}
        )
        stub.add_response("delete_snapshot", {}, {"SnapshotId": snaps[1]})
        results = amis.execute_deregister(gw, plan)
        stub.assert_no_pending_responses()
    assert [(r.resource_id, r.ok) for r in results] == [(AMI, True), (snaps[0], False), (snaps[1], True)]
    assert "not allowed" in results[1].reason


# --- share / unshare --------------------------------------------------------------------------


def test_share_plan_and_execute(gw, ec2):
    image_id, _ = make_image(ec2, "golden-web")
    plan = amis.share_plan(gw, REGION, image_id, OTHER)
    params = plan.params
    assert plan.kind == "share-image"
    assert params["account_id"] == OTHER and params["shared_with"] == [] and params["name"] == "golden-web"
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan

    [result] = amis.execute_share(gw, plan)

    assert result.ok
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": OTHER}]
    with pytest.raises(errors.Conflict, match="already shared"):
        amis.share_plan(gw, REGION, image_id, OTHER)


def test_share_plan_refuses_own_account(gw, ec2):
    image_id, _ = make_image(ec2)
    with pytest.raises(errors.InvalidParameter, match="own account"):
        amis.share_plan(gw, REGION, image_id, OWN)


def test_execute_share_of_a_deregistered_image_fails_cleanly(gw, ec2):
    image_id, _ = make_image(ec2)
    plan = amis.share_plan(gw, REGION, image_id, OTHER)
    ec2.deregister_image(ImageId=image_id)
    [result] = amis.execute_share(gw, plan)
    assert not result.ok and "no longer exists" in result.reason
    assert gw.calls["ModifyImageAttribute"] == 0


def test_unshare_removes_the_launch_permission(gw, ec2):
    image_id, _ = make_image(ec2)
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER}]})

    result = amis.unshare_image(gw, REGION, image_id, OTHER)

    assert result.ok and "no longer shared" in result.reason
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    again = amis.unshare_image(gw, REGION, image_id, OTHER)
    assert again.ok and "was not shared" in again.reason
    assert gw.calls["ModifyImageAttribute"] == 1


def test_plans_refuse_other_accounts_images():
    gw = stub_gateway()
    for plan in (
        lambda: amis.deregister_plan(gw, REGION, AMI, usd_per_gb_month=PRICE),
        lambda: amis.share_plan(gw, REGION, AMI, OTHER),
    ):
        with Stubber(gw.client(REGION)) as ec2_stub, Stubber(gw.client(REGION, "sts")) as sts_stub:
            ec2_stub.add_response(
                "describe_images", {"Images": [_image(OTHER)]}, {"ImageIds": [AMI], "IncludeDisabled": True}
            )
            sts_stub.add_response("get_caller_identity", IDENTITY, {})
            with pytest.raises(errors.NotAllowed, match="only its owner"):
                plan()


def test_image_dataclass_reads_backing_snapshots():
    image = Image.from_api(
        {
            "ImageId": AMI,
            "CreationDate": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0", "VolumeSize": 8}},
                {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
                {
                    "DeviceName": "/dev/sdc",
                    "Ebs": {"SnapshotId": "snap-0123456789abcdef1", "VolumeSize": 100, "Encrypted": True},
                },
            ],
        },
        REGION,
    )
    assert image.snapshot_ids == ("snap-0123456789abcdef0", "snap-0123456789abcdef1")
    assert image.backing_gib == 108 and image.backing[1].encrypted and image.backing[0].device == "/dev/xvda"
