"""The HTTP front door (bot/slack/server.py): what is refused before Bolt ever sees a request."""

from __future__ import annotations

import socket

import pytest

from bot.slack.server import MAX_BODY_BYTES
from bot.testing import slack_payloads
from tests.support.factories import make_volume
from tests.support.harness import ALICE, SECRET

pytestmark = pytest.mark.e2e


def status_after_sending(port: int, head: bytes, body_part: bytes) -> int:
    """Send a request's head and only part of its body, then read the status line.

    A server that waits for the whole body never answers (the timeout fails
    the test); one that refuses by the head answers at once.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + body_part)
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def request_head(headers: dict[str, str], **extra: str) -> bytes:
    lines = ["POST /slack/events HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in {**headers, **extra}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_snapshot_command(bot, text: str) -> tuple[str, dict[str, str]]:
    body = slack_payloads.slash_command("/snapshot", text, ALICE, "C0OPS", bot.slack.new_response_url())
    return body, slack_payloads.signed_headers(SECRET, body)


def assert_nothing_happened(bot, ec2) -> None:
    bot.settle()
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert sum(bot.deps.gateway.calls.values()) == 0
    assert [c.method for c in bot.slack.calls] == ["auth.test"]  # at start-up, before the request
    assert bot.deps.store.recent_audit() == []


def test_a_body_over_one_mib_is_413_by_its_length_and_nothing_else_happens(bot, ec2):
    vol = make_volume(ec2)
    body, headers = signed_snapshot_command(bot, f"{vol} " + "x" * MAX_BODY_BYTES)  # validly signed
    assert len(body) > MAX_BODY_BYTES
    head = request_head(headers, **{"Content-Length": str(len(body))})

    assert status_after_sending(bot.server.port, head, body[:65536].encode()) == 413
    assert_nothing_happened(bot, ec2)


def test_a_chunked_body_over_one_mib_is_413_too(bot, ec2):
    vol = make_volume(ec2)
    body, headers = signed_snapshot_command(bot, f"{vol} " + "x" * MAX_BODY_BYTES)
    chunk = body[: MAX_BODY_BYTES + 1024].encode()
    head = request_head(headers, **{"Transfer-Encoding": "chunked"})

    assert status_after_sending(bot.server.port, head, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") == 413
    assert_nothing_happened(bot, ec2)


def test_a_body_just_under_the_cap_is_still_answered(bot, ec2):
    text = "frobnicate " + "x" * (MAX_BODY_BYTES - 2048)
    body, headers = signed_snapshot_command(bot, text)
    assert MAX_BODY_BYTES - 2048 < len(body) <= MAX_BODY_BYTES

    answer = bot.post(body, headers)

    assert answer.status == 200 and "unknown sub-command" in answer.text
    assert sum(bot.deps.gateway.calls.values()) == 0


@pytest.mark.parametrize("secret", [SECRET, "not-the-secret"], ids=["signed", "unsigned"])
def test_a_payload_that_is_not_slack_json_is_400_without_a_traceback(bot, ec2, caplog, secret):
    body = "payload=" + "%7Bnot%20json"
    answer = bot.post(body, slack_payloads.signed_headers(secret, body))

    assert answer.status == 400 and "Bad Request" in answer.body
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
    assert_nothing_happened(bot, ec2)
