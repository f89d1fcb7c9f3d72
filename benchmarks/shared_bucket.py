"""The bot's sweep when another client of the account spends part of every EC2 bucket.

    python -m benchmarks.shared_bucket --snapshots 6000 --speedup 1 --competitor-share 0.4

EC2's buckets are per account, region and action, shared with the console,
the CLI, DLM and every script.  Three runs of `python -m bot sweep` (each its
own process, as benchmarks/sweep_scale.py runs it) on the same inventory:

* `shared`: another client spends `--competitor-share` of every bucket's refill;
  the pacer learns what is left (the default);
* `shared_not_learning`: the same, with `aws.pacer_learning = false` (the pacer
  as it was: paced to the published rates, throttles left to botocore);
* `to_itself`: the bucket to itself, learning on (it must not cost anything).

Reported per run: wall against the floor left to us (the deletion floor at
the refill the competitor leaves), EC2 calls against the floor's calls,
throttled answers, and whether exactly the expected snapshots went.  Targets
(issue 11): shared: wall ≤ 1.1× the floor left, calls ≤ 1.1× the floor's;
to itself: at the floor, no throttle.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from benchmarks import sweep_scale

WALL_TARGET = 1.1
CALLS_TARGET = 1.1


def summary(report: dict) -> dict:
    """The figures this benchmark is about, from a sweep_scale report."""
    floor_calls = sum(report["calls_floor"].values())
    calls = floor_calls + report["calls_total_over_floor"]
    return {
        "wall_s": report["wall_s"],
        "floor_left_s": report["floor"]["regions_at_once_s"],
        "wall_over_floor": report["wall_over_floor"],
        "calls": calls,
        "floor_calls": floor_calls,
        "calls_over_floor": round(calls / floor_calls, 3) if floor_calls else None,
        "throttled": sum(report["fake"]["throttled"].values()),
        "throttled_share": round(sum(report["fake"]["throttled"].values()) / calls, 3) if calls else None,
        "correct": report["correct"],
        "exit_code": report["exit_code"],
    }


def benchmark(
    snapshots: int,
    *,
    competitor_share: float = 0.4,
    speedup: float = 1.0,
    runs: Sequence[str] | None = None,
    **scenario,
) -> dict:
    """Run the sweep shared with a competitor (learning on, then off) and with the bucket to itself."""
    cases = {
        "shared": {"competitor_share": competitor_share, "learning": True},
        "shared_not_learning": {"competitor_share": competitor_share, "learning": False},
        "to_itself": {"competitor_share": 0.0, "learning": True},
    }
    report: dict = {"runs": {}, "summary": {}}
    for name, case in cases.items():
        if runs is not None and name not in runs:
            continue
        full = sweep_scale.benchmark(snapshots, speedup=speedup, **scenario, **case)
        report["runs"][name] = full
        report["summary"][name] = summary(full)
    report["targets_met"] = targets_met(report["summary"])
    return report


def targets_met(summaries: dict) -> dict:
    met = {}
    if "shared" in summaries:
        s = summaries["shared"]
        met["shared"] = bool(
            s["correct"]
            and s["wall_over_floor"] is not None
            and s["wall_over_floor"] <= WALL_TARGET
            and s["calls_over_floor"] <= CALLS_TARGET
        )
    if "to_itself" in summaries:
        s = summaries["to_itself"]
        met["to_itself"] = bool(s["correct"] and s["throttled"] == 0 and s["calls"] == s["floor_calls"])
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shared_bucket",
        description="The bot's sweep with another client spending a share of every EC2 bucket; prints JSON.",
    )
    parser.add_argument("--snapshots", type=int, default=6000, help="the policy's snapshots, over all regions")
    parser.add_argument("--regions", default="us-east-1,us-west-2")
    parser.add_argument("--speedup", type=float, default=1.0, help="scale EC2's refill rates (and the bot's pacing)")
    parser.add_argument(
        "--competitor-share", type=float, default=0.4, help="share of every refill another client spends"
    )
    parser.add_argument("--runs", default="shared,shared_not_learning,to_itself", help="which runs, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="print every run's full sweep_scale report too")
    args = parser.parse_args(argv)
    report = benchmark(
        args.snapshots,
        competitor_share=args.competitor_share,
        speedup=args.speedup,
        runs=[r.strip() for r in args.runs.split(",") if r.strip()],
        regions=[r.strip() for r in args.regions.split(",") if r.strip()],
        seed=args.seed,
    )
    if not args.full:
        report["runs"] = {
            name: {k: run[k] for k in ("setup", "machine_before", "machine_after", "floor", "calls_floor", "fake")}
            for name, run in report["runs"].items()
        }
    print(json.dumps(report, indent=2))
    return 0 if all(report["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
