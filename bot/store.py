"""The store: all of the bot's own state, in one SQLite file via sqlite-utils.

WAL mode (the shell's `python -m bot sweep` may run beside the server), one
connection shared by the bot's threads behind a lock, schema changes as
numbered migrations tracked in `PRAGMA user_version`.  Timestamps are stored
as ISO-8601 UTC strings, which sort correctly as text.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
            "state": str,  # posting | watching | done | failed | timed-out | message-gone (WATCH_ENDS)
            "data": str,  # JSON, kind-specific
        },
        pk="id",
    )
    db["watches"].create_index(["state"])


def _migration_2(db: sqlite_utils.Database) -> None:
    # Destructive requests waiting for (or past) an approver.  `state` moves
    # pending → approved → executing → done | failed, or pending → denied |
    # expired; every move is one conditional UPDATE (see Store.transition).
    db["approvals"].create(
        {
            "id": str,
            "kind": str,
            "state": str,
            "region": str,
            "plan": str,  # JSON: exactly what will be done, as shown to the approver
            "requester": str,
            "channel": str,
            "message_ts": str,
            "created_at": str,
            "expires_at": str,
            "decided_by": str,
            "decided_at": str,
            "finished_at": str,
            "result": str,  # JSON: per-resource outcome
        },
        pk="id",
        not_null={"kind", "state", "plan", "created_at", "expires_at"},
    )
    db["approvals"].create_index(["state"])


def _migration_3(db: sqlite_utils.Database) -> None:
    # One row per run of a scheduled job ("policy:daily-db", "digest"): what
    # ran when, and how it ended.  The newest row tells whether a slot was
    # missed while the bot was down; a "running" row is the job's lease, so
    # two runs of one policy never overlap, even across processes.
    db["runs"].create(
        {"id": int, "job": str, "trigger": str, "started_at": str, "finished_at": str, "state": str, "summary": str},
        pk="id",
    )
    db["runs"].create_index(["job", "started_at"])
    db.execute("CREATE UNIQUE INDEX runs_one_running ON runs(job) WHERE state = 'running'")
    # When the bot first saw each scheduled job, so a new policy is not "missed".
    db["jobs_seen"].create({"job": str, "first_seen": str}, pk="job")


def _migration_4(db: sqlite_utils.Database) -> None:
    # What happened to AWS resources, per region: the digest's "created,
    # deleted, failed in the last 24 h" come from here.
    db["events"].create({"id": int, "at": str, "region": str, "kind": str, "resource_id": str, "detail": str}, pk="id")
    db["events"].create_index(["at"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1, _migration_2, _migration_3, _migration_4]
EVENT_KINDS = ("created", "deleted", "failed")
# How a watch ends (it starts "posting" or "watching"): done, failed (the
# resource failed or vanished), timed-out (its deadline passed), message-gone
# (Slack will not update its message: deleted, channel archived, bot removed).
WATCH_ENDS = ("done", "failed", "timed-out", "message-gone")

APPROVAL_STATES = ("pending", "approved", "executing", "done", "failed", "denied", "expired")
# The only moves a request can make; done/failed/denied/expired are final.
APPROVAL_MOVES = {
    "pending": {"approved", "denied", "expired"},
    "approved": {"executing", "done", "failed"},  # done/failed directly: reconciled after a crash
    "executing": {"done", "failed"},
}


def _enable_wal(db: sqlite_utils.Database, wait: float = 30.0) -> None:
    """Switch a file to WAL, waiting out another connection doing the same.

    SQLite answers "database is locked" at once, without its busy handler, when
    two connections change the journal mode of a new file together (the server
    and `python -m bot sweep` starting at the same time), so wait here instead.
    """
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


class Store:
    """The bot's state.  Every public method is atomic and thread-safe."""

    def __init__(self, path: str = ":memory:", clock: Clock = utcnow):
        self.path = path
        self.clock = clock
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        if path != ":memory:":
            _enable_wal(self.db)
            # In WAL mode NORMAL syncs at checkpoints, not on every commit: the
            # file stays consistent, and a power cut (not a crash of the bot)
            # can lose only the last commits.  FULL made the audit write of
            # every slash command an fsync inside the ack path, serialised by
            # the store lock (benchmarks/ack_latency.py: ack p99 ~117 → ~97 ms).
            self.db.execute("PRAGMA synchronous = NORMAL")
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
        ts: str | None,
        user: str,
        deadline: datetime,
        data: dict | None = None,
    ) -> int:
        """Record a watch on resources AWS is still working on.

        `ts` is the Slack message it updates.  None means the message is being
        posted now (state "posting"): the watch is recorded before the post, so
        a post that fails or a crash during it cannot lose it, and it is not
        polled until `set_watch_message` says how the post went.
        """
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
                        "state": "watching" if ts else "posting",
                        "data": json.dumps(data or {}),
                    }
                )
                .last_pk
            )

    def set_watch_message(self, watch_id: int, ts: str | None) -> bool:
        """The message of a "posting" watch was posted (`ts`) or not (None: the watch has no message to update).

        False when the watch is no longer posting (a poller already took it over as one without a message).
        """
        with self._lock:
            cursor = self.db.execute(
                "UPDATE watches SET state = 'watching', ts = ? WHERE id = ? AND state = 'posting'", [ts, watch_id]
            )
            return cursor.rowcount == 1

    def active_watches(self, posting_before: datetime | None = None) -> list[dict[str, Any]]:
        """Watches to poll: every "watching" one, and "posting" ones created before `posting_before`.

        A watch still "posting" long after its creation was left so by a crash
        between recording it and posting its message: it is polled as one
        without a message (its `ts` is None).
        """
        where, params = "state = 'watching'", []
        if posting_before is not None:
            where += " OR (state = 'posting' AND created_at < ?)"
            params.append(iso(posting_before))
        with self._lock:
            rows = list(self.db["watches"].rows_where(where, params, order_by="id"))
        for row in rows:
            row["resource_ids"] = json.loads(row["resource_ids"])
            row["data"] = json.loads(row["data"])
        return rows

    def update_watch(self, watch_id: int, *, state: str | None = None, data: dict | None = None) -> bool:
        """Change an unfinished watch: end it (`state`, one of WATCH_ENDS) and/or replace its data.

        One conditional UPDATE: a watch that has ended never moves again (the
        call returns False), so a late poll cannot turn "done" into "timed-out"
        and a final message is posted by whoever ended the watch, once.
        """
        if state is not None and state not in WATCH_ENDS:
            raise ValueError(f"a watch ends as one of {', '.join(WATCH_ENDS)}, not {state!r}")
        changes: dict[str, Any] = {}
        if state is not None:
            changes["state"] = state
        if data is not None:
            changes["data"] = json.dumps(data)
        if not changes:
            return False
        sets = ", ".join(f"{key} = ?" for key in changes)
        with self._lock:
            cursor = self.db.execute(
                f"UPDATE watches SET {sets} WHERE id = ? AND state IN ('watching', 'posting')",
                [*changes.values(), watch_id],
            )
            return cursor.rowcount == 1

    # -- approvals --

    def create_approval(
        self, kind: str, region: str, plan: dict, requester: str, channel: str, expires_at: datetime
    ) -> str:
        approval_id = "req-" + secrets.token_hex(4)
        with self._lock:
            self.db["approvals"].insert(
                {
                    "id": approval_id,
                    "kind": kind,
                    "state": "pending",
                    "region": region,
                    "plan": json.dumps(plan),
                    "requester": requester,
                    "channel": channel,
                    "message_ts": "",
                    "created_at": self.now(),
                    "expires_at": iso(expires_at),
                    "decided_by": "",
                    "decided_at": "",
                    "finished_at": "",
                    "result": "",
                }
            )
        return approval_id

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db["approvals"].rows_where("id = ?", [approval_id]))
        return _approval(rows[0]) if rows else None

    def set_approval_message(self, approval_id: str, channel: str, ts: str) -> None:
        with self._lock:
            self.db["approvals"].update(approval_id, {"channel": channel, "message_ts": ts})

    def transition(
        self, approval_id: str, from_state: str, to_state: str, *, unexpired: bool = False, **fields: Any
    ) -> bool:
        """Move one request from `from_state` to `to_state` if (and only if) it is still there.

        A single conditional UPDATE: of any number of concurrent callers (threads
        or processes) exactly one sees True, which is what makes approvals run at
        most once.  `unexpired` also requires expires_at to be in the future.
        """
        if to_state not in APPROVAL_MOVES.get(from_state, ()):
            raise ValueError(f"an approval cannot move from {from_state} to {to_state}")
        now = self.now()
        stamps = {"decided_at": now} if to_state in ("approved", "denied", "expired") else {}
        if to_state in ("done", "failed"):
            stamps["finished_at"] = now
        values = {**stamps, **{k: (json.dumps(v) if k == "result" else v) for k, v in fields.items()}}
        sets = ", ".join(["state = ?"] + [f"{k} = ?" for k in values])
        sql = f"UPDATE approvals SET {sets} WHERE id = ? AND state = ?"
        params = [to_state, *values.values(), approval_id, from_state]
        if unexpired:
            sql += " AND expires_at > ?"
            params.append(now)
        with self._lock, self._durable():
            cursor = self.db.execute(sql, params)
            return cursor.rowcount == 1

    @contextmanager
    def _durable(self) -> Iterator[None]:
        """Commit the block with a full sync: an approval's move must survive a power cut too.

        The store otherwise runs `synchronous = NORMAL` (see __init__), where a
        power cut can take back the last commits; for a request's state that
        could make an executed request approvable again.
        """
        if self.path == ":memory:" or self.db.conn.in_transaction:
            yield  # in memory nothing is durable; inside a transaction its outermost commit decides
            return
        self.db.execute("PRAGMA synchronous = FULL")
        try:
            yield
        finally:
            self.db.execute("PRAGMA synchronous = NORMAL")

    def approvals_in(self, *states: str) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in states)
        with self._lock:
            rows = list(self.db["approvals"].rows_where(f"state in ({marks})", list(states), order_by="created_at"))
        return [_approval(r) for r in rows]

    def due_approvals(self) -> list[dict[str, Any]]:
        """Pending requests whose time is up."""
        with self._lock:
            rows = list(self.db["approvals"].rows_where("state = 'pending' AND expires_at <= ?", [self.now()]))
        return [_approval(r) for r in rows]

    # -- resource events --

    def record_event(self, region: str, kind: str, resource_id: str, detail: str = "") -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        with self._lock:
            self.db.execute(
                "INSERT INTO events (at, region, kind, resource_id, detail) VALUES (?, ?, ?, ?, ?)",
                [self.now(), region, kind, resource_id, detail[:500]],
            )

    def event_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        """region → {created, deleted, failed} counts since `since`."""
        with self._lock:
            rows = self.db.execute(
                "SELECT region, kind, count(*) FROM events WHERE at >= ? GROUP BY region, kind", [iso(since)]
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for region, kind, n in rows:
            counts.setdefault(region, dict.fromkeys(EVENT_KINDS, 0))[kind] = n
        return counts

    # -- scheduled runs --

    def start_run(self, job: str, trigger: str, stale_after: timedelta = timedelta(hours=6)) -> int | None:
        """Take the job's lease and record a run; None when a run of it is already going.

        A "running" row older than `stale_after` is a run a crash left behind; it
        is closed as interrupted so the job is not blocked forever.
        """
        with self.transaction():
            cutoff = iso(self.clock() - stale_after)
            self.db.execute(
                "UPDATE runs SET state = 'interrupted', finished_at = ? WHERE job = ? AND state = 'running'"
                " AND started_at < ?",
                [self.now(), job, cutoff],
            )
            try:
                cursor = self.db.execute(
                    "INSERT INTO runs (job, trigger, started_at, finished_at, state, summary)"
                    " VALUES (?, ?, ?, '', 'running', '')",
                    [job, trigger, self.now()],
                )
            except sqlite3.IntegrityError:
                return None
            return cursor.lastrowid

    def finish_run(self, run_id: int, state: str, summary: dict) -> None:
        with self._lock:
            self.db.execute(
                "UPDATE runs SET state = ?, finished_at = ?, summary = ? WHERE id = ?",
                [state, self.now(), json.dumps(summary), run_id],
            )

    def interrupt_runs(self) -> int:
        """At server start: runs left "running" by a crash of this process are over."""
        with self._lock:
            return self.db.execute(
                "UPDATE runs SET state = 'interrupted', finished_at = ? WHERE state = 'running'", [self.now()]
            ).rowcount

    def last_run(self, job: str) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db["runs"].rows_where("job = ?", [job], order_by="started_at desc", limit=1))
        if not rows:
            return None
        row = rows[0]
        row["summary"] = json.loads(row["summary"]) if row["summary"] else {}
        return row

    def first_seen(self, job: str) -> datetime:
        """When the bot first saw this scheduled job (recorded now if never)."""
        with self._lock:
            self.db.execute("INSERT OR IGNORE INTO jobs_seen (job, first_seen) VALUES (?, ?)", [job, self.now()])
            row = self.db.execute("SELECT first_seen FROM jobs_seen WHERE job = ?", [job]).fetchone()
        return from_iso(row[0])


def _approval(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["plan"] = json.loads(row["plan"])
    row["result"] = json.loads(row["result"]) if row["result"] else None
    return row
