"""/ami grammar, AMI Block Kit builders and the launch cap setting: pure, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.aws.models import BackingSnapshot, Image, Instance
from bot.config import parse_config
from bot.domain.amis import ImageRow
from bot.errors import ConfigError, UsageError
from bot.slack import blocks
from bot.slack.commands import COMMANDS, Invocation, parse

AMI = "ami-0123456789abcdef0"
INST = "i-0123456789abcdef0"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def ok(text: str) -> Invocation:
    parsed = parse("ami", text, "us-east-1")
    assert isinstance(parsed, Invocation)
    return parsed


@pytest.mark.parametrize(
    "name",
    ["web", "golden web (v1) [2026-11]", "team/web.golden-1", "bob's image", "ops@prod_1", "x" * 128],
)
def test_create_accepts_every_aws_ami_name_character(name):
    inv = ok(f'create {INST} "name={name}"')
    assert inv.verb.name == "create" and inv.options["name"] == name and inv.args["instance_id"] == INST


def test_create_with_description_and_region():
    inv = ok(f'create {INST} name=golden description="before deploy" region=us-west-2')
    assert inv.options["description"] == "before deploy" and inv.region == "us-west-2"


def test_launch_defaults_and_options():
    inv = ok(f"launch {AMI}")
    assert inv.args["image_id"] == AMI and inv.options == {}
    inv = ok(f"launch {AMI} type=m7g.2xlarge key=ops-key count=3")
    assert inv.options == {"type": "m7g.2xlarge", "key": "ops-key", "count": 3}


def test_copy_unshare_list():
    assert ok(f"copy {AMI} to=us-west-2 name=dr-web").options == {"to": "us-west-2", "name": "dr-web"}
    inv = ok(f"unshare {AMI} 111122223333")
    assert inv.args == {"image_id": AMI, "account_id": "111122223333"}
    assert ok("list limit=5").options == {"limit": 5}


@pytest.mark.parametrize(
    "text, complaint",
    [
        (f"create {INST}", "missing `name=`"),
        ("create name=golden", "missing instance ID"),
        (f"create {INST} name=ab", "AMI name"),
        (f"create {INST} name=golden*", "AMI name"),
        (f"create {INST} name={'x' * 129}", "AMI name"),
        ("create i-123 name=golden", "not a valid instance ID"),
        ("launch", "missing image ID"),
        ("launch ami-12", "not a valid image ID"),
        (f"launch {AMI} type=gp3", "instance type"),
        (f"launch {AMI} type=t3", "instance type"),
        (f"launch {AMI} count=0", "number of instances"),
        (f"launch {AMI} count=two", "number of instances"),
        (f"launch {AMI} count=-1", "number of instances"),
        (f"launch {AMI} size=8", "unknown option `size=`"),
        (f"copy {AMI}", "missing `to=`"),
        (f"copy {AMI} to=mars-1", "AWS region"),
        (f"copy {AMI} to=us-west-2 name=a", "AMI name"),
        (f"unshare {AMI}", "missing account ID"),
        (f"unshare {AMI} 12345", "not a valid account ID"),
        (f"unshare {AMI} 1234567890123", "not a valid account ID"),
        ("frobnicate", "unknown sub-command"),
    ],
)
def test_malformed_ami_commands_get_usage(text, complaint):
    with pytest.raises(UsageError) as info:
        parse("ami", text, "us-east-1")
    assert complaint in info.value.message
    assert "Usage: /ami" in str(info.value)


def test_destructive_verbs_are_marked():
    assert {v.name for v in COMMANDS["ami"].values() if v.destructive} == {"share", "deregister"}
    assert ok(f"create {INST} name=golden reboot").flags == {"reboot"}


def test_destructive_verbs_parse():
    inv = ok(f"share {AMI} 111122223333")
    assert inv.verb.destructive and inv.args["account_id"] == "111122223333"
    inv = ok(f"deregister {AMI} keep-snapshots")
    assert inv.flags == {"keep-snapshots"}
    assert ok(f"deregister {AMI}").flags == frozenset()
    for bad in (f"share {AMI} 12", f"share {AMI}", "deregister", f"deregister {AMI} keep"):
        with pytest.raises(UsageError):
            parse("ami", bad, "us-east-1")


def test_launch_type_is_an_instance_type_but_restore_type_stays_a_volume_type():
    assert parse("snapshot", "restore snap-0123456789abcdef0 type=gp3", "us-east-1").options["type"] == "gp3"
    with pytest.raises(UsageError):
        parse("snapshot", "restore snap-0123456789abcdef0 type=t3.micro", "us-east-1")


# --- config ---------------------------------------------------------------------------------


def test_launch_max_count_default_and_validation():
    assert parse_config({}).aws.launch_max_count == 5
    assert parse_config({"aws": {"launch_max_count": 20}}).aws.launch_max_count == 20
    for bad in (0, "5", 2.5):
        with pytest.raises(ConfigError) as info:
            parse_config({"aws": {"launch_max_count": bad}})
        assert info.value.key == "aws.launch_max_count"


# --- builders ---------------------------------------------------------------------------------


def image(name: str = "golden", state: str = "available", **kw) -> Image:
    return Image(
        id=AMI,
        region="us-east-1",
        name=name,
        state=state,
        creation_date=NOW - timedelta(days=2),
        snapshot_ids=("snap-0123456789abcdef0", "snap-0123456789abcdef1"),
        backing=(BackingSnapshot("snap-0123456789abcdef0", 8), BackingSnapshot("snap-0123456789abcdef1", 100)),
        **kw,
    )


def test_ami_list_shows_snapshots_sharing_usage_and_escapes_names():
    rows = [
        ImageRow(image("<!channel> golden"), ("111122223333",), 3),
        ImageRow(image("idle"), (), 0),
    ]
    msg = blocks.ami_list(rows, 2, "us-east-1", NOW)
    text = str(msg["blocks"])
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "`snap-0123456789abcdef0` 8 GiB" in text and "108 GiB in all" in text
    assert "shared with `111122223333`" in text and "not shared" in text
    assert "*in use* by 3 instances" in text and "no instances" in text
    assert "2d ago" in text


def test_ami_list_caps_a_long_list():
    rows = [ImageRow(image(f"image-{n}"), (), 0) for n in range(60)]
    msg = blocks.ami_list(rows, 60, "us-east-1", NOW)
    assert len(msg["blocks"]) <= blocks.MAX_BLOCKS
    assert "…and 10 more" in str(msg["blocks"])
    assert all(len(b["text"]["text"]) <= blocks.MAX_SECTION for b in msg["blocks"] if b["type"] == "section")


def test_image_progress_lists_backing_snapshots_when_available():
    done = blocks.image_progress(image(), NOW, requested_by="U0ALICE", source=INST)
    assert ":white_check_mark:" in done["text"] and INST in done["text"]
    assert "snap-0123456789abcdef1` 100 GiB" in str(done["blocks"]) and f"/ami launch {AMI}" in str(done["blocks"])
    pending = blocks.image_progress(image(state="pending"), NOW)
    assert "pending" in pending["text"] and "Backing snapshots" not in str(pending["blocks"])
    assert ":x:" in blocks.image_progress(image(state="failed"), NOW)["text"]


def test_launch_progress_lists_every_instance_and_its_state():
    def inst(n: int, state: str) -> Instance:
        return Instance(f"i-0{n}23456789abcdef0", "us-east-1", state, "t3.micro", AMI, "us-east-1a", NOW)

    pending = blocks.launch_progress([inst(0, "pending"), inst(1, "running")], AMI, "golden", "us-east-1", "U0A")
    assert "Launching 2 instances" in pending["text"]
    assert "i-0023456789abcdef0" in str(pending["blocks"]) and "pending" in str(pending["blocks"])
    running = blocks.launch_progress([inst(0, "running"), inst(1, "running")], AMI, "golden", "us-east-1")
    assert "2 instances running" in running["text"]


def test_every_ami_verb_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for verb in COMMANDS["ami"].values():
        assert f"`{verb.usage}`" in readme, verb.usage


def test_quoted_names_from_slack():
    assert ok(f'create {INST} name="web golden 1"').options["name"] == "web golden 1"
    assert ok(f"create {INST} name=\u201cweb golden 2\u201d").options["name"] == "web golden 2"  # Slack's smart quotes
