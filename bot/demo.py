"""`python -m bot demo`: the whole bot with no Slack workspace and no AWS account.

AWS is a moto server on a local port (reached through AWS_ENDPOINT_URL, as
boto3 would reach any endpoint), seeded with volumes, instances, snapshots
and an AMI; Slack is the local fake Web API; the store is a temporary file;
the scheduler runs.  The console (bot/testing/console.py) drives the same Bolt App
with the same signed payloads as production.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

DEMO_USERS = {"alice": "U0ALICE", "bob": "U0BOB"}
DEMO_CHANNEL = "C0OPS"
SIGNING_SECRET = "demo-signing-secret"
PROD_ROLE = "arn:aws:iam::111111111111:role/chatops"

DEMO_CONFIG = f"""
[slack]
digest_channel = "{DEMO_CHANNEL}"

[aws]
default_region = "us-east-1"
regions = ["us-east-1", "us-west-2"]
poll_interval = "2s"

# A second account, reached through STS assume-role (moto acts in 111111111111 for this role).
[[accounts]]
name = "prod"
role_arn = "{PROD_ROLE}"
regions = ["us-east-1"]

[access]
approvers = ["{DEMO_USERS["bob"]}"]
approval_ttl = "1h"

[[policies]]
name = "daily-db"
resource = "volume"
target_tags = {{ Backup = "daily" }}
regions = ["us-east-1"]
every = "12h"
keep = 2
on_expired = "approve"
drill = "7d"                  # restore drills: prove the backups restore (README, "Prove your backups")
"""


def start_moto() -> str:
    """Start moto's server in this process on a free port; returns its URL."""
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
    from moto.server import ThreadedMotoServer

    from bot.testing.moto_extras import NoRulesRecycleBin, answer_missing_actions

    answer_missing_actions()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    os.environ["AWS_ENDPOINT_URL_RBIN"] = NoRulesRecycleBin().start().url  # moto has no Recycle Bin
    return url


@dataclass(frozen=True)
class Seeded:
    volumes: Mapping[str, str]  # name → volume ID
    instances: Mapping[str, str]
    snapshots: tuple[str, ...]
    image_id: str
    prod_volumes: Mapping[str, str] = None  # the second account's
    base_image_id: str = ""  # the AMI both instances were launched from: deregistering it is refused


def seed_prod(session, region: str = "us-east-1") -> dict[str, str]:
    """The second account: two volumes, through the same role the bot assumes."""
    creds = session.client("sts", region_name=region).assume_role(RoleArn=PROD_ROLE, RoleSessionName="demo-seed")
    c = creds["Credentials"]
    ec2 = session.client(
        "ec2",
        region_name=region,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )
    volumes = {}
    for name, size in (("orders-db", 200), ("orders-logs", 50)):
        volumes[name] = ec2.create_volume(
            AvailabilityZone=f"{region}a",
            Size=size,
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": name}]}],
        )["VolumeId"]
    return volumes


def seed(session, region: str = "us-east-1", dr_region: str = "us-west-2") -> Seeded:
    """A small, realistic inventory: tagged and untagged volumes, two instances, snapshots, an AMI."""
    ec2 = session.client("ec2", region_name=region)
    az = f"{region}a"

    def tags(**kv: str) -> list[dict]:
        return [{"Key": k, "Value": v} for k, v in kv.items()]

    base_vol = ec2.create_volume(AvailabilityZone=az, Size=8)["VolumeId"]
    base_snap = ec2.create_snapshot(VolumeId=base_vol, Description="base OS image")["SnapshotId"]
    base_ami = ec2.register_image(
        Name="base-os-2026.11",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": base_snap, "VolumeSize": 8}}],
    )["ImageId"]
    ec2.delete_volume(VolumeId=base_vol)

    instances = {}
    for name, itype in (("web-1", "t3.micro"), ("db-1", "t3.large")):
        instances[name] = ec2.run_instances(
            ImageId=base_ami,
            MinCount=1,
            MaxCount=1,
            InstanceType=itype,
            Placement={"AvailabilityZone": az},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags(Name=name, Team="platform")}],
        )["Instances"][0]["InstanceId"]

    volumes = {}
    for name, size, vtags in (
        ("db-data", 100, {"Backup": "daily"}),
        ("web-logs", 20, {"Backup": "daily"}),
        ("scratch", 50, {}),
    ):
        volumes[name] = ec2.create_volume(
            AvailabilityZone=az,
            Size=size,
            VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags(Name=name, **vtags)}],
        )["VolumeId"]
    ec2.attach_volume(VolumeId=volumes["db-data"], InstanceId=instances["db-1"], Device="/dev/sdf")
    ec2.attach_volume(VolumeId=volumes["web-logs"], InstanceId=instances["web-1"], Device="/dev/sdg")

    snapshots = []
    for vol, desc, extra in (
        ("db-data", "nightly db-data", {}),
        ("db-data", "before schema migration <!channel>", {"chatops:keep": "true"}),
        ("web-logs", "web logs weekly", {}),
    ):
        snapshots.append(
            ec2.create_snapshot(
                VolumeId=volumes[vol],
                Description=desc,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags(Name=vol, **extra)}],
            )["SnapshotId"]
        )

    golden = ec2.create_image(
        InstanceId=instances["web-1"], Name="web-golden-2026.11", Description="golden web image", NoReboot=True
    )["ImageId"]
    ec2.create_tags(Resources=[golden], Tags=tags(Name="web-golden"))

    session.client("ec2", region_name=dr_region).create_volume(
        AvailabilityZone=f"{dr_region}a",
        Size=30,
        TagSpecifications=[{"ResourceType": "volume", "Tags": tags(Name="dr-standby")}],
    )
    return Seeded(volumes, instances, tuple(snapshots), golden, base_image_id=base_ami)


