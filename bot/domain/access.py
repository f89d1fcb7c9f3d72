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
