"""Cloud Custodian's age-based snapshot cleanup against the fake EC2, on the sweep benchmark's inventory.

    python -m benchmarks.custodian --snapshots 2000 --throttle-share 0.3 --error-share 0.02 --speedup 1

Custodian (`c7n`) lives in its own virtual environment, benchmarks/.c7n-venv,
made on first use with `pip install c7n`: it is a point of comparison, never
a dependency of the bot.  It reaches the fake through `AWS_ENDPOINT_URL`,
which botocore honours for every client it makes, so c7n runs unmodified (no
sitecustomize, no patched endpoints).  It runs with botocore's defaults, as a
stock install does: legacy retry mode, 5 attempts a call, on top of c7n's own
retry of `RequestLimitExceeded` around each DeleteSnapshot.

The policy is the age-only equivalent of our retention (see
benchmarks/inventory.py for why the inventory makes them agree): snapshots
tagged `chatops:policy=NAME`, `completed`, older than `max_age`, not tagged
`chatops:keep=true`; action `delete`, which skips snapshots backing an AMI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.inventory import add_scenario_arguments, scenario_options, seed_scenario, sweep_outcome, sweep_policy
from benchmarks.measure import deletion_floor, fake_stats, machine_load, stats_delta
from bot.config import Policy
from bot.domain.tags import KEEP, POLICY

VENV = Path(__file__).resolve().parent / ".c7n-venv"


def ensure_c7n(venv: Path = VENV, requirement: str = "c7n") -> Path:
    """The python of a virtual environment holding Cloud Custodian, created with pip the first time."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "custodian").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", requirement], check=True)
    return python


def c7n_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "from c7n.version import version; print(version)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _q(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value)


def policy_yaml(policy: Policy) -> str:
    """A Custodian policy file that deletes what `policy`'s retention expires, by age alone.

    Custodian cannot keep "the newest N per source", so this is equivalent
    only on an inventory where that window never saves an old snapshot (as
    `seed_sweep_inventory` builds).  `delete` skips AMI-backing snapshots by
    default; c7n 0.9.x reads that switch from a key named `value`, so the
    documented `skip-ami-snapshots` is spelled out here for the reader only.
    """
    if policy.max_age is None:
        raise ValueError("Custodian's equivalent needs an age: the policy has no max_age")
    days = policy.max_age.total_seconds() / 86400
    days_text = f"{days:g}"
    return (
        "policies:\n"
        f"  - name: {_q(f'chatops-{policy.name}-expired')}\n"
        "    resource: ebs-snapshot\n"
        f"    description: {_q(f'Delete snapshots of policy {policy.name} older than {days_text} days')}\n"
        "    filters:\n"
        f"      - {_q(f'tag:{POLICY}')}: {_q(policy.name)}\n"
        "      - State: completed\n"
        "      - type: age\n"
        f"        days: {days_text}\n"
        "        op: gt\n"
        "      - not:\n"
        "          - type: value\n"
        f"            key: {_q(f'tag:{KEEP}')}\n"
        '            value: "true"\n'
        "            value_type: normalize\n"
        "    actions:\n"
        "      - type: delete\n"
        "        skip-ami-snapshots: true\n"
    )


_REGION_LINE = re.compile(r"policy:\S+ resource:\S+ region:(\S+) count:(\d+)")
_DELETING = re.compile(r"Deleting (\d+) snapshots, auto-filtered (\d+) ami-snapshots")
_ACTION = re.compile(r"action:\S+ resources:(\d+) execution_time")


def _parse_log(text: str) -> dict[str, dict]:
    """Per region: what c7n matched, skipped as AMI-backing, and the delete batches it abandoned."""
    found: dict[str, dict] = {}
    current: dict | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if m := _REGION_LINE.search(line):
            current = found.setdefault(
                m.group(1), {"matched": 0, "to_delete": 0, "ami_skipped": 0, "failed_sets": 0, "set_errors": []}
            )
            current["matched"] = int(m.group(2))
        elif current is None:
            continue
        elif m := _DELETING.search(line):
            current["to_delete"], current["ami_skipped"] = int(m.group(1)), int(m.group(2))
        elif "Exception deleting snapshot set" in line:
            # c7n deletes in sets of 50 and drops the rest of a set at the first error it does not
            # retry; the exception is logged on the next line, and the run still exits 0.
            current["failed_sets"] += 1
            if number + 1 < len(lines):
                current["set_errors"].append(lines[number + 1].strip())
    return found


def _custodian_env(fake_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "C7N_"))}
    env.update(
        AWS_ENDPOINT_URL=fake_url,
        AWS_ACCESS_KEY_ID="AKIAFAKEFAKEFAKEFAKE",
        AWS_SECRET_ACCESS_KEY="fake-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        HOME=str(home),  # c7n's resource cache and anything else it writes stay in the work dir
    )
    return env


