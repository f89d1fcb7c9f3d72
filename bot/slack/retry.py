"""Which failed Slack calls are retried, so that no message is ever posted twice.

slack_sdk's built-in handlers retry a 5xx or a dropped connection for every
method.  `chat.postMessage` is not idempotent: a 500, a timeout or a closed
connection can come after Slack posted, and a blind retry posts the message
again.  So a call is retried only when Slack certainly did not act on it, or
when acting twice changes nothing:

- a 429 (Slack refused the call; Retry-After is honoured), any method;
- a failure before the request was sent (connection refused, DNS, connect
  timeout: urllib wraps those in URLError), any method;
- a 500/503, a dropped connection or a read timeout, only for idempotent
  methods: `chat.update` (it sets the message to the same content again),
  deletes, publishing a view, and reads.

Methods not listed as idempotent are treated as posting something.  The
same rules apply to response_url calls (`webhook`), which post an ephemeral
message unless they replace the original.
"""

from __future__ import annotations

from http.client import RemoteDisconnected
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

IDEMPOTENT_METHODS = frozenset({"chat.update", "chat.delete", "views.publish", "views.update"})
# Read-only methods end in one of these (auth.test, conversations.info, users.list, …).
READ_SUFFIXES = ("test", "info", "list", "history", "replies")


def method_of(url: str) -> str:
    """The Web API method a request URL calls ("chat.postMessage"); a response_url gives its last path part."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def idempotent(method: str) -> bool:
    return method in IDEMPOTENT_METHODS or method.rsplit(".", 1)[-1] in READ_SUFFIXES


class NotSentRetryHandler(RetryHandler):
    """Retries a request that never reached Slack: urllib raises URLError only while connecting or sending."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is None and isinstance(error, URLError) and not isinstance(error, HTTPError)


class IdempotentServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retries a 500/503, which Slack may send after it acted: only where acting twice changes nothing."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return idempotent(method_of(request.url)) and super()._can_retry(
            state=state, request=request, response=response, error=error
        )


class IdempotentConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """Retries a dropped connection or a read timeout (Slack may have acted): only for idempotent methods."""

    def __init__(self, max_retry_count: int = 2):
        super().__init__(max_retry_count, error_types=[ConnectionResetError, RemoteDisconnected, TimeoutError])

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return idempotent(method_of(request.url)) and super()._can_retry(
            state=state, request=request, response=response, error=error
        )


def retry_handlers() -> list[RetryHandler]:
    """The handlers for every Slack client the bot makes (the Web API and response_url)."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=3),
        NotSentRetryHandler(max_retry_count=2),
        IdempotentServerErrorRetryHandler(max_retry_count=2),
        IdempotentConnectionErrorRetryHandler(max_retry_count=2),
    ]


def webhook(url: str, timeout: float) -> WebhookClient:
    """A response_url client with the same retry rules (an ephemeral answer is a post: never retried blindly)."""
    return WebhookClient(url, timeout=timeout, retry_handlers=retry_handlers())
