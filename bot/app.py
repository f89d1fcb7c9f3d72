"""The Bolt App factory: config + gateway + store in, a wired App out."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

import handlers
from bot.deps import Deps

log = logging.getLogger(__name__)


def make_slack_client(token: str | None, base_url: str | None = None) -> WebClient:
    """A WebClient that retries rate limits (honouring Retry-After), 5xx and dropped connections."""
    kwargs = {"base_url": base_url} if base_url else {}
    client = WebClient(token=token, timeout=15, **kwargs)
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    return client


LISTENER_THREADS = 64


def build_app(
    deps: Deps,
    signing_secret: str | None,
    *,
    token_verification: bool = True,
    listener_executor: ThreadPoolExecutor | None = None,
) -> App:
    """Build the Bolt App and register every listener (handlers/); Bolt runs them in `listener_executor`."""
    app = App(
        client=deps.slack,
        signing_secret=signing_secret,
        # Listeners ack first and hand AWS work to our own bounded pool, so Bolt
        # answers Slack as soon as ack() is called.
        process_before_response=False,
        token_verification_enabled=token_verification,
        # Bolt runs each listener in this pool and answers Slack as soon as it
        # acks; a roomy pool keeps acks from queueing behind listeners' post-ack
        # bookkeeping when many requests arrive at once.
        listener_executor=listener_executor or listener_pool(),
        logger=logging.getLogger("slack_bolt"),
    )
    handlers.register_all(app, deps)
    return app


def listener_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt")
