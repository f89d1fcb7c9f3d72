"""App Home: `app_home_opened` publishes the viewer's tab (bot/flows/home_flow.py), after the ack, in the pool."""

from __future__ import annotations

import logging

from bot.errors import BotError
from bot.flows import home_flow
from bot.flows.deps import Deps

log = logging.getLogger(__name__)


def register(app, deps: Deps) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event, ack) -> None:
        ack()
        user = event.get("user", "")
        if event.get("tab", "home") != "home" or not user:  # the Messages tab is not ours to draw
            return
        try:
            deps.worker.submit(home_flow.publish_home, deps, user)
        except BotError as exc:  # the pool is full: the tab keeps what it showed; reopening it asks again
            log.warning("Home tab of %s not refreshed: %s", user, exc.message)
