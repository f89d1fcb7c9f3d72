"""Fixtures of the watch tests: Deps built by hand (no scheduler: the test polls), a clock it moves, a Stubber."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.gateway import Ec2Gateway
from bot.config import Config
from bot.flows.deps import Deps
from bot.flows.worker import Worker
from bot.process.app import make_slack_client
from bot.state.store import Store
from tests.support.watches import NOW

_SESSION = boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def clock() -> dict:
    return {"now": NOW}


@pytest.fixture
def deps(fake_slack, clock):
    """Deps by hand, without a running scheduler: the test itself polls the watches."""
    deps = Deps(
        config=Config(),
        gateway=Ec2Gateway(_SESSION),
        store=Store(":memory:", lambda: clock["now"]),
        worker=Worker(1),
        slack=make_slack_client("xoxb-test", fake_slack.api_url),
        clock=lambda: clock["now"],
    )
    yield deps
    deps.worker.shutdown()
    deps.store.close()


@pytest.fixture
def stub(deps):
    with Stubber(deps.gateway.client("us-east-1")) as stubber:
        yield stubber
