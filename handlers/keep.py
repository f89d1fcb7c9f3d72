"""Keep and Snooze menus (on sweep requests and the digest): ack, check the operator, tag the item in the pool."""

from __future__ import annotations

from bot.domain.access import require_operator
from bot.errors import Busy, NotAllowed
from bot.flows import keep_flow
from bot.flows.deps import Deps
from bot.slack import blocks
from handlers.respond import click_teller


def register(app, deps: Deps) -> None:
    def on_choice(snooze: bool):
        def listener(ack, body, action, context):
            ack()
            user, channel = context.user_id or "", context.channel_id or ""
            value = str((action.get("selected_option") or {}).get("value", ""))
            tell = click_teller(body.get("response_url"))
            verb = "snooze" if snooze else "keep"
            try:
                require_operator(deps.config.access, user)
                deps.worker.submit(lambda: tell(keep_flow.keep_item(deps, user, channel, value, snooze)))
            except (NotAllowed, Busy) as exc:
                tell(blocks.error(exc))
                deps.store.audit(user, channel, f"{verb} {value[:80]}", exc.outcome, exc.message)

        listener.__name__ = "on_snooze" if snooze else "on_keep"
        return listener

    app.action(blocks.KEEP_ACTION)(on_choice(False))
    app.action(blocks.SNOOZE_ACTION)(on_choice(True))
