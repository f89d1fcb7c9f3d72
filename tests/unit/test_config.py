"""config.toml: defaults, validation (one line naming the key and what is expected), environment."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import (
    AccessConfig,
    AwsConfig,
    Config,
    PricingConfig,
    ScheduleConfig,
    SlackConfig,
    StoreConfig,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

POLICY = {"name": "daily-db", "resource": "volume", "target_tags": {"Backup": "daily"}, "every": "12h"}


def policy(**changes) -> dict:
    spec = {**POLICY, **changes}
    return {k: v for k, v in spec.items() if v is not None}


def config_error(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value


# --- defaults ---------------------------------------------------------------------


def test_empty_document_gives_every_default():
    config = parse_config({})
    assert config == Config()
    assert config.slack == SlackConfig(digest_channel="", approval_channel="")
    assert config.aws == AwsConfig(
        default_region="us-east-1",
        regions=("us-east-1",),
        poll_interval=timedelta(seconds=15),
        poll_timeout=timedelta(hours=6),
        workers=8,
    )
    assert config.access == AccessConfig(
        operators=(), approvers=(), allow_self_approval=False, approval_ttl=timedelta(hours=1)
    )
    assert config.store == StoreConfig(path="chatops.db")
    assert config.schedule == ScheduleConfig(timezone="UTC", digest="0 9 * * *")
    assert config.pricing == PricingConfig(snapshot_gb_month=0.05)
    assert config.policies == ()


@pytest.mark.parametrize("section", ["slack", "aws", "access", "store", "schedule", "pricing"])
def test_an_empty_section_is_all_defaults(section):
    assert getattr(parse_config({section: {}}), section) == getattr(Config(), section)


def test_config_is_frozen():
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.aws = AwsConfig()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.aws.default_region = "eu-west-1"  # type: ignore[misc]


def test_policy_defaults_and_region_fallback():
    config = parse_config({"aws": {"regions": ["us-east-1", "us-west-2"]}, "policies": [policy()]})
    [p] = config.policies
    assert p.name == "daily-db" and p.resource == "volume" and dict(p.target_tags) == {"Backup": "daily"}
    assert p.every == timedelta(hours=12) and p.cron is None
    assert p.keep == 7 and p.max_age is None and p.copy_to == () and p.on_expired == "approve"
    assert p.regions == ()
    assert config.policy_regions(p) == ("us-east-1", "us-west-2")
    assert config.policy("daily-db") is p and config.policy("nope") is None


def test_a_policy_with_cron_and_every_field_set():
    raw = policy(
        every=None,
        cron="0 3 * * *",
        regions=["us-east-1"],
        keep=3,
        max_age="30d",
        copy_to=["us-west-2"],
        on_expired="delete",
        resource="instance",
    )
    [p] = parse_config({"aws": {"regions": ["us-east-1", "us-west-2"]}, "policies": [raw]}).policies
    assert p.cron == "0 3 * * *" and p.every is None
    assert p.regions == ("us-east-1",) and p.copy_to == ("us-west-2",)
    assert p.keep == 3 and p.max_age == timedelta(days=30) and p.on_expired == "delete"
    assert p.resource == "instance"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


# --- errors: one line naming the key and what is expected ------------------------------


def assert_one_line(exc: ConfigError, key: str, *expect: str) -> None:
    assert "\n" not in exc.message and "\n" not in str(exc), exc.message
    assert exc.key == key
    assert exc.message.startswith(f"config error: {key}: expected "), exc.message
    for phrase in expect:
        assert phrase in exc.message, exc.message


BAD_VALUES = [
    # (raw document, key named, phrases the message must contain)
    ({"slack": {"digest_channel": "#ops"}}, "slack.digest_channel", ["Slack channel ID", "'#ops'"]),
    ({"slack": {"approval_channel": 42}}, "slack.approval_channel", ["Slack channel ID"]),
    ({"aws": {"default_region": "mars-north-1"}}, "aws.default_region", ["AWS region"]),
    ({"aws": {"default_region": ""}}, "aws.default_region", ["AWS region"]),
    ({"aws": {"regions": []}}, "aws.regions", ["non-empty list"]),
    ({"aws": {"regions": "us-east-1"}}, "aws.regions", ["list of AWS regions"]),
    ({"aws": {"regions": ["us-east-1", "US-WEST-2"]}}, "aws.regions", ["AWS regions"]),
    ({"aws": {"regions": ["us-east-1\n"]}}, "aws.regions", ["AWS regions"]),
    ({"aws": {"workers": 0}}, "aws.workers", ["at least 1"]),
    ({"aws": {"workers": 1.5}}, "aws.workers", ["whole number"]),
    ({"aws": {"workers": True}}, "aws.workers", ["whole number"]),
    ({"aws": {"workers": "8"}}, "aws.workers", ["whole number"]),
    ({"aws": {"poll_interval": "soon"}}, "aws.poll_interval", ["duration"]),
    ({"aws": {"api_rate_scale": 0}}, "aws.api_rate_scale", ["at least 0.1"]),
    ({"aws": {"api_rate_scale": "2"}}, "aws.api_rate_scale", ["at least 0.1"]),
    ({"access": {"operators": ["alice"]}}, "access.operators", ["Slack user IDs"]),
    ({"access": {"approvers": "U0BOB"}}, "access.approvers", ["Slack user IDs"]),
    ({"access": {"approvers": ["U0BOB\n"]}}, "access.approvers", ["Slack user IDs"]),
    ({"access": {"allow_self_approval": "yes"}}, "access.allow_self_approval", ["true or false"]),
    ({"access": {"allow_self_approval": 1}}, "access.allow_self_approval", ["true or false"]),
    ({"store": {"path": ""}}, "store.path", ["file path"]),
    ({"store": {"path": 3}}, "store.path", ["file path"]),
    ({"pricing": {"snapshot_gb_month": -1}}, "pricing.snapshot_gb_month", ["price in USD"]),
    ({"pricing": {"snapshot_gb_month": "0.05"}}, "pricing.snapshot_gb_month", ["price in USD"]),
    ({"pricing": {"snapshot_gb_month": float("nan")}}, "pricing.snapshot_gb_month", ["price in USD"]),
    ({"pricing": {"snapshot_gb_month": float("inf")}}, "pricing.snapshot_gb_month", ["price in USD"]),
    ({"policies": [policy(name="Daily DB")]}, "policies[0].name", ["lowercase name"]),
    ({"policies": [policy(resource="bucket")]}, "policies[0].resource", ['"volume" or "instance"']),
    ({"policies": [policy(target_tags={})]}, "policies[0].target_tags", ["non-empty table"]),
    ({"policies": [policy(target_tags={"Backup": 1})]}, "policies[0].target_tags", ['tag = "value"']),
    ({"policies": [policy(keep=0)]}, "policies[0].keep", ["at least 1"]),
    ({"policies": [policy(keep="7")]}, "policies[0].keep", ["whole number"]),
    ({"policies": [policy(on_expired="nuke")]}, "policies[0].on_expired", ['"approve" or "delete" or "report"']),
    ({"policies": [policy(regions=["atlantis-1"])]}, "policies[0].regions", ["AWS regions"]),
    ({"policies": [policy(copy_to="us-west-2")]}, "policies[0].copy_to", ["AWS regions"]),
    ({"policies": [policy(copy_to=["us-east-1"])]}, "policies[0].copy_to", ["other than the policy's own"]),
    ({"slack": "C0DIGEST"}, "slack", ["a table"]),
    ({"policies": {"name": "x"}}, "policies", ["[[policies]]"]),
    ({"policies": ["daily"]}, "policies[0]", ["a table"]),
]


@pytest.mark.parametrize(
    "raw, key, expect", BAD_VALUES, ids=[case[1] + "-" + str(i) for i, case in enumerate(BAD_VALUES)]
)
def test_bad_value_names_the_key_and_what_is_expected(raw, key, expect):
    assert_one_line(config_error(raw), key, *expect)


@pytest.mark.parametrize("bad", ["1y", "0h", "12", "h", "1 h", "-5m", "1.5h", 3600, "", "99999999999d", True])
@pytest.mark.parametrize(
    "where",
    ["aws.poll_interval", "aws.poll_timeout", "access.approval_ttl", "policies.every", "policies.max_age"],
)
def test_bad_duration(where, bad):
    section, key = where.split(".")
    if section == "policies":
        raw = {"policies": [policy(**{key: bad})]}
        named = f"policies[0].{key}"
    else:
        raw = {section: {key: bad}}
        named = where
    assert_one_line(config_error(raw), named, "duration like", repr(bad))


@pytest.mark.parametrize("bad", ["0 9 * *", "0 9 * * * *", "99 9 * * *", "a b c d e", "", "@daily", 9])
def test_bad_cron(bad):
    assert_one_line(config_error({"schedule": {"digest": bad}}), "schedule.digest", "5-field cron expression")
    raw = {"policies": [policy(every=None, cron=bad)]}
    assert_one_line(config_error(raw), "policies[0].cron", "5-field cron expression")


@pytest.mark.parametrize("bad", ["Mars/Phobos", "America", "", "utc+2", "../../etc/passwd", "/etc/passwd", 0])
def test_bad_timezone(bad):
    assert_one_line(config_error({"schedule": {"timezone": bad}}), "schedule.timezone", "IANA time zone")


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/New_York"])
def test_good_timezones(tz):
    assert parse_config({"schedule": {"timezone": tz}}).schedule.timezone == tz


def test_unknown_section():
    exc = config_error({"slak": {"digest_channel": "C0DIGEST"}})
    assert_one_line(exc, "slak", "no such section", "slack")


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"slack": {"digest": "C0DIGEST"}}, "slack.digest"),
        ({"aws": {"region": "us-east-1"}}, "aws.region"),
        ({"access": {"approver": ["U0BOB"]}}, "access.approver"),
        ({"store": {"file": "x.db"}}, "store.file"),
        ({"schedule": {"tz": "UTC"}}, "schedule.tz"),
        ({"pricing": {"gb_month": 0.05}}, "pricing.gb_month"),
        ({"policies": [policy(keep_forever=True)]}, "policies[0].keep_forever"),
    ],
)
def test_unknown_key(raw, key):
    exc = config_error(raw)
    assert_one_line(exc, key, "no such key", "known keys:")


@pytest.mark.parametrize("missing", ["name", "resource", "target_tags"])
def test_missing_required_policy_key(missing):
    exc = config_error({"policies": [policy(**{missing: None})]})
    assert_one_line(exc, f"policies[0].{missing}", "(required, but missing)")


def test_duplicate_policy_name():
    exc = config_error({"policies": [policy(), policy(every=None, cron="0 3 * * *")]})
    assert_one_line(exc, "policies[1].name", "unique policy name", "'daily-db'")


@pytest.mark.parametrize("every, cron", [("12h", "0 3 * * *"), (None, None)])
def test_exactly_one_of_every_and_cron(every, cron):
    exc = config_error({"policies": [policy(every=every, cron=cron)]})
    assert_one_line(exc, "policies[0]", "exactly one of every", "cron")


def test_default_region_must_be_one_of_regions():
    exc = config_error({"aws": {"default_region": "eu-west-1", "regions": ["us-east-1", "us-west-2"]}})
    assert_one_line(exc, "aws.default_region", "one of aws.regions", "us-west-2")


def test_error_in_second_policy_names_its_index():
    exc = config_error({"policies": [policy(), policy(name="weekly", keep=-1)]})
    assert_one_line(exc, "policies[1].keep", "at least 1")


# --- files and environment -----------------------------------------------------------------


def test_repo_config_toml_loads():
    config = load_config(REPO / "config.toml", env={})
    assert config.aws.default_region in config.aws.regions
    assert [p.name for p in config.policies] == ["daily-db"]
    assert config.store.path == "chatops.db"


def test_chatops_config_names_the_file(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('[slack]\ndigest_channel = "C0ELSE"\n')
    assert load_config(env={"CHATOPS_CONFIG": str(path)}).slack.digest_channel == "C0ELSE"


def test_explicit_path_wins_over_chatops_config(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[slack]\ndigest_channel = "C0AAA"\n')
    b.write_text('[slack]\ndigest_channel = "C0BBB"\n')
    assert load_config(a, env={"CHATOPS_CONFIG": str(b)}).slack.digest_channel == "C0AAA"


def test_missing_explicit_config_is_an_error(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(env={"CHATOPS_CONFIG": str(missing)})
    assert_one_line(caught.value, str(missing), "existing config file")


def test_no_config_anywhere_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}) == Config()


def test_default_path_is_config_toml_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('[store]\npath = "here.db"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).store.path == "here.db"


def test_chatops_db_overrides_store_path(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[store]\npath = "from-file.db"\n[slack]\ndigest_channel = "C0KEEP"\n')
    config = load_config(path, env={"CHATOPS_DB": "/var/lib/chatops/override.db"})
    assert config.store.path == "/var/lib/chatops/override.db"
    assert config.slack.digest_channel == "C0KEEP"  # nothing else changes
    assert load_config(path, env={"CHATOPS_DB": ""}).store.path == "from-file.db"


def test_invalid_toml_is_one_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[slack\ndigest_channel = "C0X"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert_one_line(caught.value, str(path), "valid TOML")


def test_env_defaults_to_os_environ(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text("")
    monkeypatch.setenv("CHATOPS_CONFIG", str(path))
    monkeypatch.setenv("CHATOPS_DB", str(tmp_path / "env.db"))
    assert load_config().store.path == str(tmp_path / "env.db")


# --- the CLI -----------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATOPS_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, "PYTHONPATH": str(REPO), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_with_a_bad_config_prints_one_line_and_fails(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[aws]\ndefault_region = "us-east-1"\nregoins = ["us-east-1"]\n')
    result = run_cli("check", env={"CHATOPS_CONFIG": str(path)}, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "aws.regoins" in lines[0] and "no such key" in lines[0]


def test_serve_with_a_bad_config_prints_one_line_and_fails(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[access]\napproval_ttl = "forever"\n')
    result = run_cli(env={"CHATOPS_CONFIG": str(path)}, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["config error: access.approval_ttl: expected a duration like 30m, 12h or 7d (got 'forever')"]
