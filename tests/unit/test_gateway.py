"""The AWS gateway: paging, result objects, error mapping, retries and the call counter.

Paging and errors use botocore's Stubber (moto ignores MaxResults/NextToken);
retries and timeouts use a tiny local HTTP server speaking EC2's XML; the call
counter uses moto.
"""

from __future__ import annotations

import socket
import string
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from bot import errors
from bot.aws.gateway import PAGE_SIZE, Ec2Gateway, aws_errors, parse_timestamp
from bot.aws.models import Attachment, BackingSnapshot, Image, Instance, Snapshot, Volume

REGION = "us-east-1"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    # Shared so the EC2 service model is loaded once, not once per test.
    return boto3.session.Session(region_name=REGION)


@pytest.fixture
def gateway(session, monkeypatch) -> Ec2Gateway:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Ec2Gateway(session)


@pytest.fixture
def stub(gateway) -> Iterator[Stubber]:
    """A Stubber on the gateway's own us-east-1 client; every queued response must be used."""
    stubber = Stubber(gateway.client(REGION))
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def raw_snapshot(i: int, **changes) -> dict:
    return {
        "SnapshotId": f"snap-{i:017x}",
        "VolumeId": f"vol-{i:017x}",
        "State": "completed",
        "Progress": "100%",
        "VolumeSize": 8,
        "StartTime": T0,
        "Description": f"snapshot {i}",
        "OwnerId": "123456789012",
        "Encrypted": False,
        "Tags": [{"Key": "Name", "Value": f"n{i}"}],
        **changes,
    }


def raw_volume(i: int, **changes) -> dict:
    return {
        "VolumeId": f"vol-{i:017x}",
        "State": "available",
        "Size": 20,
        "VolumeType": "gp3",
        "AvailabilityZone": "us-east-1a",
        "CreateTime": T0,
        "Attachments": [],
        **changes,
    }


