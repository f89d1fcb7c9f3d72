"""Several processes on one store: a server beside a CLI sweep, two servers, a replica that dies, one watch.

The first tests run two participants in this interpreter (a Runtime over HTTP
and a second Store on the same file: each Store is a process to the others);
the last ones start real `python -m bot` and `python -m bot sweep` processes
against the moto server and the fake Slack.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.gateway import Ec2Gateway
from bot.config import Config
from bot.flows.deps import Deps
from bot.process.app import make_slack_client
from bot.state.store import Store, from_iso, utcnow
from bot.testing.fakeslack import Call, FakeSlack, message_text
from scheduler.upkeep import reclaim_orphans
from scheduler.watches import poll_watches, watch_volume
from tests.support.approvals import approval_state, exists, request_delete
from tests.support.bot_process import BotProcess, policy_config, read_store
from tests.support.factories import base_config, daily_policy, make_instance, make_snapshot, make_volume
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e

POLICY = daily_policy(keep=1)


# --- two participants in this interpreter ---------------------------------------------------------


def test_a_starting_server_leaves_a_live_process_s_run_alone(make_bot, tmp_path, ec2):
    config = dataclasses.replace(base_config(tmp_path), policies=(POLICY,))
    sweep = Store(config.store.path)  # `python -m bot sweep`, mid-run
    run = sweep.start_run("policy:daily-db", "cli")
    make_volume(ec2, 8, Backup="daily")

    bot = make_bot(config)
    assert read_store(config.store.path, "SELECT state FROM runs WHERE id = ?", run) == [("running",)]
    bot.command("/lifecycle run daily-db")
    bot.settle()
    assert "running right now" in bot.responses()[-1]
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []  # no overlapping run

    sweep.finish_run(run, "ok", {})
    sweep.close()
    bot.command("/lifecycle run daily-db")
    bot.settle()
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1


def test_a_starting_server_leaves_a_live_replica_s_approval_alone(make_bot, ec2):
    replica = make_bot()
    snap = make_snapshot(ec2)
    message = request_delete(replica, ec2, snap)
    [row] = replica.deps.store.approvals_in("pending")
    # The replica won the click and is about to delete, when a second server starts:
    assert replica.deps.store.transition(row["id"], "pending", "approved", decided_by=BOB)
    second = make_bot(config=replica.config)
    assert approval_state(second) == "approved"  # not failed under the replica's feet

    replica.stop()  # now it dies before the AWS call: the second settles it on its next round
    assert reclaim_orphans(second.deps) == 1
    assert approval_state(second) == "failed"
    assert exists(ec2, snap) and second.deps.gateway.calls["DeleteSnapshot"] == 0
    assert "request again" in message_text(second.approval_messages()[0])
    second.click(message, "approval_approve", user=BOB)
    second.settle()
    assert exists(ec2, snap)


# --- real processes --------------------------------------------------------------------------------


@dataclasses.dataclass
class Processes:
    """Real bot processes on one store (and one config): servers, `python -m bot sweep`, …"""

    tmp_path: Path
    config: str
    fake_slack: FakeSlack
    moto_url: str
    started: list[BotProcess] = dataclasses.field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.tmp_path / "bot.db"

    def start(self, *args: str, wait: bool = False) -> BotProcess:
        self.started.append(BotProcess(self.tmp_path, self.config, self.fake_slack, self.moto_url, args=args))
        return self.started[-1].start(wait=wait)

    def server(self) -> BotProcess:
        return self.start(wait=True)

    def query(self, sql: str, *params) -> list[tuple]:
        return read_store(self.db, sql, *params)


@pytest.fixture
def processes(tmp_path, aws, fake_slack, moto_server):
    def configure(every: str = "12h", keep: int = 1, on_expired: str = "approve") -> Processes:
        config = policy_config(every=every, keep=keep, on_expired=on_expired)
        made.append(Processes(tmp_path, config, fake_slack, moto_server))
        return made[-1]

    made: list[Processes] = []
    yield configure
    for group in made:
        for bot in group.started:
            bot.stop()


def policy_snapshots(ec2) -> list[dict]:
    f = [{"Name": "tag:chatops:policy", "Values": ["daily-db"]}]
    return ec2.describe_snapshots(OwnerIds=["self"], Filters=f)["Snapshots"]


def test_a_server_starting_beside_a_running_cli_sweep_leaves_its_lease_alone(processes, ec2, fake_slack):
    group = processes()
    vol = make_volume(ec2, 8, Backup="daily")
    for _ in range(2):  # keep = 1: one of them is expired
        tags = [{"Key": "chatops:policy", "Value": "daily-db"}, {"Key": "chatops:source", "Value": vol}]
        ec2.create_snapshot(VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    # Hold the sweep in the middle of its run: its approval request waits for
    # the fake Slack's answer until the test lets it go.
    asked, release = threading.Event(), threading.Event()

    def hold(call: Call) -> None:
        # Every attempt is held (the Slack client gives up after 15 s and retries).
        if call.method == "chat.postMessage" and "Request `req-" in message_text(call.params):
            asked.set()
            release.wait(60)

    fake_slack.listeners.append(hold)
    try:
        sweep = group.start("sweep", "--policy", "daily-db")
        while not asked.wait(0.2):
            assert sweep.proc.poll() is None, sweep.output()
        server = group.server()
        # The server started while the sweep holds the policy's lease: it stays the sweep's.
        assert group.query("SELECT trigger, state FROM runs") == [("cli", "running")]
        assert server.command("/lifecycle run daily-db") == 200
        refused = fake_slack.wait_for(
            lambda s: [t for t in s.texts("response_url") if "running right now" in t], timeout=30
        )
        assert refused and len(policy_snapshots(ec2)) == 2  # the manual run did not start beside the sweep
    finally:
        release.set()
    assert sweep.wait(timeout=60) == 0, sweep.output()
    assert group.query("SELECT trigger, state FROM runs") == [("cli", "ok")]
    server.terminate(timeout=30)
    assert server.proc.returncode == 0, server.output()


def test_two_servers_run_each_slot_once(processes, ec2, fake_slack):
    group = processes(every="2s", keep=100, on_expired="report")
    make_volume(ec2, 8, Backup="daily")
    # Both servers were down when this morning's digest was due: both catch it up at start.
    seen = Store(group.db, clock=lambda: utcnow() - timedelta(days=2))
    seen.first_seen("digest")
    seen.close()

    servers = [group.server() for _ in range(2)]

    def progress() -> tuple[int, int]:
        [(policy_runs,)] = read_store(
            group.db, "SELECT count(*) FROM runs WHERE job = 'policy:daily-db' AND state = 'ok'"
        )
        [(digests,)] = group.query("SELECT count(*) FROM runs WHERE job = 'digest' AND state != 'running'")
        return policy_runs, digests

    deadline = time.monotonic() + 60
    while progress()[0] < 3 or progress()[1] < 1:
        assert time.monotonic() < deadline, f"runs so far: {progress()}\n" + servers[0].output()
        time.sleep(0.2)
    for server in servers:
        server.terminate(timeout=30)
        assert server.proc.returncode == 0, server.output()

    digests = [c for c in fake_slack.calls_of("chat.postMessage") if "Snapshot & AMI digest" in message_text(c.params)]
    assert len(digests) == 1  # both caught the missed digest up; it ran once
    assert group.query("SELECT trigger FROM runs WHERE job = 'digest'") == [("missed-at-start",)]
    policy_runs = [from_iso(slot) for (slot,) in group.query("SELECT slot FROM runs WHERE job = 'policy:daily-db'")]
    assert len(set(policy_runs)) == len(policy_runs) >= 3  # one run per slot ...
    [(anchor,)] = group.query("SELECT first_seen FROM jobs_seen WHERE job = 'policy:daily-db'")
    assert all((slot - from_iso(anchor)).total_seconds() % 2 == 0 for slot in policy_runs)  # ... on the shared grid
    assert len(policy_snapshots(ec2)) <= len(policy_runs)  # and no run without its claim


def test_two_processes_polling_one_restore_attach_the_volume_once(tmp_path, aws, ec2, fake_slack):
    path = str(tmp_path / "watches.db")

    def participant(session) -> Deps:
        gateway = Ec2Gateway(session)
        slack = make_slack_client("xoxb-test", fake_slack.api_url)
        return Deps(config=Config(), gateway=gateway, store=Store(path), worker=None, slack=slack, clock=utcnow)

    first = participant(aws)  # sees AWS (moto) as it is
    second = participant(boto3.session.Session(region_name="us-east-1"))
    vol, inst = make_volume(ec2, 8), make_instance(ec2)
    ts = first.slack.chat_postMessage(channel="C0OPS", text="restoring")["ts"]
    attach = {"instance_id": inst, "device": "/dev/sdh"}
    first.store.add_watch(
        "volume", "us-east-1", [vol], "C0OPS", ts, ALICE, utcnow() + timedelta(hours=1), {"attach": attach}
    )
    [row] = first.store.active_watches()  # both processes' polls read the watch ...
    watch_volume(first, row)  # ... the first attaches the volume ...
    # ... while the second still saw it available (AWS takes a moment to say "in-use"):
    volume = {"VolumeId": vol, "Size": 8, "AvailabilityZone": "us-east-1a", "VolumeType": "gp3"}
    attached = [{"InstanceId": inst, "Device": "/dev/sdh", "State": "attached"}]
    instance = {"InstanceId": inst, "State": {"Name": "running"}, "Placement": {"AvailabilityZone": "us-east-1a"}}
    with Stubber(second.gateway.client("us-east-1")) as aws_now:
        aws_now.add_response("describe_volumes", {"Volumes": [{**volume, "State": "available", "Attachments": []}]})
        aws_now.add_response("describe_volumes", {"Volumes": [{**volume, "State": "in-use", "Attachments": attached}]})
        aws_now.add_response("describe_instances", {"Reservations": [{"Instances": [instance]}]})
        watch_volume(second, row)

    poll_watches(first)  # the next poll sees it attached
    assert [a["InstanceId"] for a in ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]] == [inst]
    assert first.store.active_watches() == []
    [message] = [m for (_, t), m in fake_slack.messages.items() if t == ts]
    assert "attached to" in message_text(message) and "failed" not in message_text(message)
    for p in (first, second):
        p.store.close()
