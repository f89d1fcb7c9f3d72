"""Checks that a built message stays inside Slack's Block Kit limits."""

from __future__ import annotations

from bot.slack.blocks.common import MAX_BLOCKS, MAX_HEADER, MAX_SECTION


def texts(message: dict) -> list[str]:
    """Every mrkdwn/plain text in the message's blocks."""
    out = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", ())]
        out += [e["text"] for e in block.get("elements", ()) if "text" in e and isinstance(e["text"], str)]
    return out


def assert_within_limits(message: dict) -> None:
    assert message["text"], "a fallback text is always sent beside blocks"
    assert len(message["text"]) <= 3000
    assert 0 < len(message["blocks"]) <= MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER
        if block["type"] == "section":
            assert len(block.get("fields", ())) <= 10
    for text in texts(message):
        assert len(text) <= MAX_SECTION


def all_text(message: dict) -> str:
    return "\n".join([message["text"], *texts(message)])