def raw_instance(i: int) -> dict:
    return {
        "InstanceId": f"i-{i:017x}",
        "State": {"Code": 16, "Name": "running"},
        "InstanceType": "t3.micro",
        "ImageId": "ami-0123456789abcdef0",
        "Placement": {"AvailabilityZone": "us-east-1b"},
        "LaunchTime": T0,
        "Tags": [{"Key": "Name", "Value": f"web-{i}"}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": f"vol-{i:017x}"}}],
    }


def raw_image(i: int, snapshot_ids: tuple[str, ...] = ()) -> dict:
    return {
        "ImageId": f"ami-{i:017x}",
        "Name": f"golden-{i}",
        "State": "available",
        "CreationDate": "2026-11-01T03:00:00.000Z",
        "OwnerId": "123456789012",
        "Public": False,
        "BlockDeviceMappings": [
            {"DeviceName": f"/dev/sd{chr(97 + n)}", "Ebs": {"SnapshotId": s}} for n, s in enumerate(snapshot_ids)
        ]
        + [{"DeviceName": "/dev/sdz", "VirtualName": "ephemeral0"}],
    }


# --- paging -----------------------------------------------------------------------------------


def test_describe_snapshots_follows_next_token_with_max_results(gateway, stub):
    first = {"OwnerIds": ["self"], "MaxResults": PAGE_SIZE}
    stub.add_response("describe_snapshots", {"Snapshots": [raw_snapshot(0), raw_snapshot(1)], "NextToken": "t1"}, first)
    stub.add_response(
        "describe_snapshots", {"Snapshots": [raw_snapshot(2)], "NextToken": "t2"}, {**first, "NextToken": "t1"}
    )
    stub.add_response("describe_snapshots", {"Snapshots": [raw_snapshot(3)]}, {**first, "NextToken": "t2"})

    snaps = list(gateway.describe_snapshots(REGION))

    assert PAGE_SIZE == 1000
    assert [s.id for s in snaps] == [f"snap-{i:017x}" for i in range(4)]


def test_an_empty_page_with_a_token_is_not_the_end(gateway, stub):
    first = {"OwnerIds": ["self"], "MaxResults": PAGE_SIZE}
    stub.add_response("describe_snapshots", {"Snapshots": [], "NextToken": "t1"}, first)
    stub.add_response("describe_snapshots", {"Snapshots": [raw_snapshot(7)]}, {**first, "NextToken": "t1"})
    assert [s.id for s in gateway.describe_snapshots(REGION)] == [f"snap-{7:017x}"]


def test_filters_are_sent_with_paging(gateway, stub):
    filters = [{"Name": "volume-id", "Values": ["vol-1234abcd"]}]
    stub.add_response(
        "describe_snapshots",
        {"Snapshots": [raw_snapshot(0)]},
        {"OwnerIds": ["self"], "Filters": filters, "MaxResults": PAGE_SIZE},
    )
    assert len(list(gateway.describe_snapshots(REGION, filters=filters))) == 1


def test_explicit_ids_are_sent_without_max_results(gateway, stub):
    # EC2 refuses MaxResults beside explicit IDs.
    stub.add_response(
        "describe_snapshots",
        {"Snapshots": [raw_snapshot(0)]},
        {"OwnerIds": ["self"], "SnapshotIds": [f"snap-{0:017x}"]},
    )
    stub.add_response("describe_volumes", {"Volumes": [raw_volume(0)]}, {"VolumeIds": [f"vol-{0:017x}"]})
    stub.add_response(
        "describe_instances", {"Reservations": [{"Instances": [raw_instance(0)]}]}, {"InstanceIds": [f"i-{0:017x}"]}
    )
    stub.add_response(
        "describe_images", {"Images": [raw_image(0)]}, {"ImageIds": [f"ami-{0:017x}"], "IncludeDisabled": True}
    )

    assert gateway.get_snapshot(REGION, f"snap-{0:017x}").id == f"snap-{0:017x}"
    assert gateway.get_volume(REGION, f"vol-{0:017x}").id == f"vol-{0:017x}"
    assert gateway.get_instance(REGION, f"i-{0:017x}").id == f"i-{0:017x}"
    assert gateway.get_image(REGION, f"ami-{0:017x}").id == f"ami-{0:017x}"


def test_describe_volumes_pages(gateway, stub):
    stub.add_response("describe_volumes", {"Volumes": [raw_volume(0)], "NextToken": "a"}, {"MaxResults": PAGE_SIZE})
    stub.add_response("describe_volumes", {"Volumes": [raw_volume(1)]}, {"MaxResults": PAGE_SIZE, "NextToken": "a"})
    assert [v.id for v in gateway.describe_volumes(REGION)] == [f"vol-{0:017x}", f"vol-{1:017x}"]


def test_describe_instances_pages_and_flattens_reservations(gateway, stub):
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [raw_instance(0), raw_instance(1)]}, {"Instances": []}], "NextToken": "a"},
        {"MaxResults": PAGE_SIZE},
    )
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [raw_instance(2)]}]},
        {"MaxResults": PAGE_SIZE, "NextToken": "a"},
    )
    assert [i.id for i in gateway.describe_instances(REGION)] == [f"i-{n:017x}" for n in range(3)]


def test_describe_images_pages_own_images(gateway, stub):
    params = {"Owners": ["self"], "MaxResults": PAGE_SIZE, "IncludeDisabled": True}
    stub.add_response("describe_images", {"Images": [raw_image(0)], "NextToken": "a"}, params)
    stub.add_response("describe_images", {"Images": [raw_image(1)]}, {**params, "NextToken": "a"})
    assert [i.id for i in gateway.describe_images(REGION)] == [f"ami-{0:017x}", f"ami-{1:017x}"]


