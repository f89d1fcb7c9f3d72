"""A local Socket Mode endpoint: what Slack's side of the websocket does, for the end-to-end test of Socket Mode.

The app asks the Web API for a websocket URL (`apps.connections.open`: the
fake Slack answers with `url`), connects, and is greeted with `hello`.  The
test then sends envelopes (a slash command, an interactive payload, an
Events API event) and reads the app's acks; `disconnect()` asks the app to
reconnect, as Slack does when it refreshes a connection.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


class FakeSocketMode:
    def __init__(self) -> None:
        self.connections = 0  # connections ever made (a reconnect makes it 2)
        self.acks: dict[str, dict[str, Any]] = {}
        self._current: ServerConnection | None = None
        self._cond = threading.Condition()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=test"

    def start(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def _handle(self, ws: ServerConnection) -> None:
        with self._cond:
            self.connections += 1
            self._current = ws
            self._cond.notify_all()
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0CHATOPS"}}))
        try:
            for raw in ws:
                message = json.loads(raw)
                if "envelope_id" in message:
                    with self._cond:
                        self.acks[message["envelope_id"]] = message
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if self._current is ws:
                    self._current = None
                self._cond.notify_all()

    def wait_connected(self, count: int = 1, timeout: float = 30) -> None:
        """Until the app has made `count` connections and one is open."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections >= count and self._current is not None, timeout):
                raise TimeoutError(f"the app made {self.connections} connections, not {count}")

    def send(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False) -> str:
        """Send one envelope (`slash_commands`, `interactive` or `events_api`); returns its ID."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        with self._cond:
            ws = self._current
        if ws is None:
            raise ConnectionError("no app is connected")
        ws.send(json.dumps(envelope))
        return envelope_id

    def ack_of(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The app's ack of an envelope (with its `payload` when it answered with one)."""
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"no ack of {envelope_id}")
            return self.acks[envelope_id]

    def disconnect(self) -> None:
        """Ask the app to reconnect, then drop the connection, as Slack does when it refreshes one."""
        with self._cond:
            ws = self._current
        if ws is not None:
            ws.send(json.dumps({"type": "disconnect", "reason": "refresh_requested"}))
            ws.close()
