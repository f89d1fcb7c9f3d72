"""The store: migrations, WAL, audit log, watches, many threads and processes at once, upkeep."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from bot.config import RetentionConfig, load_config, parse_config
from bot.errors import ConfigError
from bot.state import heartbeat
from bot.state import store as store_module
from bot.state.store import MIGRATIONS, Store, StoreError, from_iso, iso, utcnow

RETENTION_FIELDS = [f.name for f in dataclasses.fields(RetentionConfig)]

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock):
    s = Store(":memory:", clock)
    yield s
    s.close()


def at_once(work, n: int) -> list[BaseException]:
    """Run work(0) … work(n-1) in n threads released together; the exceptions they raised."""
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # returned for the caller's assertion
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def user_version(store: Store) -> int:
    return store.db.execute("PRAGMA user_version").fetchone()[0]


# --- migrations and WAL ----------------------------------------------------------------------


def test_fresh_store_is_at_the_latest_schema(store):
    assert user_version(store) == len(MIGRATIONS) >= 1
    assert {"audit", "watches"} <= set(store.db.table_names())


def test_migrations_are_idempotent_when_opened_twice(tmp_path, clock):
    path = str(tmp_path / "chatops.db")
    first = Store(path, clock)
    audit_id = first.audit("U0ALICE", "C0OPS", "/snapshot list", "ok")
    watch_id = first.add_watch("snapshot", "us-east-1", ["snap-1234abcd"], "C0OPS", "1.0", "U0ALICE", T0)
    tables = set(first.db.table_names())
    first.close()

    second = Store(path, clock)
    assert user_version(second) == len(MIGRATIONS)
    assert set(second.db.table_names()) == tables
    assert second.recent_audit(5)[0]["id"] == audit_id
    assert [w["id"] for w in second.active_watches()] == [watch_id]
    assert second.migrate() == len(MIGRATIONS)  # and again: nothing to do
    assert user_version(second) == len(MIGRATIONS)
    second.close()


def test_two_stores_opening_a_fresh_file_at_once(tmp_path):
    # The server and `python -m bot sweep` may start together on a new database.
    path = str(tmp_path / "fresh.db")
    opened: list[Store] = []
    failures = at_once(lambda _: opened.append(Store(path)), 4)
    try:
        assert failures == []
        assert all(user_version(s) == len(MIGRATIONS) for s in opened)
    finally:
        for s in opened:
            s.close()


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "m.db")
    Store(path).close()

    def broken(db) -> None:
        db["half_done"].create({"id": int}, pk="id")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(path)
    monkeypatch.undo()

    reopened = Store(path)
    assert "half_done" not in reopened.db.table_names()
    assert user_version(reopened) == len(MIGRATIONS)
    reopened.close()


def test_file_store_uses_wal(tmp_path):
    store = Store(str(tmp_path / "wal.db"))
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_reader_on_another_connection_sees_committed_rows(tmp_path):
    path = str(tmp_path / "shared.db")
    writer, reader = Store(path), Store(path)
    writer.audit("U0ALICE", "C0OPS", "/snapshot list", "ok")
    assert len(reader.recent_audit()) == 1
    writer.close()
    reader.close()


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.audit("U0ALICE", "C0OPS", "/snapshot list", "ok")
            raise RuntimeError("boom")
    assert store.recent_audit() == []


def test_nested_transactions_roll_back_only_the_inner_one(store):
    with store.transaction():
        store.audit("U0ALICE", "C0OPS", "outer", "ok")
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.audit("U0ALICE", "C0OPS", "inner", "ok")
                raise RuntimeError("boom")
    assert [r["action"] for r in store.recent_audit()] == ["outer"]


# --- audit ---------------------------------------------------------------------------------------


def test_audit_append_update_and_recent_newest_first(store, clock):
    ids = []
    for n in range(5):
        ids.append(store.audit(f"U0USER{n}", "C0OPS", f"/snapshot list #{n}", "accepted", f"detail {n}"))
        clock.tick(seconds=1)
    assert ids == sorted(ids) and len(set(ids)) == 5

    store.set_audit_outcome(ids[1], "ok", "12 snapshots")

    rows = store.recent_audit()
    assert [r["id"] for r in rows] == ids[::-1]
    assert [r["action"] for r in rows] == [f"/snapshot list #{n}" for n in range(4, -1, -1)]
    by_id = {r["id"]: r for r in rows}
    assert by_id[ids[1]]["outcome"] == "ok" and by_id[ids[1]]["detail"] == "12 snapshots"
    assert by_id[ids[0]]["outcome"] == "accepted" and by_id[ids[0]]["detail"] == "detail 0"
    assert by_id[ids[0]]["user"] == "U0USER0" and by_id[ids[0]]["channel"] == "C0OPS"
    assert from_iso(by_id[ids[0]]["at"]) == T0
    assert from_iso(by_id[ids[4]]["at"]) == T0 + timedelta(seconds=4)
    assert [r["id"] for r in store.recent_audit(2)] == ids[:2:-1][:2]


def test_audit_keeps_empty_user_and_channel_as_text(store):
    store.audit("", "", "scheduled sweep", "ok")
    [row] = store.recent_audit()
    assert row["user"] == "" and row["channel"] == ""


def test_audit_detail_is_capped(store):
    audit_id = store.audit("U0ALICE", "C0OPS", "x", "ok", "d" * 10_000)
    assert len(store.recent_audit()[0]["detail"]) == 2000
    store.set_audit_outcome(audit_id, "failed", "e" * 10_000)
    assert store.recent_audit()[0]["detail"] == "e" * 2000


def test_audit_keeps_text_as_given(store):
    text = '/snapshot vol-1234abcd "it\'s" <!channel> & ünïcødé; DROP TABLE audit;--'
    store.audit("U0ALICE", "C0OPS", text, "ok", text)
    row = store.recent_audit()[0]
    assert row["action"] == text and row["detail"] == text


def test_iso_timestamps_sort_as_text():
    a, b = iso(T0), iso(T0 + timedelta(microseconds=1))
    assert a < b and from_iso(a) == T0
    assert iso(datetime(2026, 11, 20, 10, 0, tzinfo=UTC)) == iso(
        datetime(2026, 11, 20, 11, 0, tzinfo=UTC).astimezone(UTC) - timedelta(hours=1)
    )


# --- watches --------------------------------------------------------------------------------------


def test_watches_add_active_update(store, clock):
    deadline = T0 + timedelta(hours=6)
    a = store.add_watch(
        "snapshot", "us-east-1", ["snap-1234abcd"], "C0OPS", "111.1", "U0ALICE", deadline, {"verb": "Snapshot"}
    )
    b = store.add_watch("volume", "us-west-2", ["vol-1234abcd", "vol-5678abcd"], "C0OPS", "222.2", "U0BOB", deadline)

    active = store.active_watches()
    assert [w["id"] for w in active] == [a, b]
    first, second = active
    assert first["kind"] == "snapshot" and first["region"] == "us-east-1"
    assert first["resource_ids"] == ["snap-1234abcd"] and first["data"] == {"verb": "Snapshot"}
    assert first["channel"] == "C0OPS" and first["ts"] == "111.1" and first["user"] == "U0ALICE"
    assert first["state"] == "watching"
    assert from_iso(first["deadline"]) == deadline and from_iso(first["created_at"]) == T0
    assert second["resource_ids"] == ["vol-1234abcd", "vol-5678abcd"] and second["data"] == {}

    store.update_watch(b, data={"attach": {"instance_id": "i-1234abcd"}})
    assert store.active_watches()[1]["data"] == {"attach": {"instance_id": "i-1234abcd"}}

    store.update_watch(a, state="done")
    assert [w["id"] for w in store.active_watches()] == [b]
    store.update_watch(b, state="timed-out", data={"why": "6h"})
    assert store.active_watches() == []
    row = store.db["watches"].get(b)
    assert row["state"] == "timed-out" and row["data"] == '{"why": "6h"}'


def test_a_watch_step_is_claimed_once_across_processes(tmp_path):
    path = str(tmp_path / "w.db")
    first, second = Store(path), Store(path)
    w = first.add_watch("volume", "us-east-1", ["vol-1234abcd"], "C0OPS", "1.1", "U0ALICE", T0, {"attach": {"x": 1}})
    claims = [s.claim_watch_step(w, "attach_started", "now") for s in (first, second, first)]
    assert claims == [True, False, False]
    assert second.active_watches()[0]["data"] == {"attach": {"x": 1}, "attach_started": "now"}
    first.update_watch(w, state="done")
    assert not second.claim_watch_step(w, "other_step", "now")  # a finished watch has no steps left
    for s in (first, second):
        s.close()


def test_update_watch_with_nothing_to_change_is_harmless(store):
    w = store.add_watch("snapshot", "us-east-1", ["snap-1234abcd"], "C0OPS", "1.1", "U0ALICE", T0)
    store.update_watch(w)
    assert [x["id"] for x in store.active_watches()] == [w]


# --- many threads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["memory", "file"])
def test_concurrent_audit_inserts_from_20_threads_all_land(tmp_path, where):
    store = Store(":memory:" if where == "memory" else str(tmp_path / "busy.db"))
    ids: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(25):
            audit_id = store.audit(f"U0T{n:02d}", "C0OPS", f"t{n}-{i}", "accepted")
            store.set_audit_outcome(audit_id, "ok", f"done {n}-{i}")
            with lock:
                ids.append(audit_id)

    assert at_once(work, 20) == []
    assert len(ids) == len(set(ids)) == 500
    rows = store.recent_audit(1000)
    assert len(rows) == 500
    assert {r["action"] for r in rows} == {f"t{n}-{i}" for n in range(20) for i in range(25)}
    assert all(r["outcome"] == "ok" and r["detail"] == "done " + r["action"][1:] for r in rows)
    store.close()


def test_two_connections_write_the_same_wal_file(tmp_path):
    # The server and `python -m bot sweep` each hold a connection to one WAL file.
    path = str(tmp_path / "two.db")
    stores = [Store(path), Store(path)]

    def work(n: int) -> None:
        for i in range(20):
            stores[n % 2].audit("U0X", "C0OPS", f"c{n % 2}-t{n}-{i}", "ok")

    assert at_once(work, 20) == []
    assert len(stores[0].recent_audit(1000)) == len(stores[1].recent_audit(1000)) == 400
    for s in stores:
        s.close()


# --- several processes: owners and heartbeats --------------------------------------------------

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def record(pid: int, host: str = heartbeat.HOST, space: str = heartbeat.PID_SPACE, beat_ago: float = 1) -> dict:
    return {"host": host, "pid": pid, "pid_space": space, "heartbeat_at": iso(NOW - timedelta(seconds=beat_ago))}


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


@pytest.mark.parametrize(
    "owner, row, alive",
    [
        (None, None, False),  # a row from before owners: its process is long gone
        ("", None, False),
        ("elsewhere:7:abcd", None, False),  # closed cleanly (or pruned)
        ("elsewhere:7:abcd", record(7, host="elsewhere", beat_ago=5), True),
        ("elsewhere:7:abcd", record(7, host="elsewhere", beat_ago=61), False),  # no heartbeat for a minute
        ("here:parent", record(os.getppid()), True),  # same machine, a live PID, a fresh heartbeat
        ("here:parent", record(os.getppid(), beat_ago=120), False),  # alive but hung
        ("here:gone", record(dead_pid()), False),  # its PID is gone: no need to wait for the heartbeat
        ("here:ours", record(os.getpid()), False),  # our PID, an ID we do not hold: a container restarted as PID 1
        # Same host name, another PID namespace (containers with host networking): only the heartbeat tells.
        ("box:other-ns", record(dead_pid(), space="another/pid:[1]", beat_ago=5), True),
    ],
)
def test_owner_alive(owner, row, alive):
    assert heartbeat.owner_alive(owner, row, NOW) is alive


def test_each_store_registers_and_leaves(tmp_path):
    path = str(tmp_path / "p.db")
    first, second = Store(path), Store(path)
    assert first.owner != second.owner
    rows = {p["id"]: p for p in first.processes()}
    assert set(rows) == {first.owner, second.owner}
    assert all(p["alive"] and p["pid"] == os.getpid() and p["host"] == heartbeat.HOST for p in rows.values())
    second.close()
    assert [p["id"] for p in first.processes()] == [first.owner]
    first.close()


def test_the_heartbeat_keeps_the_row_fresh_and_restores_it(tmp_path):
    store = Store(str(tmp_path / "h.db"))
    old = iso(utcnow() - timedelta(hours=2))
    store.db.execute("UPDATE processes SET heartbeat_at = ?", [old])
    store._beat()  # what the heartbeat thread does every 10 s
    [row] = store.processes()
    assert row["heartbeat_at"] > old and row["alive"]
    store.db.execute("DELETE FROM processes")  # pruned while we hung
    store._beat()
    assert [p["id"] for p in store.processes()] == [store.owner]
    store.close()


def test_the_heartbeat_thread_beats_until_stopped_and_outlives_a_failed_beat():
    beats: list[int] = []
    third = threading.Event()

    def beat() -> None:
        beats.append(len(beats))
        if len(beats) == 1:
            raise sqlite3.OperationalError("database is locked")
        if len(beats) == 3:
            third.set()

    pulse = heartbeat.Heartbeat(beat, every=timedelta(milliseconds=5)).start()
    assert third.wait(10)
    pulse.stop()
    stopped_at = len(beats)
    assert not any(t.name == "heartbeat" for t in threading.enumerate())
    assert len(beats) == stopped_at


def test_a_file_store_beats_while_open(tmp_path):
    store = Store(str(tmp_path / "b.db"))
    names = {t.name for t in threading.enumerate()}
    assert f"heartbeat {store.owner}" in names
    store.close()
    assert f"heartbeat {store.owner}" not in {t.name for t in threading.enumerate()}


def test_a_live_process_keeps_its_lease_and_a_closed_one_hands_it_over(tmp_path, clock):
    path = str(tmp_path / "l.db")
    sweep, server = Store(path, clock), Store(path, clock)
    held = sweep.start_run("policy:daily-db", "cli")
    clock.tick(days=2)
    assert server.start_run("policy:daily-db", "schedule") is None
    assert server.interrupt_orphaned_runs() == 0
    assert sweep.start_run("policy:daily-db", "cli") is None  # nor twice in one process
    sweep.close()  # exits (a run still going ends interrupted)
    assert server.start_run("policy:daily-db", "schedule") is not None
    assert server.db["runs"].get(held)["state"] == "interrupted"
    server.close()


def test_legacy_running_rows_without_owner_are_taken_over(store):
    store.db.execute(
        "INSERT INTO runs (job, trigger, started_at, finished_at, state, summary) VALUES"
        " ('digest', 'schedule', ?, '', 'running', '')",
        [iso(T0)],
    )
    assert store.start_run("digest", "schedule") is not None
    assert [r["state"] for r in store.db["runs"].rows_where(order_by="id")] == ["interrupted", "running"]


def test_interrupt_orphaned_runs_touches_only_dead_owners(tmp_path, clock):
    path = str(tmp_path / "o.db")
    live, doomed, server = Store(path, clock), Store(path, clock), Store(path, clock)
    live.start_run("policy:a", "cli")
    doomed.start_run("policy:b", "cli")
    heartbeat.release(doomed.owner)  # as if that process died: our PID, an ID nobody here holds
    assert server.interrupt_orphaned_runs() == 1
    states = dict(server.db.execute("SELECT job, state FROM runs").fetchall())
    assert states == {"policy:a": "running", "policy:b": "interrupted"}
    for s in (live, doomed, server):
        s.close()


def test_a_slot_is_claimed_once_across_processes(tmp_path, clock):
    path = str(tmp_path / "s.db")
    first, second = Store(path, clock), Store(path, clock)
    slot = T0 + timedelta(hours=12)
    run = first.start_run("digest", "schedule", slot=slot)
    first.finish_run(run, "ok", {})
    assert second.start_run("digest", "schedule", slot=slot) is None  # already ran, though nothing is running
    assert second.start_run("digest", "schedule", slot=slot + timedelta(days=1)) is not None
    for s in (first, second):
        s.close()


def test_approvals_carry_their_owner_and_only_dead_owners_are_orphans(tmp_path):
    path = str(tmp_path / "a.db")
    executing, server = Store(path), Store(path)
    ids = [
        executing.create_approval("delete-snapshots", "us-east-1", {}, "U1", "C1", utcnow() + timedelta(hours=1))
        for _ in range(3)
    ]
    assert executing.transition(ids[0], "pending", "approved", decided_by="U2")
    assert executing.transition(ids[1], "pending", "approved", decided_by="U2")
    assert executing.transition(ids[1], "approved", "executing")
    assert {executing.get_approval(i)["owner"] for i in ids[:2]} == {executing.owner}
    assert server.orphaned_approvals() == []  # its owner lives: not ours to reconcile
    server.db.execute("UPDATE approvals SET state = 'approved', owner = NULL WHERE id = ?", [ids[2]])
    assert [r["id"] for r in server.orphaned_approvals()] == [ids[2]]  # no owner: from before owners existed
    executing.close()
    assert sorted(r["id"] for r in server.orphaned_approvals()) == sorted(ids)
    server.close()


def test_upgrading_a_version_4_store_keeps_its_rows_and_its_interval_slots(tmp_path):
    path = str(tmp_path / "v4.db")
    old = sqlite_utils.Database(path)  # as the release before owners left it
    for migration in MIGRATIONS[:4]:
        migration(old)
    old.execute("PRAGMA user_version = 4")
    old.execute("INSERT INTO jobs_seen (job, first_seen) VALUES ('policy:daily-db', ?)", [iso(T0)])
    for hours, state in ((1, "ok"), (13, "running")):
        old.execute(
            "INSERT INTO runs (job, trigger, started_at, finished_at, state, summary)"
            " VALUES ('policy:daily-db', 'schedule', ?, '', ?, '')",
            [iso(T0 + timedelta(hours=hours)), state],
        )
    old.conn.commit()
    old.close()

    new = Store(path, Clock())
    assert user_version(new) == len(MIGRATIONS)
    # Slots continue from the last run, as the old code counted them.
    assert new.first_seen("policy:daily-db") == T0 + timedelta(hours=13)
    assert new.interrupt_orphaned_runs() == 1  # the old process's run has no owner: it is over
    new.close()


# --- upkeep: schema version, integrity, pruning, backup -------------------------------------------


def test_a_store_newer_than_the_code_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    Store(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 2}")
    raw.close()
    with pytest.raises(StoreError) as caught:
        Store(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"schema version {len(MIGRATIONS) + 2}" in message and f"this bot's {len(MIGRATIONS)}" in message
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 2  # untouched
    raw.close()


def damage(path: str) -> None:
    """Break the audit table's root page (its first free block points off the page), as a bad disk would."""
    store = Store(path)
    for n in range(300):
        store.audit("U0ALICE", "C0OPS", f"entry {n} " + "x" * 200, "ok")
    root = store.db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audit'").fetchone()[0]
    page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
    store.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size + 1)
        f.write(b"\xff\xff")


