"""`python -m bot` as a real process: HTTP on $PORT, /healthz, a signed command, clean SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.bot_process import BASE_CONFIG, BotProcess
from tests.support.factories import make_volume
from tests.support.harness import SECRET

pytestmark = pytest.mark.e2e


def test_python_m_bot_serves_http(tmp_path, aws, ec2, fake_slack, moto_server):
    bot = BotProcess(tmp_path, BASE_CONFIG, fake_slack, moto_server).start()
    try:
        vol = make_volume(ec2)
        assert bot.command(f"/snapshot {vol} from a real process") == 200
        fake_slack.wait_for(lambda s: s.calls_of("chat.postMessage"), timeout=20)
        snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        assert [s["Description"] for s in snaps] == ["from a real process"]
    finally:
        bot.terminate(timeout=20)
    output = bot.output()
    assert bot.proc.returncode == 0, output
    assert "xoxb-test" not in output and SECRET not in output  # secrets are never logged


def test_bad_config_stops_startup_with_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[access]\napproval_ttl = "soon"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        env={**os.environ, "CHATOPS_CONFIG": str(config), "SLACK_BOT_TOKEN": "x", "SLACK_SIGNING_SECRET": "y"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "access.approval_ttl" in lines[0] and "duration" in lines[0]


def test_debug_logging_never_prints_the_secrets(tmp_path, aws, ec2, fake_slack, moto_server):
    """LOG_LEVEL=DEBUG shows the bot's own debug lines, but botocore/urllib3/slack_sdk stay at INFO."""
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret-key-must-not-leak",
        "AWS_SESSION_TOKEN": "aws-session-token-must-not-leak",
        "SLACK_BOT_TOKEN": "xoxb-bot-token-must-not-leak",
        "SLACK_SIGNING_SECRET": "signing-secret-must-not-leak",
    }
    bot = BotProcess(
        tmp_path,
        BASE_CONFIG,
        fake_slack,
        moto_server,
        env={**secrets, "LOG_LEVEL": "DEBUG"},
        secret=secrets["SLACK_SIGNING_SECRET"],
    ).start()
    try:
        vol = make_volume(ec2)
        assert bot.command(f"/snapshot {vol} debug run") == 200
        # AWS was called (CreateSnapshot, signed with the session token) and Slack was posted to.
        fake_slack.wait_for(lambda s: s.calls_of("chat.postMessage"), timeout=20)
        assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1
    finally:
        bot.terminate(timeout=20)
    output = bot.output()
    assert bot.proc.returncode == 0, output
    assert " DEBUG " in output  # the level took effect, so the check below means something
    for name, value in secrets.items():
        assert value not in output, f"{name} was logged"


def test_an_unknown_log_level_stops_startup_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "manifest"],
        env={**os.environ, "LOG_LEVEL": "verbose"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOG_LEVEL" in lines[0] and "DEBUG" in lines[0], proc.stderr


def test_failing_aws_credentials_do_not_stop_startup_and_commands_say_why(tmp_path, fake_slack, moto_server):
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("[profile broken]\ncredential_process = false\n")  # like an expired SSO login
    bot = BotProcess(
        tmp_path,
        BASE_CONFIG,
        fake_slack,
        moto_server,
        env={
            "AWS_CONFIG_FILE": str(aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_PROFILE": "broken",
        },
        unset=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ).start()
    try:
        assert bot.command("/snapshot list") == 200
        answers = fake_slack.wait_for(lambda s: [t for t in s.texts("response_url") if "credentials" in t], timeout=20)
        assert "could not get AWS credentials" in answers[0] and "python -m bot check" in answers[0]
    finally:
        bot.terminate(timeout=20)
    output = bot.output()
    assert bot.proc.returncode == 0, output
    assert "could not prepare the EC2 client for us-east-1" in output
    assert "Traceback" not in output


def test_an_unknown_aws_profile_stops_startup_with_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(BASE_CONFIG)
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        env={
            **os.environ,
            "CHATOPS_CONFIG": str(config),
            "CHATOPS_DB": str(tmp_path / "bot.db"),
            "SLACK_BOT_TOKEN": "x",
            "SLACK_SIGNING_SECRET": "y",
            "AWS_PROFILE": "no-such-profile",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "AWS_PROFILE" in lines[0] and "no-such-profile" in lines[0], proc.stderr
