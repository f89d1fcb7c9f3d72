"""Slash-command grammar: the registry of verbs, and a pure parser.

Every sub-command is a `Verb`: its positional arguments, its `key=value`
options and bare-word flags.  `parse()` turns the text Slack sends into an
`Invocation` or raises `UsageError` carrying the verb's usage line, so a
malformed ID, a missing argument or an unknown option never reaches AWS.
The same table drives `/chatops help`, the per-command help, and the app
manifest, so none of them can drift from what the parser accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import parse_duration
from bot.domain.amis import AMI_NAME_PATTERN
from bot.errors import UsageError

# Digits are spelled [0-9], never \d or str.isdigit(): those accept every Unicode
# decimal digit ("١٢٣", "１２３"), which AWS would refuse or int() read as another number.
_HEX = r"(?:[0-9a-f]{8}|[0-9a-f]{17})"
ID_PATTERNS: dict[str, re.Pattern] = {
    "volume": re.compile(rf"^vol-{_HEX}$"),
    "snapshot": re.compile(rf"^snap-{_HEX}$"),
    "image": re.compile(rf"^ami-{_HEX}$"),
    "instance": re.compile(rf"^i-{_HEX}$"),
    "account": re.compile(r"^[0-9]{12}$"),
}
ID_PREFIXES = {"volume": "vol-", "snapshot": "snap-", "image": "ami-", "instance": "i-"}
ID_EXAMPLES = {
    "volume": "vol-0123456789abcdef0",
    "snapshot": "snap-0123456789abcdef0",
    "image": "ami-0123456789abcdef0",
    "instance": "i-0123456789abcdef0",
    "account": "123456789012",
}
POLICY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_OPTION_TOKEN = re.compile(r"^([a-z][a-z_-]*)=(.*)$", re.DOTALL)


def is_id(kind: str, text: str) -> bool:
    return bool(ID_PATTERNS[kind].fullmatch(text))


# --- option validators: value → normalised value, or ValueError ---------------


@dataclass(frozen=True)
class Option:
    """A `key=value` option: how to check the value, and what it expects."""

    expect: str
    check: Callable[[str], object]


def _matches(pattern: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError
        return value

    return check


def _region(value: str) -> str:
    from bot.aws.gateway import known_regions  # here, not at the top: the grammar imports no boto3 until it must

    if value not in known_regions():
        raise ValueError
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError
        return value

    return check


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        if not re.fullmatch("[0-9]{1,9}", value) or not low <= int(value) <= high:
            raise ValueError
        return int(value)

    return check


# EC2 answers in XML 1.0, which cannot carry these: stored in a description, one would break
# every later listing that returns it (botocore cannot parse the answer).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _storable(text: str, what: str, usage: str) -> str:
    """`text` unchanged, or UsageError naming the first character EC2 could not store and return."""
    bad = _NOT_XML.search(text)
    if bad:
        raise UsageError(f"{what} has a character AWS cannot store (U+{ord(bad.group()):04X}); remove it.", usage)
    return text


def _any_text(value: str) -> str:
    if not value.strip():
        raise ValueError
    return value


REGION = Option("an AWS region like us-west-2", _region)
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")  # as config.toml names accounts
ACCOUNT = Option("an account name from config.toml, like prod", _matches(ACCOUNT_NAME.pattern))
# The commands that act on AWS resources take `account=`; policies say which accounts they cover in config.toml.
ACCOUNT_COMMANDS = frozenset({"snapshot", "volume", "instance", "ami"})


def _until(value: str) -> str:
    """`until=`: a duration (4h, 2d) or a UTC date or time; the handler checks it is ahead, against its clock."""
    try:
        parse_duration(value)
    except ValueError:
        datetime.fromisoformat(value)  # ValueError: neither
    return value


UNTIL = Option("a duration like 4h or 2d, or a UTC date like 2026-12-24 or 2026-12-24T09:00", _until)
OPTIONS: dict[str, Option] = {
    "region": REGION,
    "to": REGION,
    "az": Option("an availability zone like us-east-1a", _matches(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")),
    "type": Option(
        "a volume type: gp3, gp2, io1, io2, st1, sc1 or standard",
        _one_of("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"),
    ),
    "instance": Option("an instance ID like i-0123456789abcdef0", _matches(ID_PATTERNS["instance"].pattern)),
    "device": Option("a device name like /dev/sdf", _matches(r"^/dev/(sd[b-z]|xvd[b-z]|nvme[0-9]{1,2}n[0-9]{1,2})$")),
    "description": Option("a description (quote it if it has spaces)", _any_text),
    "limit": Option("a number from 1 to 50", _int_range(1, 50)),
}


# --- the registry ----------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """A positional argument: an AWS ID kind, or free `text` (the rest of the line)."""

    name: str
    kind: str  # volume | snapshot | image | instance | account | text | number | policy
    many: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Verb:
    command: str  # without the slash: "snapshot"
    name: str  # "create"
    usage: str
    summary: str
    args: tuple[Arg, ...] = ()
    options: Mapping[str, Option] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()  # options that must be given, like to=
    default: bool = False  # chosen when the first word is an ID rather than a verb
    destructive: bool = False  # needs an approver (per SPEC §4)

    @property
    def slash(self) -> str:
        return f"/{self.command}"


@dataclass(frozen=True)
class Invocation:
    verb: Verb
    region: str
    args: Mapping[str, object]
    options: Mapping[str, object]
    flags: frozenset[str]
    text: str
    account: str = ""  # `account=NAME`; "" = the bot's own account

    @property
    def line(self) -> str:
        return f"{self.verb.slash} {self.text}".strip()


@dataclass(frozen=True)
class HelpRequest:
    command: str
    verb: Verb | None = None


COMMANDS: dict[str, dict[str, Verb]] = {}
COMMAND_SUMMARIES: dict[str, str] = {}


def register(*verbs: Verb) -> None:
    """Add verbs to the registry (each feature module registers its own)."""
    for verb in verbs:
        COMMANDS.setdefault(verb.command, {})[verb.name] = verb


def _opts(*names: str, **extra: Option) -> dict[str, Option]:
    return {**{n: OPTIONS[n] for n in names}, **extra}


# --- parsing ----------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Shell-style words, forgiving of chat text.

    A quote opens a quoted span only at the start of a word or right after
    `key=`, so apostrophes (`Bob's backup`) stay as typed; a quote that is
    never closed is kept as a literal character; backslashes are literal
    (shlex would eat them, and the apostrophes, from a description).
    """
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    words: list[str] = []
    word: list[str] | None = None  # the word being read; None between words
    i = 0
    while i < len(text):
        char = text[i]
        end = text.find(char, i + 1) if char in "\"'" else -1
        if char.isspace():
            if word is not None:
                words.append("".join(word))
            word = None
        elif end > 0 and (word is None or word[-1].endswith("=")):
            word = word if word is not None else []
            word.append(text[i + 1 : end])
            i = end
        else:
            word = word if word is not None else []
            word.append(char)
        i += 1
    if word is not None:
        words.append("".join(word))
    return words


