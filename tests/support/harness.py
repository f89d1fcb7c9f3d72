"""End-to-end harness: the real app over HTTP, a moto server, the fake Slack Web API.

`BotUnderTest` starts a Runtime (store, gateway, worker, App, scheduler) and
the waitress HTTP server on a free port, and sends it signed requests exactly
as Slack does.  Assertions look at AWS (through boto3 against the moto server)
and at what the fake Slack received.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bot.config import Config
from bot.process.runtime import Runtime, SlackSettings
from bot.slack.server import HttpServer
from bot.state.store import utcnow
from bot.testing import slack_payloads
from bot.testing.fakeslack import FakeSlack, message_text

SECRET = "test-signing-secret"
CHANNEL = "C0OPS"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


@dataclass
class HttpResult:
    status: int
    body: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return message_text(self.json() or {}) if self.body.startswith("{") else self.body


class FakeClock:
    """A clock the test moves by hand (expiry, ages) instead of sleeping."""

    def __init__(self, start: datetime | None = None):
        self.moment = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


class InFlight:
    """How many tasks a thread pool was handed and has not finished: Bolt's listeners, still running after the ack.

    Bolt answers Slack as soon as a listener calls ack() and the listener carries on
    in `Runtime.listener_pool` (audit, parsing, handing AWS work to the worker).
    Counting at submit, before the ack can happen, makes "every acked request's
    listener is done" a condition to wait on rather than a guess at how long it takes.
    """

    def __init__(self, pool: ThreadPoolExecutor):
        self._count = 0
        self._changed = threading.Condition()
        submit = pool.submit

        def counted(fn, /, *args, **kwargs) -> Future:
            with self._changed:
                self._count += 1
            try:
                future = submit(fn, *args, **kwargs)
            except BaseException:
                self._finished(None)
                raise
            future.add_done_callback(self._finished)
            return future

        pool.submit = counted  # the pool object Bolt holds: every listener goes through here

    def _finished(self, _future: Future | None) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    @property
    def count(self) -> int:
        with self._changed:
            return self._count

    def wait_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout=max(timeout, 0))


@dataclass
class BotUnderTest:
    config: Config
    slack: FakeSlack
    clock: Callable[[], datetime] = utcnow
    slack_timeout: float | None = None  # the Slack client's timeout, when a test provokes timeouts
    runtime: Runtime = field(init=False)
    server: HttpServer = field(init=False)
    listeners: InFlight = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = Runtime(
            self.config,
            SlackSettings(
                bot_token="xoxb-test",
                signing_secret=SECRET,
                api_url=self.slack.api_url,
                **({"timeout": self.slack_timeout} if self.slack_timeout else {}),
            ),
            session=boto3.session.Session(),
            clock=self.clock,
        )
        self.listeners = InFlight(self.runtime.listener_pool)
        self.server = HttpServer(self.runtime.app, host="127.0.0.1", port=0, loop_timeout=0.05)

    def start(self) -> BotUnderTest:
        self.runtime.start()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.close()
        self.runtime.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def deps(self):
        return self.runtime.deps

    # -- sending --

    def post(self, body: str, headers: dict[str, str], path: str = "/slack/events") -> HttpResult:
        request = urllib.request.Request(self.url + path, data=body.encode(), headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return HttpResult(resp.status, resp.read().decode(), time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return HttpResult(exc.code, exc.read().decode(), time.monotonic() - started)

    def command(self, line: str, user: str = ALICE, channel: str = CHANNEL, timestamp: int | None = None) -> HttpResult:
        """Send `/cmd text` as Slack would; returns the HTTP answer (the ack)."""
        command, _, text = line.partition(" ")
        body = slack_payloads.slash_command(command, text, user, channel, self.slack.new_response_url())
        return self.post(body, slack_payloads.signed_headers(SECRET, body, timestamp))

    def click(self, message: dict, action_id: str, user: str, channel: str = CHANNEL) -> HttpResult:
        """Press the button `action_id` of a message the bot posted."""
        action = find_button(message, action_id)
        body = slack_payloads.block_actions(user, channel, message, action, self.slack.new_response_url())
        return self.post(body, slack_payloads.signed_headers(SECRET, body))

    def choose(self, message: dict, action_id: str, resource_id: str, user: str, channel: str = CHANNEL) -> HttpResult:
        """Pick the option naming `resource_id` in the menu `action_id` of a message the bot posted."""
        menu = find_button(message, action_id)
        [option] = [o for o in menu["options"] if o["value"].endswith(f"|{resource_id}")]
        action = {**menu, "selected_option": option}
        body = slack_payloads.block_actions(user, channel, message, action, self.slack.new_response_url())
        return self.post(body, slack_payloads.signed_headers(SECRET, body))

    def menu(self, message: dict, resource_id: str, label: str, user: str, channel: str = CHANNEL) -> HttpResult:
        """Choose `label` ("Restore…") in the overflow menu of the item `resource_id` of a message the bot sent."""
        [menu] = [
            b["accessory"]
            for b in message["blocks"]
            if b.get("accessory", {}).get("type") == "overflow"
            and any(o["value"].endswith(f"|{resource_id}") for o in b["accessory"]["options"])
        ]
        [option] = [o for o in menu["options"] if o["text"]["text"] == label]
        action = {**menu, "selected_option": option}
        body = slack_payloads.block_actions(user, channel, message, action, self.slack.new_response_url())
        return self.post(body, slack_payloads.signed_headers(SECRET, body))

    def submit(self, view: dict, values: dict[str, str], user: str) -> HttpResult:
        """Submit a modal the bot opened, with `values` (field → typed text or the chosen option's value)."""
        body = slack_payloads.view_submission(user, view, values)
        return self.post(body, slack_payloads.signed_headers(SECRET, body))

    def open_home(self, user: str) -> HttpResult:
        """Open the bot's Home tab as `user` (an app_home_opened event); the view lands in slack.home_views."""
        body = slack_payloads.home_opened(user)
        return self.post(body, slack_payloads.signed_headers(SECRET, body))

    def click_home(self, user: str, action_id: str, value: str) -> HttpResult:
        """Press the button `action_id` whose value is `value` in `user`'s Home tab, as last published."""
        view = self.slack.home_views[user]
        [action] = [
            e
            for b in view["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == action_id and e.get("value") == value
        ]
        body = slack_payloads.view_block_actions(user, view, action)
        return self.post(body, slack_payloads.signed_headers(SECRET, body))

    def get(self, path: str) -> HttpResult:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return HttpResult(resp.status, resp.read().decode(), time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return HttpResult(exc.code, exc.read().decode(), time.monotonic() - started)

    # -- waiting --

    def settle(self, timeout: float = 20) -> None:
        """Wait until every request sent so far is fully handled: its listener finished, the AWS work it queued done.

        Listeners queue work on the worker and worker jobs never start listeners,
        so "no listener running, then no job queued or running, and still no
        listener" is the moment all of it is over, however slow the machine.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.listeners.wait_idle(deadline - time.monotonic()):
                raise TimeoutError(f"{self.listeners.count} listener(s) still running after {timeout} s")
            if not self.deps.worker.wait_idle(timeout=max(deadline - time.monotonic(), 0)):
                raise TimeoutError(f"worker did not become idle in {timeout} s")
            if self.listeners.count == 0 and self.deps.worker.pending == 0:
                return

    def wait_watches_done(self, timeout: float = 20) -> None:
        """Wait until no watch is left to poll (the scheduler polls them every aws.poll_interval)."""
        deadline = time.monotonic() + timeout
        while self.deps.store.active_watches(posting_before=datetime.now(UTC) + timedelta(days=1)):
            if time.monotonic() > deadline:
                raise TimeoutError("watches still active")
            time.sleep(0.05)

    def responses(self) -> list[str]:
        """Texts posted through response_url (ephemeral answers), oldest first."""
        return self.slack.texts("response_url")

    def approval_messages(self) -> list[dict]:
        """Channel messages that carry (or carried) an approval request, oldest first."""
        return [m for m in self.posted() if "Request `req-" in message_text(m)]

    def posted(self) -> list[dict]:
        """Channel messages (latest version of each), oldest first."""
        return [m for _, m in sorted(self.slack.messages.items(), key=lambda kv: kv[0][1])]


def find_button(message: dict, action_id: str) -> dict:
    for block in message.get("blocks", []):
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in elements:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "b")}
    raise AssertionError(f"no button {action_id!r} in message {message.get('text')!r}")
