"""Block Kit builders: pure, escaped, and inside Slack's limits whatever the input."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.aws.models import Attachment, BackingSnapshot, Image, Instance, Snapshot, Volume
from bot.domain.amis import ImageRow
from bot.domain.plans import ItemResult, Plan, PlanItem
from bot.errors import BotError, NotFound, UsageError
from bot.slack import blocks
from bot.slack.blocks import common
from bot.slack.commands import COMMANDS

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EVIL = "<!channel> <@U0EVIL> <!here> Tom & Jerry <https://evil.example|click me>"
RAW_MARKUP = ["<!channel>", "<@U0EVIL>", "<!here>", "Tom & Jerry", "<https://evil.example"]
LONG = "Backup & restore <!channel> before the big migration of the primary database cluster " * 4  # > 255


# --- fixtures: result objects with hostile text ---------------------------------------------------


def snapshot(i: int = 0, description: str = EVIL, **changes) -> Snapshot:
    fields = dict(
        id=f"snap-{i:017x}",
        region="us-east-1",
        volume_id=f"vol-{i:017x}",
        state="completed",
        progress="100%",
        size_gib=8 + i % 100,
        start_time=NOW - timedelta(hours=i + 1),
        description=description,
        tags={"Name": EVIL, "Owner & Team": "<@U0EVIL>"},
        encrypted=bool(i % 2),
        owner_id="123456789012",
    )
    return Snapshot(**{**fields, **changes})


def volume(i: int = 0, **changes) -> Volume:
    fields = dict(
        id=f"vol-{i:017x}",
        region="us-east-1",
        state="in-use",
        size_gib=100,
        volume_type="gp3",
        az="us-east-1a",
        create_time=NOW - timedelta(days=3),
        attachments=(Attachment(f"i-{i:017x}", "/dev/sdf", "attached"),),
        snapshot_id="",
        tags={"Name": EVIL + " " + "x" * 200},
    )
    return Volume(**{**fields, **changes})


def instance(i: int = 0, **changes) -> Instance:
    fields = dict(
        id=f"i-{i:017x}",
        region="us-east-1",
        state="running",
        instance_type="t3.micro",
        image_id=f"ami-{i:017x}",
        az="us-east-1a",
        launch_time=NOW - timedelta(days=1),
        tags={"Name": EVIL + " " + "y" * 200},
        volume_ids=(f"vol-{i:017x}",),
    )
    return Instance(**{**fields, **changes})


def image(i: int = 0, **changes) -> Image:
    fields = dict(
        id=f"ami-{i:017x}",
        region="us-east-1",
        name=EVIL,
        state="available",
        creation_date=NOW - timedelta(days=2),
        snapshot_ids=(f"snap-{i:017x}",),
        description=EVIL,
        tags={"Name": EVIL},
    )
    return Image(**{**fields, **changes})


def audit_row(i: int = 0) -> dict:
    return {
        "id": i,
        "at": (NOW - timedelta(minutes=i)).isoformat(),
        "user": "U0ALICE",
        "channel": "C0OPS",
        "action": f"/snapshot vol-{i:017x} {EVIL}",
        "outcome": "ok",
        "detail": f"entry-{i:05d} " + EVIL + " " + LONG,
    }


def approval_row(state: str = "pending", **changes) -> dict:
    """A stored approval request whose plan carries AWS text (an instance Name, a detail, a warning)."""
    plan = Plan(
        kind="create-image-reboot",
        region="us-east-1",
        title=f"Reboot i-1234abcd ({EVIL}) to create AMI “golden”",
        items=(PlanItem("i-1234abcd", "instance", 8, f"t3.micro, running {EVIL}", goes_with=(EVIL,)),),
        gib_freed=8,
        usd_month_freed=0.4,
        warnings=(f"i-1234abcd ({EVIL}) will be unavailable while it reboots",),
    )
    row = {
        "id": "req-0123456789",
        "kind": plan.kind,
        "region": plan.region,
        "plan": plan.to_dict(),
        "state": state,
        "requester": "U0ALICE",
        "channel": "C0OPS",
        "expires_at": (NOW + timedelta(hours=1)).isoformat(),
        "decided_by": "" if state == "pending" else "U0BOB",
        "result": None,
    }
    return {**row, **changes}


# --- invariants ---------------------------------------------------------------------------


def texts(msg: dict) -> list[str]:
    """Every string Slack would render from the message (fallback text and blocks)."""
    found = [msg["text"]]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(msg["blocks"])
    return found


def assert_within_limits(msg: dict) -> None:
    assert set(msg) >= {"text", "blocks"}
    assert isinstance(msg["text"], str) and msg["text"].strip(), "a text fallback is always present"
    assert len(msg["text"]) <= blocks.MAX_FALLBACK
    assert 1 <= len(msg["blocks"]) <= blocks.MAX_BLOCKS == 50
    block_ids = [b["block_id"] for b in msg["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    for block in msg["blocks"]:
        kind = block["type"]
        if kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            for f in block.get("fields", []):
                assert len(f["text"]) <= 2000
        elif kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= 150
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                assert len(element.get("text", "")) <= 3000
        elif kind == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= 75
        else:
            assert kind in ("divider", "image", "input", "rich_text"), kind


def assert_escaped(msg: dict) -> None:
    rendered = "\n".join(texts(msg))
    for raw in RAW_MARKUP:
        assert raw not in rendered, f"{raw!r} reaches Slack unescaped"
    assert "&lt;!channel&gt;" in rendered
    assert "Tom &amp; Jerry" in rendered or "Tom &amp;" in rendered


def more_count(msg: dict) -> int | None:
    for text in texts(msg)[1:]:
        match = re.search(r"…and (\d+) more", text)
        if match:
            return int(match.group(1))
    return None


def shown(msg: dict, pattern: str) -> int:
    """How many distinct items (by ID) the blocks show."""
    body = "\n".join(texts(msg)[1:])
    return len(set(re.findall(pattern, body)))


# --- every builder that shows user or AWS text -------------------------------------------------------

BUILDERS = {
    "error": lambda: blocks.error(BotError(f"snapshot {EVIL} failed", f"Try {EVIL}")),
    "error-usage": lambda: blocks.error(UsageError(f"`{EVIL}`: unknown sub-command.", f"/snapshot {EVIL}")),
    "error-notfound": lambda: blocks.error(NotFound(f"{EVIL} not found in us-east-1.", "Check the ID")),
    "apology": lambda: blocks.apology(EVIL),
    "working": lambda: blocks.working(f"/snapshot vol-1234abcd {EVIL}"),
    "audit_list": lambda: blocks.audit_list([audit_row(i) for i in range(3)], NOW),
    "snapshot_list": lambda: blocks.snapshot_list([snapshot(i) for i in range(3)], 3, "us-east-1", NOW, None),
    "snapshot_progress-pending": lambda: blocks.snapshot_progress(
        snapshot(state="pending", progress="42% <!channel>"), NOW, requested_by="U0ALICE"
    ),
    "snapshot_progress-completed": lambda: blocks.snapshot_progress(snapshot(), NOW, requested_by="U0ALICE"),
    "snapshot_progress-error": lambda: blocks.snapshot_progress(snapshot(state="error"), NOW),
    "snapshot_status": lambda: blocks.snapshot_status(snapshot(state="pending", progress="<!channel>"), NOW),
    "watch_timed_out": lambda: blocks.watch_timed_out(f"snap-1234abcd {EVIL}", timedelta(hours=6), EVIL),
    "volume_list": lambda: blocks.volume_list([(volume(i), NOW) for i in range(3)], 3, "us-east-1", NOW),
    "volume_progress-attach-error": lambda: blocks.volume_progress(
        volume(state="available", attachments=()), "snap-1234abcd", "U0ALICE", attach_error=EVIL
    ),
    "volume_progress-attaching": lambda: blocks.volume_progress(
        volume(state="available", attachments=(), volume_type=EVIL),
        "snap-1234abcd",
        "U0ALICE",
        attach={"instance_id": "i-1234abcd", "device": EVIL},
    ),
    "volume_progress-attached": lambda: blocks.volume_progress(
        volume(attachments=(Attachment("i-1234abcd", EVIL, "attached"),)), "snap-1234abcd", "U0ALICE"
    ),
    "volume_progress-creating": lambda: blocks.volume_progress(
        volume(state="creating", attachments=(), az=EVIL), "snap-1234abcd", ""
    ),
    "volume_attached": lambda: blocks.volume_attached("vol-1234abcd", "i-1234abcd", EVIL, "us-east-1"),
    "instance_list": lambda: blocks.instance_list(
        [instance(i) for i in range(3)], 3, "us-east-1", NOW, {f"ami-{i:017x}": EVIL for i in range(3)}
    ),
    "approval_message-pending": lambda: blocks.approval_message(approval_row(), NOW),
    "approval_message-done": lambda: blocks.approval_message(
        approval_row("done"), NOW, [{"resource_id": "i-1234abcd", "outcome": "done", "reason": f"made {EVIL}"}]
    ),
    "approval_message-unknown-state": lambda: blocks.approval_message(approval_row(EVIL), NOW),
    "approval_message-hostile-everywhere": lambda: blocks.approval_message(
        approval_row(
            "failed",
            id=f"req-{EVIL}",
            requester=EVIL,
            decided_by=EVIL,
            plan={**approval_row()["plan"], "items": [{"resource_id": EVIL, "kind": "snapshot", "size_gib": 8}]},
        ),
        NOW,
        [
            {"resource_id": EVIL, "outcome": "failed", "reason": f"AWS said {EVIL}"},
            {"resource_id": f"snap-{EVIL}", "outcome": "done", "reason": f"went with it {EVIL}"},  # not planned
        ],
    ),
    "approvals_list": lambda: blocks.approvals_list([approval_row()], NOW),
    "approvals_list-hostile-everywhere": lambda: blocks.approvals_list(
        [approval_row(id=f"req-{EVIL}", requester=EVIL)], NOW
    ),
    "already_decided": lambda: blocks.already_decided(EVIL, EVIL),
    "refusal": lambda: blocks.refusal(f"I have no request {EVIL}; nothing changed."),
    "image_unshared": lambda: blocks.image_unshared(ItemResult(EVIL, "failed", f"AWS said {EVIL}"), "us-east-1"),
    "image_progress-pending": lambda: blocks.image_progress(image(state="pending"), NOW, "AMI", "U0ALICE", EVIL),
    "image_progress-available": lambda: blocks.image_progress(
        image(backing=(BackingSnapshot(EVIL, 8),)), NOW, "AMI copy", "U0ALICE", EVIL
    ),
    "ami_list": lambda: blocks.ami_list([ImageRow(image(i), (EVIL,), i) for i in range(3)], 3, "us-east-1", NOW),
    "launch_progress": lambda: blocks.launch_progress([instance(i) for i in range(3)], EVIL, EVIL, "us-east-1"),
    "posted_elsewhere": lambda: blocks.posted_elsewhere(f"Request {EVIL}", "C0OPS"),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_escapes_user_and_aws_text(name):
    msg = BUILDERS[name]()
    assert_within_limits(msg)
    assert_escaped(msg)


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_is_pure(name):
    first, second = BUILDERS[name](), BUILDERS[name]()
    assert first == second
    json.dumps(first)  # plain data: serialisable as Slack gets it


def test_builders_do_not_mutate_their_input():
    snaps = [snapshot(i) for i in range(60)]
    rows = [audit_row(i) for i in range(60)]
    before = copy.deepcopy((snaps, rows))
    blocks.snapshot_list(snaps, 60, "us-east-1", NOW, None)
    blocks.audit_list(rows, NOW)
    assert (snaps, rows) == before


def test_tags_are_escaped():
    text = blocks.tags_text({"a&b": "<!here>"})
    assert text == "`a&amp;b=&lt;!here&gt;`"
    assert blocks.tags_text({}) == "_none_"


@pytest.mark.parametrize("text, expected", [("a<b>&c", "a&lt;b&gt;&amp;c"), ("&amp;", "&amp;amp;"), (42, "42")])
def test_escape(text, expected):
    assert blocks.escape(text) == expected


def test_the_shared_formats_escape_what_they_show():
    # IDs, states and account names come from AWS and config: shown, never parsed.
    assert common.id_list(["<!here>", "a&b"]) == "`&lt;!here&gt;`, `a&amp;b`"
    assert common.state("<!here>") == ":grey_question: &lt;!here&gt;"
    msg = blocks.in_account(blocks.message("hi", [blocks.section("x")]), EVIL)
    assert_escaped({"text": "&lt;!channel&gt; Tom &amp;", "blocks": msg["blocks"]})  # the fallback is plain text


# --- lists: 0, 1, 60, 5000 items, long descriptions ----------------------------------------------------


def snapshot_list(n: int, shown_items: int | None = None) -> dict:
    snaps = [snapshot(i, description=LONG[:255]) for i in range(n)]
    return blocks.snapshot_list(snaps[:shown_items] if shown_items else snaps, n, "us-east-1", NOW, None)


def volume_list(n: int, shown_items: int | None = None) -> dict:
    rows = [(volume(i, tags={"Name": LONG[:256]}), NOW - timedelta(days=i) if i % 3 else None) for i in range(n)]
    return blocks.volume_list(rows[:shown_items] if shown_items else rows, n, "us-east-1", NOW)


def instance_list(n: int, shown_items: int | None = None) -> dict:
    insts = [instance(i, tags={"Name": LONG[:256]}) for i in range(n)]
    return blocks.instance_list(insts[:shown_items] if shown_items else insts, n, "us-east-1", NOW)


def audit_list(n: int, shown_items: int | None = None) -> dict:
    rows = [audit_row(i) for i in range(n)]
    return blocks.audit_list(rows[:shown_items] if shown_items else rows, NOW)


LISTS = {
    "snapshots": (snapshot_list, r"snap-[0-9a-f]{17}"),
    "volumes": (volume_list, r"`vol-[0-9a-f]{17}`"),
    "instances": (instance_list, r"`i-[0-9a-f]{17}`"),
    "audit": (audit_list, r"entry-\d{5}"),
}


@pytest.mark.parametrize("n", [0, 1, 60, 5000])
@pytest.mark.parametrize("kind", LISTS)
def test_lists_stay_within_limits_and_count_the_rest(kind, n):
    build, pattern = LISTS[kind]
    msg = build(n)
    assert_within_limits(msg)
    shown_n = shown(msg, pattern)
    more = more_count(msg)
    if n == 0:
        assert shown_n == 0 and more is None
        assert len(msg["blocks"]) >= 1 and msg["text"]
    elif n == 1:
        assert shown_n == 1 and more is None
    else:
        assert 1 <= shown_n < n
        assert more == n - shown_n, f"shows {shown_n} of {n} but says …and {more} more"
    assert str(n) in msg["text"] or n == 0


@pytest.mark.parametrize("kind", ["snapshots", "volumes", "instances"])
def test_a_page_of_a_longer_list_counts_the_whole_total(kind):
    build, pattern = LISTS[kind]
    msg = build(5000, shown_items=50)
    assert_within_limits(msg)
    assert more_count(msg) == 5000 - shown(msg, pattern)


@pytest.mark.parametrize("length", [1, 255, 5000])
def test_long_descriptions_full_of_escapes_stay_within_limits(length):
    desc = ("&<>" * length)[:length]
    for msg in (
        blocks.snapshot_status(snapshot(description=desc), NOW),
        blocks.snapshot_progress(snapshot(description=desc), NOW),
        blocks.snapshot_list([snapshot(i, description=desc) for i in range(200)], 200, "us-east-1", NOW, None),
    ):
        assert_within_limits(msg)


def test_snapshot_status_with_fifty_long_tags_stays_within_limits():
    tags = {f"key-{i:02d}-" + "k" * 100: "<!channel>" * 25 for i in range(50)}
    msg = blocks.snapshot_status(snapshot(tags=tags), NOW)
    assert_within_limits(msg)
    assert "<!channel>" not in json.dumps(msg)


def test_message_caps_blocks_at_fifty():
    msg = blocks.message("many", [blocks.section(f"line {i}") for i in range(80)])
    assert_within_limits(msg)
    assert len(msg["blocks"]) == 50
    assert "31 more" in msg["blocks"][-1]["elements"][0]["text"]


def test_section_and_header_are_clipped():
    assert len(blocks.section("x" * 10_000)["text"]["text"]) == 3000
    assert len(blocks.header("x" * 1000)["text"]["text"]) == 150
    assert len(blocks.context("x" * 10_000)["elements"][0]["text"]) == 3000
    assert len(blocks.message("x" * 10_000, [blocks.section("x")])["text"]) == blocks.MAX_FALLBACK


@pytest.mark.parametrize(
    "delta, expected", [(timedelta(seconds=5), "5s"), (timedelta(minutes=3), "3m"), (timedelta(hours=5), "5h")]
)
def test_age(delta, expected):
    assert blocks.age(NOW, NOW - delta) == expected
    assert blocks.age(NOW, NOW + delta) == "0s"  # a clock skew never shows a negative age


def test_age_of_nothing():
    assert blocks.age(NOW, None) == "never"


# --- help -----------------------------------------------------------------------------------


def test_help_lists_every_verb_of_every_command():
    msg = blocks.help_message()
    assert_within_limits(msg)
    rendered = "\n".join(texts(msg))
    for command, verbs in COMMANDS.items():
        assert f"*/{command}*" in rendered
        for verb in verbs.values():
            assert blocks.escape(verb.usage) in rendered, verb.usage
            assert blocks.escape(verb.summary) in rendered, verb.summary
    assert "region=" in rendered


def test_chatops_help_is_the_full_help():
    assert blocks.help_message("chatops") == blocks.help_message()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_for_one_command(command):
    msg = blocks.help_message(command)
    assert_within_limits(msg)
    rendered = "\n".join(texts(msg))
    for verb in COMMANDS[command].values():
        assert blocks.escape(verb.usage) in rendered
    if command != "chatops":  # /chatops help is the full help
        for other in set(COMMANDS) - {command}:
            assert f"*/{other}*" not in rendered


# Plain IDs (command-verb): a usage string with brackets and slashes is not a node ID pytest can select.
@pytest.mark.parametrize(
    "verb", [v for vs in COMMANDS.values() for v in vs.values()], ids=lambda v: f"{v.command}-{v.name}"
)
def test_help_for_one_verb(verb):
    msg = blocks.help_message(verb.command, verb)
    assert_within_limits(msg)
    rendered = "\n".join(texts(msg))
    assert blocks.escape(verb.usage) in rendered and blocks.escape(verb.summary) in rendered
    assert (":lock:" in rendered) == verb.destructive
