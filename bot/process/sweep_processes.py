"""A fleet sweep over several processes: `python -m bot sweep` hands each child process a share of the accounts.

Why: one process runs Python on one core at a time (the GIL), and a fleet
asks for a lot of it: at the EC2 floor, 20 accounts × 2 regions is 200
DeleteSnapshot requests a second, each signed, sent and parsed by botocore,
after 40 listings of thousands of snapshots to parse and decide.  EC2's
buckets are per account and region, so accounts split over processes
without sharing a bucket, and the CPU they need adds up across cores.

How: the parent holds the run's lease and record (`lifecycle_flow.run_policy`
with a `fan_out`), starts one child per share (multiprocessing's spawn: a
fresh interpreter, nothing inherited but what it is given), and merges the
children's reports in account order.  Each child loads the same config and
environment, builds its own deps (store, gateways, pacers) and calls
`lifecycle_flow.run_accounts` or `preview_accounts` for its accounts: the
same decisions, re-checks at the moment of deletion, audit rows and events
as in one process, written to the same SQLite store (WAL), and the same
approval requests posted to Slack; the parent posts the one sweep report.

Failures: a child that dies without a report (killed, out of memory) makes
each of its accounts report an error, so the run fails and says so; the
other children carry on.  SIGTERM or Ctrl-C to the parent is passed on to
the children, which stop between two deletions and report what they did.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.config import Config, Policy, load_config
from bot.domain.sweep_report import PolicyReport
from bot.flows import lifecycle_flow
from bot.process.logs import configure_logging
from bot.process.runtime import SlackSettings, build_deps, settle_heap, stop_on_signals

log = logging.getLogger(__name__)

# Each child is a whole interpreter (about 70 MiB with boto3 loaded): more
# processes than cores only add memory.
AUTO = "auto"

# How often the parent looks whether it was asked to stop while its children run.
STOP_POLL_SECONDS = 0.2


def process_count(requested: str | int, accounts: int, cpus: int | None = None) -> int:
    """How many processes a sweep over `accounts` accounts uses: 1 means it runs in this one.

    `auto` is one per core, never more than there are accounts; a number is
    taken as it is (capped at the accounts).
    """
    if requested == AUTO:
        wanted = cpus if cpus is not None else usable_cpus()
    else:
        wanted = int(requested)
        if wanted < 1:
            raise ValueError("processes must be at least 1")
    return max(1, min(wanted, accounts))


def usable_cpus() -> int:
    """The cores this process may run on (a container's cpuset, a `taskset`), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def shares(accounts: Sequence[str], processes: int) -> list[list[str]]:
    """The accounts dealt round-robin over `processes` shares (none empty), so each share is about as big."""
    count = max(1, min(processes, len(accounts)))
    return [list(accounts[i::count]) for i in range(count)]


@dataclass(frozen=True)
class ChildResult:
    """What a child sends back: its reports, or why it could not produce them."""

    reports: tuple[PolicyReport, ...] = ()
    error: str = ""


def _child(conn, env: Mapping[str, str], policy_name: str, accounts: list[str], dry_run: bool) -> None:
    """A child process: run the policy in `accounts` and send the reports to the parent through `conn`."""
    configure_logging(env.get("LOG_LEVEL") or "INFO")
    deps = None
    try:
        config = load_config(env=env)
        policy = config.policy(policy_name)
        # Slack as the parent has it: a child opens its accounts' approval requests (`on_expired =
        # "approve"`, or over `max_delete`); the parent posts the one sweep report.
        deps = build_deps(config, SlackSettings.from_env(env))
        settle_heap()
        restore = stop_on_signals(deps.stopping)
        try:
            if dry_run:
                reports = lifecycle_flow.preview_accounts(deps, policy, accounts)
            else:
                reports = lifecycle_flow.run_accounts(deps, policy, accounts, create=False)
        finally:
            restore()
        conn.send(ChildResult(tuple(reports)))
    except BaseException as exc:  # noqa: BLE001 - whatever it was, the parent must hear of it
        log.exception("the sweep of %s in accounts %s failed", policy_name, ", ".join(accounts))
        conn.send(ChildResult(error=f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        if deps is not None:
            deps.worker.shutdown()
            deps.store.close()


class ProcessFanOut:
    """`lifecycle_flow.FanOut` over child processes: each share of the accounts in its own interpreter."""

    def __init__(
        self, env: Mapping[str, str], config: Config, processes: int, dry_run: bool, stopping: threading.Event
    ):
        self.env = dict(env)
        self.config = config
        self.processes = processes
        self.dry_run = dry_run
        self.stopping = stopping
        self._context = multiprocessing.get_context("spawn")

    def __call__(self, policy: Policy, accounts: Sequence[str]) -> list[PolicyReport]:
        children = []
        for share in shares(accounts, self.processes):
            receive, send = self._context.Pipe(duplex=False)
            child = self._context.Process(
                target=_child,
                args=(send, self.env, policy.name, share, self.dry_run),
                name=f"sweep {policy.name} in {', '.join(share)}",
            )
            child.start()
            send.close()  # the child holds the sending end: its death closes the pipe
            children.append((share, child, receive))
        log.info(
            "sweep of %s: %d accounts over %d processes (%s)",
            policy.name,
            len(accounts),
            len(children),
            ", ".join(str(child.pid) for _, child, _ in children),
        )
        passing_on = threading.Thread(target=self._pass_on_stop, args=(children,), daemon=True)
        passing_on.start()
        by_account: dict[str, PolicyReport] = {}
        for share, child, receive in children:
            result = _receive(receive)
            child.join()
            if result is None or result.error:
                why = (
                    result.error
                    if result is not None
                    else f"its sweep process ended without a report (exit code {child.exitcode})"
                )
                log.error("sweep of %s in %s failed: %s", policy.name, ", ".join(share), why)
                for account in share:
                    by_account[account] = lifecycle_flow.failed_report(self.config, policy, account, why)
            else:
                for account, report in zip(share, result.reports, strict=True):
                    by_account[account] = report
        return [by_account[account] for account in accounts]

    def _pass_on_stop(self, children) -> None:
        """SIGTERM/Ctrl-C reached the parent: tell every child still running to stop between two items."""
        while any(child.is_alive() for _, child, _ in children):
            if self.stopping.wait(STOP_POLL_SECONDS):
                for _, child, _ in children:
                    if child.is_alive():
                        child.terminate()  # SIGTERM: the child's handler sets its own `stopping`
                return


def _receive(conn) -> ChildResult | None:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None
    finally:
        conn.close()
