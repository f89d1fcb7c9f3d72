"""Everything one bot process runs: store, gateway, worker pool, Slack client, App, scheduler.

`python -m bot`, the demo and the end-to-end tests all build a Runtime, so
they run the very same wiring.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import boto3

from bot.app import LISTENER_THREADS, SLACK_TIMEOUT, build_app, listener_pool, make_slack_client
from bot.approval_flow import expire_due, reconcile_unfinished
from bot.config import Config
from bot.deps import Deps
from bot.gateway import Ec2Gateway
from bot.pacing import Pacer
from bot.store import Store, utcnow
from bot.worker import Worker, start_threads
from scheduler import build_scheduler
from scheduler.jobs import add_lifecycle_jobs

log = logging.getLogger(__name__)


@dataclass
class SlackSettings:
    bot_token: str | None = None
    signing_secret: str | None = None
    app_token: str | None = None
    api_url: str | None = None
    token_verification: bool = True
    timeout: float = SLACK_TIMEOUT  # per Web API call; the tests shorten it to provoke timeouts quickly

    @classmethod
    def from_env(cls, env) -> SlackSettings:
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=env.get("SLACK_API_URL") or None,
        )


def build_deps(
    config: Config,
    slack: SlackSettings,
    session: boto3.session.Session | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Deps:
    """Store, gateway, worker pool and Slack client, as every entry point builds them."""
    return Deps(
        config=config,
        gateway=Ec2Gateway(session, pacer=Pacer(scale=config.aws.api_rate_scale)),
        store=Store(config.store.path, clock),
        worker=Worker(config.aws.workers),
        slack=make_slack_client(slack.bot_token, slack.api_url, slack.timeout),
        clock=clock,
    )


def settle_heap() -> None:
    """Keep the start-up heap out of the garbage collector's way; call once start-up built the EC2 clients.

    A client loads botocore's service model: over 100,000 objects that live as
    long as the process.  Every full garbage collection rescans them, and a
    paginated listing allocates enough short-lived containers to set one off
    every two or three pages, so a third of the CPU of listing 100,000
    snapshots went to rescanning the model (benchmarks/digest_scale.py).
    `gc.freeze()` moves everything alive now into a generation collections
    skip; `gc.collect()` first, so no garbage is frozen with it.  For long
    processes (the server, `python -m bot sweep`), once, after start-up.
    """
    gc.collect()
    gc.freeze()


@dataclass
class Runtime:
    config: Config
    slack: SlackSettings
    session: boto3.session.Session | None = None
    clock: Callable[[], datetime] = utcnow
    deps: Deps = field(init=False)

    def __post_init__(self) -> None:
        self.deps = build_deps(self.config, self.slack, self.session, self.clock)
        self.listener_pool = listener_pool()
        self.app = build_app(
            self.deps,
            self.slack.signing_secret,
            token_verification=self.slack.token_verification,
            listener_executor=self.listener_pool,
        )
        self.scheduler = build_scheduler(self.deps)

    def start(self) -> None:
        """Settle what a crash left half-done, then start the background jobs."""
        # Load botocore's models and start the thread pools now: done lazily,
        # both stall the acks of the first burst of commands (benchmarks/ack_latency.py).
        self.deps.gateway.warm_up(self.config.aws.regions)
        start_threads(self.listener_pool, LISTENER_THREADS)
        self.deps.worker.start_threads()
        reconciled = reconcile_unfinished(self.deps)
        if reconciled:
            log.warning("reconciled %d approval request(s) left unfinished by a restart", reconciled)
        expire_due(self.deps)
        # One server process per store: a run it left "running" died with it.
        self.deps.store.interrupt_runs()
        caught_up = add_lifecycle_jobs(self.scheduler, self.deps)
        if caught_up:
            log.warning("running missed jobs once now: %s", ", ".join(caught_up))
        self.scheduler.start()
        log.info("scheduler started with jobs %s", [j.id for j in self.scheduler.get_jobs()])

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.deps.worker.shutdown(wait=True)
        self.deps.store.close()
