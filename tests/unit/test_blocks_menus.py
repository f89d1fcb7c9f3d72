"""The menu and form builders: Slack's limits, the command line a choice stands for, and field errors."""

from __future__ import annotations

import json
import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack.blocks.menus import (
    FORMS,
    MENUS,
    MenuChoice,
    command_text,
    field_of_error,
    item_menu,
    item_modal,
    missing_fields,
    modal_choice,
    modal_values,
    parse_menu_value,
)
from bot.slack.commands import Invocation, parse

IDS = {"snapshot": "snap-0123456789abcdef0", "image": "ami-0123456789abcdef0", "volume": "vol-0123456789abcdef0"}


def test_every_menu_fits_an_overflow_and_each_option_names_its_choice():
    for kind, verbs in MENUS.items():
        menu = item_menu(kind, IDS[kind], "prod/eu-west-1")
        assert menu["type"] == "overflow" and 2 <= len(menu["options"]) <= 5  # Slack's overflow limits
        for option, (verb, label) in zip(menu["options"], verbs, strict=True):
            assert option["text"]["text"] == label and len(option["value"]) <= 150
            assert parse_menu_value(option["value"]) == MenuChoice(kind, verb, "prod", "eu-west-1", IDS[kind])


def test_a_forged_or_stale_value_names_no_choice():
    for value in ("", "snapshot:launch|us-east-1|snap-1", "volume:create||vol-1", "nope:status|r|x", "snapshot:status"):
        try:
            parse_menu_value(value)
        except ValueError:
            continue
        raise AssertionError(f"{value!r} was taken for a choice")


def test_every_choice_is_a_command_the_grammar_takes():
    for kind, verbs in MENUS.items():
        for verb, _ in verbs:
            choice = MenuChoice(kind, verb, "", "us-east-1", IDS[kind])
            form = FORMS.get((kind, verb), ())
            fields = {
                f.name: {"instance": "i-0123456789abcdef0", "account": "123456789012"}.get(f.name, "") for f in form
            }
            fields |= {"az": "us-east-1b", "type": "t3.micro" if kind == "image" else "gp3", "to": "us-west-2"}
            fields |= {"count": "1", "device": "/dev/sdf", "description": "a b", "name": "copy 1", "key": "k"}
            text = command_text(choice, {k: v for k, v in fields.items() if k in {f.name for f in form}})
            parsed = parse(choice.command, text, "us-east-1", ("default",))
            assert isinstance(parsed, Invocation) and parsed.verb.name == verb and parsed.region == "us-east-1", text


@settings(max_examples=60, deadline=None)
@given(
    kind_verb=st.sampled_from(sorted(FORMS)),
    account=st.sampled_from(["", "prod", "a" * 63]),
    choices=st.lists(st.text(min_size=1, max_size=200), max_size=300),
    channel=st.text(max_size=40),
)
def test_any_form_fits_slack_s_modal_limits(kind_verb, account, choices, channel):
    kind, verb = kind_verb
    choice = MenuChoice(kind, verb, account, "ap-southeast-2", IDS[kind])
    for view in (
        item_modal(choice, channel),
        item_modal(choice, channel, dict.fromkeys(("azs", "types", "regions", "instances"), choices)),
    ):
        assert view["type"] == "modal" and len(view["blocks"]) <= 100
        assert len(view["title"]["text"]) <= 24 and len(view.get("submit", {}).get("text", "")) <= 24
        assert len(view["private_metadata"]) <= 3000
        for block in view["blocks"]:
            for option in block.get("element", {}).get("options", []):
                assert len(option["text"]["text"]) <= 75 and len(option["value"]) <= 150
            assert len(block.get("element", {}).get("options", [])) <= 100
        assert modal_choice(view) == (choice, channel)


def test_a_submission_reads_selects_and_text_and_names_what_is_missing():
    choice = MenuChoice("snapshot", "restore", "", "us-east-1", IDS["snapshot"])
    view = {
        "state": {
            "values": {
                "az": {"value": {"type": "static_select", "selected_option": {"value": "us-east-1a"}}},
                "type": {"value": {"type": "static_select", "selected_option": None}},
                "device": {"value": {"type": "plain_text_input", "value": "/dev/sdg"}},
            }
        }
    }
    values = modal_values(view)
    assert values == {"az": "us-east-1a", "type": "", "device": "/dev/sdg"}
    assert missing_fields(choice, values) == {"type": "Choose one."}
    assert command_text(choice, values) == f"restore {IDS['snapshot']} az=us-east-1a device=/dev/sdg region=us-east-1"


def test_a_typed_value_is_quoted_so_it_cannot_add_options():
    choice = MenuChoice("snapshot", "copy", "", "us-east-1", IDS["snapshot"])
    text = command_text(choice, {"to": "us-west-2", "description": "nightly region=eu-west-1 account=prod"})
    assert shlex.split(text)[-2:] == ["description=nightly region=eu-west-1 account=prod", "region=us-east-1"]
    parsed = parse("snapshot", text, "us-east-1", ("default", "prod"))
    assert parsed.region == "us-east-1" and parsed.account == ""


def test_a_usage_error_lands_on_the_field_it_is_about():
    choice = MenuChoice("volume", "attach", "", "us-east-1", IDS["volume"])
    values = {"instance": "i-nope", "device": "/dev/sdz"}
    assert field_of_error(choice, values, "`device=/dev/sdz`: expected a device name") == "device"
    assert field_of_error(choice, values, "`i-nope` is not a valid instance ID") == "instance"
    assert field_of_error(choice, values, "something else entirely") == "instance"  # the first field
    assert json.dumps(values)  # plain strings, as Slack's errors object needs
