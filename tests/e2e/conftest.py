"""Fixtures of the end-to-end tests: the real app over HTTP (a Runtime and its server), moto and the fake Slack."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bot.config import Config, with_overrides
from tests.support.factories import base_config
from tests.support.harness import BotUnderTest


@pytest.fixture
def make_bot(aws, fake_slack, tmp_path) -> Iterator[Callable[..., BotUnderTest]]:
    """Start the real app over HTTP; keyword arguments override config sections."""
    started: list[BotUnderTest] = []

    def make(config: Config | None = None, clock=None, **sections) -> BotUnderTest:
        config = config or base_config(tmp_path)
        if sections:
            config = with_overrides(config, **sections)
        bot = BotUnderTest(config, fake_slack, **({"clock": clock} if clock else {})).start()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.stop()


@pytest.fixture
def bot(make_bot) -> BotUnderTest:
    return make_bot()
