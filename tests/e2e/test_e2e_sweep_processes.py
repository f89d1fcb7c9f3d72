"""`python -m bot sweep --processes 2` over a fleet of three accounts, against the project's fake EC2.

The parent holds the run, children sweep their share of the accounts.  What
must hold whatever happens to them: a child killed with -9 fails only its own
accounts (the others complete, the run fails and says why, and the next sweep
finishes the work); SIGTERM to the parent reaches every child, which stops
between two deletions, and no deletion goes unrecorded.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.fake_ec2 import FakeEc2
from benchmarks.fleet_sweep import OWN_NAME, external_id, fleet, fleet_config, role_arn
from benchmarks.inventory import POLICY_NAME, seed_sweep_inventory
from benchmarks.sweep_scale import bot_env
from bot.testing.fakeslack import message_text
from tests.support.bot_process import wait_until

pytestmark = pytest.mark.e2e

REGIONS = ("us-east-1",)
# EC2's DeleteSnapshot bucket refills at 5 a second; at a tenth of that, past the burst of 100
# (95 for the bot's pacer), a deletion every 2 s: a signal lands mid-sweep.
SPEEDUP = 0.1
ACCOUNTS = fleet(3)  # own, acct01, acct02: with 2 processes, [own, acct02] and [acct01]


@dataclass
class Fleet:
    fake: FakeEc2
    expected: dict[str, set[str]]  # account name → the expired IDs a correct sweep deletes
    workdir: Path

    def remaining(self, name: str) -> set[str]:
        return self.expected[name] & self.fake.ids(REGIONS[0], account=ACCOUNTS[name])

    def gone(self, name: str) -> set[str]:
        return self.expected[name] - self.remaining(name)

    def all_ids(self) -> set[str]:
        return {i for account_id in ACCOUNTS.values() for i in self.fake.ids(REGIONS[0], account=account_id)}

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.workdir / "bot.db") as db:
            return db.execute(sql).fetchall()


def seeded(tmp_path: Path, snapshots: int, on_expired: str = "delete") -> Fleet:
    fake = FakeEc2(speedup=SPEEDUP)
    expected = {}
    for name, account_id in ACCOUNTS.items():
        expected[name] = seed_sweep_inventory(fake.in_account(account_id), REGIONS, snapshots, 0.6)[REGIONS[0]]
        if name != OWN_NAME:
            fake.require_external_id(role_arn(account_id), external_id(name))
    config = fleet_config(ACCOUNTS, REGIONS, SPEEDUP, tmp_path / "bot.db")
    config = '[slack]\ndigest_channel = "C0DIGEST"\n\n' + config.replace(
        'on_expired = "delete"', f'on_expired = "{on_expired}"'
    )
    (tmp_path / "config.toml").write_text(config)
    return Fleet(fake, expected, tmp_path)


@pytest.fixture
def small(tmp_path):
    """About 60 expired snapshots an account: within the burst, each share's sweep is quick."""
    f = seeded(tmp_path, 100)
    with f.fake:
        yield f


@pytest.fixture
def large(tmp_path):
    """About 120 expired snapshots an account: past the burst, each share paces for about a minute."""
    f = seeded(tmp_path, 200)
    with f.fake:
        yield f


class Sweep:
    def __init__(self, f: Fleet, processes: int = 2, *args: str, slack_url: str = ""):
        self.out = f.workdir / f"sweep-{time.monotonic_ns()}.out"
        env = bot_env(f.fake.url, f.workdir) | {"LOG_LEVEL": "INFO"}
        if slack_url:
            env |= {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack_url}
        command = [sys.executable, "-m", "bot", "sweep", "--policy", POLICY_NAME, "--processes", str(processes), *args]
        with self.out.open("w") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.out.read_text()

    def children(self) -> list[int]:
        """The child processes' IDs, in share order, from the parent's log line."""
        line = wait_until(
            lambda: re.search(r"over (\d+) processes \(([\d, ]+)\)", self.output()), timeout=30, what="children"
        )
        return [int(pid) for pid in line.group(2).split(", ")]

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_processes_sweep_every_account_once_under_one_run(small):
    everything = small.all_ids()
    sweep = Sweep(small)

    assert len(sweep.children()) == 2
    assert sweep.wait() == 0, sweep.output()
    for name in ACCOUNTS:
        assert small.remaining(name) == set(), name
    gone = everything - small.all_ids()
    assert gone == set().union(*small.expected.values())  # exactly the expired snapshots, nothing else
    assert small.fake.stats()["repeated_deletions"] == {}
    assert small.query("SELECT trigger, state FROM runs") == [("cli", "ok")]  # one run, held by the parent
    audited = {row[0].rsplit(" ", 1)[1] for row in small.query("SELECT action FROM audit WHERE outcome = 'done'")}
    assert audited == gone  # every child's deletions are in the one store
    report = sweep.output()
    for name in ACCOUNTS:
        assert f"✅ {POLICY_NAME} in account {name} (delete)" in report


