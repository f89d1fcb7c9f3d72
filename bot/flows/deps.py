"""What every listener, job and domain call needs, passed by argument (no globals)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk import WebClient

from bot.aws.gateway import Ec2Gateway, Fleet
from bot.config import Config
from bot.domain.freeze import freeze_text
from bot.domain.plans import Context
from bot.flows.worker import Worker
from bot.state.store import Store


@dataclass
class Deps:
    config: Config
    gateway: Ec2Gateway
    store: Store
    worker: Worker
    slack: WebClient
    clock: Callable[[], datetime]
    # Set when the process is shutting down: long work (sweeps, batches) stops
    # between items, so nothing is half-done when the store closes.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Every account the bot reaches; None: only its own (`gateway`).
    fleet: Fleet | None = None

    def now(self) -> datetime:
        return self.clock()

    def gateway_for(self, account: str | None = None, user: str | None = None) -> Ec2Gateway:
        """The gateway acting in `account` ("" or None: the bot's own), for `user` (None: the bot itself)."""
        if not account or self.fleet is None:
            return self.gateway
        return self.fleet.gateway(account, user)

    def frozen(self, account: str = "") -> str:
        """Why deletions may not happen in `account` ("" = the bot's own) right now; "" when they may."""
        freeze = self.store.freeze_on(account)
        return freeze_text(freeze, self.config.aws.account_name, bool(self.config.accounts)) if freeze else ""

    def context(self, account: str = "", user: str | None = None) -> Context:
        """What an approval executor or a sweep works with (no Slack, no store), in `account`."""
        return Context(self.gateway_for(account, user), self.config, self.clock, self.stopping)
