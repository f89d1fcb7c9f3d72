"""Everything one bot process runs: store, gateway, worker pool, Slack client, App, scheduler.

`python -m bot`, the demo and the end-to-end tests all build a Runtime, so
they run the very same wiring.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from apscheduler.schedulers.base import BaseScheduler

from bot.aws.gateway import Ec2Gateway, Fleet
from bot.aws.pacing import Learning, Pacer
from bot.config import Config
from bot.domain.freeze import freeze_text
from bot.flows.approval_flow import expire_due, reconcile_unfinished
from bot.flows.deps import Deps
from bot.flows.worker import Worker, start_threads
from bot.process.app import LISTENER_THREADS, SLACK_TIMEOUT, build_app, listener_pool, make_slack_client
from bot.state.store import Store, utcnow
from scheduler import build_scheduler
from scheduler.jobs import add_lifecycle_jobs

if TYPE_CHECKING:  # the gateway is the only module that uses boto3
    import boto3

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
    stopping = threading.Event()

    def new_pacer() -> Pacer:
        learning = Learning() if config.aws.pacer_learning else None
        return Pacer(scale=config.aws.api_rate_scale, stop=stopping, learning=learning)

    store = Store(config.store.path, clock)

    def deletion_guard(account: str) -> Callable[[], str]:
        """Asked by the gateway before every delete it sends: a freeze over the account stops it."""
        key = config.account_key(account)

        def why() -> str:
            freeze = store.freeze_on(key)
            return freeze_text(freeze, config.aws.account_name, bool(config.accounts)) if freeze else ""

        return why

    own = Ec2Gateway(session, pacer=new_pacer(), deletion_guard=deletion_guard(config.aws.account_name))
    fleet = Fleet(
        own,
        config.aws.account_name,
        config.accounts,
        config.aws.default_region,
        new_gateway=lambda assumed, pacer, account: Ec2Gateway(
            assumed, pacer=pacer, deletion_guard=deletion_guard(account)
        ),
        new_pacer=new_pacer,
    )
    return Deps(
        config=config,
        gateway=own,
        fleet=fleet,
        store=store,
        worker=Worker(config.aws.workers),
        slack=make_slack_client(slack.bot_token, slack.api_url, slack.timeout),
        clock=clock,
        stopping=stopping,
    )


# How long a shutdown waits for running work to stop between two items and
# record its results; platforms give ~30 s between SIGTERM and SIGKILL.
DRAIN_SECONDS = 20.0


class RunningJobs:
    """How many scheduler jobs are running now, and waiting for none (APScheduler has no bounded wait)."""

    def __init__(self, scheduler: BaseScheduler):
        self._running = 0
        self._idle = threading.Condition()
        scheduler.add_listener(self._started, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def _started(self, _event) -> None:
        with self._idle:
            self._running += 1

    def _ended(self, event) -> None:
        if event.code == EVENT_JOB_MISSED:
            return  # never submitted, so never counted
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        # The "ended" event of a short job can arrive before its "submitted" one: the count
        # dips below zero for a moment, which is idle enough.
        with self._idle:
            return self._idle.wait_for(lambda: self._running <= 0, timeout=max(0.0, timeout))


def stop_on_signals(stopping: threading.Event) -> Callable[[], None]:
    """SIGTERM and Ctrl-C stop the sweep between two deletions; it then reports and exits non-zero.

    The default (dying at once, or KeyboardInterrupt in the main thread while
    the deleters carry on) would close the store under deletions in flight.
    Returns what puts the previous handlers back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


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
        self.running_jobs = RunningJobs(self.scheduler)

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
        # Runs whose process died are over; a live process's (a CLI sweep, another replica) are left alone.
        self.deps.store.interrupt_orphaned_runs()
        caught_up = add_lifecycle_jobs(self.scheduler, self.deps)
        if caught_up:
            log.warning("running missed jobs once now: %s", ", ".join(caught_up))
        self.scheduler.start()
        log.info("scheduler started with jobs %s", [j.id for j in self.scheduler.get_jobs()])

    def stop(self, drain: float = DRAIN_SECONDS) -> bool:
        """Stop taking work, let running work stop between two items, then close the store, last.

        Sweeps and approved batches check `deps.stopping` before each item
        (and the pacer stops waiting for tokens), so within a few seconds they
        record what they did, report the rest as not attempted, and end their
        run as interrupted.  Returns False when work was still running after
        `drain` seconds: the store is then left open for it (closing it would
        lose that work's audit and results) and the process exit ends it; its
        run is found interrupted at the next start.
        """
        self.deps.stopping.set()
        self.deps.worker.close()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + drain
        idle = self.deps.worker.wait_idle(timeout=drain) and self.running_jobs.wait_idle(deadline - time.monotonic())
        self.deps.worker.shutdown(wait=False)
        self.listener_pool.shutdown(wait=False)
        if not idle:
            log.error("work still running %.0f s after the shutdown began; leaving the store open for it", drain)
            return False
        self.deps.store.close()
        return True
