"""The slash-command parser: pure, so every refusal is checked without Slack or AWS.

Most tests are generated from the registry (COMMANDS), so a verb added later is
covered without touching this file: its help, its missing and malformed
arguments, unknown and bad options, `region=`, and unexpected extra words.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.slack.commands import (
    COMMANDS,
    ID_EXAMPLES,
    ID_PREFIXES,
    OPTIONS,
    HelpRequest,
    Invocation,
    Verb,
    is_id,
    parse,
    tokenize,
)

DEFAULT_REGION = "us-east-1"
ID_KINDS = ("volume", "snapshot", "image", "instance", "account")

# Values tried, in order, to find one an option accepts (so verbs registered
# later, with options this file does not know, still get a valid invocation).
OPTION_CANDIDATES = (
    "us-west-2",
    "us-east-1a",
    "gp3",
    "t3.micro",
    "i-0123456789abcdef0",
    "/dev/sdf",
    "5",
    "1",
    "my-name-1",
    "123456789012",
    "nightly backup",
    "4h",
)
SAMPLE_ID = {
    "volume": "vol-0123456789abcdef0",
    "snapshot": "snap-0123456789abcdef0",
    "image": "ami-0123456789abcdef0",
    "instance": "i-0123456789abcdef0",
    "account": "123456789012",
}
SHORT_ID = {
    "volume": "vol-1234abcd",
    "snapshot": "snap-1234abcd",
    "image": "ami-1234abcd",
    "instance": "i-1234abcd",
    "account": "210987654321",
}


def all_verbs() -> list[Verb]:
    return [verb for verbs in COMMANDS.values() for verb in verbs.values()]


def verb_id(verb: Verb) -> str:
    return f"{verb.command}-{verb.name}"


def option_value(verb: Verb, key: str) -> str:
    option = verb.options[key]
    for candidate in OPTION_CANDIDATES:
        try:
            option.check(candidate)
        except ValueError:
            continue
        return candidate
    raise AssertionError(f"{verb.usage}: add a valid sample for option {key}= to OPTION_CANDIDATES")


def valid_words(verb: Verb, ids: dict[str, str] | None = None) -> list[str]:
    """A valid invocation of `verb` (every argument and required option given), as words."""
    ids = ids or SAMPLE_ID
    words = [verb.name]
    for arg in verb.args:
        if arg.kind in ids:
            words.append(ids[arg.kind])
        elif arg.kind == "text":
            words.append("some free text")
        elif arg.kind == "number":
            words.append("5")
        elif arg.kind == "policy":
            words.append("daily-db")
        else:
            raise AssertionError(f"{verb.usage}: unknown argument kind {arg.kind!r}")
    words += [f"{key}={option_value(verb, key)}" for key in sorted(verb.required)]
    return words


def parse_words(verb: Verb, words: list[str], default_region: str = DEFAULT_REGION):
    return parse(verb.command, " ".join(words), default_region)


def usage_error(verb: Verb, text: str) -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse(verb.command, text, DEFAULT_REGION)
    exc = caught.value
    assert verb.usage in exc.usage, f"{text!r}: usage {exc.usage!r} does not show {verb.usage!r}"
    assert exc.hint.startswith("Usage: ")
    return exc


VERBS = all_verbs()
# `/chatops help` is answered by the help path whatever follows it, so it has no invocation to refuse.
RUNNABLE = [v for v in VERBS if v.name != "help"]
WITH_ID_ARGS = [(v, a.name, a.kind) for v in VERBS for a in v.args if a.kind in ID_KINDS]
REQUIRED_ARGS = [(v, a.name) for v in VERBS for a in v.args if not a.optional and a.kind in ID_KINDS]


def test_registry_is_sane():
    assert {"snapshot", "volume", "instance", "chatops"} <= set(COMMANDS)
    for command, verbs in COMMANDS.items():
        assert sum(v.default for v in verbs.values()) <= 1, command
        for name, verb in verbs.items():
            assert verb.command == command and verb.name == name
            assert verb.usage.startswith(f"/{command}"), verb.usage
            assert verb.summary
            assert verb.required <= set(verb.options), verb.usage


# --- every verb: a valid invocation, help, region ---------------------------------------


@pytest.mark.parametrize("verb", RUNNABLE, ids=verb_id)
def test_valid_invocation_parses(verb):
    words = valid_words(verb)
    inv = parse_words(verb, words)
    assert isinstance(inv, Invocation)
    assert inv.verb is verb
    assert inv.region == DEFAULT_REGION
    assert inv.text == " ".join(words)
    for arg in verb.args:
        value = inv.args[arg.name]
        if arg.kind in ID_KINDS:
            assert value == ([SAMPLE_ID[arg.kind]] if arg.many else SAMPLE_ID[arg.kind])
        elif arg.kind == "text":
            assert value == "some free text"
        elif arg.kind == "number":
            assert value == 5
        elif arg.kind == "policy":
            assert value == "daily-db"


@pytest.mark.parametrize("verb", RUNNABLE, ids=verb_id)
def test_region_defaults_to_default_region(verb):
    assert parse_words(verb, valid_words(verb), default_region="eu-west-1").region == "eu-west-1"


@pytest.mark.parametrize("verb", RUNNABLE, ids=verb_id)
@pytest.mark.parametrize("where", ["first", "last"])
def test_region_option_is_accepted_anywhere(verb, where):
    words = valid_words(verb)
    words.insert(1 if where == "first" else len(words), "region=ap-southeast-2")
    inv = parse_words(verb, words)
    assert inv.region == "ap-southeast-2"
    assert "region" not in inv.options


@pytest.mark.parametrize("verb", RUNNABLE, ids=verb_id)
@pytest.mark.parametrize("bad", ["mars-north-1", "", "US-EAST-1", "us-east-1a", "us_east_1", "global"])
def test_bad_region_is_refused(verb, bad):
    exc = usage_error(verb, " ".join([*valid_words(verb), f"region={bad}"]))
    assert "AWS region" in exc.message


@pytest.mark.parametrize("verb", VERBS, ids=verb_id)
@pytest.mark.parametrize("word", ["help", "HELP", "Help"])
def test_verb_help(verb, word):
    result = parse(verb.command, f"{verb.name} {word}", DEFAULT_REGION)
    assert isinstance(result, HelpRequest)
    assert result.command == verb.command
    if verb.name != "help":
        assert result.verb is verb


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "\n"])
def test_command_help(command, text):
    assert parse(f"/{command}", text, DEFAULT_REGION) == HelpRequest(command)


# --- every verb: refusals ---------------------------------------------------------------


@pytest.mark.parametrize("verb, arg_name", REQUIRED_ARGS, ids=lambda x: x if isinstance(x, str) else verb_id(x))
def test_missing_required_argument(verb, arg_name):
    words = valid_words(verb)
    index = 1 + [a.name for a in verb.args].index(arg_name)
    del words[index]
    exc = usage_error(verb, " ".join(words))
    assert "missing" in exc.message or "not a valid" in exc.message


@pytest.mark.parametrize("verb", [v for v in VERBS if v.required], ids=verb_id)
def test_missing_required_option(verb):
    for key in verb.required:
        words = [w for w in valid_words(verb) if not w.startswith(f"{key}=")]
        exc = usage_error(verb, " ".join(words))
        assert f"missing `{key}=`" in exc.message


def malformed(kind: str) -> list[str]:
    if kind == "account":
        return ["12345678901", "1234567890123", "12345678901a", "1234-5678-9012", "acct", "'123456789012\n'"]
    prefix = ID_PREFIXES[kind]
    other = "snap-" if prefix != "snap-" else "vol-"
    return [
        prefix,  # no digits
        prefix + "1234567",  # 7 hex
        prefix + "123456789",  # 9 hex
        prefix + "0123456789abcdef",  # 16 hex
        prefix + "0123456789abcdef01",  # 18 hex
        prefix.upper() + "1234abcd",  # uppercase prefix
        prefix + "1234ABCD",  # uppercase hex
        prefix + "1234abcg",  # not hex
        prefix + "1234abcd.",
        prefix + "-1234abcd",
        other + "1234abcd",  # the wrong kind of ID
        "1234abcd",  # no prefix
        f"'{prefix}1234abcd\n'",  # a quoted ID with a trailing newline
        f"' {prefix}1234abcd'",
    ]


MALFORMED = [(v, name, kind, bad) for v, name, kind in WITH_ID_ARGS for bad in malformed(kind)]


@pytest.mark.parametrize("verb, arg_name, kind, bad", MALFORMED, ids=lambda x: x if isinstance(x, str) else verb_id(x))
def test_malformed_id_is_refused(verb, arg_name, kind, bad):
    words = valid_words(verb)
    words[1 + [a.name for a in verb.args].index(arg_name)] = bad
    exc = usage_error(verb, " ".join(words))
    assert ID_EXAMPLES[kind] in exc.message or "unknown sub-command" in exc.message


@pytest.mark.parametrize("verb", [v for v in VERBS if any(a.kind in ID_KINDS for a in v.args)], ids=verb_id)
@pytest.mark.parametrize("ids", [SHORT_ID, SAMPLE_ID], ids=["8-hex", "17-hex"])
def test_8_and_17_hex_ids_are_accepted(verb, ids):
    inv = parse_words(verb, valid_words(verb, ids))
    for arg in verb.args:
        if arg.kind in ID_KINDS:
            assert inv.args[arg.name] == ([ids[arg.kind]] if arg.many else ids[arg.kind])


@pytest.mark.parametrize("kind", ID_KINDS)
def test_is_id(kind):
    assert is_id(kind, SAMPLE_ID[kind]) and is_id(kind, SHORT_ID[kind])
    for bad in malformed(kind):
        assert not is_id(kind, bad.strip("'")), bad


@pytest.mark.parametrize("verb", RUNNABLE, ids=verb_id)
@pytest.mark.parametrize("token", ["frobnicate=1", "regoin=us-west-2", "x=", "dry_run=yes"])
def test_unknown_option(verb, token):
    exc = usage_error(verb, " ".join([*valid_words(verb), token]))
    key = token.split("=")[0]
    assert f"unknown option `{key}=`" in exc.message
    assert "`region=`" in exc.message  # lists the valid ones


OPTIONS_OF = [(v, key) for v in VERBS for key in v.options]


@pytest.mark.parametrize("verb, key", OPTIONS_OF, ids=lambda x: x if isinstance(x, str) else verb_id(x))
def test_empty_option_value_is_refused(verb, key):
    words = [w for w in valid_words(verb) if not w.startswith(f"{key}=")]
    exc = usage_error(verb, " ".join([*words, f"{key}="]))
    assert f"`{key}=`: expected" in exc.message


@pytest.mark.parametrize("verb, key", OPTIONS_OF, ids=lambda x: x if isinstance(x, str) else verb_id(x))
def test_an_option_given_twice_is_refused(verb, key):
    # `to=us-west-2 to=eu-west-1`: the bot does not guess which one was meant.
    words = [w for w in valid_words(verb) if not w.startswith(f"{key}=")]
    value = option_value(verb, key)
    exc = usage_error(verb, " ".join([*words, f"{key}={value}", f"{key}={value}"]))
    assert f"`{key}=` is given twice" in exc.message


BAD_OPTION_VALUES = {
    "to": ["mars-north-1", "us-east-1a", "US-WEST-2"],
    "az": ["us-east-1", "useast1a", "us-east-1A"],
    "type": ["gp9", "GP3", "ssd"],
    "instance": ["i-1", "i-1234ABCD", "vol-1234abcd", "'i-1234abcd\n'"],
    "device": ["/dev/sda", "sdf", "/dev/sdf1", "/dev/../sdf", "'/dev/sdf\n'"],
    "limit": ["0", "51", "-1", "abc", "1.5", "²", "9" * 5000],
    "description": ["' '"],
}


@pytest.mark.parametrize(
    "verb, key, bad",
    [(v, k, bad) for v, k in OPTIONS_OF for bad in BAD_OPTION_VALUES.get(k, ())],
    ids=lambda x: x[:20] if isinstance(x, str) else verb_id(x),
)
def test_bad_option_value(verb, key, bad):
    words = [w for w in valid_words(verb) if not w.startswith(f"{key}=")]
    exc = usage_error(verb, " ".join([*words, f"{key}={bad}"]))
    assert f"`{key}=" in exc.message and "expected" in exc.message


@pytest.mark.parametrize("verb", [v for v in RUNNABLE if not any(a.kind == "text" for a in v.args)], ids=verb_id)
@pytest.mark.parametrize("extra", ["extra", "vol-1234abcd", "'two words'"])
def test_unexpected_extra_words(verb, extra):
    if extra == "vol-1234abcd" and any(a.kind == "volume" and a.many for a in verb.args):
        extra = "i-1234abcd" if not any(a.kind == "instance" for a in verb.args) else "extra"  # a list takes more IDs
    exc = usage_error(verb, " ".join([*valid_words(verb), extra]))
    assert "unexpected" in exc.message or "not a" in exc.message


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_verb_lists_valid_verbs(command):
    with pytest.raises(UsageError) as caught:
        parse(command, "frobnicate now", DEFAULT_REGION)
    exc = caught.value
    assert "`/" + command + " frobnicate`: unknown sub-command" in exc.message
    for name, verb in COMMANDS[command].items():
        assert f"`{name}`" in exc.message
        assert verb.usage in exc.usage


def test_unknown_command():
    with pytest.raises(UsageError) as caught:
        parse("/frobnicate", "vol-1234abcd", DEFAULT_REGION)
    assert "/frobnicate" in caught.value.message and caught.value.usage == "/chatops help"


def test_slash_is_optional_in_the_command_name():
    assert parse("/snapshot", "list", DEFAULT_REGION) == parse("snapshot", "list", DEFAULT_REGION)


def test_verb_names_are_case_insensitive():
    inv = parse("snapshot", "LIST vol-1234abcd", DEFAULT_REGION)
    assert inv.verb is COMMANDS["snapshot"]["list"]


# --- /snapshot create: descriptions, quoting and key=value ------------------------------------


@pytest.mark.parametrize(
    "text, volume, description",
    [
        ("vol-1234abcd", "vol-1234abcd", ""),
        ("vol-0123456789abcdef0 Backup of my EBS volume", "vol-0123456789abcdef0", "Backup of my EBS volume"),
        ('vol-1234abcd "Backup of my EBS volume"', "vol-1234abcd", "Backup of my EBS volume"),
        ("vol-1234abcd 'single quoted words'", "vol-1234abcd", "single quoted words"),
        ("vol-1234abcd \u201ccurly quoted words\u201d", "vol-1234abcd", "curly quoted words"),
        ("\u201cvol-1234abcd\u201d", "vol-1234abcd", ""),
        # An apostrophe is not an unbalanced quote to the user: the words are kept.
        ("vol-1234abcd it's Bob's backup", "vol-1234abcd", "it's Bob's backup"),
        ("vol-1234abcd it\u2019s mine", "vol-1234abcd", "it's mine"),
        ('vol-1234abcd "it\'s quoted"', "vol-1234abcd", "it's quoted"),
        ("create vol-1234abcd before upgrade", "vol-1234abcd", "before upgrade"),
        ("vol-1234abcd region=us-west-2 before upgrade", "vol-1234abcd", "before upgrade"),
        ("vol-1234abcd before upgrade region=us-west-2", "vol-1234abcd", "before upgrade"),
        # `=` inside a quoted description, and words that merely contain `=`, are text.
        ('vol-1234abcd "pre-upgrade k8s=1.29"', "vol-1234abcd", "pre-upgrade k8s=1.29"),
        ("vol-1234abcd v1.2 =x 1=2 k8s=1.29", "vol-1234abcd", "v1.2 =x 1=2 k8s=1.29"),
        ("vol-1234abcd 'tis the season", "vol-1234abcd", "'tis the season"),
        ("vol-1234abcd copy of D:\\data\\db", "vol-1234abcd", "copy of D:\\data\\db"),
        ("vol-1234abcd <!channel> & <@U0BOSS>", "vol-1234abcd", "<!channel> & <@U0BOSS>"),
        ("vol-1234abcd help", "vol-1234abcd", "help"),
    ],
)
def test_snapshot_descriptions(text, volume, description):
    inv = parse("snapshot", text, DEFAULT_REGION)
    assert inv.verb is COMMANDS["snapshot"]["create"]
    assert inv.args == {"volume_id": volume, "description": description}


def test_description_region_option_is_not_part_of_the_text():
    inv = parse("snapshot", "vol-1234abcd region=us-west-2 nightly", DEFAULT_REGION)
    assert inv.region == "us-west-2" and inv.args["description"] == "nightly"


def test_unquoted_key_value_in_a_description_is_an_unknown_option():
    # A typo'd option (`regoin=`) must never slip silently into a description.
    exc = usage_error(COMMANDS["snapshot"]["create"], "vol-1234abcd deploy env=prod")
    assert "unknown option `env=`" in exc.message


def test_option_values_may_hold_spaces_and_equals_signs():
    inv = parse("snapshot", 'copy snap-1234abcd to=us-west-2 description="nightly copy, a=b"', DEFAULT_REGION)
    assert inv.options == {"to": "us-west-2", "description": "nightly copy, a=b"}


def test_options_before_arguments():
    inv = parse("snapshot", "copy to=us-west-2 snap-1234abcd", DEFAULT_REGION)
    assert inv.args == {"snapshot_id": "snap-1234abcd"} and inv.options == {"to": "us-west-2"}


def test_restore_options_are_normalised():
    inv = parse(
        "snapshot", "restore snap-1234abcd az=us-east-1b type=io2 instance=i-1234abcd device=/dev/sdg", DEFAULT_REGION
    )
    assert inv.options == {"az": "us-east-1b", "type": "io2", "instance": "i-1234abcd", "device": "/dev/sdg"}


def test_limit_is_an_int():
    assert parse("snapshot", "list limit=7", DEFAULT_REGION).options == {"limit": 7}


def test_a_snapshot_id_where_a_volume_is_expected_lists_the_verbs():
    with pytest.raises(UsageError) as caught:
        parse("snapshot", "snap-1234abcd", DEFAULT_REGION)
    assert "unknown sub-command" in caught.value.message and "`status`" in caught.value.message


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, count", [("audit", None), ("audit 1", 1), ("audit 200", 200), ("audit 007", 7)])
def test_audit_count(text, count):
    assert parse("chatops", text, DEFAULT_REGION).args == {"count": count}


@pytest.mark.parametrize("bad", ["0", "201", "-1", "abc", "1.5", "²", "٣", "9" * 5000])
def test_bad_audit_count(bad):
    exc = usage_error(COMMANDS["chatops"]["audit"], f"audit {bad}")
    assert "number from 1 to 200" in exc.message


# --- tokenizer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        ("a b  c", ["a", "b", "c"]),
        ('a "b c"', ["a", "b c"]),
        ("a 'b c'", ["a", "b c"]),
        ("don't stop", ["don't", "stop"]),
        ("\u201cb c\u201d d", ["b c", "d"]),
        ("\u2018b c\u2019 d", ["b c", "d"]),
        ('key="a b"', ["key=a b"]),
        ("key='a b' c", ["key=a b", "c"]),
        ('say "unclosed', ["say", '"unclosed']),
        ("Bob's and Alice's", ["Bob's", "and", "Alice's"]),
        ('"it\'s" ok', ["it's", "ok"]),
        ("a\\b c\\ d", ["a\\b", "c\\", "d"]),
        ("a\tb\nc", ["a", "b", "c"]),
        ('""', [""]),
        ("", []),
    ],
)
def test_tokenize(text, words):
    assert tokenize(text) == words


# --- ASCII digits only ---------------------------------------------------------------------------
# `\d` and str.isdigit() accept every Unicode decimal digit ("١٢٣", "１２３", "𝟏𝟐𝟑"): an ID or a
# number that AWS (or int()) would read differently must be refused like any other malformed one.

ARABIC_ACCOUNT = "١٢٣٤٥٦٧٨٩٠١٢"  # ١٢٣٤٥٦٧٨٩٠١٢
FULLWIDTH_ACCOUNT = "１２３４５６７８９０１２"


@pytest.mark.parametrize(
    "command, text",
    [
        ("ami", f"share ami-1234abcd {ARABIC_ACCOUNT}"),
        ("ami", f"unshare ami-1234abcd {FULLWIDTH_ACCOUNT}"),
        ("ami", "share ami-1234abcd 12345678901\u0662"),
        ("snapshot", "list limit=\u0665"),
        ("ami", "launch ami-1234abcd count=\u0663"),
        ("snapshot", "restore snap-1234abcd az=us-east-\u0661a"),
        ("snapshot", "restore snap-1234abcd device=/dev/nvme\u0661n1"),
        ("chatops", "audit \U0001d7d3"),  # MATHEMATICAL BOLD DIGIT FIVE
    ],
)
def test_non_ascii_digits_are_refused(command, text):
    with pytest.raises(UsageError):
        parse(command, text, DEFAULT_REGION)


def all_option_words(verb: Verb) -> list[str]:
    """A valid invocation with every option that is not free text given (so digits are everywhere)."""
    words = valid_words(verb)
    optional = sorted(set(verb.options) - verb.required)
    return words + [f"{k}={option_value(verb, k)}" for k in optional if verb.options[k] is not OPTIONS["description"]]


DIGIT_SITES = [
    (verb, w, i)
    for verb in RUNNABLE
    for w, word in enumerate(all_option_words(verb))
    for i, char in enumerate(word)
    if char in "0123456789" and not (word.startswith("description=") or word == "some free text")
]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(site=st.sampled_from(DIGIT_SITES), digit=st.characters(categories=("Nd",)).filter(lambda c: not c.isascii()))
def test_any_non_ascii_digit_anywhere_in_an_id_or_a_number_is_refused(site, digit):
    verb, w, i = site
    words = all_option_words(verb)
    parse_words(verb, words)  # valid as it stands
    words[w] = words[w][:i] + digit + words[w][i + 1 :]
    with pytest.raises(UsageError):
        parse_words(verb, words)


# --- free text EC2 can store ---------------------------------------------------------------------------
# EC2 answers in XML 1.0, which cannot carry NUL, most C0 controls or U+FFFE/U+FFFF: a description with one
# would be stored and then break every listing that returns it, so the parser refuses it up front.


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ufffe", "\uffff"], ids=repr)
@pytest.mark.parametrize(
    "command, text",
    [
        ("snapshot", "vol-1234abcd 'nightly{c}backup'"),  # quoted: unquoted, \x0b and \x1f separate words
        ("snapshot", "copy snap-1234abcd to=us-west-2 'description=a{c}b'"),
        ("ami", "create i-1234abcd name=golden 'description=a{c}b'"),
    ],
)
def test_free_text_with_a_character_ec2_cannot_store_is_refused(command, text, char):
    with pytest.raises(UsageError) as caught:
        parse(command, text.format(c=char), DEFAULT_REGION)
    assert f"U+{ord(char):04X}" in caught.value.message


@pytest.mark.parametrize("char", ["\t", "\x7f", "\x85", "\u00e9", "\u202e", "\U0001f525"], ids=repr)
def test_free_text_keeps_every_character_ec2_can_store(char):
    parsed = parse("snapshot", f"vol-1234abcd 'a{char}b'", DEFAULT_REGION)
    assert parsed.args["description"] == f"a{char}b"
