"""The Slack client's retries: a post is never doubled, an update always gets through a passing fault.

The real WebClient from `make_slack_client` against the fake Slack Web API,
with faults scripted at the socket: 429 with Retry-After, a 500 or a dropped
connection after Slack already posted, an answer that never comes in time.
"""

from __future__ import annotations

from http.client import RemoteDisconnected
from urllib.error import URLError

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.state import RetryState

from bot.process.app import make_slack_client
from bot.slack.retry import retry_handlers, webhook

TIMEOUT = 0.3
HANG = 2 * TIMEOUT


@pytest.fixture
def client(fake_slack):
    return make_slack_client("xoxb-test", fake_slack.api_url, timeout=TIMEOUT)


def posted(fake_slack, text: str) -> int:
    return len(fake_slack.channel_messages(text))


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "after": True},
        {"status": 503, "after": True},
        {"drop": True, "after": True},
        {"hang": HANG, "after": True},
    ],
    ids=["500", "503", "dropped", "timeout"],
)
def test_a_post_whose_answer_is_lost_is_not_retried_so_it_is_never_doubled(client, fake_slack, fault):
    fake_slack.fail_next("chat.postMessage", **fault)
    with pytest.raises((SlackApiError, OSError)):
        client.chat_postMessage(channel="C0OPS", text="snap-0123456789abcdef0 started")
    assert posted(fake_slack, "snap-0123456789abcdef0") == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_a_post_dropped_before_slack_acted_is_not_retried_either(client, fake_slack):
    """From the client's side it looks exactly like a drop after posting: it cannot tell, so it does not guess."""
    fake_slack.fail_next("chat.postMessage", drop=True)
    with pytest.raises(OSError):
        client.chat_postMessage(channel="C0OPS", text="hello")
    assert posted(fake_slack, "hello") == 0
    assert [c.method for c in fake_slack.calls] == ["chat.postMessage:failed"]


def test_a_rate_limited_post_is_retried_after_retry_after_and_arrives_once(client, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0, times=2)
    resp = client.chat_postMessage(channel="C0OPS", text="hello")
    assert resp["ok"] and posted(fake_slack, "hello") == 1
    assert [c.method for c in fake_slack.calls] == ["chat.postMessage:failed"] * 2 + ["chat.postMessage"]


def test_a_post_still_rate_limited_after_the_retries_fails_unposted(client, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0, times=4)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C0OPS", text="hello")
    assert caught.value.response["error"] == "ratelimited"
    assert posted(fake_slack, "hello") == 0


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 500, "after": True},
        {"status": 429, "retry_after": 0},
        {"drop": True},
        {"drop": True, "after": True},
        {"hang": HANG, "after": True},
    ],
    ids=["500", "500-after", "429", "dropped", "dropped-after", "timeout"],
)
def test_an_update_is_retried_through_a_passing_fault(client, fake_slack, fault):
    ts = client.chat_postMessage(channel="C0OPS", text="pending")["ts"]
    fake_slack.fail_next("chat.update", **fault)
    client.chat_update(channel="C0OPS", ts=ts, text="completed")
    assert fake_slack.messages[("C0OPS", ts)]["text"] == "completed"
    assert posted(fake_slack, "") == 1


def test_a_response_url_answer_is_not_doubled_by_a_retry(fake_slack):
    url = fake_slack.new_response_url()
    fake_slack.fail_next("response_url", drop=True, after=True)
    with pytest.raises(OSError):
        webhook(url, TIMEOUT).send(text="only once", response_type="ephemeral", replace_original=False)
    assert fake_slack.texts("response_url") == ["only once"]


def _retried(method: str, error: Exception) -> bool:
    request = HttpRequest(method="POST", url=f"https://slack.com/api/{method}", headers={})
    return any(h.can_retry(state=RetryState(), request=request, error=error) for h in retry_handlers())


def test_which_connection_failures_are_retried_for_which_method():
    refused = URLError(ConnectionRefusedError(111, "Connection refused"))  # nothing was sent
    dropped = RemoteDisconnected("Remote end closed connection without response")  # sent; fate unknown
    timed_out = TimeoutError("The read operation timed out")
    assert _retried("chat.postMessage", refused) and _retried("chat.update", refused)
    assert not _retried("chat.postMessage", dropped) and _retried("chat.update", dropped)
    assert not _retried("chat.postMessage", timed_out) and _retried("chat.update", timed_out)
    assert not _retried("chat.postEphemeral", dropped)
    assert _retried("auth.test", dropped) and _retried("conversations.info", timed_out)
