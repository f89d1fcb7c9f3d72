"""The process's logging: a refused AssumeRole, which botocore logs with its traceback, reads as one line."""

from __future__ import annotations

import logging

from bot.errors import RoleUnavailable
from bot.process.logs import RoleRefusalInOneLine


def record_of(exc: BaseException | None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord(
        "botocore.credentials", logging.WARNING, __file__, 1, "Refreshing temporary credentials failed.", (), exc_info
    )


def test_a_refused_role_is_logged_in_one_line_naming_the_account_and_role():
    try:
        raise RoleUnavailable("prod", "arn:aws:iam::111111111111:role/chatops", "AccessDenied: no")
    except RoleUnavailable as exc:
        record = record_of(exc)
    assert RoleRefusalInOneLine().filter(record)
    line = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "Traceback" not in line
    assert "account prod" in line and "role/chatops" in line and "AccessDenied" in line


def test_other_credential_failures_keep_their_traceback():
    try:
        raise ValueError("something else")
    except ValueError as exc:
        record = record_of(exc)
    assert RoleRefusalInOneLine().filter(record)
    assert "Traceback" in logging.Formatter().format(record)