def verbs_line(command: str) -> str:
    return ", ".join(f"`{name}`" for name in COMMANDS[command])


def parse(command: str, text: str, default_region: str, accounts: Sequence[str] = ()) -> Invocation | HelpRequest:
    """Parse the text after `/command` into an Invocation (pure; raises UsageError).

    `accounts`: the configured account names; `account=` must name one of them.
    """
    command = command.lstrip("/")
    verbs = COMMANDS.get(command)
    if verbs is None:
        raise UsageError(f"`/{command}` is not a command of this bot.", "/chatops help")
    tokens = tokenize(text or "")
    if not tokens or tokens[0].lower() == "help":
        return HelpRequest(command)
    first = tokens[0].lower()
    default = next((v for v in verbs.values() if v.default), None)
    if first in verbs:
        verb, rest = verbs[first], tokens[1:]
    elif default is not None and _default_fits(default, tokens[0]):
        verb, rest = default, tokens
    else:
        usages = "\n".join(v.usage for v in verbs.values())
        raise UsageError(f"`/{command} {tokens[0]}`: unknown sub-command. Valid: {verbs_line(command)}.", usages)
    if [t.lower() for t in rest] == ["help"]:
        return HelpRequest(command, verb)
    invocation = _bind(verb, rest, text.strip(), default_region, accounts)
    if invocation.account and accounts and invocation.account not in accounts:
        names = ", ".join(f"`{name}`" for name in accounts)
        raise UsageError(f"`account={invocation.account}`: no such account. Accounts: {names}.", verb.usage)
    return invocation


def _default_fits(default: Verb, token: str) -> bool:
    """The first word is (or was meant to be: `vol-123`) the default verb's ID; the binder checks it."""
    kind = default.args[0].kind if default.args else ""
    return kind in ID_PREFIXES and token.lower().startswith(ID_PREFIXES[kind])


