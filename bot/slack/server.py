"""HTTP serving: `POST /slack/events` (every Slack payload) and `GET /healthz`, under waitress.

Before Bolt sees a request, two things Slack never sends are refused: a body
over 1 MiB (413, by waitress, from its Content-Length alone) and a body that
is not a Slack payload (400): JSON that does not parse, a payload that is not
an object, or an object whose fields Bolt and the listeners read have the
wrong shape (`actions` that is not a list of actions, a `text` that is not a
string…).  Bolt would answer those with a 500 and a traceback in the log, for
anyone, signed or not.  Either way nothing else happens: no listener runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from waitress.server import create_server

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack's payloads are a few KiB (a slash command's text is at most 4,000
# characters); waitress would otherwise buffer up to 1 GiB of body before Bolt
# even looks at the signature.  A bigger body is answered 413 by waitress.
MAX_BODY_BYTES = 1 << 20


# Fields of a Slack payload that, when present, are strings (form fields always are; JSON may lie).
_STRING_FIELDS = (
    "type", "command", "text", "user_id", "channel_id", "response_url", "trigger_id", "callback_id", "team_id",
    "api_app_id", "token", "action_id", "ssl_check",
)  # fmt: skip
_ID_OBJECTS = ("user", "channel", "team", "enterprise")  # an ID string, or an object whose `id` is one
_ACTION_STRINGS = ("action_id", "block_id", "value", "type", "action_ts")


def payload_problem(body: Any) -> str | None:
    """What makes a parsed request body something Slack would not send, or None when it is fine.

    Only the fields Bolt's matchers and our listeners read: that is what a
    wrong shape would crash on.
    """
    if not isinstance(body, Mapping):
        return "the payload is not a JSON object"
    for key in _STRING_FIELDS:
        if key in body and not isinstance(body[key], str):
            return f"`{key}` is not a string"
    for key in _ID_OBJECTS:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            if not isinstance(value, Mapping) or not isinstance(value.get("id", ""), str):
                return f"`{key}` is neither an ID nor an object with one"
    if "actions" in body:
        actions = body["actions"]
        if not isinstance(actions, list) or not actions or not all(isinstance(a, Mapping) for a in actions):
            return "`actions` is not a list of actions"
        for action in actions:
            if not isinstance(action.get("action_id"), str):
                return "an action has no `action_id`"
            if any(key in action and not isinstance(action[key], str) for key in _ACTION_STRINGS):
                return "an action has a field that is not a string"
    return None


class _BoltHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, refusing with 400 what is not a Slack payload instead of failing with 500."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        try:
            # Parsing only, no I/O: anything raised here is the body's fault (bad JSON, a
            # payload that is a list, an `enterprise` Bolt cannot read, nesting too deep).
            bolt_request = BoltRequest(
                body=request.get_body(), query=request.query_string, headers=request.get_headers()
            )
            problem = payload_problem(bolt_request.body)
        except Exception as exc:
            problem = f"the body does not parse ({type(exc).__name__})"
        if problem:
            log.warning("refused a request to %s with 400: %s", self.path, problem)
            return BoltResponse(status=400, body=f"Bad Request: {problem}\n")
        return self.app.dispatch(bolt_request)


def wsgi_app(app: App, ready: threading.Event):
    """Route /healthz ourselves; everything else goes to Bolt (which verifies signatures)."""
    bolt = _BoltHandler(app, path=EVENTS_PATH)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            status = "200 OK" if ready.is_set() else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n" if ready.is_set() else b"starting\n"]
        return bolt(environ, start_response)

    return application


class HttpServer:
    """A production WSGI server (waitress) in this process; port 0 picks a free port."""

    def __init__(self, app: App, host: str = "0.0.0.0", port: int = 3000, threads: int = 16, loop_timeout: float = 1.0):
        self.ready = threading.Event()
        # loop_timeout bounds how long close() waits for the accept loop to notice.
        self._server = create_server(
            wsgi_app(app, self.ready),
            host=host,
            port=port,
            threads=threads,
            ident="snapshot-chatops",
            max_request_body_size=MAX_BODY_BYTES + 1,  # waitress refuses a body of this size or more
            asyncore_loop_timeout=loop_timeout,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.effective_port

    def serve_forever(self) -> None:
        self.ready.set()
        try:
            self._server.run()
        except OSError:
            # waitress has no cross-thread stop: closing its socket makes the
            # select() in its loop fail, which is how it ends on close().
            if self.ready.is_set():
                raise

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.ready.clear()
        self._server.close()
        if self._thread:
            self._thread.join(timeout=5)
        # Closing the socket leaves waitress's worker threads waiting for tasks forever.
        self._server.task_dispatcher.shutdown(timeout=5)
