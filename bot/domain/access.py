"""Who may do what (SPEC §2 [access]); pure checks that raise NotAllowed."""

from __future__ import annotations

from bot.config import AccessConfig
from bot.errors import NotAllowed


def require_operator(access: AccessConfig, user: str) -> None:
    """Operators run commands; an empty list means everyone may."""
    if access.operators and user not in access.operators:
        raise NotAllowed(
            "you are not an operator of this bot, so nothing was done.",
            f"Ask an admin to add your Slack ID ({user}) to access.operators in config.toml.",
        )


def check_decider(access: AccessConfig, requester: str, user: str, approve: bool) -> None:
    """Only approvers decide; nobody approves their own request unless allow_self_approval."""
    if user not in access.approvers:
        raise NotAllowed(
            "only an approver can approve or deny this request; nothing changed.",
            "Approvers are listed in access.approvers in config.toml.",
        )
    if approve and user == requester and not access.allow_self_approval:
        raise NotAllowed(
            "two-person rule: you cannot approve your own request; nothing changed.",
            "Ask another approver to review it.",
        )


def require_approver(access: AccessConfig, user: str, what: str) -> None:
    """Only approvers may `what` (freeze and thaw deletions, say)."""
    if user not in access.approvers:
        raise NotAllowed(
            f"only an approver can {what}; nothing changed.",
            "Approvers are listed in access.approvers in config.toml.",
        )
