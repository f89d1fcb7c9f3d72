"""Fixtures of every test: a moto server for the session, a clean AWS account and a fresh fake Slack per test.

Plain helpers (factories, the harness) are in tests/support; the bot over HTTP is in tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from hypothesis import Phase, settings

from benchmarks.fake_ec2 import FakeEc2
from bot.testing.fakeslack import FakeSlack

# scripts/mutation.sh runs with --hypothesis-profile=mutation: one failing example kills a mutant (shrinking
# it takes minutes for a large inventory); the same examples for every mutant, and no deadline, so that a
# slow example under mutmut's trampolines never counts as a kill.
settings.register_profile(
    "mutation", phases=[Phase.explicit, Phase.generate], derandomize=True, deadline=None, database=None
)

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

    from bot.testing.moto_extras import answer_missing_actions

    answer_missing_actions()  # moto lacks DescribeLockedSnapshots: without this each plan waits ~2 s of retries
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url
    server.stop()


@pytest.fixture(scope="session")
def rbin_server() -> Iterator[FakeEc2]:
    """moto has no Recycle Bin (rbin answers 500, retried for seconds): the project's fake EC2 serves its rules."""
    with FakeEc2() as fake:
        yield fake


@pytest.fixture
def aws(moto_server, rbin_server, monkeypatch) -> boto3.session.Session:
    """A clean moto account reached through AWS_ENDPOINT_URL, as production reaches AWS.

    The Recycle Bin's rules come from `rbin_server` (AWS_ENDPOINT_URL_RBIN): none, so every deletion
    is permanent.  moto answers DescribeLockedSnapshots with no lock (bot/testing/moto_extras.py) and
    the bin's own actions with a 500; tests/e2e/test_e2e_recycle_bin.py runs the bot against the fake
    EC2 instead, which has them all.
    """
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    rbin_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_RBIN", rbin_server.url)
    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def ec2(aws):
    return aws.client("ec2", region_name="us-east-1")


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()
