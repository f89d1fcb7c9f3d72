"""A local stand-in for the Slack Web API, for the demo and the tests.

Serves `POST /api/<method>` (what `SLACK_API_URL` points the WebClient at)
and `POST /response/<id>` (the `response_url`s it hands out), records every
call, keeps the latest version of every posted message, and can be told to
fail the next calls to exercise retries: a 429 with Retry-After, a 5xx, an
`ok: false` error such as `not_in_channel`, an answer that never comes in
time, or a connection closed without an answer.  `after=True` makes the call
take effect before it fails (the message is posted, then the 500 or the drop
comes), which is the case that makes a blind retry post twice.  It runs on a
real socket so the bot's Slack client is used unmodified.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    method: str  # "chat.postMessage", … or "response_url"; "<method>:failed" when a fault stopped it
    params: dict[str, Any]
    path: str
    at: float = field(default_factory=time.monotonic)
    fault: str = ""  # the scripted fault that answered it ("429", "500", "hang", "drop", an error), if any


@dataclass
class Failure:
    method: str
    status: int = 200
    error: str = ""
    times: int = 1
    retry_after: int = 1
    after: bool = False  # take effect first, then fail the answer
    hang: float = 0.0  # answer nothing for this long, then close
    drop: bool = False  # close the connection without an answer
    skip: int = 0  # let this many calls of `method` through first

    @property
    def kind(self) -> str:
        if self.hang:
            return "hang"
        if self.drop:
            return "drop"
        return str(self.status) if self.status != 200 else self.error


class FakeSlack:
    """The fake Web API server; `start()` it, then hand `api_url` to the bot."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Condition()
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}  # user → the Home tab view last published for them
        self.views: dict[str, dict[str, Any]] = {}  # view ID → the modal as last opened or updated
        self.socket_mode_url = ""  # set by a test serving Socket Mode: apps.connections.open answers it
        self._failures: list[Failure] = []
        self._stopping = threading.Event()
        self._ts = itertools.count(1)
        self._responses = itertools.count(1)
        self.listeners: list[Callable[[Call], None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                answer = fake._handle(self.path, self.headers.get("Content-Type", ""), raw)
                if answer is None:  # a scripted hang or drop: the client gets no answer at all
                    self.close_connection = True
                    return
                status, body, headers = answer
                payload = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def start(self) -> FakeSlack:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def new_response_url(self) -> str:
        return f"{self.base_url}/response/{next(self._responses)}"

    # -- scripting --

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str = "",
        times: int = 1,
        retry_after: int = 1,
        after: bool = False,
        hang: float = 0.0,
        drop: bool = False,
        skip: int = 0,
    ) -> None:
        """Make the next `times` calls of `method` fail, after letting `skip` calls through.

        The failure is HTTP `status` (429 carries `Retry-After: retry_after`),
        or ok=false with `error`, or no answer: `hang` seconds of silence (make
        it longer than the client's timeout), or `drop` (the connection is
        closed).  With `after=True` the call takes effect first: the message
        is posted or updated, and only the answer is lost.
        """
        if hang or drop:
            status = 200
        elif status == 200 and not error:
            raise ValueError("say how the call fails: status, error, hang or drop")
        with self._lock:
            self._failures.append(Failure(method, status, error, times, retry_after, after, hang, drop, skip))

    def delete_message(self, channel: str, ts: str) -> None:
        """A user deleted the message: later updates of it answer message_not_found."""
        with self._lock:
            del self.messages[(channel, ts)]

    def channel_messages(self, containing: str = "") -> list[dict[str, Any]]:
        """Messages in channels (latest version of each, oldest first) whose text contains `containing`."""
        with self._lock:
            found = sorted(self.messages.items(), key=lambda kv: kv[0][1])
        return [m for _, m in found if containing in message_text(m)]

    # -- reading what happened --

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[FakeSlack], Any], timeout: float = 10) -> Any:
        """Wait until predicate(self) is truthy (re-checked on every call); returns its value."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"fake Slack: condition not met in {timeout}s; calls: {[c.method for c in self.calls]}"
                    )
                self._lock.wait(min(remaining, 0.2))

    def texts(self, method: str | None = None) -> list[str]:
        """Every text and block text the bot sent (for assertions)."""
        with self._lock:
            calls = [c for c in self.calls if method is None or c.method == method]
        return [message_text(c.params) for c in calls]

    # -- the server side --

    def _handle(self, path: str, content_type: str, raw: str) -> tuple[int, str, dict] | None:
        params = _decode(content_type, raw)
        if path.startswith("/response/"):
            method = "response_url"
        elif path.startswith("/api/"):
            method = path[len("/api/") :].split("?")[0]
        else:
            return 404, json.dumps({"ok": False, "error": "unknown_path"}), {}
        call = None
        with self._lock:
            failure = self._take_failure(method)
            if failure is None or failure.after:
                reply = self._reply(method, params)
                call = Call(method, params, path, fault=failure.kind if failure else "")
                self.calls.append(call)
            else:
                self.calls.append(Call(f"{method}:failed", params, path, fault=failure.kind))
            self._lock.notify_all()
        if call is not None:
            for listener in list(self.listeners):
                listener(call)
        if failure is None:
            return 200, json.dumps(reply), {}
        if failure.hang:
            self._stopping.wait(failure.hang)
            return None
        if failure.drop:
            return None
        if failure.status == 429:
            return 429, json.dumps({"ok": False, "error": "ratelimited"}), {"Retry-After": str(failure.retry_after)}
        if failure.status >= 500:
            return failure.status, json.dumps({"ok": False, "error": "internal_error"}), {}
        return 200, json.dumps({"ok": False, "error": failure.error}), {}

    def _take_failure(self, method: str) -> Failure | None:
        failure = next((f for f in self._failures if f.method == method and f.times > 0), None)
        if failure is None:
            return None
        if failure.skip > 0:
            failure.skip -= 1
            return None
        failure.times -= 1
        return failure

    def _reply(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel", "")
        if method == "response_url":
            return {"ok": True}
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            params["ts"] = ts
            self.messages[(channel, ts)] = dict(params)
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": params.get("text", ""), "ts": ts}}
        if method == "chat.update":
            key = (channel, params.get("ts", ""))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key] = {**self.messages[key], **params}
            return {"ok": True, "channel": channel, "ts": params.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method == "chat.getPermalink":
            ts = params.get("message_ts", "")
            if (channel, ts) not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": channel, "permalink": f"https://fake.slack.test/archives/{channel}/p{ts}"}
        if method in ("views.open", "views.update"):
            view = params.get("view") or {}
            if method == "views.open" and not params.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            if method == "views.update" and params.get("view_id") not in self.views:
                return {"ok": False, "error": "not_found"}
            if view.get("type") != "modal" or len(view.get("blocks", [])) > 100:
                return {"ok": False, "error": "invalid_arguments"}
            view_id = params.get("view_id") or f"V{next(self._ts):08d}"
            self.views[view_id] = {**view, "id": view_id}
            return {"ok": True, "view": self.views[view_id]}
        if method == "views.publish":
            view = params.get("view") or {}
            user = params.get("user_id", "")
            if not user or view.get("type") != "home":
                return {"ok": False, "error": "invalid_arguments"}
            if len(view.get("blocks", [])) > 100:
                return {"ok": False, "error": "invalid_blocks"}
            self.home_views[user] = view
            return {"ok": True, "view": {"id": f"V{abs(hash(user)) % 10**8:08d}", **view}}
        if method == "apps.connections.open":  # Socket Mode: where the app's websocket goes
            if not self.socket_mode_url:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_mode_url}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.test/",
                "team": "Demo",
                "user": "chatops",
                "team_id": "T0DEMO",
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
            }
        return {"ok": True}


def _decode(content_type: str, raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        return json.loads(raw)
    params: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    for key in ("blocks", "attachments", "payload", "view"):
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params


def message_text(params: dict[str, Any]) -> str:
    """The fallback text and every text inside the blocks, joined (for assertions)."""
    parts = [str(params.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(params.get("blocks", []))
    return "\n".join(parts)
