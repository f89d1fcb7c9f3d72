"""Slack wiring: each module registers its own listeners with `register(app, deps)`."""

from __future__ import annotations

from handlers import ami, approvals, chatops, home, instance, keep, lifecycle, menus, snapshot, volume

MODULES = (snapshot, volume, instance, ami, lifecycle, chatops, approvals, keep, home, menus)


def register_all(app, deps) -> None:
    for module in MODULES:
        module.register(app, deps)
