"""The store: all of the bot's own state, in one SQLite file via sqlite-utils.

WAL mode (the shell's `python -m bot sweep` may run beside the server), one
connection shared by the bot's threads behind a lock, schema changes as
numbered migrations tracked in `PRAGMA user_version`.  Timestamps are stored
as ISO-8601 UTC strings, which sort correctly as text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _migration_1(db: sqlite_utils.Database) -> None:
    db["audit"].create(
        {"id": int, "at": str, "user": str, "channel": str, "action": str, "outcome": str, "detail": str},
        pk="id",
    )
    db["audit"].create_index(["at"])
    # Resources whose Slack message is updated when they finish (snapshots,
    # volumes, AMIs, instances): kept here so a restart resumes the updates.
    db["watches"].create(
        {
            "id": int,
            "kind": str,
            "region": str,
            "resource_ids": str,  # JSON list
            "channel": str,
            "ts": str,
            "user": str,
            "created_at": str,
            "deadline": str,
            "state": str,  # watching | done | timed-out
            "data": str,  # JSON, kind-specific
        },
        pk="id",
    )
    db["watches"].create_index(["state"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1]


class Store:
    """The bot's state.  Every public method is atomic and thread-safe."""

    def __init__(self, path: str = ":memory:", clock: Clock = utcnow):
        self.path = path
        self.clock = clock
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        if path != ":memory:":
            self.db.enable_wal()
        self.db.execute("PRAGMA foreign_keys = ON")
        self.migrate()

    # -- plumbing --

    def migrate(self) -> int:
        """Apply the numbered migrations not yet applied; returns the schema version."""
        with self._lock:
            # Take SQLite's write lock before reading the version: two processes
            # opening a new file together then migrate it once, in turn (in a
            # deferred transaction the second fails with "database is locked").
            self.db.execute("BEGIN IMMEDIATE")
            try:
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                for number, migration in enumerate(MIGRATIONS, start=1):
                    if number > version:
                        with self.transaction():
                            migration(self.db)
                            self.db.execute(f"PRAGMA user_version = {number}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return len(MIGRATIONS)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One transaction around a multi-step change (rolled back on error; nests as savepoints)."""
        with self._lock, self.db.atomic():
            yield self.db

    def now(self) -> str:
        return iso(self.clock())

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    # -- audit --

    def audit(self, user: str, channel: str, action: str, outcome: str, detail: str = "") -> int:
        """Append one audit entry: who, where, what, result."""
        with self._lock:
            row = {
                "at": self.now(),
                "user": user or "",
                "channel": channel or "",
                "action": action,
                "outcome": outcome,
                "detail": detail[:2000],
            }
            return self.db["audit"].insert(row).last_pk

    def set_audit_outcome(self, audit_id: int, outcome: str, detail: str = "") -> None:
        with self._lock:
            self.db["audit"].update(audit_id, {"outcome": outcome, "detail": detail[:2000]})

    def recent_audit(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db["audit"].rows_where(order_by="id desc", limit=limit))

    # -- watches --

    def add_watch(
        self,
        kind: str,
        region: str,
        resource_ids: list[str],
        channel: str,
        ts: str,
        user: str,
        deadline: datetime,
        data: dict | None = None,
    ) -> int:
        with self._lock:
            return (
                self.db["watches"]
                .insert(
                    {
                        "kind": kind,
                        "region": region,
                        "resource_ids": json.dumps(resource_ids),
                        "channel": channel,
                        "ts": ts,
                        "user": user,
                        "created_at": self.now(),
                        "deadline": iso(deadline),
                        "state": "watching",
                        "data": json.dumps(data or {}),
                    }
                )
                .last_pk
            )

    def active_watches(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self.db["watches"].rows_where("state = ?", ["watching"], order_by="id"))
        for row in rows:
            row["resource_ids"] = json.loads(row["resource_ids"])
            row["data"] = json.loads(row["data"])
        return rows

    def update_watch(self, watch_id: int, *, state: str | None = None, data: dict | None = None) -> None:
        changes: dict[str, Any] = {}
        if state is not None:
            changes["state"] = state
        if data is not None:
            changes["data"] = json.dumps(data)
        with self._lock:
            self.db["watches"].update(watch_id, changes)
