"""Who is alive: the identity of this process and the liveness rule for the owners of leases.

Several processes may share one store (the server, `python -m bot sweep`, a
second replica).  Each registers in the store's `processes` table under an ID
of its own and beats every HEARTBEAT_EVERY on the real wall clock (never the
injectable test clock, which jumps days).  A lease (a running run, an approval
being executed) belongs to one owner; another process may take it over only
when that owner is dead:

- no owner at all (a row written before owners existed),
- no `processes` row any more (it closed cleanly, or was pruned),
- the same machine and PID namespace, and its PID is gone, or is our own PID
  under an ID this interpreter does not hold (a container restarted as PID 1),
- or its last heartbeat is older than OWNER_TTL (it hangs, or died elsewhere).

Stores opened by this interpreter know each other (LOCAL_IDS), so the tests
can play two processes with two Store objects, and a closed Store is dead at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=10)
# Six missed beats: long enough for a busy SQLite write lock (30 s timeout) or a
# GC pause, short enough that a crashed replica's work is picked up within a minute.
OWNER_TTL = timedelta(seconds=60)

HOST = socket.gethostname()


def _pid_space() -> str:
    """This boot and PID namespace: PIDs compare only inside one of them.

    Two containers with host networking share a host name but not their PIDs,
    and a rebooted host reuses PIDs; there only the heartbeat tells.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux: the host name alone says "same machine"
        return ""
    return f"{boot}/{namespace}"


PID_SPACE = _pid_space()

_local_lock = threading.Lock()
LOCAL_IDS: set[str] = set()  # the process IDs of the Stores open in this interpreter


def new_process_id() -> str:
    """host:pid:random, unique even when a restarted container gets the same PID again."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def hold(process_id: str) -> None:
    with _local_lock:
        LOCAL_IDS.add(process_id)


def release(process_id: str) -> None:
    with _local_lock:
        LOCAL_IDS.discard(process_id)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return False
    return True


def owner_alive(owner: str | None, record: dict[str, Any] | None, now: datetime) -> bool:
    """Is the process `owner` (its `processes` row: `record`) alive at wall-clock `now`?  See the module doc."""
    if not owner:
        return False
    with _local_lock:
        if owner in LOCAL_IDS:
            return True
    if record is None:
        return False
    if record["host"] == HOST and record["pid_space"] == PID_SPACE:
        if record["pid"] == os.getpid() or not pid_alive(record["pid"]):
            return False
    return now - datetime.fromisoformat(record["heartbeat_at"]) <= OWNER_TTL


class Heartbeat:
    """A daemon thread calling `beat()` every `every` until stopped; a failed beat is logged, not fatal."""

    def __init__(self, beat: Callable[[], None], every: timedelta = HEARTBEAT_EVERY, name: str = "heartbeat"):
        self._beat = beat
        self._every = every.total_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception:
                # A locked or briefly unavailable store: the next beat may make it.
                # Missing beats for OWNER_TTL would let others take our leases over.
                log.exception("heartbeat failed")
