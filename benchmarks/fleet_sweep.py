"""One `python -m bot sweep` over a fleet: many accounts through STS AssumeRole, every region of each.

    python -m benchmarks.fleet_sweep --accounts 20 --snapshots 1000 --speedup 1
    python -m benchmarks.fleet_sweep --accounts 20 --snapshots 1000 --speedup 1 --deny 1

Each account (the bot's own, plus `--accounts - 1` reached by assuming
`arn:aws:iam::<id>:role/chatops` with an external ID the fake insists on)
gets, in each region, benchmarks/inventory.py's sweep inventory of
`--snapshots` snapshots of the volume policy `bench-daily`, a known share of
them expired.  The fake EC2 runs in this process, one token bucket per
(account, region, action) as EC2 has; the bot runs as its own process,
configured only by a config file listing the accounts (`[[accounts]]`) and
the policy (`accounts = ["*"]`).  `--deny N` makes the last N assumed
accounts' roles refuse AssumeRole (AccessDenied).

Reported: wall time against the floor with every (account, region) deleting
at once at its own bucket's refill rate; EC2 calls against the call floor
(every page listed once, one delete per expired snapshot) and AssumeRole
calls against one per reachable account; throttled answers; the bot's peak
RSS and exit code; per account, exactly the expected snapshots deleted (none
in a denied account) and no snapshot asked to be deleted twice; and whether
the sweep's report names each denied account as failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.fake_ec2 import ACCOUNT_ID, FakeEc2
from benchmarks.inventory import POLICY_NAME, seed_sweep_inventory, snapshot_ids, sweep_outcome, sweep_policy
from benchmarks.measure import call_floor, deletion_floor, fake_stats, machine_load, stats_delta
from benchmarks.sweep_scale import run_sweep_process
from bot.config import format_duration
from bot.domain.tags import POLICY

OWN_NAME = "own"
ROLE = "chatops"

CONFIG = """\
[aws]
account_name = "{own}"
default_region = "{region}"
regions = [{regions}]
api_rate_scale = {scale}

[store]
path = "{db}"

[[policies]]
name = "{name}"
resource = "volume"
target_tags = {{ backup = "{name}" }}
every = "1d"
keep = {keep}
max_age = "{max_age}"
on_expired = "delete"
accounts = ["*"]
"""

ACCOUNT = """
[[accounts]]
name = "{name}"
role_arn = "{role_arn}"
external_id = "{external_id}"
"""


def fleet(size: int) -> dict[str, str]:
    """Account name → 12-digit ID: the bot's own first, then `size - 1` reached through a role."""
    accounts = {OWN_NAME: ACCOUNT_ID}
    for i in range(1, size):
        accounts[f"acct{i:02d}"] = f"{100000000000 + i:012d}"
    return accounts


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{ROLE}"


def external_id(name: str) -> str:
    return f"bench-{name}"


def fleet_config(accounts: dict[str, str], regions: Sequence[str], speedup: float, db: Path) -> str:
    """The bot's config.toml: its own account, one `[[accounts]]` per other, the policy over all of them."""
    policy = sweep_policy()
    text = CONFIG.format(
        own=OWN_NAME,
        region=regions[0],
        regions=", ".join(f'"{r}"' for r in regions),
        scale=float(speedup),
        db=db,
        name=policy.name,
        keep=policy.keep,
        max_age=format_duration(policy.max_age),
    )
    for name, account_id in accounts.items():
        if name != OWN_NAME:
            text += ACCOUNT.format(name=name, role_arn=role_arn(account_id), external_id=external_id(name))
    return text


def _listed(fake: FakeEc2, account: str, regions: Sequence[str]) -> dict[str, int]:
    # What the sweep's filter (tag:chatops:policy = NAME) matches: its pages are the listing floor.
    listed = {}
    for name in regions:
        region = fake.region(name, account)
        with region.lock:
            listed[name] = sum(1 for s in region.table("snapshot").by_id.values() if s.tags.get(POLICY) == POLICY_NAME)
    return listed