def test_a_damaged_store_stops_start_up_pointing_at_the_backup(tmp_path):
    path = str(tmp_path / "bad.db")
    damage(path)
    with pytest.raises(StoreError) as caught:
        Store(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"the store {path} is damaged" in message and "free space corruption" in message  # quick_check's words
    assert "python -m bot backup" in message


@pytest.mark.parametrize("trouble", ["damaged", "newer"])
def test_python_m_bot_refuses_such_a_store_in_one_line(tmp_path, trouble):
    path = str(tmp_path / "chatops.db")
    if trouble == "damaged":
        damage(path)
    else:
        Store(path).close()
        raw = sqlite3.connect(path)
        raw.execute("PRAGMA user_version = 99")
        raw.close()
    env = {**os.environ, "CHATOPS_DB": path, "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s"}
    env.pop("CHATOPS_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "bot"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    if trouble == "damaged":
        assert "is damaged" in line and "python -m bot backup" in line
    else:
        assert f"schema version 99, newer than this bot's {len(MIGRATIONS)}" in line


def test_a_file_that_is_not_a_store_is_called_damaged_too(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not SQLite at all" * 200)
    with pytest.raises(StoreError, match="is damaged .*python -m bot backup"):
        Store(str(path))


def test_prune_deletes_only_what_is_old_and_finished(store, clock):
    old = clock.now
    expires = old + timedelta(hours=1)
    store.audit("U0OLD", "", "old", "ok")
    store.record_event("us-east-1", "created", "snap-old")
    store.add_watch("snapshot", "us-east-1", ["snap-1"], "C", "1.1", "U", expires)  # still watching
    done_watch = store.add_watch("snapshot", "us-east-1", ["snap-2"], "C", "1.2", "U", expires)
    store.update_watch(done_watch, state="done")
    requests = {}
    for state in ("pending", "approved", "executing", "done", "failed", "denied", "expired"):
        rid = store.create_approval("delete-snapshots", "us-east-1", {}, "U1", "C1", expires)
        store.db.execute("UPDATE approvals SET state = ? WHERE id = ?", [state, rid])
        requests[state] = rid
    only_run = store.start_run("digest", "schedule")  # a job's only (so latest) run
    store.finish_run(only_run, "ok", {})
    older = store.start_run("policy:a", "schedule")
    store.finish_run(older, "ok", {})
    stuck = store.start_run("policy:b", "cli")  # still running, years on (its process lives)

    clock.tick(days=500)
    store.audit("U0NEW", "", "new", "ok")
    store.record_event("us-east-1", "created", "snap-new")
    newer = store.start_run("policy:a", "schedule")
    store.finish_run(newer, "ok", {})

    counts = store.prune(**{f: getattr(RetentionConfig(), f) for f in RETENTION_FIELDS})
    assert counts == {"audit": 1, "events": 1, "watches": 1, "runs": 1, "approvals": 4, "drills": 0, "processes": 0}
    assert [r["user"] for r in store.recent_audit()] == ["U0NEW"]
    assert [r[0] for r in store.db.execute("SELECT resource_id FROM events").fetchall()] == ["snap-new"]
    assert [w["resource_ids"] for w in store.active_watches()] == [["snap-1"]]
    assert {r["state"] for r in store.approvals_in(*requests)} == {"pending", "approved", "executing"}
    assert sorted(r["id"] for r in store.db["runs"].rows) == sorted([only_run, newer, stuck])


def test_prune_follows_the_configured_retention(store, clock):
    store.audit("U0ALICE", "", "x", "ok")
    clock.tick(days=31)
    kept = store.prune(**{f: getattr(RetentionConfig(), f) for f in RETENTION_FIELDS})
    assert kept["audit"] == 0
    counts = store.prune(
        **{**{f: getattr(RetentionConfig(), f) for f in RETENTION_FIELDS}, "audit": timedelta(days=30)}
    )
    assert counts["audit"] == 1 and store.recent_audit() == []


def test_store_retention_in_config_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[store]\npath = "x.db"\nretention = { audit = "2w", runs = "7d" }\n')
    retention = load_config(path, env={"CHATOPS_DB": str(tmp_path / "elsewhere.db")}).store.retention
    assert retention == dataclasses.replace(RetentionConfig(), audit=timedelta(weeks=2), runs=timedelta(days=7))
    assert RetentionConfig().audit == timedelta(days=400)


@pytest.mark.parametrize(
    "retention, key",
    [
        ({"audit": "forever"}, "store.retention.audit"),
        ({"logs": "1d"}, "store.retention.logs"),
        ("30d", "store.retention"),
    ],
)
def test_bad_store_retention_names_the_key(retention, key):
    with pytest.raises(ConfigError) as caught:
        parse_config({"store": {"retention": retention}})
    assert caught.value.key == key


def test_prune_forgets_long_dead_processes(store):
    beat = iso(utcnow() - timedelta(days=2))
    store.db.execute(
        "INSERT INTO processes (id, host, pid, pid_space, command, started_at, heartbeat_at)"
        " VALUES ('gone:1:x', 'gone', 1, '', 'python -m bot', ?, ?)",
        [beat, beat],
    )
    counts = store.prune(**{f: getattr(RetentionConfig(), f) for f in RETENTION_FIELDS})
    assert counts["processes"] == 1
    assert [p["id"] for p in store.processes()] == [store.owner]


def test_backup_while_the_store_is_open_and_writing(tmp_path):
    path = str(tmp_path / "live.db")
    live = Store(path)
    for n in range(50):
        live.audit("U0ALICE", "C0OPS", f"committed {n}", "ok")
    writer = sqlite3.connect(path, isolation_level=None)  # another process, mid-transaction
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO audit (at, user, channel, action, outcome, detail) VALUES ('', '', '', 'uncommitted', '', '')"
    )
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{path}"\n')
    copy = tmp_path / "copy.db"
    env = {**os.environ, "CHATOPS_CONFIG": str(config)}
    env.pop("CHATOPS_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "backup", str(copy)], env=env, capture_output=True, text=True, timeout=60
    )
    writer.execute("ROLLBACK")
    writer.close()
    assert proc.returncode == 0, proc.stderr
    assert f"backed up {path} to {copy}" in proc.stdout
    assert live.recent_audit(1)[0]["action"] == "committed 49"  # the store carried on
    live.close()

    raw = sqlite3.connect(copy)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    raw.close()
    restored = Store(str(copy))
    assert [r["action"] for r in restored.recent_audit(100)] == [f"committed {n}" for n in range(49, -1, -1)]
    restored.close()


def test_backup_refuses_to_overwrite_or_to_copy_nothing(tmp_path):
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"precious")
    Store(str(tmp_path / "s.db")).close()
    with pytest.raises(StoreError, match="already exists"):
        store_module.backup(str(tmp_path / "s.db"), str(existing))
    assert existing.read_bytes() == b"precious"
    with pytest.raises(StoreError, match="there is no store"):
        store_module.backup(str(tmp_path / "missing.db"), str(tmp_path / "copy.db"))
    assert not (tmp_path / "copy.db").exists()
