"""The bot's retention sweep at scale, against the EC2 API floor (and, optionally, Cloud Custodian).

    python -m benchmarks.sweep_scale --snapshots 10000 --speedup 1
    python -m benchmarks.sweep_scale --snapshots 10000 --speedup 1 --throttle-share 0.3 --error-share 0.02
    python -m benchmarks.sweep_scale --snapshots 10000 --throttle-share 0.3 --error-share 0.02 --against-custodian
    python -m benchmarks.sweep_scale --snapshots 6000 --competitor-share 0.4

The inventory is benchmarks/inventory.py's: N snapshots of the volume policy
`bench-daily` (keep 2, max_age 30d, on_expired = "delete") over two regions,
a known share of them expired, beside snapshots a sweep must spare.  The fake
EC2 runs in this process with EC2's token buckets; the bot runs as
`python -m bot sweep --policy bench-daily`, its own process configured only
by a config file and its environment, exactly as an operator would run it
(`aws.api_rate_scale` is set to `--speedup`, so the bot paces itself to the
sped-up buckets as it would to an account with raised limits).

Reported: wall time against the deletion floor, every EC2 call by action
against the call floor, throttled answers, injected faults, delete requests
per snapshot (repeats), the bot process's peak RSS, its exit code and its
report, and whether exactly the expected snapshots went.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.fake_ec2 import FakeEc2
from benchmarks.inventory import (
    POLICY_NAME,
    add_scenario_arguments,
    scenario_options,
    seed_scenario,
    sweep_outcome,
    sweep_policy,
)
from benchmarks.measure import (
    TreeMemory,
    call_floor,
    cpu_steal_s,
    deletion_floor,
    fake_stats,
    machine_load,
    stats_delta,
)
from bot.config import format_duration
from bot.domain.tags import POLICY

CONFIG = """\
[aws]
default_region = "{region}"
regions = [{regions}]
api_rate_scale = {scale}
pacer_learning = {learning}

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
"""


def bot_env(fake_url: str, workdir: Path) -> dict[str, str]:
    """The sweep's environment: the fake's URL and throwaway credentials, nothing of the caller's AWS or Slack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "CHATOPS_"))}
    env.update(
        AWS_ENDPOINT_URL=fake_url,
        AWS_ACCESS_KEY_ID="AKIAFAKEFAKEFAKEFAKE",
        AWS_SECRET_ACCESS_KEY="fake-secret",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(workdir / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "aws-credentials"),
        CHATOPS_CONFIG=str(workdir / "config.toml"),
        LOG_LEVEL="WARNING",
    )
    return env


def run_bot_sweep(fake_url: str, regions: Sequence[str], speedup: float, workdir: Path, learning: bool = True) -> dict:
    """`python -m bot sweep --policy bench-daily` against the fake; wall time, exit code, peak RSS, output."""
    policy = sweep_policy()
    config = CONFIG.format(
        region=regions[0],
        regions=", ".join(f'"{r}"' for r in regions),
        scale=float(speedup),
        learning=str(learning).lower(),
        db=workdir / "bot.db",
        name=policy.name,
        keep=policy.keep,
        max_age=format_duration(policy.max_age),
    )
    return run_sweep_process(fake_url, config, policy.name, workdir)