def printed_report(output: Sequence[str]) -> list[str]:
    """The sweep's report as `python -m bot sweep` prints it last (the log lines before it left out)."""
    starts = [i for i, line in enumerate(output) if line.startswith("Lifecycle sweep")]
    return list(output[starts[-1] :]) if starts else []


def reported_failed(report: Sequence[str], name: str) -> bool:
    """Whether the report marks account `name` failed because its role could not be assumed."""
    return any(f"in account {name} " in line and "❌" in line for line in report) and any(
        f"could not reach account {name}:" in line for line in report
    )


class DeleteTimeline:
    """When the fleet's deletions began and ended, read from the fake's counters twice a second.

    The floor assumes every (account, region) deletes from the first second;
    whatever comes before the first deletion (the process start, the listing
    of every region of every account) adds to the wall time in full.
    """

    def __init__(self, fake: FakeEc2, every: float = 0.5):
        self._fake, self._every = fake, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="delete-timeline", daemon=True)
        self.samples: list[tuple[float, int]] = []

    def __enter__(self) -> DeleteTimeline:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self._every):
            done = self._fake.stats()["calls"].get("DeleteSnapshot", 0)
            self.samples.append((time.perf_counter() - self._started, done))

    def summary(self) -> dict:
        first = next((t for t, n in self.samples if n), None)
        total = self.samples[-1][1] if self.samples else 0
        last = next((t for t, n in self.samples if n == total), None)
        return {
            "first_delete_by_s": None if first is None else round(first, 1),  # within `every` of the moment
            "all_deletes_by_s": None if last is None else round(last, 1),
            "deleting_s": round(last - first, 1) if first is not None and last is not None else None,
        }


