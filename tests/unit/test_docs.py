"""Docs that cannot drift: README, /chatops help, the app manifest and config.toml follow the code."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.__main__ import COMMANDS as CLI_COMMANDS
from bot.config import Account, Config, Policy, with_overrides
from bot.process.runtime import Runtime, SlackSettings
from bot.slack import blocks
from bot.slack.commands import COMMANDS, Verb
from bot.slack.manifest import manifest
from bot.testing import slack_payloads

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIG_TOML = (REPO / "config.toml").read_text(encoding="utf-8")
SECRET = "docs-test-secret"
VERBS = [verb for verbs in COMMANDS.values() for verb in verbs.values()]


def documented_as(verb: Verb) -> str:
    """How the README must spell the verb: `/snapshot list`, or `/snapshot vol-…` for a default verb."""
    if verb.default:
        return " ".join(verb.usage.split()[:2])
    return f"/{verb.command} {verb.name}"


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: f"{v.command}-{v.name}")
def test_every_sub_command_is_in_the_readme(verb):
    assert f"`{documented_as(verb)}" in README, f"README.md does not document {verb.usage}"


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: f"{v.command}-{v.name}")
def test_every_sub_command_is_in_chatops_help(verb):
    help_text = json.dumps(blocks.help_message("chatops"))
    assert json.dumps(blocks.escape(verb.usage))[1:-1] in help_text


@pytest.mark.parametrize("name", sorted(CLI_COMMANDS))
def test_every_cli_sub_command_is_in_the_readme(name):
    assert f"python -m bot {name}" in README


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name not in ("policies", "accounts")}


@pytest.mark.parametrize(
    "section, key",
    [(name, f.name) for name in SECTIONS for f in dataclasses.fields(getattr(Config(), name))]
    + [("policies", f.name) for f in dataclasses.fields(Policy)]
    + [("accounts", f.name) for f in dataclasses.fields(Account)],
)
def test_every_config_key_is_in_the_sample_config_toml(section, key):
    header = f"[[{section}]]" if section in ("policies", "accounts") else f"[{section}]"
    assert header in CONFIG_TOML
    assert re.search(rf"^\s*#?.*\b{key} = ", CONFIG_TOML, re.MULTILINE), f"config.toml does not show {section}.{key}"


# --- the manifest and what the app registers ------------------------------------------------------


@pytest.fixture
def registered(tmp_path, monkeypatch, fake_slack):
    """The real App built by Runtime, and every slash command it registered."""
    commands: list[str] = []
    original = App.command

    def recording(self, command, *args, **kwargs):
        commands.append(command)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(App, "command", recording)
    config = with_overrides(Config(), store={"path": str(tmp_path / "docs.db")})
    runtime = Runtime(config, SlackSettings(bot_token="xoxb-docs", signing_secret=SECRET, api_url=fake_slack.api_url))
    yield runtime.app, commands
    runtime.stop()


def test_manifest_lists_every_registered_slash_command(registered):
    _, commands = registered
    listed = [c["command"] for c in manifest()["features"]["slash_commands"]]
    assert commands, "the app registered no slash command"
    assert sorted(listed) == sorted(set(commands))
    assert len(listed) == len(set(listed))


def test_every_manifest_command_is_answered_by_the_app(registered):
    app, _ = registered
    for entry in manifest()["features"]["slash_commands"]:
        body = slack_payloads.slash_command(entry["command"], "help", "U0ALICE", "C0OPS", "http://127.0.0.1:9/r")
        response = app.dispatch(BoltRequest(body=body, headers=slack_payloads.signed_headers(SECRET, body)))
        assert response.status == 200, entry["command"]
        assert f"*{entry['command']}*" in response.body  # the help names it


def test_manifest_shape():
    m = manifest("https://bot.example.com/")
    for entry in m["features"]["slash_commands"]:
        assert re.fullmatch(r"/[a-z][a-z0-9_-]{0,31}", entry["command"])
        assert entry["url"] == "https://bot.example.com/slack/events"
        assert 0 < len(entry["description"]) <= 100 and len(entry["usage_hint"]) <= 100
        assert entry["description"] == entry["description"].strip()
    assert m["settings"]["interactivity"] == {"is_enabled": True, "request_url": "https://bot.example.com/slack/events"}
    assert m["settings"]["socket_mode_enabled"] is False
    assert {"commands", "chat:write"} <= set(m["oauth_config"]["scopes"]["bot"])
    assert m["features"]["app_home"]["home_tab_enabled"] is True  # the App Home tab
    events = m["settings"]["event_subscriptions"]
    assert events == {"bot_events": ["app_home_opened"], "request_url": "https://bot.example.com/slack/events"}


def test_socket_mode_manifest_has_no_request_urls():
    m = manifest(socket_mode=True)
    assert m["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in m["settings"]["interactivity"]
    assert "request_url" not in m["settings"]["event_subscriptions"]
    assert all("url" not in entry for entry in m["features"]["slash_commands"])


def run_manifest(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATOPS_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", "manifest", *args],
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_manifest_prints_valid_json():
    result = run_manifest()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == manifest()


def test_cli_manifest_options():
    result = run_manifest("--url", "https://bot.example.com", "--socket-mode")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == manifest("https://bot.example.com", socket_mode=True)
