"""How the fake EC2 itself holds up at scale: seed time, memory, page cost.

    python -m benchmarks.fake_scale [--snapshots 100000] [--regions 2]

Measures the fake, not the bot: throttling is off so the numbers are the
fake's own overhead (what a benchmark of the bot pays on top of EC2's limits).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import boto3
import botocore.config

from benchmarks.fake_ec2 import FakeEc2


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_scale")
    parser.add_argument("--snapshots", type=int, default=100_000, help="per region")
    parser.add_argument("--regions", type=int, default=2)
    parser.add_argument("--skip-throttled", action="store_true", help="skip the throttled-delete runs (~45 s)")
    args = parser.parse_args()
    regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"][: args.regions]

    fake = FakeEc2(throttling=False)
    tracemalloc.start()
    started = time.perf_counter()
    for region in regions:
        # A realistic mix: most snapshots carry the bot's managed tags, 1% a rare policy.
        fake.seed_snapshots(
            region,
            args.snapshots,
            tags=lambda i: {"managed-by": "chatops", "policy": "audit" if i % 100 == 0 else "daily"},
            volumes=args.snapshots // 30,
        )
    seed_s = time.perf_counter() - started
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"seeded {args.snapshots:,} snapshots × {len(regions)} regions in {seed_s:.2f} s")
    print(f"inventory memory (tracemalloc): {traced / 2**20:.0f} MiB; process max RSS {_rss_mib():.0f} MiB")

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with fake:
        ec2 = boto3.session.Session().client(
            "ec2",
            region_name=regions[0],
            endpoint_url=fake.url,
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )
        for label, filters in [
            ("all, OwnerIds=self", []),
            ("tag:policy=audit (1%)", [{"Name": "tag:policy", "Values": ["audit"]}]),
            ("tag:managed-by=chatops (100%)", [{"Name": "tag:managed-by", "Values": ["chatops"]}]),
        ]:
            fake.reset_stats()
            started = time.perf_counter()
            count = 0
            for page in ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=filters, PaginationConfig={"PageSize": 1000}
            ):
                count += len(page["Snapshots"])
            took = time.perf_counter() - started
            calls = fake.stats()["calls"]["DescribeSnapshots"]
            print(f"list {label}: {count:,} in {calls} pages, {took:.2f} s ({1000 * took / calls:.0f} ms a page)")

        fake.reset_stats()
        victims = sorted(fake.ids(regions[0]))[:2000]
        started = time.perf_counter()
        for snap in victims:
            ec2.delete_snapshot(SnapshotId=snap)
        took = time.perf_counter() - started
        print(f"delete 2,000 sequentially: {took:.2f} s ({len(victims) / took:.0f}/s, unthrottled)")

    if not args.skip_throttled:
        for threads in (1, 8):
            throttled_deletes(threads)


def throttled_deletes(threads: int, n: int = 1100, speedup: float = 10) -> None:
    """Delete n snapshots through botocore standard retries against the DeleteSnapshot bucket."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    import botocore.exceptions

    with FakeEc2(speedup=speedup) as fake:
        snaps = fake.seed_snapshots("us-east-1", n)
        ec2 = boto3.session.Session().client(
            "ec2",
            region_name="us-east-1",
            endpoint_url=fake.url,
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=20),
        )

        def delete(snap: str) -> str:
            try:
                ec2.delete_snapshot(SnapshotId=snap)
                return "ok"
            except botocore.exceptions.ClientError as exc:
                return exc.response["Error"]["Code"]

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            outcomes = Counter(pool.map(delete, snaps))
        took = time.perf_counter() - started
        stats = fake.stats()
    limit = fake.limits["DeleteSnapshot"]
    floor = (n - limit.burst) / (limit.rate * speedup)
    print(
        f"delete {n:,} at speedup {speedup:g}, {threads} thread(s): {dict(outcomes)} in {took:.1f} s "
        f"(floor {floor:.0f} s); {stats['calls']['DeleteSnapshot']:,} calls, "
        f"{stats['throttled'].get('DeleteSnapshot', 0):,} throttled"
    )


if __name__ == "__main__":
    main()