def intro(seeded: Seeded) -> str:
    vols = ", ".join(f"{name} `{vid}`" for name, vid in seeded.volumes.items())
    first = seeded.volumes["db-data"]
    prod = ": " + ", ".join(f"{n} `{v}`" for n, v in seeded.prod_volumes.items()) if seeded.prod_volumes else ""
    return f"""
Snapshot & AMI ChatOps bot: demo (AWS is moto on a local port, Slack is simulated)
Volumes: {vols}
Try:
  /snapshot {first} Backup of my EBS volume
  /snapshot list
  /volume list
  /volume list account=prod      (a second account, reached through STS assume-role{prod})
  /snapshot drill {seeded.snapshots[0]}   (a restore drill: restore it, time it, clean up)
  /ami drill {seeded.image_id}
  /chatops help
  /ami deregister {seeded.base_image_id}   (refused: both instances were launched from it — who uses this?)
  as bob, then /lifecycle freeze change window until=1h   (the kill switch: no deletion until /lifecycle thaw)
  home                           (the bot's App Home tab: freeze, requests to approve, policies, storage)
Buttons and menu options print as [N]; press one with `click N`; fill a form with `submit field=value …`.
Switch user with `as bob` (bob is an approver).
Type `quit` to leave.
"""


def run_demo(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, config_path: str | None = None) -> int:
    """Start moto, the fake Slack, the bot and the console; returns an exit code."""
    import logging

    import boto3

    from bot.config import load_config, parse_config, with_overrides
    from bot.process.runtime import Runtime, SlackSettings
    from bot.testing.console import Console
    from bot.testing.fakeslack import FakeSlack

    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("werkzeug", "botocore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    start_moto()
    slack = FakeSlack().start()
    workdir = Path(tempfile.mkdtemp(prefix="chatops-demo-"))
    if config_path:
        config = load_config(config_path)
    else:
        import tomllib

        config = parse_config(tomllib.loads(DEMO_CONFIG))
    config = with_overrides(config, store={"path": str(workdir / "chatops.db")})
    session = boto3.session.Session()
    seeded = seed(
        session,
        config.aws.default_region,
        next((r for r in config.aws.regions if r != config.aws.default_region), "us-west-2"),
    )
    if config.account("prod") is not None and config.account("prod").role_arn == PROD_ROLE:
        seeded = dataclasses.replace(seeded, prod_volumes=seed_prod(session, config.aws.default_region))
    runtime = Runtime(
        config,
        SlackSettings(bot_token="xoxb-demo", signing_secret=SIGNING_SECRET, api_url=slack.api_url),
        session=session,
    )
    runtime.start()

    def settle() -> None:
        runtime.deps.worker.wait_idle(60)
        time.sleep(0.1)  # let Bolt's own listener thread finish its post-ack work
        runtime.deps.worker.wait_idle(60)

    console = Console(runtime.app, slack, SIGNING_SECRET, DEMO_USERS, DEMO_CHANNEL, out=stdout, settle=settle)
    console.say(intro(seeded))
    try:
        console.run(stdin, prompt=stdin.isatty())
    except KeyboardInterrupt:
        console.say("")
    finally:
        runtime.stop()
        slack.stop()
    return 0
