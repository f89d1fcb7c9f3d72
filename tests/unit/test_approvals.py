"""The approval state machine and executors, against a store and moto (no Slack)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot import errors
from bot.approvals.snapshots import delete_snapshots_plan, execute_delete_snapshots
from bot.aws.gateway import Ec2Gateway
from bot.config import AccessConfig, Config
from bot.domain.access import check_decider
from bot.domain.plans import Context, ItemResult, Plan, PlanItem
from bot.state.store import Store, iso, utcnow
from tests.support.factories import make_instance, make_volume


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "s.db"))


def new_request(store, minutes: int = 60) -> str:
    return store.create_approval(
        "delete-snapshots", "us-east-1", {"items": []}, "U1", "C1", datetime.now(UTC) + timedelta(minutes=minutes)
    )


@pytest.mark.parametrize(
    "path",
    [
        ["pending", "approved", "executing", "done"],
        ["pending", "approved", "executing", "failed"],
        ["pending", "denied"],
        ["pending", "expired"],
        ["pending", "approved", "held", "approved", "executing", "done"],  # held by a freeze, run at the thaw
        ["pending", "approved", "held", "expired"],  # held past the request's time
    ],
)
def test_each_legal_path_moves_once(store, path):
    rid = new_request(store)
    for before, after in zip(path, path[1:], strict=False):
        assert store.transition(rid, before, after)
        assert not store.transition(rid, before, after)  # the same step twice: refused
    assert store.get_approval(rid)["state"] == path[-1]


@pytest.mark.parametrize("final", ["done", "failed", "denied", "expired"])
def test_nothing_leaves_a_final_state(store, final):
    rid = new_request(store)
    store.db.execute("UPDATE approvals SET state = ? WHERE id = ?", [final, rid])
    for target in ("pending", "approved", "held", "executing", "done", "failed", "denied", "expired"):
        with pytest.raises(ValueError):
            store.transition(rid, final, target)
        if target in ("approved", "denied", "expired"):
            assert not store.transition(rid, "pending", target)
    assert store.get_approval(rid)["state"] == final


def test_unexpired_guard(store):
    rid = new_request(store, minutes=-1)
    assert not store.transition(rid, "pending", "approved", unexpired=True)
    assert store.transition(new_request(store), "pending", "approved", unexpired=True)  # in time: it moves
    assert store.transition(rid, "pending", "expired")
    assert store.due_approvals() == []


def test_an_illegal_move_says_which_move():
    with pytest.raises(ValueError, match="an approval cannot move from done to pending"):
        Store().transition("req-1", "done", "pending")


T = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "decided", "finished"),
    [
        (["pending", "approved", "executing", "done"], True, True),
        (["pending", "approved", "executing", "failed"], True, True),
        (["pending", "approved", "failed"], True, True),  # reconciled after a crash
        (["pending", "denied"], True, False),
        (["pending", "expired"], True, False),
        (["pending"], False, False),
    ],
)
def test_each_move_records_when_it_was_decided_and_finished(tmp_path, path, decided, finished):
    store = Store(str(tmp_path / "s.db"), lambda: T)
    rid = store.create_approval("delete-snapshots", "us-east-1", {"items": []}, "U1", "C1", T + timedelta(hours=1))
    for before, after in zip(path, path[1:], strict=False):
        assert store.transition(rid, before, after)
    row = store.get_approval(rid)
    assert row["decided_at"] == (store.now() if decided else "")
    assert row["finished_at"] == (store.now() if finished else "")


def test_the_process_that_executes_a_request_owns_it_and_its_result_is_stored_as_given(tmp_path):
    path = str(tmp_path / "s.db")
    first, second = Store(path, lambda: T), Store(path, lambda: T)
    rid = first.create_approval("delete-snapshots", "us-east-1", {"items": []}, "U1", "C1", T + timedelta(hours=1))
    assert first.transition(rid, "pending", "approved", decided_by="U2")
    assert first.get_approval(rid)["owner"] == first.owner
    assert second.transition(rid, "approved", "executing")  # e.g. a reconcile in another process took it
    assert first.get_approval(rid)["owner"] == second.owner != first.owner
    result = [{"resource_id": "snap-1", "outcome": "done", "reason": "deleted"}]
    assert second.transition(rid, "executing", "done", result=result)
    row = first.get_approval(rid)
    assert (row["result"], row["decided_by"]) == (result, "U2")


def test_due_approvals_are_the_pending_requests_past_their_time(tmp_path):
    store = Store(str(tmp_path / "s.db"), lambda: T)
    due, later, denied = (
        store.create_approval("delete-snapshots", "us-east-1", {"items": [n]}, "U1", "C1", T + timedelta(minutes=m))
        for n, m in ((1, -1), (2, 1), (3, -1))
    )
    assert store.transition(denied, "pending", "denied")
    [row] = store.due_approvals()
    assert (row["id"], row["plan"]) == (due, {"items": [1]})


def test_concurrent_transitions_have_one_winner(tmp_path):
    path = str(tmp_path / "race.db")
    store = Store(path)
    rid = new_request(store)
    other = Store(path)  # a second connection, as a second process would have
    wins = []
    barrier = threading.Barrier(16)

    def go(s):
        barrier.wait()
        wins.append(s.transition(rid, "pending", "approved", decided_by="U2"))

    threads = [threading.Thread(target=go, args=(store if i % 2 else other,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_a_state_move_is_committed_with_a_full_sync(store):
    # The store runs synchronous=NORMAL (fast audit writes); a request's move must survive a power cut.
    rid = new_request(store)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        assert store.transition(rid, "pending", "approved", decided_by="U2")
    finally:
        store.db.conn.set_trace_callback(None)
    [update] = [i for i, sql in enumerate(statements) if sql.startswith("UPDATE approvals")]
    assert statements[update - 1] == "PRAGMA synchronous = FULL"
    assert statements[update + 1] == "PRAGMA synchronous = NORMAL"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL again for everything else


@pytest.mark.parametrize(
    "approvers,requester,user,approve,allowed,self_ok",
    [
        (("U2",), "U1", "U2", True, True, False),
        (("U2",), "U1", "U3", True, False, False),
        (("U2",), "U1", "U3", False, False, False),
        (("U1",), "U1", "U1", True, False, False),
        (("U1",), "U1", "U1", False, True, False),  # an approver may deny (withdraw) their own request
        (("U1",), "U1", "U1", True, True, True),
    ],
)
def test_check_decider(approvers, requester, user, approve, allowed, self_ok):
    access = AccessConfig(approvers=approvers, allow_self_approval=self_ok)
    if allowed:
        check_decider(access, requester, user, approve)
    else:
        with pytest.raises(errors.NotAllowed):
            check_decider(access, requester, user, approve)


def test_plan_round_trips_through_json():
    plan = Plan(
        "delete-snapshots",
        "us-east-1",
        "t",
        (PlanItem("snap-1", "snapshot", 5, "d", ("x",)),),
        5,
        0.25,
        ("w",),
        {"k": 1},
    )
    import json

    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_plan_states_size_cost_and_keep_warning(aws, ec2):
    gw = Ec2Gateway(aws)
    vol = make_volume(ec2, 40)
    snap = ec2.create_snapshot(
        VolumeId=vol,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "chatops:keep", "Value": "true"}]}],
    )["SnapshotId"]
    plan = delete_snapshots_plan(gw, "us-east-1", [snap, snap], 0.05)
    assert [i.resource_id for i in plan.items] == [snap]
    assert plan.gib_freed == 40 and plan.usd_month_freed == 2.0
    assert plan.warnings and "chatops:keep" in plan.warnings[0]


def test_execute_refuses_a_snapshot_that_now_backs_an_ami(aws, ec2):
    gw = Ec2Gateway(aws)
    image = ec2.create_image(InstanceId=make_instance(ec2), Name="golden", NoReboot=True)["ImageId"]
    backing = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    fine = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    # A plan made before the AMI existed (the world changed while it waited for approval):
    plan = Plan("delete-snapshots", "us-east-1", "t", (PlanItem(backing, "snapshot", 8), PlanItem(fine, "snapshot", 8)))
    seen: list[ItemResult] = []
    results = execute_delete_snapshots(Context(gw, Config(), utcnow), plan, seen.append)
    assert results == seen
    assert results[0].outcome == "failed" and image in results[0].reason
    assert results[1].outcome == "done"
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert backing in remaining and fine not in remaining


def test_the_decision_time_is_the_click_however_long_the_request_waits_after_it(tmp_path):
    """Held by a freeze and released later, a request keeps the time of its approval (its TTL counts from it)."""
    now = [T]
    store = Store(str(tmp_path / "s.db"), lambda: now[0])
    rid = store.create_approval("delete-snapshots", "us-east-1", {"items": []}, "U1", "C1", T + timedelta(hours=1))
    assert store.transition(rid, "pending", "approved")
    decided = store.get_approval(rid)["decided_at"]
    for minutes, (before, after) in zip(
        (5, 30, 31, 32),
        [("approved", "held"), ("held", "approved"), ("approved", "executing"), ("executing", "done")],
        strict=True,
    ):
        now[0] = T + timedelta(minutes=minutes)
        assert store.transition(rid, before, after)
    row = store.get_approval(rid)
    assert row["decided_at"] == decided == iso(T)
    assert row["finished_at"] == iso(T + timedelta(minutes=32))
