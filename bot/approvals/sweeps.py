"""The `sweep-delete` executor: an approved batch of a policy's expired items.

A thin wrapper: deleting (each item decided again as it goes) and reconciling
are the lifecycle domain's (bot/domain/lifecycle.py), which also runs them
directly for `on_expired = "delete"`.
"""

from __future__ import annotations

from bot.domain import lifecycle
from bot.domain.plans import Context, ItemResult, Plan, Progress


def execute_sweep_delete(ctx: Context, plan: Plan, progress: Progress) -> list[ItemResult]:
    return lifecycle.execute_sweep(ctx, plan, progress)


def reconcile_sweep_delete(ctx: Context, plan: Plan) -> list[ItemResult]:
    return lifecycle.reconcile_sweep(ctx, plan)
