"""The store: migrations, WAL, audit log, watches, and many threads writing at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot import store as store_module
from bot.store import MIGRATIONS, Store, from_iso, iso

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
