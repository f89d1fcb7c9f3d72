"""The bot's own exceptions.

Domain code raises these; one boundary (handlers/respond.py) turns them into a
friendly ephemeral message with the next step.  `message` says what went
wrong, `hint` what to do about it; both are plain text (escaped on render).
"""

from __future__ import annotations


class BotError(Exception):
    """Something the user can understand and act on."""

    outcome = "error"

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(BotError):
    """config.toml is wrong: names the key and what is expected."""

    def __init__(self, key: str, expected: str):
        super().__init__(f"config error: {key}: expected {expected}")
        self.key = key
        self.expected = expected


class UsageError(BotError):
    """A malformed command: carries the usage line; no AWS call was made."""

    outcome = "usage"

    def __init__(self, message: str, usage: str):
        super().__init__(message, f"Usage: {usage}")
        self.usage = usage


class NotAllowed(BotError):
    """The Slack user may not do this (not an operator / approver)."""

    outcome = "refused"


class Busy(BotError):
    """The worker pool is full; nothing was started."""

    outcome = "busy"


class ShuttingDown(BotError):
    """The process is stopping: a call not yet sent is not sent (raised by the pacer and the worker)."""

    outcome = "stopped"

    def __init__(self, message: str = "not attempted: the bot was shutting down", hint: str = "Try again shortly."):
        super().__init__(message, hint)


class Frozen(BotError):
    """Deletions are frozen (`/lifecycle freeze`): the gateway sends no delete while a freeze covers the account."""

    outcome = "frozen"

    def __init__(self, message: str, hint: str = "An approver lifts it with `/lifecycle thaw`."):
        super().__init__(message, hint)


# --- AWS, mapped from botocore errors by the gateway -------------------------


class AwsError(BotError):
    """An AWS call failed; `code` is the AWS error code when there is one."""

    outcome = "aws-error"

    def __init__(self, message: str, hint: str = "", code: str = ""):
        super().__init__(message, hint)
        self.code = code


class NotFound(AwsError):
    outcome = "not-found"


class AccessDenied(AwsError):
    outcome = "access-denied"


class Throttled(AwsError):
    outcome = "throttled"


class InvalidParameter(AwsError):
    outcome = "invalid"


class LimitExceeded(AwsError):
    outcome = "limit-exceeded"


class Conflict(AwsError):
    """The resource is in a state that forbids the action (in use, wrong state)."""

    outcome = "conflict"


class AwsUnavailable(AwsError):
    """AWS could not be reached (timeouts, connection errors)."""

    outcome = "unavailable"


class RoleUnavailable(AwsError):
    """The bot could not assume an account's role (AccessDenied, a wrong external ID, STS unreachable)."""

    outcome = "role-unavailable"

    def __init__(self, account: str, role_arn: str, why: str, code: str = ""):
        super().__init__(
            f"I could not reach account {account}: assuming {role_arn} failed ({why}).",
            "Check that the role exists, that its trust policy lets the bot's principal assume it "
            "(with the configured external ID, if any), then run `python -m bot check`.",
            code,
        )
        self.account = account
