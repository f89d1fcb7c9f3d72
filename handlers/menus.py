"""Act from the message: an item's overflow menu, and the modal a choice that needs input opens.

A choice runs exactly as the command typed would (`handlers.slash.dispatch`):
the same grammar, operator check, audit entry, runner and approvals.  A
choice that needs input opens its modal at once (the click's `trigger_id`
lasts 3 s, so no AWS call comes first), then fills it from AWS in the pool;
its submission is checked by the grammar and answered with field errors
(`response_action: errors`) before anything runs.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.domain.access import require_operator
from bot.errors import BotError
from bot.flows import menu_flow
from bot.flows.deps import Deps
from bot.slack import blocks, send
from bot.slack.commands import parse
from bot.slack.send import SLACK_FAILURES, error_of
from handlers import ami, snapshot, volume
from handlers.respond import click_teller
from handlers.slash import dispatch

log = logging.getLogger(__name__)

RUNNERS_OF = {"snapshot": snapshot.RUNNERS, "ami": ami.RUNNERS, "volume": volume.RUNNERS}
FIELD_ERROR_MAX = 150  # Slack shows a field's error under it; keep it readable


def register(app, deps: Deps) -> None:
    @app.action(blocks.MENU_ACTION)
    def on_item_menu(ack, body, action, context) -> None:
        ack()
        user = context.user_id or ""
        channel = context.channel_id or (body.get("channel") or {}).get("id", "")
        response_url = body.get("response_url")
        tell = click_teller(response_url)
        try:
            choice = _own(deps, blocks.parse_menu_value((action.get("selected_option") or {}).get("value", "")))
        except ValueError:
            tell(blocks.refusal("That choice names no item; nothing changed."))
            return
        if not choice.needs_input:
            text = blocks.command_text(choice)
            answer = _teller_answer(tell)
            dispatch(deps, choice.command, text, user, channel, response_url, answer, RUNNERS_OF[choice.command])
            return
        try:
            require_operator(deps.config.access, user)
        except BotError as exc:
            tell(blocks.error(exc))
            deps.store.audit(
                user, channel, f"/{choice.command} {blocks.command_text(choice)}", exc.outcome, exc.message
            )
            return
        try:
            view_id = send.open_view(deps.slack, body.get("trigger_id", ""), blocks.item_modal(choice, channel))
        except SLACK_FAILURES as exc:
            tell(blocks.refusal(f"Slack did not open the form ({error_of(exc)}); nothing changed. Choose it again."))
            return
        try:
            deps.worker.submit(menu_flow.fill_modal, deps, view_id, choice, channel, user)
        except BotError as exc:  # the pool is full: say so in the modal itself
            view = blocks.item_modal(choice, channel, None)
            view["blocks"][-1] = blocks.section(f":x: {blocks.escape(exc.message)} Close this and choose it again.")
            _update_quietly(deps, view_id, view)

    @app.view(blocks.MODAL_CALLBACK)
    def on_item_modal(ack, body, view, context) -> None:
        user = context.user_id or (body.get("user") or {}).get("id", "")
        try:
            choice, channel = blocks.modal_choice(view)
        except ValueError:
            ack()  # not a modal this bot opened: close it, change nothing
            return
        values = blocks.modal_values(view)
        text = blocks.command_text(choice, values)
        missing = blocks.missing_fields(choice, values)
        if missing:
            ack(response_action="errors", errors=missing)
            return
        try:
            parse(choice.command, text, deps.config.aws.default_region, deps.config.account_names)
            require_operator(deps.config.access, user)
        except BotError as exc:
            field = blocks.field_of_error(choice, values, exc.message)
            ack(response_action="errors", errors={field: exc.message[:FIELD_ERROR_MAX]})
            deps.store.audit(user, channel, f"/{choice.command} {text}", exc.outcome, exc.message)
            return
        ack()  # the modal closes; the answer comes in its channel, as to a typed command

        def answer(msg: blocks.Message, in_channel: bool = False) -> None:
            try:
                send.ephemeral(deps.slack, channel, user, msg)
            except SLACK_FAILURES as exc:
                log.warning("could not answer %s's form in %s: %s", user, channel, error_of(exc))

        dispatch(deps, choice.command, text, user, channel, None, answer, RUNNERS_OF[choice.command])


def _own(deps: Deps, choice: blocks.MenuChoice) -> blocks.MenuChoice:
    """The bot's own account is "" in a command (the digest names it when it reaches several)."""
    return replace(choice, account="") if choice.account == deps.config.aws.account_name else choice


def _teller_answer(tell):
    def answer(msg: blocks.Message, in_channel: bool = False) -> None:
        tell(msg)

    return answer


def _update_quietly(deps: Deps, view_id: str, view: dict) -> None:
    try:
        send.update_view(deps.slack, view_id, view)
    except SLACK_FAILURES as exc:
        log.warning("could not update the modal %s: %s", view_id, error_of(exc))
