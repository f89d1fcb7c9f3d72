"""How every process of the bot logs: the level from LOG_LEVEL, with the libraries that would log secrets held at INFO.

`python -m bot` configures it at start, and so does each child process of a fleet sweep
(bot/process/sweep_processes.py).
"""

from __future__ import annotations

import logging

from bot import errors
from bot.errors import ConfigError

# Library loggers that print credentials at DEBUG: botocore logs every request's
# headers (X-Amz-Security-Token, the session token) and the credential chain,
# urllib3 full URLs, slack_sdk the response_url (a 30-minute key to post in a
# channel) and Socket Mode's connection URL.  They stay at INFO or above
# whatever LOG_LEVEL says; the bot's own loggers and Bolt's follow LOG_LEVEL.
CHATTY_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "slack_sdk")


class RoleRefusalInOneLine(logging.Filter):
    """botocore logs a refused AssumeRole with its 48-line traceback; the bot reports it itself, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, errors.RoleUnavailable):
            record.msg, record.args, record.exc_info, record.exc_text = "%s", (exc.message,), None, None
        return True


def configure_logging(level_name: str) -> None:
    """Log at `level_name` (LOG_LEVEL), but never below INFO for the libraries that would log secrets."""
    level = logging.getLevelNamesMapping().get(level_name.strip().upper())
    if level is None:
        raise ConfigError("LOG_LEVEL", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A record a library logger lets through reaches the root's handlers whatever
    # the root's own level, so each must be at least as strict as the root.
    floor = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(floor)
    credentials = logging.getLogger("botocore.credentials")
    if not any(isinstance(f, RoleRefusalInOneLine) for f in credentials.filters):
        credentials.addFilter(RoleRefusalInOneLine())