def _bind(verb: Verb, tokens: list[str], text: str, default_region: str, accounts: Sequence[str] = ()) -> Invocation:
    allowed = {"region": REGION, **({"account": ACCOUNT} if verb.command in ACCOUNT_COMMANDS else {}), **verb.options}
    options: dict[str, object] = {}
    flags: set[str] = set()
    positional: list[str] = []
    for token in tokens:
        match = _OPTION_TOKEN.match(token)
        if match:
            key, value = match.group(1), match.group(2)
            if key not in allowed:
                valid = ", ".join(f"`{k}=`" for k in allowed)
                raise UsageError(f"unknown option `{key}=`. Valid options: {valid}.", verb.usage)
            if key in options:  # `to=us-west-2 to=eu-west-1`: which one was meant is a guess, so ask
                raise UsageError(f"`{key}=` is given twice; give it once.", verb.usage)
            try:
                options[key] = allowed[key].check(_storable(value, f"`{key}=`", verb.usage))
            except ValueError:
                raise UsageError(f"`{key}={value}`: expected {allowed[key].expect}.", verb.usage) from None
        elif token.lower() in verb.flags:
            flags.add(token.lower())
        else:
            positional.append(token)
    args: dict[str, object] = {}
    for arg in verb.args:
        if arg.kind == "text":
            args[arg.name] = _storable(" ".join(positional), f"the {arg.name}", verb.usage)
            positional = []
            continue
        if arg.kind == "number":
            # ASCII digits only, and few of them: int() refuses '²' and 5000-digit strings.
            if positional and not (re.fullmatch("[0-9]{1,9}", positional[0]) and 1 <= int(positional[0]) <= 200):
                raise UsageError(f"`{positional[0]}` is not a number from 1 to 200.", verb.usage)
            args[arg.name] = int(positional.pop(0)) if positional else None
            continue
        if arg.kind == "policy":
            if not positional and arg.optional:
                args[arg.name] = None
                continue
            if not positional:
                raise UsageError("missing policy name (see `/lifecycle list`).", verb.usage)
            if not POLICY_NAME.fullmatch(positional[0]):
                raise UsageError(f"`{positional[0]}` is not a policy name (lowercase, like `daily-db`).", verb.usage)
            args[arg.name] = positional.pop(0)
            continue
        taken: list[str] = []
        while positional and (arg.many or not taken):
            token = positional[0]
            if not is_id(arg.kind, token) and not (arg.kind == "account" and token in accounts):
                if taken:
                    break
                names = ", ".join(f"`{name}`" for name in accounts)
                also = f" nor an account of this bot ({names})" if arg.kind == "account" and names else ""
                raise UsageError(
                    f"`{token}` is not a valid {arg.kind} ID (like `{ID_EXAMPLES[arg.kind]}`){also}.", verb.usage
                )
            taken.append(positional.pop(0))
        if not taken:
            if not arg.optional:
                raise UsageError(f"missing {arg.kind} ID (like `{ID_EXAMPLES[arg.kind]}`).", verb.usage)
            args[arg.name] = [] if arg.many else None
            continue
        args[arg.name] = list(dict.fromkeys(taken)) if arg.many else taken[0]
    if positional:
        raise UsageError(f"unexpected `{positional[0]}`.", verb.usage)
    for key in sorted(verb.required - options.keys()):
        raise UsageError(f"missing `{key}=` ({allowed[key].expect}).", verb.usage)
    region = str(options.pop("region", default_region))
    account = str(options.pop("account", ""))
    return Invocation(verb, region, args, options, frozenset(flags), text, account)


# --- the foundation's verbs -------------------------------------------------------------

COMMAND_SUMMARIES.update(
    {
        "snapshot": "Create, list, inspect, restore and copy EBS snapshots",
        "volume": "List EBS volumes and attach them",
        "instance": "List EC2 instances",
        "chatops": "Help, audit log and pending approvals",
    }
)

