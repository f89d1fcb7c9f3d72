"""The store: all of the bot's own state, in one SQLite file via sqlite-utils.

WAL mode (the shell's `python -m bot sweep` and other replicas may run beside
the server), one connection shared by the bot's threads behind a lock, schema
changes as numbered migrations tracked in `PRAGMA user_version`.  Timestamps
are stored as ISO-8601 UTC strings, which sort correctly as text.

Each Store is one participant ("process") with an ID in the `processes` table
and a heartbeat (bot/state/heartbeat.py); the leases it takes (running runs,
approvals it executes) carry that ID, and other processes take them over only
once it is dead.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.errors import BotError
from bot.state import heartbeat

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


def _migration_5(db: sqlite_utils.Database) -> None:
    # Several processes on one store: who is alive (see bot/state/heartbeat.py) ...
    db["processes"].create(
        {
            "id": str,  # host:pid:random
            "host": str,
            "pid": int,
            "pid_space": str,  # boot and PID namespace: PIDs compare only within one
            "command": str,  # the command line, for whoever reads this table
            "started_at": str,
            "heartbeat_at": str,  # real wall clock, whatever clock the bot runs on
        },
        pk="id",
    )
    # ... and who holds each lease.  Rows from before have no owner: their process is gone.
    db["runs"].add_column("owner", str)
    db["approvals"].add_column("owner", str)
    # A scheduled firing claims its slot (the fire time it stands for): however
    # many processes fire it, one row per (job, slot), so the slot runs once.
    # Manual runs have no slot.
    db["runs"].add_column("slot", str)
    db.execute("CREATE UNIQUE INDEX runs_one_per_slot ON runs(job, slot) WHERE slot IS NOT NULL")
    # Interval slots now count from jobs_seen.first_seen, which every process
    # shares (they used to count from each process's view of the last run).
    # Continue the slots where they were: from the latest run.
    db.execute(
        "UPDATE jobs_seen SET first_seen = (SELECT max(started_at) FROM runs WHERE runs.job = jobs_seen.job)"
        " WHERE EXISTS (SELECT 1 FROM runs WHERE runs.job = jobs_seen.job)"
    )


def _migration_6(db: sqlite_utils.Database) -> None:
    # Several AWS accounts: each event names its account ("" = the bot's own), so one
    # account's digest never counts what a command did in another.
    db.execute("ALTER TABLE events ADD COLUMN account TEXT NOT NULL DEFAULT ''")


def _migration_7(db: sqlite_utils.Database) -> None:
    # The kill switch: while a row covers an account, nothing in it is deleted by
    # any path.  `scope` is "*" (every account) or an account as events name it
    # ("" = the bot's own); `until` (optional) is when it lifts on its own.
    db["freezes"].create(
        {"scope": str, "reason": str, "by_user": str, "at": str, "until": str},
        pk="scope",
        not_null={"reason", "by_user", "at"},
    )


def _migration_8(db: sqlite_utils.Database) -> None:
    # The storage trend: each day's snapshot totals per place (a region, or account/region), written by the digest.
    db["storage_days"].create(
        {"day": str, "place": str, "snapshots": int, "gib": int, "usd_month": float}, pk=("day", "place")
    )


def _migration_9(db: sqlite_utils.Database) -> None:
    # Restore drills (bot/flows/drill_flow.py): one row per drill, written before anything is created, so a
    # drill whose process died is found ("running" with a dead owner) and its leftovers swept by their tag.
    db["drills"].create(
        {
            "id": str,  # the run ID, also the value of the chatops:drill tag on what it created
            "account": str,  # as events name it ("" = the bot's own)
            "policy": str,  # "" for an on-demand drill of a backup no drill policy covers
            "region": str,
            "kind": str,  # snapshot | image
            "backup_id": str,
            "source_id": str,
            "backup_created": str,
            "restored_id": str,  # the volume or instance, once created
            "trigger": str,  # schedule | missed-at-start | manual
            "user": str,
            "started_at": str,
            "finished_at": str,
            "ready_seconds": float,  # to available / running: the restore time
            "checked_seconds": float,  # an instance: until its status checks passed
            "state": str,  # running | ok | failed | timed-out | interrupted
            "reason": str,
            "size_gib": int,
            "instance_type": str,
            "gib_hours": float,
            "instance_minutes": float,
            "cost_usd": float,
            "owner": str,
        },
        pk="id",
        not_null={"kind", "region", "backup_id", "started_at", "state"},
    )
    db["drills"].create_index(["policy", "started_at"])
    db["drills"].create_index(["state"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
]
EVENT_KINDS = ("created", "deleted", "failed")
# How a watch ends (it starts "posting" or "watching"): done, failed (the
# resource failed or vanished), timed-out (its deadline passed), message-gone
# (Slack will not update its message: deleted, channel archived, bot removed).
WATCH_ENDS = ("done", "failed", "timed-out", "message-gone")

APPROVAL_STATES = ("pending", "approved", "held", "executing", "done", "failed", "denied", "expired")
# The only moves a request can make; done/failed/denied/expired are final.  An
# approved deletion that meets a freeze before it starts is held; the thaw
# approves it again (or expires it, when it waited longer than requests last).
APPROVAL_MOVES = {
    "pending": {"approved", "denied", "expired"},
    "approved": {"executing", "done", "failed", "held"},  # done/failed directly: reconciled after a crash
    "held": {"approved", "expired"},
    "executing": {"done", "failed"},
}

FINAL_APPROVAL_STATES = ("done", "failed", "denied", "expired")

# Pruned processes: long dead (OWNER_TTL is a minute); kept a day for whoever investigates.
PROCESS_ROWS_KEPT = timedelta(days=1)


class StoreError(BotError):
    """The store cannot be used as it is: newer than this code, or damaged."""


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    # SQLITE_CORRUPT (11) and SQLITE_NOTADB (26); "database is locked" and the like are not damage.
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (11, 26)


def _damage_error(path: str, detail: str) -> StoreError:
    detail = " ".join(detail.split())[:300]
    return StoreError(
        f"the store {path} is damaged (SQLite says: {detail}); the bot will not start on it.",
        f"Stop every bot process, move {path} aside and put your latest backup (`python -m bot backup` makes one)"
        f" in its place, or salvage what is left with `sqlite3 {path} .recover`.",
    )


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
        self._heartbeat: heartbeat.Heartbeat | None = None
        self.owner = heartbeat.new_process_id()
        try:
            if path != ":memory:":
                _enable_wal(self.db)
                # In WAL mode NORMAL syncs at checkpoints, not on every commit: the
                # file stays consistent, and a power cut (not a crash of the bot)
                # can lose only the last commits.  FULL made the audit write of
                # every slash command an fsync inside the ack path, serialised by
                # the store lock (benchmarks/ack_latency.py: ack p99 ~117 → ~97 ms).
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.check_integrity()
            self.db.execute("PRAGMA foreign_keys = ON")
            self.migrate()
            self._register()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _damaged(exc):
                raise _damage_error(path, str(exc)) from None
            raise
        except BaseException:
            conn.close()
            raise
        heartbeat.hold(self.owner)
        if path != ":memory:":
            self._heartbeat = heartbeat.Heartbeat(self._beat, name=f"heartbeat {self.owner}").start()

    # -- plumbing --

    def check_integrity(self) -> None:
        """PRAGMA quick_check: a damaged file stops here, with what to do, instead of failing somewhere later."""
        rows = [r[0] for r in self.db.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            raise _damage_error(self.path, "; ".join(rows[:3]))

    def migrate(self) -> int:
        """Apply the numbered migrations not yet applied; returns the schema version.

        Refuses a store whose version is newer than this code's: an older bot
        would misread what a newer one wrote (and a downgrade is a restore).
        """
        # Take SQLite's write lock before reading the version: two processes
        # opening a new file together then migrate it once, in turn (in a
        # deferred transaction the second fails with "database is locked").
        with self._immediate():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the store {self.path} has schema version {version}, newer than this bot's {len(MIGRATIONS)}"
                    " (a newer release wrote it); nothing was changed.",
                    "Run that release or a later one, or restore a backup made by this one.",
                )
            for number, migration in enumerate(MIGRATIONS, start=1):
                if number > version:
                    with self.transaction():
                        migration(self.db)
                        self.db.execute(f"PRAGMA user_version = {number}")
        return len(MIGRATIONS)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One transaction around a multi-step change (rolled back on error; nests as savepoints)."""
        with self._lock, self.db.atomic():
            yield self.db

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """A transaction that takes SQLite's write lock first: for read-then-write steps other processes race.

        In a deferred transaction two processes could both read "the lease is
        free" and the second would then fail to write ("database is locked");
        BEGIN IMMEDIATE makes the second wait for the first and then read its result.
        """
        with self._lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def now(self) -> str:
        return iso(self.clock())

    def close(self) -> None:
        """Leave cleanly: our running runs end interrupted, and we are dead to the others at once."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
        heartbeat.release(self.owner)
        with self._lock:
            try:
                with self._immediate():
                    self.db.execute(
                        "UPDATE runs SET state = 'interrupted', finished_at = ? WHERE owner = ? AND state = 'running'",
                        [self.now(), self.owner],
                    )
                    self.db.execute("DELETE FROM processes WHERE id = ?", [self.owner])
            except sqlite3.Error:
                pass  # already closed, or the file is gone: the others will see our heartbeat stop
            self.db.conn.close()

    # -- processes --

    def _process_row(self) -> dict[str, Any]:
        now = iso(utcnow())
        return {
            "id": self.owner,
            "host": heartbeat.HOST,
            "pid": os.getpid(),
            "pid_space": heartbeat.PID_SPACE,
            "command": " ".join(sys.argv)[:500],
            "started_at": now,
            "heartbeat_at": now,
        }

    _UPSERT_PROCESS = (
        "INSERT INTO processes (id, host, pid, pid_space, command, started_at, heartbeat_at)"
        " VALUES (:id, :host, :pid, :pid_space, :command, :started_at, :heartbeat_at)"
        " ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
    )

    def _register(self) -> None:
        with self._lock:
            self.db.execute(self._UPSERT_PROCESS, self._process_row())

    def _beat(self) -> None:
        # Its own short-lived connection: a beat must not queue behind the store
        # lock, which a thread may hold while SQLite waits out another writer.
        # mode=rw: never create a file where the store was moved away (a restore in progress).
        conn = sqlite3.connect(
            f"{Path(self.path).absolute().as_uri()}?mode=rw", uri=True, timeout=30, isolation_level=None
        )
        try:
            conn.execute(self._UPSERT_PROCESS, self._process_row())  # re-creates a row pruned while we hung
        finally:
            conn.close()

    def processes(self) -> list[dict[str, Any]]:
        """Every registered process, with `alive` as the lease rules see it."""
        with self._lock:
            rows = list(self.db["processes"].rows_where(order_by="started_at"))
        now = utcnow()
        return [{**row, "alive": heartbeat.owner_alive(row["id"], row, now)} for row in rows]

    def _alive(self, owner: str | None) -> bool:
        if owner == self.owner:
            return True
        with self._lock:
            rows = list(self.db["processes"].rows_where("id = ?", [owner])) if owner else []
        return heartbeat.owner_alive(owner, rows[0] if rows else None, utcnow())

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

    def claim_watch_step(self, watch_id: int, step: str, value: str) -> bool:
        """Mark a watch's one-off `step` (e.g. "attach_started") as taken; True for exactly one caller.

        One conditional UPDATE, so when several processes poll the same watch
        only one of them does the step (attaching a volume twice would fail
        the second time and report the restore as failed).
        """
        path = f"$.{step}"
        with self._lock:
            cursor = self.db.execute(
                "UPDATE watches SET data = json_set(data, ?, ?)"
                " WHERE id = ? AND state = 'watching' AND json_extract(data, ?) IS NULL",
                [path, value, watch_id, path],
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
        # The decision is the approver's click: a held request approved again at the thaw keeps it.
        stamps = {"decided_at": now} if to_state in ("approved", "denied", "expired") and from_state != "held" else {}
        if to_state in ("done", "failed"):
            stamps["finished_at"] = now
        if to_state in ("approved", "executing"):
            stamps["owner"] = self.owner  # ours to execute: reconciled by others only once we are dead
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

    def approvals_requested_by(self, user: str, limit: int = 5) -> list[dict[str, Any]]:
        """A person's latest requests, whatever their state, newest first (App Home's "your requests")."""
        with self._lock:
            rows = list(
                self.db["approvals"].rows_where(
                    "requester = ?", [user], order_by="created_at desc, id desc", limit=limit
                )
            )
        return [_approval(r) for r in rows]

    def orphaned_approvals(self) -> list[dict[str, Any]]:
        """Approved or executing requests whose owner process is dead (see bot/state/heartbeat.py)."""
        return [r for r in self.approvals_in("approved", "executing") if not self._alive(r.get("owner"))]

    def due_approvals(self) -> list[dict[str, Any]]:
        """Pending requests whose time is up."""
        with self._lock:
            rows = list(self.db["approvals"].rows_where("state = 'pending' AND expires_at <= ?", [self.now()]))
        return [_approval(r) for r in rows]

    # -- the storage trend --

    def record_storage(self, day: str, totals: Sequence[tuple[str, int, int, float]]) -> None:
        """A day's totals, (place, snapshots, GiB, $/month) each; a later digest the same day replaces them."""
        rows = [{"day": day, "place": p, "snapshots": n, "gib": g, "usd_month": u} for p, n, g, u in totals]
        with self._lock, self.db.atomic():
            self.db["storage_days"].upsert_all(rows, pk=("day", "place"))

    def storage_days(self, since: str) -> list[tuple[str, int, int, float]]:
        """(day, snapshots, GiB, $/month) summed over every place, one per recorded day from `since`, oldest first."""
        with self._lock:
            return [
                tuple(row)
                for row in self.db.execute(
                    "SELECT day, sum(snapshots), sum(gib), sum(usd_month) FROM storage_days WHERE day >= ?"
                    " GROUP BY day ORDER BY day",
                    [since],
                ).fetchall()
            ]

    def storage_places(self) -> tuple[str, list[tuple[str, int, int, float]]]:
        """The latest recorded day, and its (place, snapshots, GiB, $/month) per place, by place ("", [] if none)."""
        with self._lock:
            row = self.db.execute("SELECT max(day) FROM storage_days").fetchone()
            if not row or row[0] is None:
                return "", []
            places = self.db.execute(
                "SELECT place, snapshots, gib, usd_month FROM storage_days WHERE day = ? ORDER BY place", [row[0]]
            ).fetchall()
        return row[0], [tuple(p) for p in places]

    # -- the freeze (kill switch) --

    def freeze(self, scope: str, reason: str, user: str, until: datetime | None = None) -> None:
        """Freeze deletions in `scope` ("*" = every account, else an account as events name it); replaces its freeze."""
        row = {"scope": scope, "reason": reason, "by_user": user, "at": self.now(), "until": until and iso(until)}
        with self._lock, self._durable():
            self.db["freezes"].upsert(row, pk="scope")

    def thaw(self, scope: str | None = None) -> list[dict[str, Any]]:
        """Lift the freeze of `scope` (None: every freeze); returns the freezes lifted."""
        with self._lock, self._durable():
            where, params = ("scope = ?", [scope]) if scope is not None else ("1", [])
            rows = list(self.db["freezes"].rows_where(where, params))
            self.db.execute(f"DELETE FROM freezes WHERE {where}", params)
        return rows

    def freezes(self) -> list[dict[str, Any]]:
        """The freezes in force now ("*" first); one whose `until` has passed is no longer in force."""
        with self._lock:
            rows = list(self.db["freezes"].rows_where("until IS NULL OR until > ?", [self.now()], order_by="scope"))
        return sorted(rows, key=lambda r: r["scope"] != "*")

    def lapsed_freezes(self) -> list[dict[str, Any]]:
        """Freezes whose `until` has passed, still on record until the upkeep job lifts them and says so."""
        with self._lock:
            return list(self.db["freezes"].rows_where("until IS NOT NULL AND until <= ?", [self.now()]))

    def freeze_on(self, account: str = "") -> dict[str, Any] | None:
        """The freeze in force over `account` ("" = the bot's own): the fleet's first, else the account's own."""
        return next((f for f in self.freezes() if f["scope"] in ("*", account)), None)

    # -- resource events --

    def record_event(self, region: str, kind: str, resource_id: str, detail: str = "", account: str = "") -> None:
        """What happened to a resource, for the digest; `account` "" is the bot's own."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        with self._lock:
            self.db.execute(
                "INSERT INTO events (at, region, kind, resource_id, detail, account) VALUES (?, ?, ?, ?, ?, ?)",
                [self.now(), region, kind, resource_id, detail[:500], account],
            )

    def event_counts(self, since: datetime, account: str = "") -> dict[str, dict[str, int]]:
        """region → {created, deleted, failed} counts since `since`, in `account` ("" = the bot's own)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT region, kind, count(*) FROM events WHERE at >= ? AND account = ? GROUP BY region, kind",
                [iso(since), account],
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for region, kind, n in rows:
            counts.setdefault(region, dict.fromkeys(EVENT_KINDS, 0))[kind] = n
        return counts

    # -- scheduled runs --

    def start_run(self, job: str, trigger: str, slot: datetime | None = None) -> int | None:
        """Take the job's lease and record a run; None when a run of it is going, or `slot` was already run.

        The lease is the job's one "running" row, owned by this process.  Another
        process's lease is taken over (closed as interrupted) only when that
        process is dead, however long its run has been going: a 100,000-item
        sweep may take hours.  A scheduled run passes its `slot`, the fire time
        it stands for: each (job, slot) runs once across every process sharing
        the store.  Manual runs pass none and only respect the lease.
        """
        with self._immediate():
            now = self.now()
            # A job that ran has been seen: its interval slots count from here.
            self.db.execute("INSERT OR IGNORE INTO jobs_seen (job, first_seen) VALUES (?, ?)", [job, now])
            held = self.db.execute("SELECT id, owner FROM runs WHERE job = ? AND state = 'running'", [job]).fetchone()
            if held is not None and not self._alive(held[1]):
                self.db.execute("UPDATE runs SET state = 'interrupted', finished_at = ? WHERE id = ?", [now, held[0]])
            try:
                cursor = self.db.execute(
                    "INSERT INTO runs (job, trigger, started_at, finished_at, state, summary, owner, slot)"
                    " VALUES (?, ?, ?, '', 'running', '', ?, ?)",
                    [job, trigger, now, self.owner, iso(slot) if slot else None],
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

    def interrupt_orphaned_runs(self) -> int:
        """Close as interrupted the runs whose owner is dead (a crash, here or in another process)."""
        with self._immediate():
            held = self.db.execute("SELECT id, owner FROM runs WHERE state = 'running'").fetchall()
            dead = [run_id for run_id, owner in held if not self._alive(owner)]
            for run_id in dead:
                self.db.execute(
                    "UPDATE runs SET state = 'interrupted', finished_at = ? WHERE id = ? AND state = 'running'",
                    [self.now(), run_id],
                )
            return len(dead)

    def last_run(self, job: str) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db["runs"].rows_where("job = ?", [job], order_by="started_at desc", limit=1))
        if not rows:
            return None
        row = rows[0]
        row["summary"] = json.loads(row["summary"]) if row["summary"] else {}
        return row

    def latest_run(self, prefix: str) -> dict[str, Any] | None:
        """The latest run of any job whose name starts with `prefix` (e.g. every policy's)."""
        with self._lock:
            rows = list(
                self.db["runs"].rows_where("job LIKE ?", [prefix + "%"], order_by="started_at desc, id desc", limit=1)
            )
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

    # -- restore drills --

    def start_drill(self, row: dict[str, Any]) -> None:
        """Record a drill before it creates anything (its ID is the tag its resources will carry)."""
        with self._lock, self._durable():
            self.db["drills"].insert({**row, "state": "running", "started_at": self.now(), "owner": self.owner})

    def set_drill_restored(self, drill_id: str, restored_id: str) -> None:
        with self._lock:
            self.db.execute("UPDATE drills SET restored_id = ? WHERE id = ?", [restored_id, drill_id])

    def finish_drill(self, drill_id: str, state: str, **fields: Any) -> dict[str, Any]:
        """End a drill (ok, failed, timed-out, interrupted) with its figures; returns the row."""
        with self._lock:
            self.db["drills"].update(drill_id, {**fields, "state": state, "finished_at": self.now()})
            return self.db["drills"].get(drill_id)

    def drills(self, policy: str | None = None, limit: int = 20, state: str | None = None) -> list[dict[str, Any]]:
        """Drills, newest first; of one policy ("" = on-demand ones) and in one state when given."""
        where, params = [], []
        if policy is not None:
            where.append("policy = ?")
            params.append(policy)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        with self._lock:
            return list(
                self.db["drills"].rows_where(
                    " AND ".join(where) or None, params, order_by="started_at desc, id desc", limit=limit
                )
            )

    def last_ok_drills(self, policy: str) -> dict[str, dict[str, Any]]:
        """Per source ("region/source") of the policy: its newest successful drill."""
        with self._lock:
            rows = list(self.db["drills"].rows_where("policy = ? AND state = 'ok'", [policy], order_by="started_at"))
        return {f"{r['region']}/{r['source_id'] or r['backup_id']}": r for r in rows}

    def running_drill_ids(self) -> set[str]:
        """Drills going now in a live process (this one or another): their resources are not leftovers."""
        with self._lock:
            rows = self.db.execute("SELECT id, owner FROM drills WHERE state = 'running'").fetchall()
        return {drill_id for drill_id, owner in rows if self._alive(owner)}

    def interrupt_orphaned_drills(self) -> list[dict[str, Any]]:
        """Close as interrupted the drills whose process died; returns them (their leftovers are swept by tag)."""
        with self._immediate():
            rows = list(self.db["drills"].rows_where("state = 'running'"))
            dead = [r for r in rows if not self._alive(r["owner"])]
            for row in dead:
                self.db.execute(
                    "UPDATE drills SET state = 'interrupted', finished_at = ?,"
                    " reason = 'the bot stopped during the drill; its leftovers are swept by their tag'"
                    " WHERE id = ? AND state = 'running'",
                    [self.now(), row["id"]],
                )
        return dead

    def drill_places(self) -> set[tuple[str, str]]:
        """Every (account, region) a drill ever ran in: where leftovers could be."""
        with self._lock:
            return {(a, r) for a, r in self.db.execute("SELECT DISTINCT account, region FROM drills").fetchall()}

    # -- upkeep --

    def prune(
        self,
        *,
        audit: timedelta,
        events: timedelta,
        watches: timedelta,
        runs: timedelta,
        approvals: timedelta,
    ) -> dict[str, int]:
        """Delete what is older than its retention; returns how many rows went, per table.

        Never deleted, whatever their age: pending, approved and executing
        requests, watches still watching, running runs, and each job's latest run
        (it tells a missed slot at start, and what `/lifecycle list` shows).
        Deletes go in chunks, each its own short transaction, so the other
        processes' writes are never held up for long.
        """
        now = self.clock()
        final = ", ".join(f"'{state}'" for state in FINAL_APPROVAL_STATES)
        counts = {
            "audit": self._delete("audit", "at < ?", [iso(now - audit)]),
            "events": self._delete("events", "at < ?", [iso(now - events)]),
            "watches": self._delete("watches", "state != 'watching' AND created_at < ?", [iso(now - watches)]),
            "runs": self._delete(
                "runs",
                "state != 'running' AND started_at < ? AND id NOT IN (SELECT id FROM (SELECT id, row_number()"
                " OVER (PARTITION BY job ORDER BY started_at DESC, id DESC) AS newest FROM runs) WHERE newest = 1)",
                [iso(now - runs)],
            ),
            "approvals": self._delete("approvals", f"state IN ({final}) AND created_at < ?", [iso(now - approvals)]),
            # Finished drills as long as runs; each source's newest drill stays (the digest's "last drill").
            "drills": self._delete(
                "drills",
                "state != 'running' AND started_at < ? AND id NOT IN (SELECT id FROM (SELECT id, row_number()"
                " OVER (PARTITION BY policy, region, source_id, state = 'ok' ORDER BY started_at DESC) AS newest"
                " FROM drills) WHERE newest = 1)",
                [iso(now - runs)],
            ),
        }
        # Process rows on the wall clock, like their heartbeats; a live process re-creates its row.
        gone = [
            p["id"]
            for p in self.processes()
            if not p["alive"] and from_iso(p["heartbeat_at"]) < utcnow() - PROCESS_ROWS_KEPT
        ]
        counts["processes"] = sum(self._delete("processes", "id = ?", [pid]) for pid in gone)
        return counts

    def _delete(self, table: str, where: str, params: list, chunk: int = 5000) -> int:
        total = 0
        while True:
            with self._immediate():
                deleted = self.db.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT {chunk})",
                    params,
                ).rowcount
            total += deleted
            if deleted < chunk:
                return total


