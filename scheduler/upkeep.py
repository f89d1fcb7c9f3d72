"""Store upkeep jobs: settle what dead processes left behind, and prune what is past its retention."""

from __future__ import annotations

import dataclasses
import logging

from bot.flows.approval_flow import reconcile_unfinished
from bot.flows.deps import Deps

log = logging.getLogger(__name__)


def reclaim_orphans(deps: Deps) -> int:
    """Scheduler job: close the runs and settle the approvals of processes that died while we run.

    Start-up does the same once; this catches a replica or a CLI sweep that
    dies later (its heartbeat stops, or its PID is gone).
    """
    runs = deps.store.interrupt_orphaned_runs()
    approvals = reconcile_unfinished(deps)
    if runs or approvals:
        log.warning(
            "a process sharing the store died: %d run(s) interrupted, %d request(s) reconciled", runs, approvals
        )
    return runs + approvals


def prune_store(deps: Deps) -> dict[str, int]:
    """Scheduler job: delete what is older than `store.retention` (never what is still going); audited."""
    retention = deps.config.store.retention
    counts = deps.store.prune(**{f.name: getattr(retention, f.name) for f in dataclasses.fields(retention)})
    detail = ", ".join(f"{n} {table}" for table, n in counts.items())
    deps.store.audit("", "", "store prune", "ok", detail)
    log.info("store pruned: %s", detail)
    return counts
