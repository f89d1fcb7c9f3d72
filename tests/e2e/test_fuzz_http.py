"""Fuzzing the real app over HTTP: every slash command and interactive payload, signed like Slack.

Hypothesis writes hostile text (mentions, quotes, unicode, huge, options,
IDs real and fake) and hostile payloads; each example is one signed request
to the running bot (waitress, Bolt, the worker pool, moto, the fake Slack).
Whatever comes in:

- every request is answered, never with a 5xx;
- nothing logs a traceback or an error;
- nothing the bot sends to Slack carries a raw `<!channel>`, `<!here>`,
  `<!everyone>`, a link, or a `<@user>` mention of anyone but the people
  who acted;
- input the parser refuses makes no AWS call at all, and a command refused
  later (not found, not allowed, conflicting) makes no mutating one.

One bot serves all the examples of a test (starting one per example would
take minutes), so every check looks at what changed during its example:
new Slack calls, new log records, new audit rows, the gateway's call counter.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.slack import blocks
from bot.slack.commands import COMMANDS, HelpRequest, parse
from bot.slack.server import payload_problem
from bot.testing import slack_payloads
from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_instance, make_volume
from tests.support.harness import ALICE, BOB, CAROL, CHANNEL, SECRET, BotUnderTest, HttpResult

pytestmark = pytest.mark.e2e

EVIL = "<!channel> <!here> <!everyone> <@U0EVIL> <https://evil.example|click>"
PEOPLE = (ALICE, BOB, CAROL)
APPROVE, DENY = blocks.APPROVE_ACTION, blocks.DENY_ACTION
MUTATING = ("Create", "Delete", "Deregister", "Modify", "Run", "Copy", "Attach")
# Outcomes that mean "refused before acting": such a command must not have changed AWS.
REFUSED = {"usage", "refused", "not-found", "invalid", "conflict", "access-denied", "busy"}
# What Slack would turn into a ping or a link; the bot itself only ever mentions the people who acted, and
# links only to its own messages (a permalink Slack gave it: the fake Slack's are under /archives/).
RAW_MARKUP = re.compile(
    r"<!|<https?:(?!//fake\.slack\.test/archives/C0[A-Z0-9]+/p[0-9.]+\|)|<mailto:|<@(?!(?:U0ALICE|U0BOB|U0CAROL)>)"
)

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the bot, with an inventory whose names and descriptions are hostile -----------------------


@dataclasses.dataclass
class Inventory:
    volume: str
    instance: str
    snapshot: str
    image: str


@pytest.fixture
def fuzz_bot(make_bot, ec2, tmp_path) -> tuple[BotUnderTest, Inventory]:
    policy = daily_policy(keep=1)
    bot = make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))
    volume = make_volume(ec2, 8, Name=EVIL, Backup="daily")
    instance = make_instance(ec2, Name=EVIL)
    snapshot = ec2.create_snapshot(VolumeId=volume, Description=EVIL)["SnapshotId"]
    image = ec2.create_image(InstanceId=instance, Name="golden-web", Description=EVIL)["ImageId"]
    ec2.create_tags(Resources=[snapshot, image], Tags=[{"Key": "Name", "Value": EVIL}])
    return bot, Inventory(volume, instance, snapshot, image)


class Watch:
    """What one example changed: Slack calls, log records, audit rows, AWS calls."""

    def __init__(self, bot: BotUnderTest, caplog: pytest.LogCaptureFixture):
        self.bot, self.caplog = bot, caplog
        self.slack_calls = len(bot.slack.calls)
        self.records = len(caplog.records)
        self.audit_id = max((r["id"] for r in bot.deps.store.recent_audit(1)), default=0)
        self.aws = Counter(bot.deps.gateway.calls)

    def aws_calls(self) -> Counter[str]:
        return Counter(self.bot.deps.gateway.calls) - self.aws

    def mutations(self) -> list[str]:
        return sorted(a for a in self.aws_calls() if a.startswith(MUTATING))

    def audit_rows(self) -> list[dict]:
        return [r for r in self.bot.deps.store.recent_audit(50) if r["id"] > self.audit_id]

    def settle(self, audited: bool) -> None:
        """Wait until the example's work is over: its audit entry final, the pool idle, no watch left.

        Waiting on what the example leaves behind, not on time, so that a slow
        machine cannot push one example's AWS calls into the next one's count.
        """

        def over() -> bool:
            rows = self.audit_rows()
            final = (not audited or rows) and all(r["outcome"] != "accepted" for r in rows)
            return bool(final) and self.bot.deps.worker.pending == 0 and not self.bot.deps.store.active_watches()

        deadline = time.monotonic() + 15
        while not over():
            assert time.monotonic() < deadline, f"the example's work never finished: {self.audit_rows()}"
            time.sleep(0.02)

    def check(self, answer: HttpResult, audited: bool = False) -> None:
        """The checks every example passes, whatever it sent."""
        assert answer.status < 500, answer.body
        self.bot.settle()
        self.settle(audited)
        sent = [message_text(c.params) for c in self.bot.slack.calls[self.slack_calls :]]
        assert "Traceback" not in answer.body
        # The answer's message (an ack with text), not its raw body: URL verification must echo its challenge.
        for text in [answer.text, *sent]:
            assert not RAW_MARKUP.search(text), f"raw markup reaches Slack: {text[:500]!r}"
            assert "Traceback" not in text
        records = self.caplog.records[self.records :]
        bad = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
        assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


@pytest.fixture
def watching(caplog) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog


# --- slash commands ------------------------------------------------------------------------------------


def command_words(inv: Inventory) -> st.SearchStrategy[str]:
    words = [
        *(verb for verbs in COMMANDS.values() for verb in verbs),
        "help", "HELP", "all", "reboot", "keep-snapshots", "daily-db", "no-such-policy", "Nope!",
        inv.volume, inv.instance, inv.snapshot, inv.image, "123456789012",
        "vol-0123456789abcdef0", "snap-0123456789abcdef0", "ami-0123456789abcdef0", "i-0123456789abcdef0",
        "vol-123", "VOL-0123456789ABCDEF0", "snap-", "i-xyz", "ami-\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",
        "region=us-west-2", "region=", "region=mars-north-1", "to=us-west-2", "to=us-east-1", "az=us-east-1b",
        "type=gp3", "type=t3.micro", "type=<!here>", f"instance={inv.instance}", "device=/dev/sdf",
        "device=/dev/../sda", "limit=3", "limit=0", "limit=\u0665", "count=2", "count=100000", "key=ops",
        "name=fuzzed-ami", "name=<!channel>", "description=<!here>", '"description=<!channel> a b"', "frob=1",
        "<!channel>", "<!here>", "<!everyone>", "<@U0EVIL>", "<@U0EVIL|boss>", "<!subteam^S0EVIL>",
        "<https://evil.example|click me>", "<mailto:a@b.c|mail>", "&amp;", "&lt;!channel&gt;", "&", "<", ">",
        '"', "'", "\u201c", "\u201d", "\u2019", "\\", "`", "*bold*", "~", "\n", "\t", "\u200b", "\u202e", "🔥",
        "a\x00b", "'a\x01b'", "\ufffe",
        "x" * 300,
    ]  # fmt: skip
    return st.sampled_from(words)


def command_text(inv: Inventory) -> st.SearchStrategy[str]:
    pieces = st.one_of(command_words(inv), st.text(max_size=12))
    return st.one_of(
        st.lists(pieces, max_size=8).map(" ".join),
        st.lists(pieces, max_size=6).map("".join),  # glued: `vol-…<!channel>`, `to=us-west-2"`
        st.text(max_size=300),
        st.builds(lambda word, n: " ".join([word] * n), command_words(inv), st.integers(200, 4000)),  # huge
    )


def option_values(inv: Inventory) -> dict[str, list[str]]:
    return {
        "region": ["us-east-1", "us-west-2", "mars-north-1", ""],
        "to": ["us-west-2", "us-east-1"],
        "az": ["us-east-1a", "us-east-1b", "us-west-2a"],
        "type": ["gp3", "t3.micro", "io9", "<!here>"],
        "instance": [inv.instance, "i-0123456789abcdef0"],
        "device": ["/dev/sdf", "/dev/sdz", "/dev/sda"],
        "description": [f'"{EVIL}"', "nightly", "'a\x00b'"],
        "limit": ["3", "0", "\u0665"],
        "name": ["fuzz-ami", '"<!channel> x"', "ab"],
        "key": ["ops", '"<!here>"'],
        "count": ["1", "2", "9999"],
    }


def ids_of(inv: Inventory) -> dict[str, list[str]]:
    return {
        "volume": [inv.volume, "vol-0123456789abcdef0", "vol-123"],
        "snapshot": [inv.snapshot, "snap-0123456789abcdef0", "snap-<!channel>"],
        "image": [inv.image, "ami-0123456789abcdef0"],
        "instance": [inv.instance, "i-0123456789abcdef0"],
        "account": ["111122223333", "123456789012", "\u0661" * 12],
        "text": [EVIL, "nightly <!here>", "", "a\x00b"],
        "number": ["5", "0", "\u0665"],
        "policy": ["daily-db", "all", "Nope!"],
    }


@st.composite
def structured_command(draw, inv: Inventory) -> tuple[str, str]:
    """A command shaped like the grammar (a verb, its arguments, some options), often valid, often not quite."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    verb = draw(st.sampled_from(sorted(COMMANDS[command].values(), key=lambda v: v.name)))
    words = [] if verb.default and draw(st.booleans()) else [verb.name]
    ids, values = ids_of(inv), option_values(inv)
    for arg in verb.args:
        if draw(st.integers(0, 9)):  # now and then an argument is missing
            words.append(draw(st.sampled_from(ids[arg.kind])))
    keys = sorted(verb.required)
    if verb.options:
        keys += draw(st.lists(st.sampled_from(sorted(verb.options)), max_size=2, unique=True))
    if not draw(st.integers(0, 4)):
        keys.append(draw(st.sampled_from(["region", "frob"])))
    for key in dict.fromkeys(keys):
        words.append(f"{key}={draw(st.sampled_from(values.get(key, ['x'])))}")
    words += draw(st.lists(st.sampled_from(sorted(verb.flags)), max_size=1)) if verb.flags else []
    if not draw(st.integers(0, 4)):
        words.insert(draw(st.integers(0, len(words))), draw(command_words(inv)))
    return command, " ".join(words)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_slash_commands(fuzz_bot, watching, data):
    bot, inv = fuzz_bot
    if data.draw(st.booleans(), label="structured"):
        command, text = data.draw(structured_command(inv), label="command, text")
    else:
        command = data.draw(st.sampled_from(sorted(COMMANDS)), label="command")
        text = data.draw(command_text(inv), label="text")
    user = data.draw(st.sampled_from(PEOPLE), label="user")
    watch = Watch(bot, watching)

    try:
        parsed = parse(command, text, bot.config.aws.default_region)
    except UsageError:
        parsed = None

    answer = bot.command(f"/{command} {text}", user=user)

    watch.check(answer, audited=not isinstance(parsed, HelpRequest))
    assert answer.status == 200 and answer.text.strip(), "every command gets an answer in its ack"
    if parsed is None or isinstance(parsed, HelpRequest):
        assert not watch.aws_calls(), (
            f"/{command} {text!r} was refused or is help, yet AWS was called: {watch.aws_calls()}"
        )
    rows = watch.audit_rows()
    event("help" if isinstance(parsed, HelpRequest) else "outcome: " + ", ".join(sorted({r["outcome"] for r in rows})))
    if watch.mutations():
        event("mutated AWS")
    if rows and all(r["outcome"] in REFUSED for r in rows):
        assert not watch.mutations(), f"/{command} {text!r} was refused ({rows[0]['outcome']}) after mutating"


