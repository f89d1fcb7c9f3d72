"""The demo's terminal console: Slack, as text.

You type what you would type in Slack (`/snapshot vol-…`); the console signs
the same payload Slack would send and hands it to the real Bolt App.  What the
bot answers (the ack, response_url posts, channel messages and their updates,
all caught by the fake Slack Web API) is printed readably, every button with a
number; `click N` presses button N with a real block_actions payload.  `home`
opens the bot's App Home tab (an app_home_opened event) and prints the view
the bot publishes, its buttons numbered too.
"""

from __future__ import annotations

import json
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.slack.plaintext import render_blocks, render_text
from bot.testing import slack_payloads
from bot.testing.fakeslack import Call, FakeSlack


@dataclass
class Button:
    channel: str
    message: dict[str, Any]
    action: dict[str, Any]
    response_url: str
    view: dict[str, Any] | None = None  # a button of the App Home tab: no channel message, the view instead


class Console:
    """Drives `app` like Slack would, as `user` in `channel`, printing to `out`."""

    def __init__(
        self,
        app: App,
        slack: FakeSlack,
        signing_secret: str,
        users: Mapping[str, str],
        channel: str,
        out: TextIO = sys.stdout,
        settle: Callable[[], None] | None = None,
    ):
        self.app = app
        self.slack = slack
        self.secret = signing_secret
        self.users = dict(users)  # name → Slack user ID
        self.names = {uid: name for name, uid in self.users.items()}
        self.user = next(iter(self.users.values()))
        self.channel = channel
        self.out = out
        self.settle = settle or (lambda: None)
        self.buttons: list[Button] = []
        self._seen = 0
        self._lock = threading.Lock()
        self.modal: dict[str, Any] | None = None  # the form last opened (views.open / views.update)

    # -- input --

    def handle(self, line: str) -> bool:
        """Handle one console line; False means quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        word = line.split()[0].lower()
        if word in ("quit", "exit"):
            return False
        if line.startswith("/"):
            command, _, text = line.partition(" ")
            self._print_ack(self.send_command(command, text))
        elif word == "click":
            self.click_line(line)
        elif word == "submit":
            self.submit_line(line)
        elif word == "home":
            self._print_ack(self.open_home())
        elif word == "as":
            self.switch_user(line)
        elif word == "wait":
            self.settle()
        else:
            self.say(
                "Type a slash command (`/chatops help`), `click N`, `submit field=value …` (the open form), "
                "`home` (the bot's Home tab), `as NAME` "
                f"({', '.join(self.users)}), `wait`, or `quit`."
            )
        self.settle()
        self.flush()
        return True

    def send_command(self, command: str, text: str) -> Any:
        body = slack_payloads.slash_command(command, text, self.user, self.channel, self.slack.new_response_url())
        return self._dispatch(body)

    def open_home(self) -> Any:
        """Open the bot's App Home tab, as Slack does when you click the app's name: an app_home_opened event."""
        return self._dispatch(slack_payloads.home_opened(self.user))

    def click(self, number: int) -> Any:
        button = self.buttons[number - 1]
        if button.view is not None:
            return self._dispatch(slack_payloads.view_block_actions(self.user, button.view, button.action))
        message = self.slack.messages.get((button.channel, button.message.get("ts", "")), button.message)
        body = slack_payloads.block_actions(self.user, button.channel, message, button.action, button.response_url)
        return self._dispatch(body)

    def click_line(self, line: str) -> None:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(self.buttons):
            self.say(f"Usage: click N, where N is a button number (1–{len(self.buttons)}).")
            return
        self._print_ack(self.click(int(parts[1])))

    def submit_line(self, line: str) -> None:
        """`submit az=us-east-1b type=gp3`: submit the form last opened, its fields filled as given."""
        if self.modal is None:
            self.say("No form is open: choose an item's menu option ending in … first.")
            return
        try:
            pairs = [word.partition("=") for word in shlex.split(line)[1:]]
        except ValueError as exc:
            self.say(f"Usage: submit field=value …  ({exc})")
            return
        values = {key: value for key, _, value in pairs}
        body = slack_payloads.view_submission(self.user, self.modal, values)
        response = self._dispatch(body)
        answer = json.loads(response.body) if response.body else {}
        if answer.get("response_action") == "errors":
            for field, error in answer.get("errors", {}).items():
                self.say(f"  ✎ {field}: {error}")
            self.say("  (the form stays open: submit again)")
            return
        self.modal = None
        self.say("  (the form closes)")

    def switch_user(self, line: str) -> None:
        parts = shlex.split(line)
        if len(parts) != 2 or parts[1] not in self.users:
            self.say(f"Usage: as NAME, one of {', '.join(self.users)}.")
            return
        self.user = self.users[parts[1]]
        self.say(f"You are now {parts[1]} ({self.user}).")

    def _dispatch(self, body: str) -> Any:
        headers = slack_payloads.signed_headers(self.secret, body)
        response = self.app.dispatch(BoltRequest(body=body, headers=headers))
        return response

    # -- output --

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _number(
        self, channel: str, message: dict, response_url: str, view: dict | None = None
    ) -> Callable[[Mapping], int]:
        def number(element: Mapping) -> int:
            self.buttons.append(Button(channel, message, dict(element), response_url, view))
            return len(self.buttons)

        return number

    def _print_ack(self, response: Any) -> None:
        if response.status != 200:
            self.say(f"  (Slack would show an error: HTTP {response.status})")
            return
        if not response.body:
            return
        try:
            body = json.loads(response.body)
        except ValueError:
            self.say(f"  {response.body}")
            return
        label = f"#{self.channel} · bot" if body.get("response_type") == "in_channel" else "only visible to you"
        self._print_message(label, body, self.channel, self.slack.new_response_url())

    def _print_message(self, label: str, params: Mapping, channel: str, response_url: str) -> None:
        message = dict(params)
        lines = render_blocks(message.get("blocks") or [], self._number(channel, message, response_url), self.names)
        if not lines and message.get("text"):
            lines = [render_text({"text": message["text"]}, self.names)]
        self.say(f"┌ {label}")
        for line in lines:
            for part in line.split("\n"):
                self.say(f"│ {part}")
        self.say("└")

    def _print_view(self, params: Mapping) -> None:
        view = dict(params.get("view") or {})
        user = str(params.get("user_id", ""))
        lines = render_blocks(view.get("blocks") or [], self._number("", {}, "", view), self.names)
        self.say(f"┌ App Home · {self.names.get(user, user)}")
        for line in lines:
            for part in line.split("\n"):
                self.say(f"│ {part}")
        self.say("└")

    def _print_modal(self, view: Mapping) -> None:
        title = (view.get("title") or {}).get("text", "")
        lines = render_blocks(view.get("blocks") or [], self._number("", {}, ""), self.names)
        self.say(f"┌ form · {title}")
        for line in lines:
            for part in line.split("\n"):
                self.say(f"│ {part}")
        if view.get("submit"):
            self.say("│ Fill it with: submit field=value …")
        self.say("└")

    def flush(self) -> None:
        """Print every Slack call made since the last flush."""
        with self._lock:
            calls = self.slack.calls[self._seen :]
            self._seen += len(calls)
        for call in calls:
            self._print_call(call)

    def _print_call(self, call: Call) -> None:
        params = call.params
        channel = params.get("channel", self.channel)
        if call.method == "chat.postMessage":
            self._print_message(f"#{channel} · bot", params, channel, self.slack.new_response_url())
        elif call.method == "chat.update":
            self._print_message(f"#{channel} · bot (message updated)", params, channel, self.slack.new_response_url())
        elif call.method in ("views.open", "views.update"):
            self.modal = dict(call.params.get("view") or {})
            self.modal["id"] = call.params.get("view_id") or self.modal.get("id", "")
            self._print_modal(self.modal)
        elif call.method == "views.publish":
            self._print_view(params)
        elif call.method in ("chat.postEphemeral", "response_url"):
            if params.get("response_type") == "in_channel":
                label = f"#{self.channel} · bot"
            else:
                label = "only visible to you"
            if params.get("replace_original") is True or params.get("replace_original") == "true":
                label += " (replaces the message)"
            self._print_message(label, params, channel, self.slack.new_response_url())

    def run(self, stream: TextIO, prompt: bool) -> None:
        """Read lines until EOF or `quit`."""
        while True:
            if prompt:
                name = self.names.get(self.user, self.user)
                print(f"{name}> ", end="", file=self.out, flush=True)
            line = stream.readline()
            if not line:
                self.settle()
                self.flush()
                return
            if not prompt:
                self.say(f"> {line.rstrip()}")
            if not self.handle(line):
                return
