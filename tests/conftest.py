"""Shared fixtures: a moto server for the session, a fresh fake Slack and bot per test."""

from __future__ import annotations

import dataclasses
import os
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta

import boto3
import pytest

from bot.config import Config, Policy, with_overrides
from bot.testing.fakeslack import FakeSlack
from tests.harness import BOB, BotUnderTest

os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One moto server for the session (reset before each test that uses it)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch) -> boto3.session.Session:
    """A clean moto account reached through AWS_ENDPOINT_URL, as production reaches AWS."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def ec2(aws):
    return aws.client("ec2", region_name="us-east-1")


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


def daily_policy(**changes) -> Policy:
    """The tests' usual policy: daily-db snapshots volumes tagged Backup=daily in us-east-1 every 12 h, keeps 2."""
    policy = Policy(
        name="daily-db",
        resource="volume",
        target_tags={"Backup": "daily"},
        regions=("us-east-1",),
        every=timedelta(hours=12),
        keep=2,
        on_expired="approve",
    )
    return dataclasses.replace(policy, **changes)


def base_config(tmp_path) -> Config:
    return with_overrides(
        Config(),
        store={"path": str(tmp_path / "chatops.db")},
        aws={"regions": ("us-east-1", "us-west-2"), "poll_interval": timedelta(seconds=0.2)},
        access={"approvers": (BOB,)},
        slack={"digest_channel": "C0DIGEST"},
    )


@pytest.fixture
def make_bot(aws, fake_slack, tmp_path) -> Iterator[Callable[..., BotUnderTest]]:
    """Start the real app over HTTP; keyword arguments override config sections."""
    started: list[BotUnderTest] = []

    def make(config: Config | None = None, clock=None, **sections) -> BotUnderTest:
        config = config or base_config(tmp_path)
        if sections:
            config = with_overrides(config, **sections)
        bot = BotUnderTest(config, fake_slack, **({"clock": clock} if clock else {})).start()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.stop()


@pytest.fixture
def bot(make_bot) -> BotUnderTest:
    return make_bot()


def make_volume(ec2, size: int = 8, az: str = "us-east-1a", **tags: str) -> str:
    spec = {"AvailabilityZone": az, "Size": size}
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.create_volume(**spec)["VolumeId"]


def make_instance(ec2, az: str = "us-east-1a", **tags: str) -> str:
    spec = {
        "ImageId": "ami-12345678",
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": "t3.micro",
        "Placement": {"AvailabilityZone": az},
    }
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.run_instances(**spec)["Instances"][0]["InstanceId"]
