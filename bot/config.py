"""config.toml: loaded with tomllib into frozen dataclasses, every default spelled out.

Validation is driven by the dataclass fields themselves: each field carries a
parser and a phrase saying what it expects, so an unknown key, a bad value or
a missing required key stops start-up with one line naming the key and what is
expected.  Secrets never live here; they come only from the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_AZ = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")
_INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9-]+$")


def parse_duration(value: Any) -> timedelta:
    """`30s`, `30m`, `12h`, `7d`, `2w` → timedelta (must be positive)."""
    if not isinstance(value, str):
        raise ValueError
    match = _DURATION.match(value.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:  # "99999999999d" is a bad value, not a crash at start-up
        raise ValueError from None


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _duration(expect: str = "a duration like 30m, 12h or 7d") -> dict:
    return {"parse": parse_duration, "expect": expect}


def _string(pattern: re.Pattern | None = None, expect: str = "a string", allow_empty: bool = True) -> dict:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or (not allow_empty and not value):
            raise ValueError
        if value and pattern is not None and not pattern.fullmatch(value):
            raise ValueError
        return value

    return {"parse": parse, "expect": expect}


def _string_list(pattern: re.Pattern, expect: str, non_empty: bool = False) -> dict:
    def parse(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or (non_empty and not value):
            raise ValueError
        if not all(isinstance(v, str) and pattern.fullmatch(v) for v in value):
            raise ValueError
        return tuple(dict.fromkeys(value))

    return {"parse": parse, "expect": expect}


def _bool() -> dict:
    def parse(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError
        return value

    return {"parse": parse, "expect": "true or false"}


def _number(minimum: float = 0, integer: bool = False, expect: str = "a number") -> dict:
    def parse(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if integer and not isinstance(value, int):
            raise ValueError
        if not math.isfinite(value) or value < minimum:  # TOML allows nan and inf
            raise ValueError
        return value

    return {"parse": parse, "expect": expect}


_MAX_DELETE = re.compile(r"^([1-9][0-9]?|100)%$")


def _max_delete() -> dict:
    """A count (`max_delete = 50`) or a share of what the policy manages (`max_delete = "20%"`), kept as text."""

    def parse(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        if isinstance(value, str) and _MAX_DELETE.fullmatch(value):
            return value
        raise ValueError

    return {"parse": parse, "expect": 'a number of items like 50, or a share of what the policy manages like "20%"'}


def _choice(*choices: str) -> dict:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError
        return value

    return {"parse": parse, "expect": " or ".join(f'"{c}"' for c in choices)}


def _cron() -> dict:
    def parse(value: Any) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if not isinstance(value, str):
            raise ValueError
        CronTrigger.from_crontab(value)  # raises ValueError on a bad expression
        return value

    return {"parse": parse, "expect": 'a 5-field cron expression like "0 9 * * *"'}


def _timezone() -> dict:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError from exc
        return value

    return {"parse": parse, "expect": 'an IANA time zone like "UTC" or "Europe/Paris"'}


def _tags() -> dict:
    def parse(value: Any) -> Mapping[str, str]:
        if not isinstance(value, dict) or not value:
            raise ValueError
        if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()):
            raise ValueError
        return dict(value)

    return {"parse": parse, "expect": 'a non-empty table of tag = "value", like { Backup = "daily" }'}


def _spec(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    if isinstance(default, list | dict):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SlackConfig:
    digest_channel: str = _spec("", **_string(_CHANNEL_ID, "a Slack channel ID like C0123ABCD"))
    approval_channel: str = _spec("", **_string(_CHANNEL_ID, 'a Slack channel ID like C0123ABCD, or ""'))
    # A run longer than this shows its progress in the digest channel, updated at most this often.
    progress_every: timedelta = _spec(timedelta(seconds=5), **_duration("a duration like 5s"))


_ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_ACCOUNT_NAME_EXPECT = "a lowercase name like prod (a letter, then letters, digits, - and _)"
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}")


@dataclass(frozen=True)
class AwsConfig:
    # The name people type (`account=NAME`) and read for the account of the bot's own credentials.
    account_name: str = _spec("default", **_string(_ACCOUNT_NAME, _ACCOUNT_NAME_EXPECT, False))
    default_region: str = _spec("us-east-1", **_string(_REGION, "an AWS region like us-east-1", False))
    regions: tuple[str, ...] = _spec(("us-east-1",), **_string_list(_REGION, "a non-empty list of AWS regions", True))
    # How often pending snapshots/volumes/AMIs are polled to update their Slack
    # message, and when the bot gives up watching (the resource carries on).
    poll_interval: timedelta = _spec(timedelta(seconds=15), **_duration("a duration like 15s or 1m"))
    poll_timeout: timedelta = _spec(timedelta(hours=6), **_duration())
    # Bounded pool for AWS work done after the Slack ack.
    workers: int = _spec(8, **_number(1, True, "a whole number of worker threads, at least 1"))
    # `/ami launch count=N` refuses more than this many instances in one request.
    launch_max_count: int = _spec(5, **_number(1, True, "a whole number of instances, at least 1"))
    # The bot paces its own calls to EC2's published request rates (deletes: 100
    # at once, then 5 a second).  An account whose limits AWS has raised can
    # scale every rate alike, e.g. 2 for twice the rate.
    api_rate_scale: float = _spec(1.0, **_number(0.1, False, "a number of at least 0.1 (1 = EC2's published rates)"))
    # Other clients of the account share EC2's buckets; the pacer learns what they leave it
    # (bot/aws/pacing.py).  false paces to the published rates whatever happens: for
    # benchmarks/shared_bucket.py's side by side, not for operators.
    pacer_learning: bool = _spec(True, **_bool())


@dataclass(frozen=True)
class AccessConfig:
    operators: tuple[str, ...] = _spec((), **_string_list(_USER_ID, "a list of Slack user IDs like U0123ABCD"))
    approvers: tuple[str, ...] = _spec((), **_string_list(_USER_ID, "a list of Slack user IDs like U0123ABCD"))
    allow_self_approval: bool = _spec(False, **_bool())
    approval_ttl: timedelta = _spec(timedelta(hours=1), **_duration())


@dataclass(frozen=True)
class RetentionConfig:
    """How long the store keeps what is finished; a daily job prunes the rest (see Store.prune).

    What is still going is never pruned: pending/approved/executing requests,
    watches still watching, running runs, nor the latest run of each job.
    """

    # Who did what: a little over a year, so "what happened this time last year" has an answer.
    audit: timedelta = _spec(timedelta(days=400), **_duration())
    # Resource events feed the digest's "last 24 h"; the audit log keeps the story.
    events: timedelta = _spec(timedelta(days=90), **_duration())
    # Finished watches (done, timed out) only ever updated a Slack message.
    watches: timedelta = _spec(timedelta(days=30), **_duration())
    # Finished runs of policies and the digest.
    runs: timedelta = _spec(timedelta(days=90), **_duration())
    # Decided requests (done, failed, denied, expired) with their plans and results: as long as the audit log.
    approvals: timedelta = _spec(timedelta(days=400), **_duration())


def _retention() -> dict:
    def parse(value: Any) -> RetentionConfig:
        return _build(RetentionConfig, value, "store.retention")  # names the inner key in its own error

    return {"parse": parse, "expect": "a table of durations"}


@dataclass(frozen=True)
class StoreConfig:
    path: str = _spec("chatops.db", **_string(None, "a file path", False))
    retention: RetentionConfig = _spec(RetentionConfig(), **_retention())


@dataclass(frozen=True)
class ScheduleConfig:
    timezone: str = _spec("UTC", **_timezone())
    digest: str = _spec("0 9 * * *", **_cron())


@dataclass(frozen=True)
class PricingConfig:
    snapshot_gb_month: float = _spec(0.05, **_number(0, False, "a price in USD per GB-month, like 0.05"))
    # The snapshot archive tier (on_expired = "archive", /snapshot archive): ~75 % cheaper per GB-month,
    # but billed on the snapshot's full size, not incrementally.
    snapshot_archive_gb_month: float = _spec(0.0125, **_number(0, False, "a price in USD per GB-month, like 0.0125"))
    # What a restore drill costs while its resources live (README, "Prove your backups"): the restored
    # volume (gp3) per GB-month, and the drill instance per hour (t3.micro on demand).
    volume_gb_month: float = _spec(0.08, **_number(0, False, "a price in USD per GB-month, like 0.08"))
    drill_instance_hour: float = _spec(0.0104, **_number(0, False, "a price in USD per instance-hour, like 0.0104"))


@dataclass(frozen=True)
class Policy:
    name: str = _spec(**_string(_POLICY_NAME, "a lowercase name like daily-db", False))
    resource: str = _spec(**_choice("volume", "instance"))
    target_tags: Mapping[str, str] = _spec(**_tags())
    regions: tuple[str, ...] = _spec((), **_string_list(_REGION, "a list of AWS regions"))
    every: timedelta | None = _spec(None, **_duration())
    cron: str | None = _spec(None, **_cron())
    keep: int = _spec(7, **_number(1, True, "a whole number, at least 1"))
    max_age: timedelta | None = _spec(None, **_duration())
    # Grandfather-father-son retention (bot/domain/retention.py): besides the newest
    # `keep`, also keep the newest item of each of the newest N days / ISO weeks
    # / months that have one.  0 turns a tier off.
    keep_daily: int = _spec(0, **_number(0, True, "a whole number, 0 or more"))
    keep_weekly: int = _spec(0, **_number(0, True, "a whole number, 0 or more"))
    keep_monthly: int = _spec(0, **_number(0, True, "a whole number, 0 or more"))
    copy_to: tuple[str, ...] = _spec((), **_string_list(_REGION, "a list of AWS regions"))
    # The accounts it covers (names of [[accounts]] or aws.account_name; ["*"] = every one); default the bot's own.
    accounts: tuple[str, ...] = _spec(
        (), **_string_list(re.compile(r"^(\*|[a-z][a-z0-9_-]{0,62})$"), 'a list of account names, or ["*"]')
    )
    on_expired: str = _spec("approve", **_choice("approve", "delete", "report", "archive"))
    # on_expired = "archive" (volume policies): expired snapshots move to the archive tier instead of being
    # deleted; with archive_delete_after they are deleted once archived that long (at least 90 days, the
    # archive tier's minimum billing period).  Unset: archived snapshots stay until someone deletes them.
    archive_delete_after: timedelta | None = _spec(None, **_duration("a duration of at least 90d, like 180d"))
    # The blast radius: a run that would delete more (items, or a share of what the policy manages in that
    # account) asks an approver instead, even with on_expired = "delete".  "" = no cap.
    max_delete: str = _spec("", **_max_delete())
    # Restore drills (bot/domain/drills.py, README "Prove your backups"): every `drill` (or on `drill_cron`)
    # restore one backup per source, the newest or a random one of the last `drill_window`, and prove it
    # comes back; nothing is drilled without one of the two.
    drill: timedelta | None = _spec(None, **_duration("a duration like 7d"))
    drill_cron: str | None = _spec(None, **_cron())
    drill_pick: str = _spec("latest", **_choice("latest", "random"))
    drill_window: timedelta = _spec(timedelta(days=7), **_duration("a duration like 7d"))
    drill_az: str = _spec("", **_string(_AZ, "an availability zone like us-east-1a"))
    drill_timeout: timedelta = _spec(timedelta(minutes=30), **_duration("a duration like 30m"))
    # Volume policies: a scratch instance each drill volume is attached to, then detached from.
    drill_instance: str = _spec("", **_string(_INSTANCE_ID, "an instance ID like i-0123456789abcdef0"))
    # Instance policies: where the drill instance runs (default: the region's default subnet), and its type
    # ("" = the smallest of the AMI's architecture: t3.micro for x86_64, t4g.micro for arm64).
    drill_subnet: str = _spec("", **_string(_SUBNET_ID, "a subnet ID like subnet-0123456789abcdef0"))
    drill_instance_type: str = _spec("", **_string(_INSTANCE_TYPE, "an instance type like t3.micro"))

    @property
    def drills(self) -> bool:
        return self.drill is not None or self.drill_cron is not None


@dataclass(frozen=True)
class Account:
    """An AWS account the bot reaches: its own (no role), or one of `[[accounts]]` through STS assume-role."""

    name: str = _spec(**_string(_ACCOUNT_NAME, _ACCOUNT_NAME_EXPECT, False))
    role_arn: str = _spec(**_string(_ROLE_ARN, "an IAM role ARN like arn:aws:iam::111111111111:role/chatops", False))
    external_id: str = _spec("", **_string(_EXTERNAL_ID, "the role's external ID (2 to 1224 characters)"))
    regions: tuple[str, ...] = _spec((), **_string_list(_REGION, "a list of AWS regions"))

    @property
    def account_id(self) -> str:
        """The 12-digit ID, read from the role ARN ("" for the bot's own account, which is learnt from STS)."""
        return self.role_arn.split(":")[4] if self.role_arn else ""


@dataclass(frozen=True)
class Config:
    slack: SlackConfig = field(default_factory=SlackConfig)
    aws: AwsConfig = field(default_factory=AwsConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    policies: tuple[Policy, ...] = ()
    accounts: tuple[Account, ...] = ()  # besides the bot's own (aws.account_name)

    @property
    def account_names(self) -> tuple[str, ...]:
        """Every account the bot reaches, its own first."""
        return (self.aws.account_name, *(a.name for a in self.accounts))

    def account(self, name: str) -> Account | None:
        if name == self.aws.account_name:
            return Account(name=name, role_arn="")
        return next((a for a in self.accounts if a.name == name), None)

    def account_label(self, name: str = "") -> str:
        """How messages name an account: "" while the bot reaches only its own, else its name ("" = own)."""
        return (name or self.aws.account_name) if self.accounts else ""

    def account_key(self, name: str) -> str:
        """How plans, events and gateways name an account: "" for the bot's own, else its name."""
        return "" if name == self.aws.account_name else name

    def account_regions(self, name: str) -> tuple[str, ...]:
        account = self.account(name)
        return (account.regions if account else ()) or self.aws.regions

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    def policy_regions(self, policy: Policy, account: str = "") -> tuple[str, ...]:
        """The regions a policy covers in `account` ("" = the bot's own): its own list, else the account's."""
        return policy.regions or self.account_regions(account or self.aws.account_name)

    def policy_accounts(self, policy: Policy) -> tuple[str, ...]:
        """The account names a policy covers, the bot's own first."""
        if "*" in policy.accounts:
            return self.account_names
        return policy.accounts or (self.aws.account_name,)


_SECTIONS: dict[str, type] = {
    "slack": SlackConfig,
    "aws": AwsConfig,
    "access": AccessConfig,
    "store": StoreConfig,
    "schedule": ScheduleConfig,
    "pricing": PricingConfig,
}


def _build(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from table `raw`, naming `where` in any error."""
    if not isinstance(raw, dict):
        raise ConfigError(where, "a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{where}.{key}", f"no such key (known keys: {known})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}.{name}", f"{f.metadata['expect']} (required, but missing)")
            continue
        try:
            values[name] = f.metadata["parse"](raw[name])
        except ValueError:
            raise ConfigError(f"{where}.{name}", f"{f.metadata['expect']} (got {raw[name]!r})") from None
    return cls(**values)


# The archive tier bills at least 90 days of every archived snapshot: deleting one earlier saves nothing.
ARCHIVE_MINIMUM = timedelta(days=90)


def _check_policy(policy: Policy, where: str, aws: AwsConfig) -> None:
    if (policy.every is None) == (policy.cron is None):
        raise ConfigError(where, 'exactly one of every = "12h" or cron = "0 3 * * *"')
    if policy.on_expired == "archive" and policy.resource != "volume":
        raise ConfigError(
            f"{where}.on_expired", '"approve", "delete" or "report": only snapshots (volume policies) can be archived'
        )
    if policy.archive_delete_after is not None:
        if policy.on_expired != "archive":
            raise ConfigError(f"{where}.archive_delete_after", 'set only with on_expired = "archive"')
        if policy.archive_delete_after < ARCHIVE_MINIMUM:
            raise ConfigError(
                f"{where}.archive_delete_after",
                f"at least 90d, the archive tier's minimum (got {format_duration(policy.archive_delete_after)})",
            )
    _check_drill(policy, where)
    overlap = set(policy.copy_to) & set(policy.regions or aws.regions)
    if overlap:
        raise ConfigError(f"{where}.copy_to", f"regions other than the policy's own (both list {sorted(overlap)})")


def _check_drill(policy: Policy, where: str) -> None:
    if policy.drill is not None and policy.drill_cron is not None:
        raise ConfigError(where, 'at most one of drill = "7d" or drill_cron = "0 4 * * 0"')
    if policy.drill_instance and policy.resource != "volume":
        raise ConfigError(f"{where}.drill_instance", "set only on a volume policy (an AMI drill launches its own)")
    for key in ("drill_subnet", "drill_instance_type"):
        if getattr(policy, key) and policy.resource != "instance":
            raise ConfigError(f"{where}.{key}", "set only on an instance policy (a snapshot drill launches nothing)")
    if policy.drill_az and policy.drill_instance:
        raise ConfigError(f"{where}.drill_az", "left out with drill_instance (the volume goes to the instance's AZ)")


def parse_config(raw: Mapping[str, Any]) -> Config:
    """Validate a decoded TOML document into a Config (raises ConfigError)."""
    allowed = set(_SECTIONS) | {"policies", "accounts"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(key, f"no such section (known sections: {', '.join(sorted(allowed))})")
    sections = {name: _build(cls, raw.get(name, {}), name) for name, cls in _SECTIONS.items()}
    aws: AwsConfig = sections["aws"]
    if aws.default_region not in aws.regions:
        raise ConfigError("aws.default_region", f"one of aws.regions {list(aws.regions)}")
    policies_raw = raw.get("policies", [])
    if not isinstance(policies_raw, list):
        raise ConfigError("policies", "an array of tables written [[policies]]")
    policies = []
    for i, item in enumerate(policies_raw):
        where = f"policies[{i}]"
        policy = _build(Policy, item, where)
        _check_policy(policy, where, aws)
        if any(p.name == policy.name for p in policies):
            raise ConfigError(f"{where}.name", f"a unique policy name ({policy.name!r} is used twice)")
        policies.append(policy)
    config = Config(**sections, policies=tuple(policies), accounts=_accounts(raw.get("accounts", []), aws))
    for i, policy in enumerate(config.policies):
        unknown = [name for name in policy.accounts if name != "*" and name not in config.account_names]
        if unknown or ("*" in policy.accounts and len(policy.accounts) > 1):
            names = ", ".join(config.account_names)
            raise ConfigError(
                f"policies[{i}].accounts", f'["*"] or names of accounts ({names}), not {unknown or policy.accounts}'
            )
    return config


def _accounts(raw: Any, aws: AwsConfig) -> tuple[Account, ...]:
    if not isinstance(raw, list):
        raise ConfigError("accounts", "an array of tables written [[accounts]]")
    accounts: list[Account] = []
    for i, item in enumerate(raw):
        where = f"accounts[{i}]"
        account = _build(Account, item, where)
        if account.name == aws.account_name or any(a.name == account.name for a in accounts):
            taken = "the bot's own account (aws.account_name)" if account.name == aws.account_name else "twice"
            raise ConfigError(f"{where}.name", f"a unique account name ({account.name!r} is used {taken})")
        accounts.append(account)
    return tuple(accounts)


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load config.toml (CHATOPS_CONFIG, default ./config.toml); CHATOPS_DB overrides store.path.

    A missing file is an error unless no path was asked for anywhere, in which
    case the built-in defaults apply (handy for `python -m bot manifest`).
    """
    env = os.environ if env is None else env
    explicit = path or env.get("CHATOPS_CONFIG")
    file = Path(explicit or "config.toml")
    if file.exists():
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(file), f"valid TOML ({exc})") from None
        config = parse_config(raw)
    elif explicit:
        raise ConfigError(str(file), "an existing config file (set CHATOPS_CONFIG or create config.toml)")
    else:
        config = Config()
    if env.get("CHATOPS_DB"):
        config = dataclasses.replace(config, store=dataclasses.replace(config.store, path=env["CHATOPS_DB"]))
    return config


def with_overrides(config: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy of `config` with some section fields replaced (tests and the demo)."""
    changes = {name: dataclasses.replace(getattr(config, name), **values) for name, values in sections.items()}
    return dataclasses.replace(config, **changes)
