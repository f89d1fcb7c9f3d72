"""The Bolt App factory: config + gateway + store in, a wired App out."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

import handlers
from bot.flows.deps import Deps
from bot.slack.retry import retry_handlers

log = logging.getLogger(__name__)


SLACK_TIMEOUT = 15.0  # seconds a Slack Web API call may take before it counts as failed


def make_slack_client(token: str | None, base_url: str | None = None, timeout: float = SLACK_TIMEOUT) -> WebClient:
    """A WebClient that retries only what cannot double a message (bot/slack/retry.py): a post is sent once."""
    kwargs = {"base_url": base_url} if base_url else {}
    client = WebClient(token=token, timeout=timeout, **kwargs)
    client.retry_handlers = retry_handlers()
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