register(
    Verb(
        "snapshot",
        "create",
        "/snapshot vol-… [description…]",
        "Create a snapshot of a volume; the message updates when it completes.",
        args=(Arg("volume_id", "volume"), Arg("description", "text", optional=True)),
        default=True,
    ),
    Verb(
        "snapshot",
        "list",
        "/snapshot list [vol-…] [limit=N]",
        "Newest snapshots first: state, size, age, description.",
        args=(Arg("volume_id", "volume", optional=True),),
        options=_opts("limit"),
    ),
    Verb(
        "snapshot",
        "status",
        "/snapshot status snap-…",
        "State, progress, volume, size, start time and tags of a snapshot.",
        args=(Arg("snapshot_id", "snapshot"),),
    ),
    Verb(
        "snapshot",
        "restore",
        "/snapshot restore snap-… [az=…] [type=gp3] [instance=i-… device=/dev/sdf]",
        "Create a volume from a snapshot, and attach it to an instance once available.",
        args=(Arg("snapshot_id", "snapshot"),),
        options=_opts("az", "type", "instance", "device"),
    ),
    Verb(
        "snapshot",
        "copy",
        "/snapshot copy snap-… to=REGION",
        "Copy a snapshot to another region.",
        args=(Arg("snapshot_id", "snapshot"),),
        options=_opts("to", "description"),
        required=frozenset({"to"}),
    ),
    Verb(
        "snapshot",
        "delete",
        "/snapshot delete snap-… [snap-…]",
        "Delete snapshots, once an approver approves.",
        args=(Arg("snapshot_ids", "snapshot", many=True),),
        destructive=True,
    ),
    Verb(
        "volume",
        "list",
        "/volume list [limit=N]",
        "Volumes: state, size, type, AZ, attachment, age of the last snapshot.",
        options=_opts("limit"),
    ),
    Verb(
        "volume",
        "attach",
        "/volume attach vol-… i-… [device=/dev/sdf]",
        "Attach a volume to an instance.",
        args=(Arg("volume_id", "volume"), Arg("instance_id", "instance")),
        options=_opts("device"),
    ),
    Verb("instance", "list", "/instance list [limit=N]", "Instances: state, type, AMI, name.", options=_opts("limit")),
    Verb("chatops", "help", "/chatops help", "Every command of this bot."),
    Verb(
        "chatops",
        "audit",
        "/chatops audit [N]",
        "The latest audit entries (default 20).",
        args=(Arg("count", "number", optional=True),),
    ),
    Verb("chatops", "approvals", "/chatops approvals", "Requests waiting for an approver."),
)


# --- /ami ---------------------------------------------------------------------------

# AWS's rule for AMI names, checked before any call: 3–128 characters of
# letters, numbers, ( ) [ ] space . / - ' @ _
AMI_NAME = Option(
    "an AMI name: 3–128 letters, numbers, spaces or ( ) [ ] . / - ' @ _ (quote it if it has spaces)",
    _matches(AMI_NAME_PATTERN.pattern),
)
# `type=` here is an instance type (the shared OPTIONS["type"] is a volume type).
INSTANCE_TYPE = Option(
    "an instance type like t3.micro or m7g.2xlarge", _matches(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9-]+$")
)
KEY_NAME = Option("a key pair name (printable ASCII, up to 255 characters)", _matches(r"^[\x20-\x7e]{1,255}$"))
# The hard ceiling of the grammar; the real per-request cap is aws.launch_max_count.
LAUNCH_COUNT = Option("a number of instances from 1 to 1000", _int_range(1, 1000))

COMMAND_SUMMARIES["ami"] = "Create, list, launch, copy and share AMIs"

register(
    Verb(
        "ami",
        "create",
        "/ami create i-… name=NAME [description=…] [reboot]",
        "Create an AMI of an instance; no reboot unless `reboot` is given (which needs an approver).",
        args=(Arg("instance_id", "instance"),),
        options=_opts("description", name=AMI_NAME),
        flags=frozenset({"reboot"}),
        required=frozenset({"name"}),
    ),
    Verb(
        "ami",
        "list",
        "/ami list [limit=N]",
        "Own AMIs, newest first: state, age, backing snapshots, accounts shared with, instances using it.",
        options=_opts("limit"),
    ),
    Verb(
        "ami",
        "launch",
        "/ami launch ami-… [type=t3.micro] [key=NAME] [count=1]",
        "Run instances from an AMI; the message updates when they are running.",
        args=(Arg("image_id", "image"),),
        options=_opts(type=INSTANCE_TYPE, key=KEY_NAME, count=LAUNCH_COUNT),
    ),
    Verb(
        "ami",
        "copy",
        "/ami copy ami-… to=REGION [name=…]",
        "Copy an AMI (and its snapshots) to another region, tags included.",
        args=(Arg("image_id", "image"),),
        options=_opts("to", "description", name=AMI_NAME),
        required=frozenset({"to"}),
    ),
    Verb(
        "ami",
        "unshare",
        "/ami unshare ami-… ACCOUNT",
        "Remove an account's launch permission on an AMI.",
        args=(Arg("image_id", "image"), Arg("account_id", "account")),
    ),
)

