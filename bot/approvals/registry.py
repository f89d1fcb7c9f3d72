"""Every plan kind and its executor, in one table.

A request stores its plan's `kind`; executing or reconciling it looks the
kind up here.  A new kind of plan is added here and nowhere else (no
registration by import side effect), and tests/test_registry.py checks that
every kind a plan builder produces has an executor and that none is unused.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bot.approvals import amis, archive, snapshots, sweeps
from bot.domain.plans import Executor

EXECUTORS: Mapping[str, Executor] = MappingProxyType(
    {
        # /snapshot delete (bot/approvals/snapshots.py builds the plan)
        "delete-snapshots": Executor(
            snapshots.execute_delete_snapshots, snapshots.reconcile_delete_snapshots, deletes=True
        ),
        # /ami deregister, /ami share, /ami create … reboot (bot/domain/amis.py builds the plans)
        "deregister-image": Executor(amis.execute_deregister, amis.reconcile_deregister, deletes=True),
        "share-image": Executor(amis.execute_share, amis.reconcile_share),
        "create-image-reboot": Executor(amis.execute_reboot_create, amis.reconcile_reboot_create),
        # a lifecycle policy's expired items, on_expired = "approve" (bot/domain/lifecycle.py builds the plan)
        "sweep-delete": Executor(sweeps.execute_sweep_delete, sweeps.reconcile_sweep_delete, deletes=True),
        # /snapshot archive (bot/approvals/archive.py builds the plan); a freeze holds it too
        "archive-snapshots": Executor(
            archive.execute_archive_snapshots, archive.reconcile_archive_snapshots, deletes=True
        ),
    }
)


class UnknownPlanKind(LookupError):
    """A stored plan names a kind no executor handles (a request from another version of the bot?)."""


def executor_for(kind: str) -> Executor:
    """The executor of plan `kind`; raises UnknownPlanKind, naming the kinds there are, for any other."""
    try:
        return EXECUTORS[kind]
    except KeyError:
        raise UnknownPlanKind(
            f"no executor for plan kind {kind!r}; the kinds are {', '.join(sorted(EXECUTORS))}"
        ) from None