@dataclass(frozen=True)
class Backup:
    path: str
    schema_version: int
    size: int  # bytes


def backup(source: str, target: str) -> Backup:
    """Copy the store at `source` into the new file `target` with SQLite's online backup API.

    Safe while the bot and other processes use the store: the copy is one
    consistent moment of it (a transaction still open is not in it).  The
    copy is a single self-contained file (not WAL), checked with quick_check;
    a copy that fails the check is removed and reported.  Never overwrites.
    """
    if source == ":memory:" or not Path(source).is_file():
        raise StoreError(f"there is no store at {source}.", "Check store.path in config.toml (or CHATOPS_DB).")
    destination = Path(target)
    if destination.exists():
        raise StoreError(f"{target} already exists; a backup never overwrites a file.", "Choose a new file name.")
    if not destination.parent.is_dir():
        raise StoreError(f"the folder of {target} does not exist.", "Create it first, or choose another path.")
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step, under one read transaction: a consistent copy
            dst.execute("PRAGMA journal_mode = DELETE")
            problems = [r[0] for r in dst.execute("PRAGMA quick_check").fetchall()]
            version = dst.execute("PRAGMA user_version").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        destination.unlink(missing_ok=True)
        if _damaged(exc):
            raise _damage_error(source, str(exc)) from None
        raise StoreError(f"could not back up {source} to {target}: {exc}.") from None
    finally:
        src.close()
    if problems != ["ok"]:
        destination.unlink(missing_ok=True)
        raise _damage_error(source, "; ".join(problems[:3]))
    return Backup(target, version, destination.stat().st_size)


def _approval(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["plan"] = json.loads(row["plan"])
    row["result"] = json.loads(row["result"]) if row["result"] else None
    return row
