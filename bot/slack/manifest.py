"""The Slack app manifest, generated from the command registry (so it cannot drift)."""

from __future__ import annotations

import json

from bot.slack.commands import COMMAND_SUMMARIES, COMMANDS
from bot.slack.server import EVENTS_PATH

BOT_SCOPES = ["commands", "chat:write", "chat:write.public"]
BOT_EVENTS = ["app_home_opened"]  # the Home tab: publish the viewer's view when they open it


def manifest(base_url: str = "https://YOUR-BOT-HOST", socket_mode: bool = False) -> dict:
    url = f"{base_url.rstrip('/')}{EVENTS_PATH}"
    commands = []
    for name, verbs in COMMANDS.items():
        entry = {
            "command": f"/{name}",
            "description": COMMAND_SUMMARIES.get(name, name)[:100],
            "usage_hint": " | ".join(v for v in verbs)[:100],
            "should_escape": False,
        }
        if not socket_mode:
            entry["url"] = url
        commands.append(entry)
    interactivity = {"is_enabled": True}
    if not socket_mode:
        interactivity["request_url"] = url
    events: dict = {"bot_events": list(BOT_EVENTS)}
    if not socket_mode:
        events["request_url"] = url
    return {
        "display_information": {
            "name": "Snapshot ChatOps",
            "description": "Back up, restore, copy, share and clean up EBS snapshots and AMIs from Slack.",
        },
        "features": {
            "bot_user": {"display_name": "snapshots", "always_online": True},
            "slash_commands": commands,
            # The Home tab (App Home); the Messages tab is not used.
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": False,
                "messages_tab_read_only_enabled": True,
            },
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def manifest_json(base_url: str = "https://YOUR-BOT-HOST", socket_mode: bool = False) -> str:
    return json.dumps(manifest(base_url, socket_mode), indent=2)