# --- interactive payloads -----------------------------------------------------------------------------


@pytest.fixture
def pending_request(fuzz_bot) -> str:
    """A real pending request (ALICE asks to delete the snapshot), for clicks to hit."""
    bot, inv = fuzz_bot
    bot.command(f"/snapshot delete {inv.snapshot}", user=ALICE)
    bot.settle()
    [message] = bot.approval_messages()
    return message_text(message).split("Request `")[1].split("`")[0]


def signed_form(fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    body = urlencode(fields)
    return body, slack_payloads.signed_headers(SECRET, body)


def block_actions(bot: BotUnderTest, user: object, action_id: object, value: object) -> dict:
    """A button click as Slack sends it, with whatever user, action_id and value."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": slack_payloads.TEAM_ID},
        "api_app_id": slack_payloads.APP_ID,
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": CHANNEL},
        "trigger_id": "1.abc",
        "team": {"id": slack_payloads.TEAM_ID, "domain": "demo"},
        "channel": {"id": CHANNEL, "name": "ops"},
        "message": {"type": "message", "ts": "1.000001", "text": "x", "blocks": []},
        "response_url": bot.slack.new_response_url(),
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": "1.2"}],
    }


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


def sometimes(draw, usual: st.SearchStrategy, odd: st.SearchStrategy, odds: int = 5):
    """Usually a value from `usual`, one time in `odds` one from `odd`."""
    return draw(odd if not draw(st.integers(0, odds - 1)) else usual)


@st.composite
def action_payloads(draw, bot: BotUnderTest, request_id: str) -> dict:
    """Clicks: on our buttons or others, with real, unknown or hostile request IDs, now and then mangled."""
    action_id = sometimes(draw, st.sampled_from([blocks.APPROVE_ACTION, blocks.DENY_ACTION]), st.text(max_size=30))
    value = sometimes(
        draw,
        st.sampled_from([request_id, "req-00000000", "req-", "", EVIL, "'; DROP TABLE approvals; --", "x" * 5000])
        | st.just(request_id)
        | st.text(max_size=60),
        JSONISH,
    )
    user = sometimes(draw, st.sampled_from([ALICE, CAROL, BOB, "", "U0EVIL"]), JSONISH)
    payload = block_actions(bot, user, action_id, value)
    if not draw(st.integers(0, 2)):  # mangle the envelope: a field dropped, or replaced by junk
        fields = ["user", "user", "actions", "type", "response_url", "channel", "container", "message"]
        key = draw(st.sampled_from(fields))
        if not draw(st.integers(0, 2)):
            del payload[key]
        else:
            junk = st.sampled_from(["U0ALICE", "view_submission", "block_suggestion", "garbage", ""])
            payload[key] = draw(junk | st.text(max_size=10) | JSONISH)
    return payload


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_block_actions(fuzz_bot, pending_request, watching, data):
    bot, _ = fuzz_bot
    payload = data.draw(action_payloads(bot, pending_request), label="payload")
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    user = payload.get("user")
    # The one valid click (the approver approving the real request) is not fuzz: it would execute.
    assume(not (isinstance(user, dict) and user.get("id") == BOB and action.get("value") == pending_request))
    watch = Watch(bot, watching)

    # A well-formed click on one of our buttons reaches the listener, and every decision is audited:
    # waiting for that entry is waiting for the listener (and the worker) to be done with it.
    ours = payload.get("type") == "block_actions" and action.get("action_id") in (APPROVE, DENY)
    reaches_listener = ours and payload_problem(payload) is None

    answer = bot.post(*signed_form({"payload": json.dumps(payload)}))

    watch.check(answer, audited=reaches_listener)
    event(f"HTTP {answer.status}: " + ", ".join(sorted({r["outcome"] for r in watch.audit_rows()})))
    assert not watch.mutations()
    [row] = [r for r in bot.deps.store.db["approvals"].rows]
    assert row["state"] == "pending"


FORM = "application/x-www-form-urlencoded"
ODD_BODIES = {
    "payload-not-json": (urlencode({"payload": "{not json"}), FORM),
    "payload-a-list": (urlencode({"payload": "[1, 2, 3]"}), FORM),
    "payload-a-string": (urlencode({"payload": json.dumps("block_actions")}), FORM),
    "payload-null": (urlencode({"payload": "null"}), FORM),
    "payload-empty": (urlencode({"payload": ""}), FORM),
    "payload-huge-string": (urlencode({"payload": json.dumps("x" * 500_000)}), FORM),
    "payload-too-deep": (urlencode({"payload": "[" * 50_000 + "]" * 50_000}), FORM),
    "no-fields": ("", FORM),
    "command-without-text": (urlencode({"command": "/snapshot", "user_id": ALICE, "channel_id": CHANNEL}), FORM),
    "unknown-command": (urlencode({"command": "/frobnicate", "text": "<!channel>", "user_id": ALICE}), FORM),
    "command-and-payload": (urlencode({"command": "/snapshot", "text": "list", "payload": "{}"}), FORM),
    "ssl-check": (urlencode({"ssl_check": "1", "token": "x"}), FORM),
    "url-verification": (json.dumps({"type": "url_verification", "challenge": "<!channel>"}), "application/json"),
    "event": (json.dumps({"type": "event_callback", "event": {"type": "app_mention", "text": "<!channel>"}}), FORM),
    "json-not-json": ("{not json", "application/json"),
    "json-command-with-a-dict-text": (json.dumps({"command": "/snapshot", "text": {"a": 1}}), "application/json"),
    "binary": ("\xff\xfe binary", "application/octet-stream"),
    "truncated-payload-as-text": ("payload=%7B%22type%22%3A", "text/plain"),
}


def test_odd_signed_bodies_get_a_clean_answer_and_change_nothing(bot, watching):
    """Bodies Slack never sends, validly signed: a 4xx or a harmless 200, never a 500 or a traceback."""
    answers = {}
    for name, (body, content_type) in ODD_BODIES.items():
        watch = Watch(bot, watching)
        headers = {**slack_payloads.signed_headers(SECRET, body), "Content-Type": content_type}
        answer = bot.post(body, headers)
        watch.check(answer)
        assert not watch.aws_calls(), name
        answers[name] = answer.status
    assert answers["payload-not-json"] == answers["payload-a-list"] == answers["json-not-json"] == 400
    assert answers["ssl-check"] == 200


# --- AWS text shown back: every list, status and plan ---------------------------------------------------


def test_hostile_aws_names_never_ping_anyone(fuzz_bot, watching):
    """Names, descriptions and tags carrying mentions, through every command that shows them."""
    bot, inv = fuzz_bot
    lines = [
        "/snapshot list",
        f"/snapshot list {inv.volume}",
        f"/snapshot status {inv.snapshot}",
        "/volume list",
        "/instance list",
        "/ami list",
        f"/ami create {inv.instance} name=golden-reboot reboot",  # an approval whose title names the instance
        f"/ami deregister {inv.image}",
        f"/ami share {inv.image} 111122223333",
        f"/snapshot delete {inv.snapshot}",
        "/chatops approvals",
        "/chatops audit",
        "/lifecycle preview all",
        "/lifecycle digest",
    ]
    for line in lines:
        watch = Watch(bot, watching)
        watch.check(bot.command(line, user=ALICE), audited=True)
    everything = "\n".join(bot.slack.texts())
    assert "&lt;!channel&gt;" in everything  # the hostile names were shown, escaped
    assert len(bot.approval_messages()) == 4
    assert not [a for a in bot.deps.gateway.calls if a.startswith(MUTATING)]