def test_images_using_snapshots_reads_every_page(gateway, stub):
    params = {"Owners": ["self"], "MaxResults": PAGE_SIZE, "IncludeDisabled": True}
    stub.add_response("describe_images", {"Images": [raw_image(0, ("snap-aaaaaaaa",))], "NextToken": "a"}, params)
    stub.add_response(
        "describe_images", {"Images": [raw_image(1, ("snap-bbbbbbbb", "snap-cccccccc"))]}, {**params, "NextToken": "a"}
    )
    found = gateway.images_using_snapshots(REGION, ["snap-aaaaaaaa", "snap-cccccccc", "snap-dddddddd"])
    assert found == {"snap-aaaaaaaa": f"ami-{0:017x}", "snap-cccccccc": f"ami-{1:017x}"}


def test_images_using_no_snapshots_makes_no_call(gateway, stub):
    assert gateway.images_using_snapshots(REGION, []) == {}


# --- results as dataclasses ----------------------------------------------------------------------


def test_snapshot_result(gateway, stub):
    raw = raw_snapshot(5, State="pending", Progress="42%", Encrypted=True, VolumeSize=100)
    stub.add_response("describe_snapshots", {"Snapshots": [raw]}, {"OwnerIds": ["self"], "MaxResults": PAGE_SIZE})
    [snap] = gateway.describe_snapshots(REGION)
    assert snap == Snapshot(
        id=f"snap-{5:017x}",
        region=REGION,
        volume_id=f"vol-{5:017x}",
        state="pending",
        progress="42%",
        size_gib=100,
        start_time=T0,
        description="snapshot 5",
        tags={"Name": "n5"},
        encrypted=True,
        owner_id="123456789012",
    )


def test_volume_result(gateway, stub):
    raw = raw_volume(
        3,
        State="in-use",
        SnapshotId="snap-1234abcd",
        Attachments=[{"InstanceId": "i-1234abcd", "Device": "/dev/sdf", "State": "attached"}],
        Tags=[{"Key": "Backup", "Value": "daily"}],
    )
    stub.add_response("describe_volumes", {"Volumes": [raw]}, {"MaxResults": PAGE_SIZE})
    [vol] = gateway.describe_volumes(REGION)
    assert vol == Volume(
        id=f"vol-{3:017x}",
        region=REGION,
        state="in-use",
        size_gib=20,
        volume_type="gp3",
        az="us-east-1a",
        create_time=T0,
        attachments=(Attachment("i-1234abcd", "/dev/sdf", "attached"),),
        snapshot_id="snap-1234abcd",
        tags={"Backup": "daily"},
    )


def test_instance_result(gateway, stub):
    stub.add_response(
        "describe_instances", {"Reservations": [{"Instances": [raw_instance(4)]}]}, {"MaxResults": PAGE_SIZE}
    )
    [inst] = gateway.describe_instances(REGION)
    assert inst == Instance(
        id=f"i-{4:017x}",
        region=REGION,
        state="running",
        instance_type="t3.micro",
        image_id="ami-0123456789abcdef0",
        az="us-east-1b",
        launch_time=T0,
        tags={"Name": "web-4"},
        volume_ids=(f"vol-{4:017x}",),
    )
    assert inst.name == "web-4"


def test_image_result(gateway, stub):
    params = {"Owners": ["self"], "MaxResults": PAGE_SIZE, "IncludeDisabled": True}
    stub.add_response("describe_images", {"Images": [raw_image(2, ("snap-aaaaaaaa", "snap-bbbbbbbb"))]}, params)
    [img] = gateway.describe_images(REGION)
    assert img == Image(
        id=f"ami-{2:017x}",
        region=REGION,
        name="golden-2",
        state="available",
        creation_date=T0,
        snapshot_ids=("snap-aaaaaaaa", "snap-bbbbbbbb"),  # the ephemeral mapping has none
        owner_id="123456789012",
        backing=(
            BackingSnapshot("snap-aaaaaaaa", 0, "/dev/sda", False),
            BackingSnapshot("snap-bbbbbbbb", 0, "/dev/sdb", False),
        ),
    )


def test_results_are_frozen(gateway, stub):
    stub.add_response(
        "describe_snapshots", {"Snapshots": [raw_snapshot(0)]}, {"OwnerIds": ["self"], "MaxResults": PAGE_SIZE}
    )
    [snap] = gateway.describe_snapshots(REGION)
    with pytest.raises(AttributeError):
        snap.state = "error"  # type: ignore[misc]