def _run_one(custodian: Path, policy_file: Path, regions: Sequence[str], out: Path, env: dict) -> dict:
    command = [str(custodian), "run", "--cache-period", "0", "-s", str(out)]
    for region in regions:
        command += ["-r", region]
    command.append(str(policy_file))
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    log = done.stdout + done.stderr
    shown = ["custodian", "run", "--cache-period", "0", "-s", out.name, *command[6:-1], policy_file.name]
    return {
        "command": " ".join(shown),
        "exit_code": done.returncode,
        "wall_s": took,
        "regions": _parse_log(log),
        "log_tail": log.splitlines()[-20:],
        "problems": [line for line in log.splitlines() if ":WARNING " in line or ":ERROR " in line][:20],
    }


def run_custodian(
    fake_url: str,
    regions: Sequence[str],
    policy: Policy,
    *,
    parallel: bool = False,
    python: Path | None = None,
    workdir: Path | None = None,
) -> dict:
    """Run Custodian's equivalent of `policy`'s cleanup against the fake at `fake_url`; report what it cost.

    One `custodian run` with every region (c7n then runs the regions one
    after another), or with `parallel` one process per region at once.
    Reads the fake's counters over HTTP before and after, so the fake may
    live in another process.  Returns JSON-able data: wall time, exit codes,
    what c7n says it matched and skipped per region, and the fake's calls,
    throttles, faults, delete requests and repeated deletions during the run.
    Correctness is the caller's to judge (see `inventory.sweep_outcome`).
    """
    python = python or ensure_c7n()
    custodian = python.parent / "custodian"
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="c7n-bench-")) if own_dir else Path(workdir)
    try:
        work.mkdir(parents=True, exist_ok=True)
        policy_file = work / "policy.yml"
        policy_file.write_text(policy_yaml(policy))
        env = _custodian_env(fake_url, work)
        before = fake_stats(fake_url)
        started = time.perf_counter()
        if parallel:
            with ThreadPoolExecutor(len(regions)) as pool:
                runs = list(pool.map(lambda r: _run_one(custodian, policy_file, [r], work / f"out-{r}", env), regions))
        else:
            runs = [_run_one(custodian, policy_file, regions, work / "out", env)]
        wall = time.perf_counter() - started
        after = fake_stats(fake_url)
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
    per_region: dict[str, dict] = {}
    for run in runs:
        per_region.update(run["regions"])
    return {
        "mode": "one process per region, at once" if parallel else "one process, regions in turn",
        "wall_s": round(wall, 2),
        "exit_codes": [run["exit_code"] for run in runs],
        "process_wall_s": [round(run["wall_s"], 2) for run in runs],
        "regions": per_region,
        "fake": stats_delta(before, after),
        "commands": [run["command"] for run in runs],
        "log_tail": [line for run in runs for line in run["log_tail"]] if any(r["exit_code"] for r in runs) else [],
        "log_problems": [line for run in runs for line in run["problems"]],
    }


def benchmark(snapshots: int, *, parallel: bool = False, reruns: int = 0, **scenario) -> dict:
    """Seed the sweep inventory into a fresh fake, run Custodian on it, and judge the result.

    `scenario` takes `inventory.seed_scenario`'s options (regions, faults,
    speedup, outage, …).  `reruns` runs Custodian again, up to that many
    times, while snapshots it should have deleted remain (what an operator
    would have to do: c7n exits 0 regardless), so `wall_to_correct_s` is the
    time to a correct result.
    """
    python = ensure_c7n()
    load_before = machine_load()
    policy = sweep_policy()
    seeded = seed_scenario(snapshots, **scenario)
    fake, regions = seeded.fake, seeded.setup["regions"]
    runs: list[dict] = []
    with fake:
        for _ in range(1 + max(0, reruns)):
            runs.append(run_custodian(fake.url, regions, policy, parallel=parallel, python=python))
            outcome = sweep_outcome(fake, seeded.before, seeded.expected)
            runs[-1]["correct_after"] = outcome["correct"]
            runs[-1]["missed_after"] = outcome["missed"]
            if outcome["correct"] or outcome["wrongly_deleted"]:
                break
    run, later = runs[0], runs[1:]
    return {
        "tool": f"Cloud Custodian (c7n {c7n_version(python)})",
        "setup": seeded.setup,
        "machine_before": load_before,
        "machine_after": machine_load(),
        "floor": deletion_floor(seeded.expected, seeded.setup["speedup"]),
        **run,
        "reruns": [
            {k: r[k] for k in ("wall_s", "exit_codes", "regions", "fake", "correct_after", "missed_after")}
            for r in later
        ],
        "wall_to_correct_s": round(sum(r["wall_s"] for r in runs), 2) if outcome["correct"] else None,
        "correct": outcome["correct"],
        "outcome": outcome,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.custodian",
        description="Run Cloud Custodian's age-based snapshot cleanup against the fake EC2 and print a JSON report.",
    )
    add_scenario_arguments(parser, snapshots=2000, speedup_help="scale EC2's refill rates (not c7n's sleeps)")
    parser.add_argument("--reruns", type=int, default=0, help="run c7n again while expired snapshots remain")
    parser.add_argument("--parallel", action="store_true", help="one custodian process per region, at once")
    args = parser.parse_args(argv)
    report = benchmark(args.snapshots, parallel=args.parallel, reruns=args.reruns, **scenario_options(args))
    print(json.dumps(report, indent=2))
    return 0 if report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