@pytest.fixture
def approving(tmp_path):
    f = seeded(tmp_path, 100, on_expired="approve")
    with f.fake:
        yield f


def test_each_child_asks_approval_for_its_accounts_and_the_parent_posts_the_one_report(approving, fake_slack):
    everything = approving.all_ids()
    sweep = Sweep(approving, 2, slack_url=fake_slack.api_url)

    assert sweep.wait() == 0, sweep.output()
    assert approving.all_ids() == everything  # nothing deleted before an approver says so
    requests = approving.query("SELECT plan FROM approvals WHERE state = 'pending'")
    assert len(requests) == len(ACCOUNTS)  # one request per account, each opened by the child sweeping it
    posted = [message_text(m) for m in fake_slack.messages.values()]
    for name in ACCOUNTS:
        [request] = [t for t in posted if "Request `req-" in t and f"(account {name})" in t]
        assert f"{len(approving.expected[name])} " in request
    [report] = [t for t in posted if "Lifecycle sweep" in t]
    assert "3 accounts" in report


def test_a_dry_run_over_processes_reports_every_account_and_deletes_nothing(small):
    everything = small.all_ids()
    sweep = Sweep(small, 2, "--dry-run")

    assert sweep.wait() == 0, sweep.output()
    assert small.all_ids() == everything
    report = sweep.output()
    for name in ACCOUNTS:
        assert f"🔍 {POLICY_NAME} in account {name} (delete, preview)\n{len(small.expected[name])} expired" in report
    assert f"would expire {sum(map(len, small.expected.values()))}," in report
    assert small.query("SELECT count(*) FROM runs") == [(0,)]  # a preview is not a run


def test_a_child_killed_mid_sweep_fails_its_own_accounts_and_the_next_sweep_finishes(small):
    sweep = Sweep(small)
    _, second = sweep.children()  # acct01's process
    os.kill(second, signal.SIGKILL)

    assert sweep.wait() == 1, sweep.output()
    report = sweep.output()
    assert "❌ bench-daily in account acct01" in report
    assert "its sweep process ended without a report (exit code -9)" in report
    assert small.remaining(OWN_NAME) == small.remaining("acct02") == set()  # the other process completed
    [(state,)] = small.query("SELECT state FROM runs")
    assert state == "failed"

    again = Sweep(small)
    assert again.wait() == 0, again.output()
    assert small.remaining("acct01") == set()
    assert small.fake.stats()["repeated_deletions"] == {}


def test_sigterm_to_the_parent_stops_every_child_between_deletions_and_loses_no_record(large):
    sweep = Sweep(large)
    children = sweep.children()
    wait_until(
        lambda: all(len(large.gone(name)) > 90 for name in ACCOUNTS), timeout=60, what="every account past its burst"
    )
    started = time.monotonic()
    sweep.proc.send_signal(signal.SIGTERM)

    assert sweep.wait() == 1, sweep.output()
    assert time.monotonic() - started < 15
    assert not [pid for pid in children if alive(pid)]
    assert large.query("SELECT trigger, state FROM runs") == [("cli", "interrupted")]
    gone = set().union(*(large.gone(name) for name in ACCOUNTS))
    assert gone and any(large.remaining(name) for name in ACCOUNTS)  # stopped mid-sweep
    outcomes = dict(
        (action.rsplit(" ", 1)[1], outcome)
        for action, outcome in large.query("SELECT action, outcome FROM audit WHERE action LIKE 'sweep % delete %'")
    )
    assert {i for i, outcome in outcomes.items() if outcome == "done"} == gone  # every deletion recorded
    assert large.fake.stats()["repeated_deletions"] == {}
