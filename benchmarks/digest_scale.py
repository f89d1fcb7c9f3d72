"""The daily digest at scale: time and memory to build it, and whether it fits in Slack.

    python -m benchmarks.digest_scale [--snapshots 100000] [--regions 2] [--speedup 1] [--no-throttling]
    python -m benchmarks.digest_scale --sizes 10000,100000,200000   # one fresh process per size

`--snapshots` is the total over all regions, split evenly.  The fake EC2 runs
in its own process (seeded there), so its CPU does not count against the
bot's: what is measured is the bot process, with EC2's describe rate limits on
(a burst of 100 pages, then 20 a second, per region and action; 100,000
snapshots over 2 regions is 50 pages a region, inside the burst).

The digest is built twice over the same inventory: once plain, for the wall
time and the growth of the process's max RSS, and once under tracemalloc (which
slows Python down) for the peak of traced allocations.  The rendered message
is checked with the Block Kit checker the tests use (bot/testing/slack_limits.py).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from benchmarks.fake_ec2 import FakeEc2
from bot.aws.pacing import Pacer
from bot.config import Config, with_overrides
from bot.domain.retention import PLACEHOLDER_VOLUME
from bot.domain.tags import KEEP, SOURCE, managed_tags
from bot.flows.lifecycle_flow import build_region_digest
from bot.process.runtime import SlackSettings, build_deps, settle_heap
from bot.slack.blocks import digest_message
from bot.testing.slack_limits import assert_within_limits, texts

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1")
PAGE = 1000
DESCRIBES = ("DescribeSnapshots", "DescribeImages", "DescribeVolumes", "DescribeInstances")
# Bot activity in the last 24 h, per region, recorded in the store's events table.
ACTIVITY = {"created": 40, "deleted": 12, "failed": 2}


# --- the inventory -------------------------------------------------------------------------------


def _gone_volume(region_index: int, i: int) -> str:
    return f"vol-0dead{region_index:02x}{i:010x}"


def seed_inventory(
    fake: FakeEc2, regions: Sequence[str], per_region: int, now: datetime, world: int | None = None
) -> dict[str, dict]:
    """Seed `per_region` snapshots (AMI backing ones included) and their world into every region.

    Returns, per region, the figures a correct digest reports.  The world
    (volumes, AMIs, instances) is sized for `world` snapshots a region
    (default `per_region`): AMIs are 3% of that, one backing snapshot each;
    60% of them run an instance, 10% more only have a terminated one, 5% are
    pinned; there is one live volume per 50.  Of the other snapshots: 10%
    come from volumes that are gone (orphans), some of them pinned or in
    error; 5% are DR copies whose `chatops:source` volume lives in the next
    region; 1% are still pending, 1% pinned with a live source, the rest a
    mix of policy-made (daily/weekly), user-made and unmanaged snapshots.
    """
    world = world or per_region
    live = {r: fake.seed_volumes(r, max(2, world // 50), size_gib=100) for r in regions}
    expected = {}
    for ri, region in enumerate(regions):
        other = live[regions[(ri + 1) % len(regions)]]
        expected[region] = _seed_region(fake, region, ri, per_region, world, live[region], other, now)
    return expected


def _seed_region(
    fake: FakeEc2, region: str, ri: int, per_region: int, world: int, live: list[str], other: list[str], now: datetime
) -> dict:
    n_images = min(per_region, max(3, world * 3 // 100))
    plain = per_region - n_images
    gone = [_gone_volume(ri, i) for i in range(max(2, per_region // 200))]
    e = dict.fromkeys(("snapshots", "snapshot_gib", "orphaned", "orphaned_gib", "unfinished", "errors"), 0)
    e["candidates"] = e["candidate_gib"] = 0
    user = managed_tags("U0BENCH")

    def batch(share, size, tags, pool, *, orphan=False, candidate=False, pending=False, failed=False, last=False):
        count = plain - e["snapshots"] if last else int(plain * share)
        if count <= 0:
            return
        fake.seed_snapshots(
            region,
            count,
            tags=tags,
            volumes=pool,
            size_gib=size,
            failed=failed,
            # A pending snapshot started moments ago; "newest" in the future keeps it pending all run.
            newest=now + timedelta(days=1) if pending else now - timedelta(hours=1),
            spacing=timedelta(seconds=1) if pending else timedelta(minutes=10),
            description=lambda i: f"backup {i} of a volume",
        )
        e["snapshots"] += count
        e["snapshot_gib"] += count * size
        e["unfinished"] += count * (pending or failed)
        e["errors"] += count * failed
        e["orphaned"] += count * orphan
        e["orphaned_gib"] += count * size * orphan
        e["candidates"] += count * candidate
        e["candidate_gib"] += count * size * candidate

    def policy(name):
        return lambda i: {**managed_tags("", name), "Name": f"{name} backup {i % 97}"}

    batch(0.50, 50, policy("daily"), live)
    batch(0.15, 200, policy("weekly"), live)
    # DR copies: VolumeId is EC2's placeholder on a copy; the source tag names the live volume elsewhere.
    batch(0.05, 50, lambda i: {**managed_tags("", "daily"), SOURCE: other[i % len(other)]}, [PLACEHOLDER_VOLUME])
    batch(0.10, 100, user, live)
    batch(0.07, 500, lambda i: {"Name": f"<!here> manual *{i % 13}*"}, live)
    batch(0.07, 100, policy("daily"), gone, orphan=True, candidate=True)
    batch(0.01, 1000, {**user, KEEP: "true"}, gone, orphan=True)
    batch(0.01, 8, {**user, KEEP: "true"}, live)
    batch(0.01, 20, policy("hourly"), live, pending=True)
    batch(0.01, 30, policy("hourly"), gone, orphan=True, failed=True)
    batch(0, 50, policy("daily"), live, last=True)  # the rounding remainder

    pinned = {**user, KEEP: "true"}
    images = fake.seed_images(
        region,
        n_images,
        tags=lambda i: pinned if i % 20 == 19 else user,
        snapshot_tags=user,
        newest=now - timedelta(days=2),
    )
    e["snapshots"] += n_images
    e["snapshot_gib"] += n_images * 8  # the fake's default size of a backing snapshot
    used = images[: n_images * 6 // 10]
    ghosts = images[len(used) : len(used) + n_images // 10]
    for image_id in used:
        fake.seed_instances(region, 1, image_id=image_id)
    for image_id in ghosts:
        fake.seed_instances(region, 1, image_id=image_id, state="terminated")
    unpinned = [image for n, image in enumerate(images) if n >= len(used) and n % 20 != 19]
    e["images"] = n_images
    e["unused_images"] = n_images - len(used)
    e["candidates"] += len(unpinned)
    e["candidate_gib"] += 8 * len(unpinned)
    e["volumes"] = len(live) + len(used) + len(ghosts)  # every instance has a volume of its own
    e["instances"] = len(used) + len(ghosts)
    return e


# --- the fake, in its own process ----------------------------------------------------------------


def _serve(conn, regions: Sequence[str], per_region: int, world: int, speedup: float, throttling: bool, now: float):
    fake = FakeEc2(speedup=speedup, throttling=throttling)
    started = time.perf_counter()
    expected = seed_inventory(fake, regions, per_region, datetime.fromtimestamp(now, UTC), world)
    seed_s = time.perf_counter() - started
    conn.send({"url": fake.start(), "expected": expected, "seed_s": seed_s})
    conn.recv()  # told to stop
    fake.stop()


class FakeProcess:
    """FakeEc2 seeded and served by a child process; talk to it over HTTP."""

    def __init__(
        self, regions: Sequence[str], per_region: int, world: int, speedup: float, throttling: bool, now: datetime
    ):
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded parent (pytest, boto3)
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(child, list(regions), per_region, world, speedup, throttling, now.timestamp()),
            daemon=True,
        )
        self._proc.start()
        ready = self._conn.recv()
        self.url, self.expected, self.seed_s = ready["url"], ready["expected"], ready["seed_s"]

    def _control(self, path: str) -> dict:
        method = "GET" if path == "stats" else "POST"
        req = urllib.request.Request(f"{self.url}/_fake/{path}", data=b"{}" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict:
        return self._control("stats")

    def reset(self) -> None:
        self._control("reset-stats")
        self._control("reset-buckets")

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()


# --- measuring -----------------------------------------------------------------------------------


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def slack_check(message: dict) -> dict:
    """Block count, longest text and the tests' verdict on Slack's limits."""
    problem = ""
    try:
        assert_within_limits(message)
    except AssertionError as exc:
        problem = str(exc) or "a limit is exceeded"
    all_texts = [message["text"], *texts(message)]
    return {
        "blocks": len(message["blocks"]),
        "longest_text": max(len(t) for t in all_texts),
        "fallback_text": len(message["text"]),
        "within_limits": not problem,
        "problem": problem,
    }


def measure(
    snapshots: int = 100_000,
    regions: int = 2,
    *,
    speedup: float = 1.0,
    throttling: bool = True,
    trace: bool = True,
    world: int | None = None,
    latency: float = 0.0,
) -> dict:
    """Seed a fake EC2 (in a child process), build and render the digest, and report.

    `snapshots` is the total, split evenly over `regions`; `world` (a total
    too, default `snapshots`) sizes the volumes, AMIs and instances, so the
    snapshot count can grow alone.  `latency` (seconds) is added to every
    EC2 request, as EC2's own response time (the fake answers in ~10 ms).
    Returns the
    figures as a JSON-able dict; `digest` holds the digest's totals and
    `expected` what was seeded, for a caller to compare.
    """
    names = list(REGIONS[:regions])
    per_region = snapshots // regions
    now = datetime.now(UTC)
    world_per_region = (world or snapshots) // regions
    fake = FakeProcess(names, per_region, world_per_region, speedup, throttling, now)
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.update(AWS_ENDPOINT_URL=fake.url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
            config = with_overrides(
                Config(),
                aws={"regions": tuple(names), "default_region": names[0]},
                store={"path": str(Path(tmp) / "chatops.db")},
                slack={"digest_channel": "C0DIGEST"},
            )
            return _measure(config, fake, names, per_region, speedup, throttling, trace, latency)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        fake.stop()


def _measure(
    config: Config,
    fake: FakeProcess,
    names: list[str],
    per_region: int,
    speedup: float,
    throttling: bool,
    trace: bool,
    latency: float,
) -> dict:
    session = boto3.session.Session()
    if latency:
        # Sleeping releases the GIL, as waiting on EC2's answer does.
        session.events.register("before-send.ec2", lambda **_: time.sleep(latency))
    deps = build_deps(config, SlackSettings(), session)
    try:
        for region in names:
            for kind, n in ACTIVITY.items():
                for i in range(n):
                    deps.store.record_event(region, kind, f"snap-{i:017x}", "benchmark")
        # Start up as `python -m bot` does (clients built, start-up heap frozen), then one call a region.
        started = time.perf_counter()
        deps.gateway.warm_up(config.aws.regions)
        settle_heap()
        for region in names:
            deps.gateway.availability_zones(region)
        warmup_s = time.perf_counter() - started
        deps.gateway.pacer = Pacer(scale=speedup)
        deps.gateway.calls.clear()
        fake.reset()

        rss_before = _max_rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        digest = build_region_digest(deps)
        build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu
        rss_after = _max_rss_mib()
        started = time.perf_counter()
        message = digest_message(digest)
        render_s = time.perf_counter() - started
        calls = dict(deps.gateway.calls)
        fake_stats = fake.stats()

        traced_peak = None
        if trace:
            fake.reset()
            deps.gateway.pacer = Pacer(scale=speedup)
            tracemalloc.start()
            try:
                build_region_digest(deps)
                _, traced_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        deps.worker.shutdown()
        deps.store.close()

    t = digest.totals
    got = {
        region.region: {
            name: getattr(region, name)
            for name in (
                "snapshots",
                "snapshot_gib",
                "orphaned",
                "orphaned_gib",
                "unfinished",
                "errors",
                "candidates",
                "candidate_gib",
                "images",
                "volumes",
                "unused_images",
            )
        }
        for region in digest.regions
    }
    mismatches = {
        region: {k: (got.get(region, {}).get(k), v) for k, v in exp.items() if k in got.get(region, {})}
        for region, exp in fake.expected.items()
    }
    mismatches = {
        region: {k: pair for k, pair in diff.items() if pair[0] != pair[1]} for region, diff in mismatches.items()
    }
    mismatches = {region: diff for region, diff in mismatches.items() if diff}
    floor = {
        "DescribeSnapshots": sum(math.ceil(e["snapshots"] / PAGE) for e in fake.expected.values()),
        "DescribeImages": sum(math.ceil(e["images"] / PAGE) for e in fake.expected.values()),
        "DescribeVolumes": sum(math.ceil(e["volumes"] / PAGE) for e in fake.expected.values()),
        "DescribeInstances": sum(max(1, math.ceil(e["instances"] / PAGE)) for e in fake.expected.values()),
    }
    return {
        "snapshots": t.snapshots,
        "regions": names,
        "per_region": per_region,
        "speedup": speedup,
        "throttling": throttling,
        "latency_s": latency,
        "build_s": round(build_s, 3),
        "build_cpu_s": round(build_cpu_s, 3),
        "render_s": round(render_s, 4),
        "warmup_s": round(warmup_s, 3),
        "seed_s": round(fake.seed_s, 2),
        "max_rss_before_mib": round(rss_before, 1),
        "max_rss_after_mib": round(rss_after, 1),
        "max_rss_growth_mib": round(rss_after - rss_before, 1),
        "tracemalloc_peak_mib": None if traced_peak is None else round(traced_peak / 2**20, 2),
        "calls": {a: calls.get(a, 0) for a in DESCRIBES},
        "floor": floor,
        "fake_calls": {a: fake_stats["calls"].get(a, 0) for a in DESCRIBES},
        "throttled": fake_stats["throttled"],
        "slack": slack_check(message),
        "digest": {
            "snapshots": t.snapshots,
            "snapshot_gib": t.snapshot_gib,
            "orphaned": t.orphaned,
            "candidates": t.candidates,
            "unused_images": t.unused_images,
            "top_candidates": len(digest.top_candidates),
        },
        "by_region": got,
        "expected": fake.expected,
        "mismatches": mismatches,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


# --- the report ----------------------------------------------------------------------------------


def summary(report: dict) -> str:
    s = report["slack"]
    calls = ", ".join(
        f"{a.removeprefix('Describe')} {report['calls'][a]} (floor {report['floor'][a]})" for a in DESCRIBES
    )
    lines = [
        f"digest of {report['snapshots']:,} snapshots over {len(report['regions'])} regions "
        f"({report['per_region']:,} each: {', '.join(report['regions'])}); speedup {report['speedup']:g}, "
        f"{'EC2 limits on' if report['throttling'] else 'no throttling'}, "
        f"+{1000 * report['latency_s']:g} ms a request",
        f"  build_region_digest: {report['build_s']:.2f} s wall, {report['build_cpu_s']:.2f} s CPU of the bot "
        f"process (target < 5 s); digest_message: "
        f"{1000 * report['render_s']:.1f} ms",
        f"  memory: max RSS {report['max_rss_before_mib']:.0f} → {report['max_rss_after_mib']:.0f} MiB "
        f"(+{report['max_rss_growth_mib']:.1f}); tracemalloc peak {report['tracemalloc_peak_mib']} MiB",
        f"  describe calls: {calls}; throttled by the fake: {report['throttled'] or 'none'}",
        f"  Slack: {s['blocks']} blocks (max 50), longest text {s['longest_text']:,} chars (max 3000) — "
        + ("within limits" if s["within_limits"] else f"OVER: {s['problem']}"),
        "  totals match the seeded inventory"
        if not report["mismatches"]
        else f"  MISMATCH (digest, seeded): {report['mismatches']}",
        f"  (seeding the fake took {report['seed_s']:.1f} s in its own process; client warm-up "
        f"{report['warmup_s']:.2f} s; load average {report['loadavg']} on {report['cpus']} CPUs)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.digest_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--snapshots", type=int, default=100_000, help="total over all regions")
    parser.add_argument("--regions", type=int, default=2, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--speedup", type=float, default=1.0, help="scale the fake's and the bot's refill rates")
    parser.add_argument("--no-throttling", action="store_true", help="turn the fake's token buckets off")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every EC2 request")
    parser.add_argument("--world", type=int, help="size volumes/AMIs/instances for this many snapshots in all")
    parser.add_argument("--sizes", help="comma-separated totals, each measured in a fresh process")
    args = parser.parse_args(argv)
    if args.sizes:
        return _sizes(args)
    report = measure(
        args.snapshots,
        args.regions,
        speedup=args.speedup,
        throttling=not args.no_throttling,
        trace=not args.no_trace,
        world=args.world,
        latency=args.latency,
    )
    print(summary(report))
    print(json.dumps(report, sort_keys=True))
    ok = report["slack"]["within_limits"] and not report["mismatches"]
    return 0 if ok else 1


def _sizes(args) -> int:
    status = 0
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, "-m", "benchmarks.digest_scale", "--snapshots", str(size)]
        cmd += ["--regions", str(args.regions), "--speedup", str(args.speedup)]
        cmd += ["--world", str(args.world)] if args.world else []
        cmd += ["--latency", str(args.latency)]
        cmd += ["--no-throttling"] * args.no_throttling + ["--no-trace"] * args.no_trace
        done = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        status = status or done.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
