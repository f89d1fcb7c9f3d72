"""`python -m bot sweep`: its exit code says whether every expired item went, whatever kind of failure it was.

In-process (`run_sweep`, what `python -m bot sweep` calls) against the benchmark's fake
EC2, so a deletion can be refused for real: a snapshot that another account's AMI is
registered from is not among our images, so retention expires it, and EC2 answers
InvalidSnapshot.InUse, a refusal that is reported at once and never retried.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.fake_ec2 import FakeEc2
from bot.process.sweep_cli import run_sweep

REGION = "us-east-1"
VOLUME = "vol-0123456789abcdef0"
TAGS = {"chatops:policy": "nightly", "chatops:source": VOLUME}
CONFIG = """
[aws]
regions = ["us-east-1"]

[[policies]]
name = "nightly"
resource = "volume"
target_tags = { Backup = "nightly" }
every = "12h"
keep = 1
on_expired = "delete"
"""


@pytest.fixture
def fake(monkeypatch):
    with FakeEc2() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)  # boto3 reads the process environment
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield fake


@pytest.fixture
def env(fake, tmp_path) -> dict[str, str]:
    """The CLI's environment: no Slack token (the report is only printed)."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATOPS_"))}
    return {**env, "CHATOPS_CONFIG": str(config), "CHATOPS_DB": str(tmp_path / "cli.db")}


def seed(fake: FakeEc2) -> tuple[str, list[str]]:
    """The newest snapshot (kept by keep=1) and three expired ones, oldest first."""
    now = datetime.now(UTC)
    [newest] = fake.seed_snapshots(REGION, 1, tags=TAGS, volumes=[VOLUME], newest=now)
    expired = fake.seed_snapshots(REGION, 3, tags=TAGS, volumes=[VOLUME], newest=now - timedelta(days=1))
    return newest, expired


def sweep(env: dict[str, str]) -> tuple[int, str]:
    said: list[str] = []
    code = run_sweep(env, None, False, said.append)
    return code, "\n".join(said)


def test_a_sweep_that_deleted_every_expired_item_exits_zero(fake, env):
    newest, expired = seed(fake)

    code, report = sweep(env)

    assert code == 0, report
    assert fake.ids(REGION) == {newest}
    assert "3 deleted · 0 failed" in report


def test_one_refused_deletion_makes_the_sweep_exit_non_zero_though_the_rest_went(fake, env):
    newest, expired = seed(fake)
    fake.register_image(REGION, [expired[0]], owner_id="210987654321")  # not ours: retention cannot see it

    code, report = sweep(env)

    assert code == 1, report
    assert fake.ids(REGION) == {newest, expired[0]}  # every other expired item went: nothing was left undone
    assert "2 deleted · 1 failed" in report
    assert f"{expired[0]}" in report and "InvalidSnapshot.InUse" in report
