"""Act from the message: each listed item's overflow menu, and the modal a choice that needs input opens.

A menu choice is a typed command in another form: its option's value names the
verb and the item (`snapshot:restore|ACCOUNT/REGION|snap-…`), and a modal's
fields become that verb's options.  `command_text` writes the command line a
person would have typed, so the grammar (bot/slack/commands.py) checks it, the
same runner runs it, and the audit log shows it as typed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.slack.blocks.common import clip, context, escape, section

MENU_ACTION = "item_menu"
MODAL_CALLBACK = "item_modal"
FIELD_ACTION = "value"  # every input's action_id; its block_id is the field's name
MAX_OPTIONS = 100  # Slack's limit for a static select
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")

# The slash command each kind of item belongs to ("Snapshot now" on a volume is `/snapshot vol-…`).
COMMAND_OF = {"snapshot": "snapshot", "image": "ami", "volume": "volume"}
COMMAND_OF_CHOICE = {("volume", "create"): "snapshot"}

# kind → (verb, label) in menu order; a label ending in "…" opens a modal first.
MENUS: dict[str, tuple[tuple[str, str], ...]] = {
    "snapshot": (
        ("status", "Status"),
        ("restore", "Restore…"),
        ("copy", "Copy…"),
        ("drill", "Restore drill"),
        ("delete", "Delete"),
    ),
    "image": (
        ("launch", "Launch…"),
        ("copy", "Copy…"),
        ("share", "Share…"),
        ("drill", "Restore drill"),
        ("deregister", "Deregister"),
    ),
    "volume": (("create", "Snapshot now"), ("attach", "Attach…")),
}


@dataclass(frozen=True)
class Field:
    """One input of a modal: the option it fills (`key=`; "" for the verb's second positional argument)."""

    name: str  # block_id, and the option's key when `key` is True
    label: str
    choices: str = ""  # where a select's options come from: "azs", "types", "regions", "instances"; "" = text
    optional: bool = False
    initial: str = ""
    hint: str = ""
    positional: bool = False  # written as a bare word after the ID (an instance to attach to, an account to share with)


FORMS: dict[tuple[str, str], tuple[Field, ...]] = {
    ("snapshot", "restore"): (
        Field("az", "Availability zone", "azs", hint="Where the new volume is created."),
        Field("type", "Volume type", "types", initial="gp3"),
        Field("instance", "Attach to instance", "instances", optional=True, hint="Once the volume is available."),
        Field("device", "Device", optional=True, initial="/dev/sdf"),
    ),
    ("snapshot", "copy"): (
        Field("to", "Copy to region", "regions"),
        Field("description", "Description", optional=True),
    ),
    ("image", "launch"): (
        Field("type", "Instance type", initial="t3.micro"),
        Field("count", "How many", initial="1"),
        Field("key", "Key pair", optional=True),
    ),
    ("image", "copy"): (
        Field("to", "Copy to region", "regions"),
        Field("name", "Name of the copy", optional=True),
    ),
    ("image", "share"): (
        Field(
            "account", "Share with account", positional=True, hint="A 12-digit account ID, or an account's name here."
        ),
    ),
    ("volume", "attach"): (
        Field("instance", "Instance", "instances", positional=True, hint="In the volume's availability zone."),
        Field("device", "Device", optional=True, initial="/dev/sdf"),
    ),
}

# What each choice does, in the modal's summary.
SUMMARIES = {
    ("snapshot", "restore"): "Create a new volume from `{id}` ({region}); attach it when an instance is chosen.",
    (
        "snapshot",
        "copy",
    ): "Copy `{id}` from {region} to the region chosen; its message updates when the copy completes.",
    ("image", "launch"): "Run instances from `{id}` ({region}); the message updates when they are running.",
    ("image", "copy"): "Copy `{id}` and its snapshots from {region} to the region chosen, tags included.",
    ("image", "share"): "Ask an approver to give the account launch permission on `{id}` ({region}).",
    ("volume", "attach"): "Attach `{id}` ({region}) to the instance chosen.",
}


@dataclass(frozen=True)
class MenuChoice:
    kind: str
    verb: str
    account: str  # as the config names it; "" = the bot's own
    region: str
    resource_id: str

    @property
    def command(self) -> str:
        return COMMAND_OF_CHOICE.get((self.kind, self.verb), COMMAND_OF[self.kind])

    @property
    def needs_input(self) -> bool:
        return (self.kind, self.verb) in FORMS


def where(account: str, region: str) -> str:
    return f"{account}/{region}" if account else region


def item_menu(kind: str, resource_id: str, place: str) -> dict:
    """The overflow accessory of one listed item; `place` is its region, or ACCOUNT/REGION in another account."""
    return {
        "type": "overflow",
        "action_id": MENU_ACTION,
        "options": [
            {"text": {"type": "plain_text", "text": label}, "value": f"{kind}:{verb}|{place}|{resource_id}"[:150]}
            for verb, label in MENUS[kind]
        ],
    }


def parse_menu_value(value: str) -> MenuChoice:
    """The choice an option's value names; ValueError when it names none (a forged or stale value)."""
    head, _, rest = value.partition("|")
    kind, _, verb = head.partition(":")
    place, _, resource_id = rest.partition("|")
    account, _, region = place.rpartition("/")
    if kind not in MENUS or verb not in dict(MENUS[kind]) or not region or not resource_id:
        raise ValueError(value)
    return MenuChoice(kind, verb, account, region, resource_id)


def command_text(choice: MenuChoice, fields: Mapping[str, str] | None = None) -> str:
    """The command line (after `/command`) a person would type for this choice and these field values."""
    words = [choice.verb, choice.resource_id]
    form = FORMS.get((choice.kind, choice.verb), ())
    values = {k: v.strip() for k, v in (fields or {}).items() if v and v.strip()}
    words += [shlex.quote(values[f.name]) for f in form if f.positional and f.name in values]
    words += [f"{f.name}={shlex.quote(values[f.name])}" for f in form if not f.positional and f.name in values]
    words.append(f"region={choice.region}")
    if choice.account:
        words.append(f"account={choice.account}")
    return " ".join(words)


def _option(value: str) -> dict:
    return {"text": {"type": "plain_text", "text": clip(value, 75)}, "value": value[:150]}


def _input(field: Field, choices: Sequence[str] | None) -> dict:
    if field.choices:
        options = [_option(c) for c in (choices or [])[:MAX_OPTIONS]]
        element: dict = {"type": "static_select", "action_id": FIELD_ACTION, "options": options}
        if field.initial in (choices or []):
            element["initial_option"] = _option(field.initial)
        if not options:  # nothing to choose from: say so rather than offer an empty select
            element = {
                "type": "plain_text_input",
                "action_id": FIELD_ACTION,
                "placeholder": {"type": "plain_text", "text": "none found; type one"},
            }
    else:
        element = {"type": "plain_text_input", "action_id": FIELD_ACTION}
        if field.initial:
            element["initial_value"] = field.initial
    block = {
        "type": "input",
        "block_id": field.name,
        "optional": field.optional,
        "label": {"type": "plain_text", "text": field.label},
        "element": element,
    }
    if field.hint:
        block["hint"] = {"type": "plain_text", "text": field.hint}
    return block


def item_modal(choice: MenuChoice, channel: str, choices: Mapping[str, Sequence[str]] | None = None) -> dict:
    """The modal of a choice that needs input; `choices` None: a first view saying the choices are being read."""
    label = dict(MENUS[choice.kind])[choice.verb].rstrip("…")
    summary = SUMMARIES[(choice.kind, choice.verb)].format(id=escape(choice.resource_id), region=escape(choice.region))
    if choice.account:
        summary += f" In account *{escape(choice.account)}*."
    metadata = {
        "kind": choice.kind,
        "verb": choice.verb,
        "account": choice.account,
        "region": choice.region,
        "id": choice.resource_id,
        "channel": channel,
    }
    view: dict = {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": clip(f"{label} {choice.kind}", 24)},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [section(summary)],
    }
    if choices is None:
        view["blocks"].append(context(":hourglass_flowing_sand: Reading the choices from AWS…"))
        return view
    view["blocks"] += [_input(f, choices.get(f.choices)) for f in FORMS[(choice.kind, choice.verb)]]
    view["blocks"].append(context("The same checks, approvals and audit as typing the command."))
    view["submit"] = {"type": "plain_text", "text": clip(label, 24)}
    return view


def modal_choice(view: Mapping) -> tuple[MenuChoice, str]:
    """The choice and the channel a submitted modal was opened for; ValueError when its metadata is not ours."""
    meta = json.loads(view.get("private_metadata") or "{}")
    kind, verb = meta.get("kind", ""), meta.get("verb", "")
    if (kind, verb) not in FORMS or not meta.get("region") or not meta.get("id"):
        raise ValueError("not a modal of this bot")
    return MenuChoice(kind, verb, meta.get("account", ""), meta["region"], meta["id"]), meta.get("channel", "")


def modal_values(view: Mapping) -> dict[str, str]:
    """Field name → what was typed or chosen ("" when left empty)."""
    values = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        state = actions.get(FIELD_ACTION) or {}
        chosen = state.get("selected_option") or {}
        values[block_id] = str(chosen.get("value") or state.get("value") or "")
    return values


def missing_fields(choice: MenuChoice, values: Mapping[str, str]) -> dict[str, str]:
    """Required fields left empty, each with its error (Slack asks for them too, but the server decides)."""
    return {
        f.name: "Choose one." if f.choices else "Fill this in."
        for f in FORMS[(choice.kind, choice.verb)]
        if not f.optional and not values.get(f.name, "").strip()
    }


def field_of_error(choice: MenuChoice, values: Mapping[str, str], message: str) -> str:
    """Which field a usage error is about (the first field when it names none), for `response_action: errors`."""
    form = FORMS[(choice.kind, choice.verb)]
    for f in form:
        typed = values.get(f.name, "")
        if f"`{f.name}=" in message or (f.positional and typed and f"`{typed}`" in message):
            return f.name
    return form[0].name
