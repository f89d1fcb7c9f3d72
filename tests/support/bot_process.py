"""`python -m bot` as a real process for the tests: start it, send it signed Slack requests, stop or kill it.

Several `BotProcess`es with the same `workdir` share one config file and one store, as replicas (or a
server and `python -m bot sweep`) do in production.  Output goes to a file: a pipe nobody reads fills up.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.testing import slack_payloads
from bot.testing.fakeslack import FakeSlack
from tests.support.harness import ALICE, SECRET, find_button

# The smallest useful config; tests append sections (policies, access) or pass their own.
BASE_CONFIG = """
[slack]
digest_channel = "C0DIGEST"
[aws]
default_region = "us-east-1"
regions = ["us-east-1"]
"""


def policy_config(every: str = "12h", keep: int = 1, on_expired: str = "approve", aws: str = "") -> str:
    """BASE_CONFIG (plus `aws` lines in its [aws] table), U0BOB approving, and the daily-db policy."""
    return f"""{BASE_CONFIG}{aws}
[access]
approvers = ["U0BOB"]
[[policies]]
name = "daily-db"
resource = "volume"
target_tags = {{ Backup = "daily" }}
regions = ["us-east-1"]
every = "{every}"
keep = {keep}
on_expired = "{on_expired}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not met in {timeout} s")


def read_store(path: str | Path, sql: str, *params) -> list[tuple]:
    """Read a store as an operator would, with a plain SQLite connection."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def post_signed(url: str, body: str, secret: str = SECRET) -> int:
    """POST a Slack payload to a bot's /slack/events, signed as Slack signs it; returns the HTTP status."""
    request = urllib.request.Request(
        f"{url}/slack/events", data=body.encode(), headers=slack_payloads.signed_headers(secret, body)
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status


@dataclass
class BotProcess:
    """One `python -m bot [args]` against moto and the fake Slack; its store is `workdir/bot.db`.

    `env` adds or overrides environment variables, `unset` removes some (e.g.
    credentials), and `secret` is the signing secret requests are signed with.
    """

    workdir: Path
    config: str
    slack: FakeSlack
    moto_url: str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    unset: Sequence[str] = ()
    secret: str = SECRET
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "bot.db"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        config = self.workdir / "config.toml"
        config.write_text(self.config)
        base = {k: v for k, v in os.environ.items() if k not in self.unset}
        return {
            **base,
            "CHATOPS_CONFIG": str(config),
            "CHATOPS_DB": str(self.db),
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": self.secret,
            "SLACK_API_URL": self.slack.api_url,
            "PORT": str(self.port),
            "AWS_ENDPOINT_URL": self.moto_url,
            **self.env,
        }

    def start(self, wait: bool = True) -> BotProcess:
        """Start it; with `wait`, return once /healthz answers (a server; not for `sweep` and other one-shots)."""
        self.log = self.workdir / f"bot-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", *self.args], env=self.environment(), stdout=out, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_healthy()
        return self

    def output(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise TimeoutError(f"bot never became healthy:\n{self.output()}")

    def command(self, line: str, user: str = ALICE, channel: str = "C0OPS") -> int:
        """Send `/cmd text` as Slack would; returns the HTTP status of the ack."""
        command, _, text = line.partition(" ")
        body = slack_payloads.slash_command(command, text, user, channel, self.slack.new_response_url())
        return post_signed(self.url, body, self.secret)

    def click(self, message: dict, action_id: str, user: str, channel: str = "C0OPS") -> int:
        """Press a button of a message the bot posted (as the fake Slack recorded it)."""
        action = find_button(message, action_id)
        body = slack_payloads.block_actions(user, channel, message, action, self.slack.new_response_url())
        return post_signed(self.url, body, self.secret)

    def wait(self, timeout: float = 120) -> int:
        """Wait for a one-shot (e.g. `sweep`) to end; returns its exit code."""
        return self.proc.wait(timeout=timeout)

    def terminate(self, timeout: float = 60) -> float:
        """SIGTERM; returns how long the process took to exit."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Make sure it is gone (test clean-up)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def query(self, sql: str, *params) -> list[tuple]:
        return read_store(self.db, sql, *params)