# Destructive /ami verbs: they post an approval request instead of acting.
register(
    Verb(
        "ami",
        "share",
        "/ami share ami-… ACCOUNT",
        "Give another account launch permission on an AMI, once an approver approves.",
        args=(Arg("image_id", "image"), Arg("account_id", "account")),
        destructive=True,
    ),
    Verb(
        "ami",
        "deregister",
        "/ami deregister ami-… [keep-snapshots]",
        "Deregister an AMI and delete its backing snapshots (unless keep-snapshots), once an approver approves.",
        args=(Arg("image_id", "image"),),
        flags=frozenset({"keep-snapshots"}),
        destructive=True,
    ),
)

COMMAND_SUMMARIES["lifecycle"] = "Lifecycle policies: list, preview, run, digest; freeze and thaw deletions"

register(
    Verb("lifecycle", "list", "/lifecycle list", "Policies, their next run and last result."),
    Verb(
        "lifecycle",
        "preview",
        "/lifecycle preview NAME|all",
        "Dry run: what would be created and deleted, GiB and $/month freed. Changes nothing.",
        args=(Arg("policy", "policy"),),
    ),
    Verb(
        "lifecycle",
        "run",
        "/lifecycle run NAME",
        "Run a policy now: create, copy, then sweep (deletions per its on_expired).",
        args=(Arg("policy", "policy"),),
    ),
    Verb("lifecycle", "digest", "/lifecycle digest", "Post the digest to the digest channel now."),
    Verb(
        "lifecycle",
        "freeze",
        "/lifecycle freeze [reason…] [until=4h|2026-12-24] [account=NAME]",
        "Approvers: stop every deletion now (sweeps report instead, Approve is refused, approved requests wait)"
        " until `/lifecycle thaw` or `until=`; every account unless `account=`.",
        args=(Arg("reason", "text", optional=True),),
        options=_opts(until=UNTIL, account=ACCOUNT),
    ),
    Verb(
        "lifecycle",
        "thaw",
        "/lifecycle thaw [account=NAME]",
        "Approvers: lift the freeze (every freeze, or that account's); held requests run.",
        options=_opts(account=ACCOUNT),
    ),
)


# --- the snapshot archive tier (bot/approvals/archive.py, handlers/snapshot.py) ------------------

# RestoreSnapshotTier's TemporaryRestoreDays: 1 to 180.
RESTORE_DAYS = Option("a number of days from 1 to 180", _int_range(1, 180))

register(
    Verb(
        "snapshot",
        "archive",
        "/snapshot archive snap-… [snap-…]",
        "Move snapshots to the archive tier (~75% cheaper, billed on the full size; a restore takes hours),"
        " once an approver approves.",
        args=(Arg("snapshot_ids", "snapshot", many=True),),
        destructive=True,
    ),
    Verb(
        "snapshot",
        "unarchive",
        "/snapshot unarchive snap-… [days=N]",
        "Restore an archived snapshot from the archive tier: for N days, or permanently without days=.",
        args=(Arg("snapshot_id", "snapshot"),),
        options=_opts(days=RESTORE_DAYS),
    ),
)


# --- restore drills (bot/flows/drill_flow.py; handlers/snapshot.py, ami.py, lifecycle.py) ------------------

register(
    Verb(
        "snapshot",
        "drill",
        "/snapshot drill snap-…",
        "Restore drill now: restore the snapshot as a volume, time it, check it, delete it; report the evidence.",
        args=(Arg("snapshot_id", "snapshot"),),
    ),
    Verb(
        "ami",
        "drill",
        "/ami drill ami-…",
        "Restore drill now: launch one small instance from the AMI (no public IP), wait for its status checks,"
        " terminate it; report the evidence.",
        args=(Arg("image_id", "image"),),
    ),
    Verb(
        "lifecycle",
        "drills",
        "/lifecycle drills [NAME]",
        "The latest restore drills (of one policy): what was restored, from which backup, how fast, the outcome.",
        args=(Arg("policy", "policy", optional=True),),
    ),
)

# --- the Recycle Bin (bot/domain/recycle_bin.py, handlers/snapshot.py, handlers/ami.py) ------------------------

register(
    Verb(
        "snapshot",
        "undelete",
        "/snapshot undelete snap-…",
        "Restore a deleted snapshot from the Recycle Bin (while a retention rule still keeps it).",
        args=(Arg("snapshot_id", "snapshot"),),
    ),
    Verb(
        "snapshot",
        "recycle-bin",
        "/snapshot recycle-bin",
        "What the Recycle Bin holds (snapshots and AMIs) and when each is purged for good.",
    ),
    Verb(
        "ami",
        "undelete",
        "/ami undelete ami-…",
        "Restore a deregistered AMI from the Recycle Bin (its snapshots must be there too, or still exist).",
        args=(Arg("image_id", "image"),),
    ),
)
