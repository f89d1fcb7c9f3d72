"""Slack's request payloads, built and signed exactly as Slack sends them.

The demo console and the tests use these to drive the real Bolt App: a slash
command is a form-encoded body, a button click a form field `payload` holding
JSON, and both carry `X-Slack-Signature` (v0 HMAC-SHA256 of
`v0:{timestamp}:{body}`) and `X-Slack-Request-Timestamp`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0DEMO"
APP_ID = "A0CHATOPS"


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's headers for `body`: JSON for an Events API delivery, form-encoded for the rest."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/json" if body.startswith("{") else "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def slash_command(command: str, text: str, user_id: str, channel_id: str, response_url: str) -> str:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "demo",
            "channel_id": channel_id,
            "channel_name": "ops",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command if command.startswith("/") else f"/{command}",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:10]}",
        }
    )


def block_actions(
    user_id: str,
    channel_id: str,
    message: Mapping,
    action: Mapping,
    response_url: str,
) -> str:
    """A button click, or a menu choice (`action` with its `selected_option`), on `message` (with `ts`, `blocks`)."""
    ephemeral = "ts" not in message  # an answer only the user saw (a response_url's): Slack gives it a ts of its own
    ts = message.get("ts") or f"{time.time():.6f}"
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": ephemeral},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:10]}",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "channel": {"id": channel_id, "name": "ops"},
        "message": {
            "type": "message",
            "ts": ts,
            "text": message.get("text", ""),
            "blocks": message.get("blocks", []),
        },
        "response_url": response_url,
        "actions": [_action(action)],
    }
    return urlencode({"payload": json.dumps(payload)})


def _action(action: Mapping) -> dict:
    common = {
        "action_id": action["action_id"],
        "block_id": action.get("block_id", "b"),
        "action_ts": f"{time.time():.6f}",
    }
    if "selected_option" in action:  # a static_select or an overflow menu: Slack sends the option chosen
        kind = "overflow" if action.get("type") == "overflow" else "static_select"
        return {**common, "type": kind, "selected_option": action["selected_option"]}
    return {
        **common,
        "type": "button",
        "value": action.get("value", ""),
        "text": action.get("text", {"type": "plain_text", "text": ""}),
    }


def event_callback(event: Mapping) -> str:
    """An Events API delivery (JSON), e.g. `{"type": "app_home_opened", "user": …, "tab": "home"}`."""
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": {"event_ts": f"{time.time():.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT", "is_bot": True}],
        }
    )


def home_opened(user_id: str) -> str:
    return event_callback({"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home"})


def view_block_actions(user_id: str, view: Mapping, action: Mapping) -> str:
    """A button clicked in a view (the Home tab): no channel, no message, no response_url; the view instead."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "container": {"type": "view", "view_id": view.get("id", "V0HOME")},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:10]}",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "view": {"id": view.get("id", "V0HOME"), "type": view.get("type", "home"), "blocks": view.get("blocks", [])},
        "actions": [_action(action)],
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission(user_id: str, view: Mapping, values: Mapping[str, str]) -> str:
    """A modal submitted with `values` (field → text typed, or the value of the option chosen in a select).

    A field not in `values` keeps its initial value; a value that is not one of a select's options sends none.
    """
    state: dict[str, dict] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        initial = (element.get("initial_option") or {}).get("value") or element.get("initial_value") or ""
        typed = values.get(block["block_id"], initial)  # a field left as it was sends its initial value
        if element["type"] == "static_select":
            chosen = next((o for o in element.get("options", []) if o["value"] == typed), None)
            entry = {"type": "static_select", "selected_option": chosen}
        else:
            entry = {"type": "plain_text_input", "value": typed or None}
        state[block["block_id"]] = {element["action_id"]: entry}
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:10]}",
        "view": {**view, "state": {"values": state}},
    }
    return urlencode({"payload": json.dumps(payload)})