def test_create_snapshot_sends_the_tags_and_returns_the_pending_snapshot(gateway, stub):
    tags = {"chatops:managed": "true", "chatops:requested-by": "U0ALICE"}
    stub.add_response(
        "create_snapshot",
        {**raw_snapshot(9, State="pending", Progress=""), "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
        {
            "VolumeId": "vol-1234abcd",
            "Description": "nightly",
            "TagSpecifications": [
                {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        },
    )
    snap = gateway.create_snapshot(REGION, "vol-1234abcd", "nightly", tags)
    assert snap.state == "pending" and snap.tags == tags and snap.region == REGION


# --- errors ---------------------------------------------------------------------------------------

ERROR_CODES = [
    ("InvalidSnapshot.NotFound", errors.NotFound),
    ("InvalidVolume.NotFound", errors.NotFound),
    ("InvalidInstanceID.NotFound", errors.NotFound),
    ("InvalidAMIID.NotFound", errors.NotFound),
    ("InvalidAMIID.Unavailable", errors.NotFound),
    ("UnauthorizedOperation", errors.AccessDenied),
    ("AuthFailure", errors.AccessDenied),
    ("RequestLimitExceeded", errors.Throttled),
    ("InvalidParameterValue", errors.InvalidParameter),
    ("InvalidParameterCombination", errors.InvalidParameter),
    ("MissingParameter", errors.InvalidParameter),
    ("InvalidSnapshotID.Malformed", errors.InvalidParameter),
    ("InvalidKeyPair.NotFound", errors.InvalidParameter),  # an exact match wins over the .NotFound suffix
    ("SnapshotLimitExceeded", errors.LimitExceeded),
    ("VolumeLimitExceeded", errors.LimitExceeded),
    ("InstanceLimitExceeded", errors.LimitExceeded),
    ("InvalidSnapshot.InUse", errors.Conflict),
    ("VolumeInUse", errors.Conflict),
    ("IncorrectState", errors.Conflict),
    ("InternalError", errors.AwsUnavailable),
    ("Unavailable", errors.AwsUnavailable),
    ("SomethingNew", errors.AwsError),
]


@pytest.mark.parametrize("code, cls", ERROR_CODES)
def test_client_errors_become_bot_errors(gateway, stub, code, cls):
    stub.add_client_error(
        "delete_snapshot", service_error_code=code, service_message=f"the {code} message", http_status_code=400
    )
    with pytest.raises(errors.AwsError) as caught:
        gateway.delete_snapshot(REGION, "snap-1234abcd")
    exc = caught.value
    assert type(exc) is cls
    assert exc.code == code
    assert "DeleteSnapshot snap-1234abcd failed" in exc.message
    assert f"the {code} message" in exc.message and code in exc.message
    assert isinstance(exc.__cause__, Exception)  # the botocore error is kept for the log


@pytest.mark.parametrize(
    "code, cls",
    [
        ("InvalidSnapshot.NotFound", errors.NotFound),
        ("UnauthorizedOperation", errors.AccessDenied),
        ("RequestLimitExceeded", errors.Throttled),
        ("SnapshotLimitExceeded", errors.LimitExceeded),
        ("InternalError", errors.AwsUnavailable),
    ],
)
def test_mapped_errors_carry_a_next_step(gateway, stub, code, cls):
    stub.add_client_error("delete_snapshot", service_error_code=code, http_status_code=400)
    with pytest.raises(cls) as caught:
        gateway.delete_snapshot(REGION, "snap-1234abcd")
    assert caught.value.hint


def test_errors_while_paging_are_mapped(gateway, stub):
    stub.add_response(
        "describe_snapshots",
        {"Snapshots": [raw_snapshot(0)], "NextToken": "t"},
        {"OwnerIds": ["self"], "MaxResults": PAGE_SIZE},
    )
    stub.add_client_error("describe_snapshots", service_error_code="UnauthorizedOperation", http_status_code=403)
    with pytest.raises(errors.AccessDenied):
        list(gateway.describe_snapshots(REGION))


def test_get_snapshot_of_a_missing_id_names_it(gateway, stub):
    stub.add_client_error(
        "describe_snapshots",
        service_error_code="InvalidSnapshot.NotFound",
        service_message="The snapshot 'snap-0123456789abcdef0' does not exist.",
        http_status_code=400,
    )
    with pytest.raises(errors.NotFound) as caught:
        gateway.get_snapshot(REGION, "snap-0123456789abcdef0")
    assert "snap-0123456789abcdef0" in caught.value.message and REGION in caught.value.message
    assert "region=" in caught.value.hint


@pytest.mark.parametrize(
    "method, getter, key",
    [
        ("describe_snapshots", "get_snapshot", "Snapshots"),
        ("describe_volumes", "get_volume", "Volumes"),
        ("describe_instances", "get_instance", "Reservations"),
        ("describe_images", "get_image", "Images"),
    ],
)
def test_get_of_an_id_answered_with_nothing_is_not_found(gateway, stub, method, getter, key):
    stub.add_response(method, {key: []})
    with pytest.raises(errors.NotFound) as caught:
        getattr(gateway, getter)(REGION, "vol-0123456789abcdef0")
    assert "vol-0123456789abcdef0 not found in us-east-1" in caught.value.message


def test_get_does_not_hide_other_errors(gateway, stub):
    stub.add_client_error("describe_volumes", service_error_code="UnauthorizedOperation", http_status_code=403)
    with pytest.raises(errors.AccessDenied):
        gateway.get_volume(REGION, "vol-1234abcd")


# --- over HTTP: retries, timeouts, connection errors ---------------------------------------------

THROTTLED = (
    503,
    "<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>RequestLimitExceeded</Code>"
    "<Message>Request limit exceeded.</Message></Error></Errors><RequestID>r1</RequestID></Response>",
)
ZONES = (
    200,
    "<DescribeAvailabilityZonesResponse xmlns='http://ec2.amazonaws.com/doc/2016-11-15/'><requestId>r2</requestId>"
    "<availabilityZoneInfo><item><zoneName>us-east-1b</zoneName><zoneState>available</zoneState>"
    "<regionName>us-east-1</regionName></item><item><zoneName>us-east-1a</zoneName><zoneState>available</zoneState>"
    "<regionName>us-east-1</regionName></item></availabilityZoneInfo></DescribeAvailabilityZonesResponse>",
)
HANG = (0, "")


class ScriptedEc2:
    """A local HTTP endpoint answering each request with the next scripted (status, body)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, str]] = []
        self.requests: list[str] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                outer.requests.append(body)
                status, text = outer.script.pop(0) if outer.script else ZONES
                if status == 0:
                    outer.release.wait(10)
                    return
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(monkeypatch) -> Iterator[ScriptedEc2]:
    server = ScriptedEc2()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    yield server
    server.close()


def test_throttling_is_retried_and_every_attempt_is_counted(scripted):
    scripted.script = [THROTTLED, ZONES]
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION))
    assert gateway.availability_zones(REGION) == ["us-east-1a", "us-east-1b"]
    assert len(scripted.requests) == 2
    assert gateway.calls == Counter({"DescribeAvailabilityZones": 2})


def test_throttling_that_does_not_stop_becomes_throttled(scripted):
    scripted.script = [THROTTLED, THROTTLED]
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=2)
    with pytest.raises(errors.Throttled) as caught:
        gateway.availability_zones(REGION)
    assert caught.value.code == "RequestLimitExceeded" and caught.value.hint
    assert gateway.calls["DescribeAvailabilityZones"] == 2


def test_read_timeout_becomes_aws_unavailable(scripted):
    scripted.script = [HANG]
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1, read_timeout=0.3)
    with pytest.raises(errors.AwsUnavailable) as caught:
        gateway.availability_zones(REGION)
    assert "DescribeAvailabilityZones failed" in caught.value.message and caught.value.hint


def test_connection_refused_becomes_aws_unavailable(monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(errors.AwsUnavailable) as caught:
        list(gateway.describe_snapshots(REGION))
    assert "DescribeSnapshots failed" in caught.value.message
    assert time.monotonic() - started < 10


def test_no_credentials_is_access_denied(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1)
    with pytest.raises(errors.AccessDenied) as caught:
        gateway.availability_zones(REGION)
    assert "no AWS credentials" in caught.value.message


# --- botocore's own failures: credentials, TLS, proxy, paging, configuration ----------------------


def test_a_tls_failure_is_aws_unavailable_with_a_hint(scripted, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", scripted.url.replace("http://", "https://"))  # TLS to a plain HTTP port
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1, connect_timeout=2)
    with pytest.raises(errors.AwsUnavailable) as caught:
        list(gateway.describe_snapshots(REGION))
    assert "DescribeSnapshots failed: the TLS connection to AWS failed" in caught.value.message
    assert "AWS_CA_BUNDLE" in caught.value.hint and caught.value.code == "SSLError"


def test_an_unreachable_proxy_is_aws_unavailable_with_a_hint(monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1, connect_timeout=2)
    with pytest.raises(errors.AwsUnavailable) as caught:
        gateway.availability_zones(REGION)
    assert "through the proxy" in caught.value.message and "HTTPS_PROXY" in caught.value.hint


def failing_credentials_session(monkeypatch, tmp_path) -> boto3.session.Session:
    """A profile whose credential_process fails, as an expired SSO login or a broken helper does."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("[profile broken]\ncredential_process = false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    return boto3.session.Session(profile_name="broken", region_name=REGION)


def test_a_credential_retrieval_failure_is_access_denied_with_a_hint(monkeypatch, tmp_path):
    gateway = Ec2Gateway(failing_credentials_session(monkeypatch, tmp_path), max_attempts=1)
    with pytest.raises(errors.AccessDenied) as caught:
        list(gateway.describe_volumes(REGION))
    assert "could not get AWS credentials" in caught.value.message
    assert "credentials" in caught.value.hint and "python -m bot check" in caught.value.hint


def test_warm_up_never_stops_start_up(monkeypatch, tmp_path, caplog):
    gateway = Ec2Gateway(failing_credentials_session(monkeypatch, tmp_path), max_attempts=1)
    gateway.warm_up([REGION, "eu-west-1"])  # credentials are resolved when a client is built: they fail here
    assert caplog.text.count("could not prepare the EC2 client") == 2
    with pytest.raises(errors.AccessDenied):  # and again, mapped, at the first real call
        gateway.account_id(REGION)


def test_an_unknown_profile_is_a_config_error(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(errors.ConfigError) as caught:
        Ec2Gateway()
    assert "AWS_PROFILE" in caught.value.message and "no-such-profile" in caught.value.message


def test_a_repeated_page_token_is_an_aws_error(gateway, stub):
    page = {"Snapshots": [raw_snapshot(0)], "NextToken": "same"}
    stub.add_response("describe_snapshots", page)
    stub.add_response("describe_snapshots", page)
    with pytest.raises(errors.AwsError) as caught:
        list(gateway.describe_snapshots(REGION))
    assert "inconsistent listing" in caught.value.message and caught.value.code == "PaginationError"


def test_a_response_botocore_cannot_read_is_aws_unavailable(scripted):
    scripted.script = [(200, "<html>a proxy's login page, not EC2's XML")]
    gateway = Ec2Gateway(boto3.session.Session(region_name=REGION), max_attempts=1)
    with pytest.raises(errors.AwsUnavailable) as caught:
        gateway.availability_zones(REGION)
    assert "could not read" in caught.value.message and caught.value.code == "ResponseParserError"
    assert "proxy" in caught.value.hint


def _botocore_errors() -> list[type]:
    found = []
    for cls in vars(botocore.exceptions).values():
        if isinstance(cls, type) and issubclass(cls, botocore.exceptions.BotoCoreError):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _botocore_errors(), ids=lambda c: c.__name__)
def test_every_botocore_error_becomes_a_bot_error(cls):
    fields = {name: "x" for _, name, _, _ in string.Formatter().parse(cls.fmt) if name}
    try:
        exc = cls(**fields)
    except TypeError:
        exc = cls(**fields, last_response={})  # WaiterError
    with pytest.raises(errors.AwsError) as caught:
        with aws_errors("DescribeVolumes"):
            raise exc
    assert caught.value.message.startswith("DescribeVolumes failed") and caught.value.hint
    assert caught.value.code == cls.__name__


# --- the call counter, against moto --------------------------------------------------------------


def test_calls_are_counted_by_action(aws):
    gateway = Ec2Gateway(aws)
    ec2 = aws.client("ec2", region_name=REGION)
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]

    snap = gateway.create_snapshot(REGION, vol, "counted", {"chatops:managed": "true"})
    list(gateway.describe_volumes(REGION))
    list(gateway.describe_volumes("us-west-2"))
    gateway.get_snapshot(REGION, snap.id)
    gateway.account_id(REGION)

    assert gateway.calls == Counter(
        {"CreateSnapshot": 1, "DescribeVolumes": 2, "DescribeSnapshots": 1, "GetCallerIdentity": 1}
    )


def test_one_client_per_region_and_service(aws):
    gateway = Ec2Gateway(aws)
    assert gateway.client(REGION) is gateway.client(REGION)
    assert gateway.client(REGION) is not gateway.client("us-west-2")
    assert gateway.client(REGION, "sts") is not gateway.client(REGION)
    assert gateway.client("us-west-2").meta.region_name == "us-west-2"


def test_warm_up_loads_the_clients_without_calling_aws(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    session = boto3.session.Session(region_name=REGION)  # fresh: nothing loaded yet
    sent = []
    session.events.register("before-send", lambda request, **_: sent.append(request.url))
    gateway = Ec2Gateway(session)
    gateway.warm_up([REGION, "eu-west-1"])
    assert sent == []
    assert not gateway.calls


@pytest.mark.parametrize(
    "text",
    ["2024-06-15T09:00:00.000Z", "2024-06-15T09:00:00Z", "2024-06-15T11:00:00+02:00", "Sat, 15 Jun 2024 09:00:00 GMT"],
)
def test_timestamps_parse_to_the_same_instant_as_botocore(text):
    from botocore.utils import parse_timestamp as botocore_parse

    assert parse_timestamp(text) == botocore_parse(text) == datetime(2024, 6, 15, 9, tzinfo=UTC)
    assert parse_timestamp(text).tzinfo is not None


def test_the_gateway_reads_response_timestamps_with_the_fast_parser(monkeypatch):
    from benchmarks.fake_ec2 import FakeEc2

    with FakeEc2(throttling=False) as fake:
        fake.seed_snapshots(REGION, 2, newest=datetime(2024, 6, 15, 9, tzinfo=UTC))
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        snaps = list(Ec2Gateway(boto3.session.Session(region_name=REGION)).describe_snapshots(REGION))
    assert snaps[-1].start_time == datetime(2024, 6, 15, 9, tzinfo=UTC)
    # botocore's own parser would have given dateutil's tzutc().
    assert all(s.start_time.tzinfo is UTC for s in snaps)


def test_images_are_listed_with_disabled_ones_whose_snapshots_are_still_in_use(gateway, stub):
    # EC2 leaves a disabled AMI out unless IncludeDisabled is asked; its snapshots would then look orphaned.
    params = {"Owners": ["self"], "MaxResults": PAGE_SIZE, "IncludeDisabled": True}
    disabled = {**raw_image(3, ("snap-dddddddd",)), "State": "disabled"}
    stub.add_response("describe_images", {"Images": [disabled]}, params)
    assert gateway.images_using_snapshots(REGION, ["snap-dddddddd"]) == {"snap-dddddddd": f"ami-{3:017x}"}
