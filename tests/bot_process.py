"""`python -m bot` as a real process for the tests: start it, send it signed Slack requests, stop or kill it."""

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
from dataclasses import dataclass, field
from pathlib import Path

from bot import slack_payloads
from bot.fakeslack import FakeSlack
from tests.harness import ALICE, SECRET, find_button


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BotProcess:
    """One `python -m bot` (or `python -m bot ARGS`) against moto and the fake Slack; its store is `db`."""

    workdir: Path
    config: str
    slack: FakeSlack
    moto_url: str
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "bot.db"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        config = self.workdir / "config.toml"
        config.write_text(self.config)
        return {
            **os.environ,
            "CHATOPS_CONFIG": str(config),
            "CHATOPS_DB": str(self.db),
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "PORT": str(self.port),
            "AWS_ENDPOINT_URL": self.moto_url,
        }

    def start(self, wait: bool = True) -> BotProcess:
        self.log = self.workdir / f"bot-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", *self.args], env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_healthy()
        return self

    def output(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def wait_healthy(self, timeout: float = 30) -> None:
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
        command, _, text = line.partition(" ")
        body = slack_payloads.slash_command(command, text, user, channel, self.slack.new_response_url())
        request = urllib.request.Request(
            f"{self.url}/slack/events", data=body.encode(), headers=slack_payloads.signed_headers(SECRET, body)
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status

    def click(self, message: dict, action_id: str, user: str, channel: str = "C0OPS") -> int:
        """Press a button of a message the bot posted (as the fake Slack recorded it)."""
        action = find_button(message, action_id)
        body = slack_payloads.block_actions(user, channel, message, action, self.slack.new_response_url())
        request = urllib.request.Request(
            f"{self.url}/slack/events", data=body.encode(), headers=slack_payloads.signed_headers(SECRET, body)
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status

    def terminate(self, timeout: float = 60) -> float:
        """SIGTERM; returns how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def query(self, sql: str, *params) -> list[tuple]:
        """Read the process's store (a separate connection, as an operator would)."""
        with sqlite3.connect(self.db, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()


def wait_until(predicate, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not met in {timeout} s")
