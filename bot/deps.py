"""What every listener, job and domain call needs, passed by argument (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient

from bot.config import Config
from bot.gateway import Ec2Gateway
from bot.store import Store
from bot.worker import Worker


@dataclass
class Deps:
    config: Config
    gateway: Ec2Gateway
    store: Store
    worker: Worker
    slack: WebClient
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        return self.clock()
