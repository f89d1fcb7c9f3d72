"""The "snapshot" watch: pending → progress update → completed; timeouts; a vanished snapshot."""

from __future__ import annotations

from datetime import timedelta

from scheduler.watches import poll_watches
from tests.support.watches import NOW, SNAP, describe, watch


def updates(fake_slack) -> list[str]:
    return fake_slack.texts("chat.update")


def test_progress_then_completion_updates_the_message_once_each(deps, stub, fake_slack):
    watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    describe(stub, "pending", "40%")
    describe(stub, "pending", "40%")  # unchanged: no second update
    describe(stub, "completed", "100%")
    poll_watches(deps)
    poll_watches(deps)
    assert len(updates(fake_slack)) == 1 and "40%" in updates(fake_slack)[0]
    poll_watches(deps)
    assert "completed" in updates(fake_slack)[-1]
    assert "<!channel>" not in updates(fake_slack)[-1]
    assert deps.store.active_watches() == []
    stub.assert_no_pending_responses()


def test_a_watch_gives_up_after_the_deadline_and_says_how_to_check(deps, stub, fake_slack, clock):
    watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    clock["now"] = NOW + timedelta(hours=2)
    describe(stub, "pending", "99%")
    poll_watches(deps)
    assert "stopped watching" in updates(fake_slack)[-1] and f"/snapshot status {SNAP}" in updates(fake_slack)[-1]
    assert deps.store.active_watches() == []


def test_a_vanished_snapshot_ends_the_watch_with_an_error(deps, stub, fake_slack):
    watch(deps, "snapshot", [SNAP], {"verb": "Snapshot"})
    stub.add_client_error("describe_snapshots", "InvalidSnapshot.NotFound", "gone")
    poll_watches(deps)
    assert "not found" in updates(fake_slack)[-1]
    assert deps.store.active_watches() == []
