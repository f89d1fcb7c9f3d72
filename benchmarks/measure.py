"""What every sweep benchmark measures the same way: the fake's counters, the floor, the machine's load."""

from __future__ import annotations

import json
import math
import os
import threading
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from benchmarks.fake_ec2 import LIMITS


def fake_stats(fake_url: str) -> dict:
    """The fake's counters over HTTP, so the fake may live in another process."""
    with urllib.request.urlopen(f"{fake_url}/_fake/stats", timeout=30) as answer:
        return json.load(answer)


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in sorted(after.items()) if n - before.get(k, 0)}


def stats_delta(before: dict, after: dict) -> dict:
    """What happened at the fake between two `fake_stats()` readings."""
    deletions = Counter(after["deletions"])
    deletions.subtract(before["deletions"])
    return {
        "calls": _delta(after["calls"], before["calls"]),
        "throttled": _delta(after["throttled"], before["throttled"]),
        "faults": _delta(after["faults"], before["faults"]),
        "errors": _delta(after["errors"], before["errors"]),
        "delete_requests": sum(n for n in deletions.values() if n > 0),
        "repeated_deletions": sum(1 for n in deletions.values() if n > 1),
    }


def machine_load() -> dict:
    """Load average and memory stall share: other work on a shared machine skews wall times."""
    load = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    try:
        first = Path("/proc/pressure/memory").read_text().splitlines()[0]
        load["memory_pressure_some_avg300"] = float(first.split("avg300=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return load


def cpu_steal_s() -> float | None:
    """Seconds the hypervisor gave this machine's vCPUs to someone else so far (all CPUs), from /proc/stat.

    On a shared virtual machine a run's wall and CPU times grow with the steal
    during it: read it before and after a run and report the difference.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def tree_rss_kib(pid: int) -> dict[int, int]:
    """The resident memory (KiB) of process `pid` and each of its descendants now (empty once it is gone)."""
    rss, todo = {}, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            rss[current] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue  # exited meanwhile, or a kernel without the children file
    return rss


class TreeMemory:
    """The peak of a process tree's summed resident memory, sampled every `every` seconds until `stop()`.

    A sweep spread over child processes has no single peak RSS: what it costs the
    machine is the sum of its processes' memory at the same moment.
    """

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak_mib, self.processes = pid, every, 0.0, 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tree-rss", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            rss = tree_rss_kib(self.pid)
            self.peak_mib = max(self.peak_mib, sum(rss.values()) / 1024)
            self.processes = max(self.processes, len(rss))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def deletion_floor(expected: Mapping[str, set[str]], speedup: float) -> dict[str, float]:
    """The least time EC2's DeleteSnapshot bucket allows: per region, and for regions in turn or at once."""
    limit = LIMITS["DeleteSnapshot"]
    per_region = {r: max(0, len(ids) - limit.burst) / (limit.rate * speedup) for r, ids in expected.items()}
    return {
        "per_region_s": {r: round(s, 1) for r, s in per_region.items()},
        "regions_in_turn_s": round(sum(per_region.values()), 1),
        "regions_at_once_s": round(max(per_region.values(), default=0.0), 1),
    }


def call_floor(listed: Mapping[str, int], images: Mapping[str, int], expected: Mapping[str, set[str]]) -> dict:
    """The fewest EC2 calls a sweep can make: every page of its listing once, one delete per expired item.

    `listed` is how many snapshots the sweep's filter matches per region,
    `images` how many own AMIs each region has (listed to know which
    snapshots back one); a page holds at most 1000 items.
    """
    regions = set(listed) | set(images) | set(expected)
    return {
        "DescribeSnapshots": sum(max(1, math.ceil(listed.get(r, 0) / 1000)) for r in regions),
        "DescribeImages": sum(max(1, math.ceil(images.get(r, 0) / 1000)) for r in regions),
        "DeleteSnapshot": sum(len(expected.get(r, ())) for r in regions),
    }
