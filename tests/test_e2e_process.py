"""`python -m bot` as a real process: HTTP on $PORT, /healthz, a signed command, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from bot import slack_payloads
from tests.conftest import make_volume
from tests.harness import ALICE, SECRET

pytestmark = pytest.mark.e2e

CONFIG = """
[slack]
digest_channel = "C0DIGEST"
[aws]
default_region = "us-east-1"
regions = ["us-east-1"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise TimeoutError("bot never became healthy")


def test_python_m_bot_serves_http(tmp_path, aws, ec2, fake_slack, moto_server):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    port = free_port()
    env = {
        **os.environ,
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(tmp_path / "bot.db"),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "PORT": str(port),
        "AWS_ENDPOINT_URL": moto_server,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        vol = make_volume(ec2)
        body = slack_payloads.slash_command(
            "/snapshot", f"{vol} from a real process", ALICE, "C0OPS", fake_slack.new_response_url()
        )
        request = urllib.request.Request(
            f"{url}/slack/events",
            data=body.encode(),
            headers=slack_payloads.signed_headers(SECRET, body),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        fake_slack.wait_for(lambda s: s.calls_of("chat.postMessage"), timeout=20)
        snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        assert [s["Description"] for s in snaps] == ["from a real process"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "xoxb-test" not in out + err and SECRET not in out + err  # secrets are never logged


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
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    port = free_port()
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret-key-must-not-leak",
        "AWS_SESSION_TOKEN": "aws-session-token-must-not-leak",
        "SLACK_BOT_TOKEN": "xoxb-bot-token-must-not-leak",
        "SLACK_SIGNING_SECRET": "signing-secret-must-not-leak",
    }
    env = {
        **os.environ,
        **secrets,
        "LOG_LEVEL": "DEBUG",
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(tmp_path / "bot.db"),
        "SLACK_API_URL": fake_slack.api_url,
        "PORT": str(port),
        "AWS_ENDPOINT_URL": moto_server,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        vol = make_volume(ec2)
        body = slack_payloads.slash_command(
            "/snapshot", f"{vol} debug run", ALICE, "C0OPS", fake_slack.new_response_url()
        )
        request = urllib.request.Request(
            f"{url}/slack/events",
            data=body.encode(),
            headers=slack_payloads.signed_headers(secrets["SLACK_SIGNING_SECRET"], body),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        # AWS was called (CreateSnapshot, signed with the session token) and Slack was posted to.
        fake_slack.wait_for(lambda s: s.calls_of("chat.postMessage"), timeout=20)
        assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    output = out + err
    assert proc.returncode == 0, err
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
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("[profile broken]\ncredential_process = false\n")  # like an expired SSO login
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(
        CHATOPS_CONFIG=str(config),
        CHATOPS_DB=str(tmp_path / "bot.db"),
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
        AWS_ENDPOINT_URL=moto_server,
        AWS_CONFIG_FILE=str(aws_config),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_PROFILE="broken",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        body = slack_payloads.slash_command("/snapshot", "list", ALICE, "C0OPS", fake_slack.new_response_url())
        request = urllib.request.Request(
            f"{url}/slack/events",
            data=body.encode(),
            headers=slack_payloads.signed_headers(SECRET, body),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        answers = fake_slack.wait_for(lambda s: [t for t in s.texts("response_url") if "credentials" in t], timeout=20)
        assert "could not get AWS credentials" in answers[0] and "python -m bot check" in answers[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "could not prepare the EC2 client for us-east-1" in err
    assert "Traceback" not in err


def test_an_unknown_aws_profile_stops_startup_with_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
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
