"""HTTP serving: `POST /slack/events` (every Slack payload) and `GET /healthz`, under waitress."""

from __future__ import annotations

import threading

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

EVENTS_PATH = "/slack/events"
# Slack's payloads are a few KiB (a slash command's text is at most 4,000
# characters); waitress would otherwise buffer up to 1 GiB of body before Bolt
# even looks at the signature.  A bigger body is answered 413 by waitress.
MAX_BODY_BYTES = 1 << 20


def wsgi_app(app: App, ready: threading.Event):
    """Route /healthz ourselves; everything else goes to Bolt (which verifies signatures)."""
    bolt = SlackRequestHandler(app, path=EVENTS_PATH)

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