def benchmark(
    accounts: int = 20,
    snapshots: int = 1000,
    *,
    regions: Sequence[str] = ("us-east-1", "us-west-2"),
    expired_share: float = 0.3,
    speedup: float = 1.0,
    deny: int = 0,
    processes: str = "auto",
) -> dict:
    """Seed `snapshots` per (account, region) into a fresh fake, run one bot sweep over the fleet, and judge it."""
    if not 1 <= accounts or not 0 <= deny < accounts:
        raise ValueError("at least one account, and fewer denied roles than accounts (the bot's own has none)")
    load_before = machine_load()
    names = fleet(accounts)
    denied = list(names)[accounts - deny :]
    fake = FakeEc2(speedup=speedup)
    expected, before, floors = {}, {}, {}
    for name, account_id in names.items():
        view = fake.in_account(account_id)
        want = seed_sweep_inventory(view, regions, snapshots * len(regions), expired_share)
        before[name] = snapshot_ids(view, regions)
        expected[name] = {r: set() for r in regions} if name in denied else want
        if name != OWN_NAME:
            fake.require_external_id(role_arn(account_id), external_id(name))
        if name in denied:
            fake.deny_role(role_arn(account_id))
        else:
            images = {r: fake.count(r, "image", account=account_id) for r in regions}
            floors[name] = call_floor(_listed(fake, account_id, regions), images, want)
    calls_floor = {action: sum(f[action] for f in floors.values()) for action in next(iter(floors.values()))}
    calls_floor["AssumeRole"] = len(floors) - 1  # one per account reached through a role (refreshed within the hour)
    # Every (account, region) has its own DeleteSnapshot bucket: the floor is the slowest pair's.
    pairs = {f"{name}/{r}": ids for name, per_region in expected.items() for r, ids in per_region.items()}
    floor = deletion_floor(pairs, speedup)
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    try:
        with fake:
            stats_before = fake_stats(fake.url)
            config = fleet_config(names, regions, speedup, workdir / "bot.db")
            with DeleteTimeline(fake) as timeline:
                run = run_sweep_process(
                    fake.url, config, POLICY_NAME, workdir, tail=100_000, extra_args=("--processes", str(processes))
                )
            stats_after = fake_stats(fake.url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stats = stats_delta(stats_before, stats_after)
    outcomes = {
        name: sweep_outcome(fake.in_account(names[name]), before[name], expected[name], sample=3) for name in names
    }
    by_account = stats_after["by_account"]
    assume_role = {
        "granted": sum(a.get("assumed", 0) for a in by_account.values()),
        "refused": sum(a.get("denied", 0) for a in by_account.values()),
    }
    # A refused AssumeRole is the denied account's answer, not an extra call: the floor counts granted ones.
    calls = {**stats["calls"], "AssumeRole": assume_role["granted"]}
    at_once = floor["regions_at_once_s"]
    log_lines = len(run["report"])
    run["report"] = printed_report(run["report"])
    log_lines -= len(run["report"])
    denied_reported = {name: reported_failed(run["report"], name) for name in denied}
    ec2_in_denied = {name: sum(by_account.get(names[name], {}).get("calls", {}).values()) for name in denied}
    correct = (
        all(o["correct"] for o in outcomes.values())
        and stats["repeated_deletions"] == 0
        and all(denied_reported.values())
        and not any(ec2_in_denied.values())
        and (run["exit_code"] != 0 if denied else run["exit_code"] == 0)
    )
    return {
        "tool": f"chatops bot (python -m bot sweep --processes {processes}) over the fleet",
        "setup": {
            "accounts": accounts,
            "assumed_accounts": accounts - 1,
            "denied": denied,
            "regions": list(regions),
            "pairs": accounts * len(regions),
            "snapshots_per_pair": snapshots,
            "snapshots_in_fake": sum(len(ids) for per in before.values() for ids in per.values()),
            "expired_share": expired_share,
            "speedup": speedup,
            "cpus": os.cpu_count(),
        },
        "machine_before": load_before,
        "machine_after": machine_load(),
        "floor": {"pair_s": max(floor["per_region_s"].values(), default=0.0), "pairs_at_once_s": at_once},
        "wall_over_floor": round(run["wall_s"] / at_once, 3) if at_once else None,
        "timeline": timeline.summary(),
        "calls_floor": calls_floor,
        "calls_over_floor": {action: calls.get(action, 0) - need for action, need in calls_floor.items()},
        "assume_role": assume_role,
        "deletions_expected": sum(len(ids) for per in expected.values() for ids in per.values()),
        "denied_reported_failed": denied_reported,
        "ec2_calls_in_denied_accounts": ec2_in_denied,
        **run,
        "log_lines_before_report": log_lines,
        "fake": stats,
        "correct": correct,
        "outcome": {
            "expected": sum(o["expected"] for o in outcomes.values()),
            "deleted": sum(o["deleted"] for o in outcomes.values()),
            "missed": sum(o["missed"] for o in outcomes.values()),
            "wrongly_deleted": sum(o["wrongly_deleted"] for o in outcomes.values()),
            "accounts_not_correct": {n: o for n, o in outcomes.items() if not o["correct"]},
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fleet_sweep",
        description="Run one bot sweep over many accounts (STS AssumeRole) against the fake EC2; print a JSON report.",
    )
    parser.add_argument("--accounts", type=int, default=20, help="accounts, the bot's own included")
    parser.add_argument("--snapshots", type=int, default=1000, help="the policy's snapshots per account and region")
    parser.add_argument("--regions", default="us-east-1,us-west-2")
    parser.add_argument("--expired-share", type=float, default=0.3)
    parser.add_argument("--speedup", type=float, default=1.0, help="scale EC2's refill rates (and the bot's pacing)")
    parser.add_argument("--deny", type=int, default=0, help="this many accounts' roles refuse AssumeRole")
    parser.add_argument("--processes", default="auto", help="the sweep's --processes (auto: one per CPU core)")
    args = parser.parse_args(argv)
    report = benchmark(
        args.accounts,
        args.snapshots,
        regions=[r.strip() for r in args.regions.split(",") if r.strip()],
        expired_share=args.expired_share,
        speedup=args.speedup,
        deny=args.deny,
        processes=args.processes,
    )
    print(json.dumps(report, indent=2))
    return 0 if report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