def run_sweep_process(
    fake_url: str, config: str, policy: str, workdir: Path, tail: int = 40, extra_args: Sequence[str] = ()
) -> dict:
    """`python -m bot sweep --policy POLICY` configured by `config` (TOML) against the fake; the last `tail` lines.

    Measured: wall, the CPU of the sweep and every process it started, the peak
    RSS of its biggest process and the peak of all its processes together, the
    CPU this process spent meanwhile (the fake EC2 serving it), and the steal.
    """
    (workdir / "config.toml").write_text(config)
    command = [sys.executable, "-m", "bot", "sweep", "--policy", policy, *extra_args]
    out_path = workdir / "sweep.out"
    own_before, steal_before = resource.getrusage(resource.RUSAGE_SELF), cpu_steal_s()
    with out_path.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=bot_env(fake_url, workdir), stdout=out, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid)
        # wait4 gives this child's resource usage: its CPU with that of the children it waited for,
        # and the peak RSS of the biggest one of them.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        memory.stop()
    own_after, steal_after = resource.getrusage(resource.RUSAGE_SELF), cpu_steal_s()
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = out_path.read_text()
    return {
        "command": " ".join(["python", *command[1:]]),
        "exit_code": proc.returncode,
        "wall_s": round(wall, 2),
        "processes": memory.processes,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "peak_rss_all_processes_mib": round(max(memory.peak_mib, usage.ru_maxrss / 1024), 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "fake_cpu_s": round(own_after.ru_utime + own_after.ru_stime - own_before.ru_utime - own_before.ru_stime, 2),
        "steal_s": None if steal_before is None else round(steal_after - steal_before, 1),
        "report": output.splitlines()[-tail:],
    }


def _listed(fake: FakeEc2, regions: Sequence[str]) -> dict[str, int]:
    # What the sweep's filter (tag:chatops:policy = NAME) matches: its pages are the listing floor.
    listed = {}
    for name in regions:
        region = fake.region(name)
        with region.lock:
            listed[name] = sum(1 for s in region.table("snapshot").by_id.values() if s.tags.get(POLICY) == POLICY_NAME)
    return listed


def benchmark(snapshots: int, *, learning: bool = True, **scenario) -> dict:
    """Seed the sweep inventory into a fresh fake, run the bot's sweep on it, and judge the result.

    `scenario` takes `inventory.seed_scenario`'s options (regions, faults, speedup, competitor_share, …);
    `learning=False` sets `aws.pacer_learning = false` (the pacer as it was before it learned).
    With a competitor, the floor is the deletion floor at the rate it leaves.
    """
    load_before = machine_load()
    seeded = seed_scenario(snapshots, **scenario)
    fake, expected, regions = seeded.fake, seeded.expected, seeded.setup["regions"]
    speedup = seeded.setup["speedup"]
    floor_calls = call_floor(_listed(fake, regions), {r: fake.count(r, "image") for r in regions}, expected)
    workdir = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        with fake:
            stats_before = fake_stats(fake.url)
            run = run_bot_sweep(fake.url, regions, speedup, workdir, learning)
            stats = stats_delta(stats_before, fake_stats(fake.url))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    outcome = sweep_outcome(fake, seeded.before, expected)
    calls = stats["calls"]
    floor = deletion_floor(expected, speedup * (1 - seeded.setup["competitor_share"]))
    at_once = floor["regions_at_once_s"]
    return {
        "tool": "chatops bot (python -m bot sweep)",
        "setup": {**seeded.setup, "pacer_learning": learning},
        "machine_before": load_before,
        "machine_after": machine_load(),
        "floor": floor,
        "wall_over_floor": round(run["wall_s"] / at_once, 3) if at_once else None,
        # 1.0: the slowest region deleted at the bucket's refill rate.
        "delete_rate_share": round(at_once / run["wall_s"], 3) if at_once and run["wall_s"] else None,
        "calls_floor": floor_calls,
        "calls_over_floor": {action: calls.get(action, 0) - need for action, need in floor_calls.items()},
        "calls_total_over_floor": sum(v for k, v in calls.items() if k in floor_calls) - sum(floor_calls.values()),
        "deletions_expected": sum(len(ids) for ids in expected.values()),
        **run,
        "fake": stats,
        "correct": outcome["correct"] and run["exit_code"] == 0,
        "outcome": outcome,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sweep_scale",
        description="Run the bot's retention sweep against the fake EC2 at scale and print a JSON report.",
    )
    add_scenario_arguments(parser, snapshots=10_000, speedup_help="scale EC2's refill rates (and the bot's pacing)")
    parser.add_argument("--against-custodian", action="store_true", help="then Cloud Custodian, one process per region")
    parser.add_argument(
        "--no-pacer-learning", action="store_true", help="aws.pacer_learning = false (the pacer before issue 11)"
    )
    args = parser.parse_args(argv)
    options = scenario_options(args)
    report = {"bot": benchmark(args.snapshots, learning=not args.no_pacer_learning, **options)}
    if args.against_custodian:
        from benchmarks import custodian

        report["custodian"] = custodian.benchmark(args.snapshots, parallel=True, **options)
        bot_wall, c7n_wall = report["bot"]["wall_s"], report["custodian"]["wall_s"]
        report["custodian_wall_over_bot"] = round(c7n_wall / bot_wall, 2) if bot_wall else None
    print(json.dumps(report, indent=2))
    return 0 if all(r["correct"] for r in report.values() if isinstance(r, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
