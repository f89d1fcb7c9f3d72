"""Destructive actions as plans: built read-only, approved by a human, executed once.

A `Plan` states exactly what will happen (each resource, its size, what goes
with it) and is stored as JSON with the request, so the approver approves
that plan and nothing else: at execution every resource is re-checked and
if the world changed the item is refused, not improvised.  Each plan kind
has an `Executor`: `execute` (re-check, act, report per resource) and
`reconcile` (after a crash: what is already done, never acting again).

Only the vocabulary lives here.  The plans are built by the domain
(bot/domain/amis.py, bot/domain/lifecycle.py) and bot/approvals/snapshots.py;
the executors are in bot/approvals/, listed by kind in
bot/approvals/registry.py; bot/flows/approval_flow.py moves requests through
their states and talks to Slack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.config import Config

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway


@dataclass(frozen=True)
class PlanItem:
    """One resource the plan acts on."""

    resource_id: str
    kind: str  # snapshot | image | launch-permission | instance
    size_gib: int = 0
    detail: str = ""  # shown to the approver: "of vol-… (db-data), 12d old, 'nightly'"
    goes_with: tuple[str, ...] = ()  # e.g. an AMI's backing snapshots, deleted with it
    region: str = ""  # for batches spanning regions (sweeps); "" = the plan's region


@dataclass(frozen=True)
class Plan:
    kind: str  # the executor: delete-snapshots, deregister-image, share-image, create-image-reboot …
    region: str
    title: str  # "Delete 3 snapshots in us-east-1"
    items: tuple[PlanItem, ...]
    gib_freed: int = 0
    usd_month_freed: float = 0.0
    warnings: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)  # executor-specific, e.g. keep_snapshots
    account: str = ""  # the account it acts in ("" = the bot's own)

    def to_dict(self) -> dict[str, Any]:
        stored = asdict(self)
        if not self.account:  # a plan in the bot's own account is stored as before accounts existed
            del stored["account"]
        return stored

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Plan:
        items = tuple(PlanItem(**{**i, "goes_with": tuple(i.get("goes_with", ()))}) for i in raw["items"])
        return cls(
            **{**raw, "items": items, "warnings": tuple(raw.get("warnings", ())), "params": dict(raw.get("params", {}))}
        )


@dataclass(frozen=True)
class ItemResult:
    resource_id: str
    outcome: str  # done | skipped (already gone) | spared (decided again at execution: not deleted) | failed
    reason: str = ""
    region: str = ""  # "" = the plan's region
    started_image: str = ""  # an AMI the action started and that is still being made: followed in the thread

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


Progress = Callable[[ItemResult], None]

SHUTTING_DOWN = "not attempted: the bot was shutting down"


@dataclass(frozen=True)
class Context:
    """What an executor works with: AWS, the configuration as it is *now*, the clock, and the stop signal.

    Executors decide again at execution with `config` (a policy's current
    rules, not the ones of the request) and check `stopping` between items,
    so a shutdown stops a batch between two deletions rather than in the
    middle of one, and every item not attempted is reported as such.
    """

    gateway: Ec2Gateway
    config: Config
    clock: Callable[[], datetime]
    stopping: threading.Event = field(default_factory=threading.Event)

    def now(self) -> datetime:
        return self.clock()


@dataclass(frozen=True)
class Executor:
    execute: Callable[[Context, Plan, Progress], list[ItemResult]]
    reconcile: Callable[[Context, Plan], list[ItemResult]]
    deletes: bool = False  # a freeze stops it: Approve is refused, an approved request is held


OUTCOMES = ("done", "skipped", "spared", "failed")


def summarise(results: Sequence[ItemResult]) -> str:
    counts = {k: sum(r.outcome == k for r in results) for k in OUTCOMES}
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "done")
