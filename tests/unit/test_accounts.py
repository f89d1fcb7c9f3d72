"""Several accounts: config, assume-role sessions (STS stubbed, EC2 in-process moto), the grammar's account=."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from bot import errors
from bot.aws.gateway import BOT_SESSION_NAME, Ec2Gateway, Fleet, assume_role_session, role_session_name
from bot.aws.pacing import Pacer
from bot.config import Account, parse_config
from bot.domain.lifecycle import execute_sweep
from bot.domain.plans import Context, Plan, PlanItem
from bot.errors import ConfigError, UsageError
from bot.slack.commands import parse
from tests.support.factories import daily_policy

PROD = Account(name="prod", role_arn="arn:aws:iam::111111111111:role/chatops", external_id="shared-secret")


ANY_ASSUME = {"RoleArn": ANY, "RoleSessionName": ANY, "DurationSeconds": 3600, "ExternalId": ANY}


def creds(expires_in: timedelta, key: str = "ASIAFIRST0000000") -> dict:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": datetime.now(UTC) + expires_in,
        }
    }


@pytest.fixture
def moto_ec2(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def stubbed_sts(base):
    sts = base.client("sts", region_name="eu-west-1")
    return sts, Stubber(sts)


# --- config -------------------------------------------------------------------------


def test_accounts_parse_with_the_bots_own_first():
    config = parse_config(
        {
            "aws": {"account_name": "ops"},
            "accounts": [{"name": "prod", "role_arn": PROD.role_arn, "regions": ["eu-west-1"]}],
        }
    )
    assert config.account_names == ("ops", "prod")
    assert config.account("prod").account_id == "111111111111"
    assert config.account_regions("prod") == ("eu-west-1",)
    assert config.account_regions("ops") == config.aws.regions
    assert config.account("staging") is None


@pytest.mark.parametrize(
    "accounts, key",
    [
        ([{"name": "prod"}], "accounts[0].role_arn"),
        ([{"name": "prod", "role_arn": "arn:aws:iam::1111:role/x"}], "accounts[0].role_arn"),
        ([{"name": "Prod", "role_arn": PROD.role_arn}], "accounts[0].name"),
        ([{"name": "default", "role_arn": PROD.role_arn}], "accounts[0].name"),
        (
            [{"name": "prod", "role_arn": PROD.role_arn}, {"name": "prod", "role_arn": PROD.role_arn}],
            "accounts[1].name",
        ),
        ([{"name": "prod", "role_arn": PROD.role_arn, "colour": "red"}], "accounts[0].colour"),
        ({"name": "prod"}, "accounts"),
    ],
)
def test_bad_accounts_stop_start_up_naming_the_key(accounts, key):
    with pytest.raises(ConfigError) as exc:
        parse_config({"accounts": accounts})
    assert exc.value.message.startswith(f"config error: {key}:")


# --- the grammar ------------------------------------------------------------------------


def test_account_option_must_name_a_configured_account():
    assert parse("snapshot", "list account=prod", "us-east-1", ("default", "prod")).account == "prod"
    assert parse("snapshot", "list", "us-east-1", ("default", "prod")).account == ""
    with pytest.raises(UsageError) as exc:
        parse("snapshot", "list account=staging", "us-east-1", ("default", "prod"))
    assert "`default`" in exc.value.message and "`prod`" in exc.value.message


def test_commands_that_do_not_act_on_resources_refuse_account():
    with pytest.raises(UsageError) as exc:
        parse("lifecycle", "preview daily-db account=prod", "us-east-1", ("default", "prod"))
    assert "unknown option `account=`" in exc.value.message


def test_share_takes_an_account_name_only_when_it_is_configured():
    inv = parse("ami", "share ami-0123456789abcdef0 prod", "us-east-1", ("default", "prod"))
    assert inv.args["account_id"] == "prod"
    with pytest.raises(UsageError) as exc:
        parse("ami", "share ami-0123456789abcdef0 staging", "us-east-1", ("default", "prod"))
    assert "`prod`" in exc.value.message


# --- assume-role sessions ------------------------------------------------------------------


def test_role_session_names_carry_the_slack_user_and_stay_within_stss_rules():
    assert role_session_name("U0ALICE") == "chatops-U0ALICE"
    assert role_session_name(None) == BOT_SESSION_NAME
    assert role_session_name("U0<@evil>" + "x" * 80) == ("chatops-U0@evil" + "x" * 80)[:64]


def test_assume_role_is_deferred_passes_the_external_id_and_the_session_name(moto_ec2):
    sts, stub = stubbed_sts(moto_ec2)
    expected = {"RoleArn": PROD.role_arn, "RoleSessionName": "chatops-U0ALICE", "DurationSeconds": 3600}
    stub.add_response("assume_role", creds(timedelta(hours=1)), {**expected, "ExternalId": "shared-secret"})
    with stub:
        session = assume_role_session(moto_ec2, "prod", PROD, "chatops-U0ALICE", "eu-west-1", sts=sts)
        assert len(stub._queue) == 1  # nothing asked yet: the credentials are deferred to the first call
        session.client("ec2", region_name="us-east-1").describe_volumes()
        stub.assert_no_pending_responses()
    assert session.get_credentials().get_frozen_credentials().access_key == "ASIAFIRST0000000"


def test_credentials_are_refreshed_before_they_expire_not_failed(moto_ec2):
    sts, stub = stubbed_sts(moto_ec2)
    stub.add_response("assume_role", creds(timedelta(minutes=12), "ASIAFIRST0000000"), ANY_ASSUME)
    stub.add_response("assume_role", creds(timedelta(hours=1), "ASIASECOND000000"), ANY_ASSUME)
    with stub:
        session = assume_role_session(moto_ec2, "prod", PROD, "chatops-bot", "eu-west-1", sts=sts)
        ec2 = session.client("ec2", region_name="us-east-1")
        ec2.describe_volumes()  # first credentials: valid, but within botocore's 15-minute advisory window
        ec2.describe_volumes()  # so the next call assumes the role again instead of running into the expiry
        stub.assert_no_pending_responses()
    assert session.get_credentials().get_frozen_credentials().access_key == "ASIASECOND000000"


def test_a_role_that_cannot_be_assumed_names_the_account_and_role(moto_ec2):
    sts, stub = stubbed_sts(moto_ec2)
    stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole", 403)
    with stub:
        gw = Ec2Gateway(assume_role_session(moto_ec2, "prod", PROD, "chatops-bot", "eu-west-1", sts=sts))
        with pytest.raises(errors.RoleUnavailable) as exc:
            list(gw.describe_volumes("us-east-1"))
    assert exc.value.account == "prod"
    assert (
        "account prod" in exc.value.message
        and PROD.role_arn in exc.value.message
        and "AccessDenied" in exc.value.message
    )
    assert "python -m bot check" in exc.value.hint


def test_the_fleet_keeps_one_gateway_per_account_and_user_and_one_pacer_per_account(moto_ec2):
    own = Ec2Gateway(moto_ec2)
    fleet = Fleet(own, "default", [PROD], "us-east-1", lambda s, p, _account: Ec2Gateway(s, pacer=p), Pacer)
    assert fleet.gateway() is own and fleet.gateway("default", "U0ALICE") is own
    alice, bob, bot = fleet.gateway("prod", "U0ALICE"), fleet.gateway("prod", "U0BOB"), fleet.gateway("prod")
    assert alice is fleet.gateway("prod", "U0ALICE") and len({id(alice), id(bob), id(bot)}) == 3
    assert alice.pacer is bob.pacer is bot.pacer and alice.pacer is not own.pacer  # EC2's buckets are per account
    assert fleet.account_id("prod", "us-east-1") == "111111111111"
    with pytest.raises(errors.NotFound):
        fleet.gateway("staging")


def test_each_account_acts_in_its_own_ec2(moto_ec2):
    own = Ec2Gateway(moto_ec2)
    fleet = Fleet(own, "default", [PROD], "us-east-1", lambda s, p, _account: Ec2Gateway(s, pacer=p), Pacer)
    prod = fleet.gateway("prod", "U0ALICE")
    prod.client("us-east-1").create_volume(AvailabilityZone="us-east-1a", Size=1)
    assert len(list(prod.describe_volumes("us-east-1"))) == 1
    assert list(own.describe_volumes("us-east-1")) == []
    assert prod.account_id("us-east-1") == "111111111111" != own.account_id("us-east-1")


# --- policies over accounts ----------------------------------------------------------------


def test_policy_accounts_resolve_and_unknown_names_stop_start_up():
    policy = {"name": "p", "resource": "volume", "target_tags": {"a": "b"}, "every": "12h"}
    raw = {"accounts": [{"name": "prod", "role_arn": PROD.role_arn, "regions": ["eu-west-1"]}]}
    config = parse_config({**raw, "policies": [{**policy, "accounts": ["*"]}]})
    assert config.policy_accounts(config.policies[0]) == ("default", "prod")
    assert config.policy_regions(config.policies[0], "prod") == ("eu-west-1",)
    assert config.policy_accounts(parse_config({**raw, "policies": [policy]}).policies[0]) == ("default",)
    for bad in (["staging"], ["*", "prod"]):
        with pytest.raises(ConfigError) as exc:
            parse_config({**raw, "policies": [{**policy, "accounts": bad}]})
        assert exc.value.message.startswith("config error: policies[0].accounts:")


def test_a_sweep_batch_of_an_account_the_policy_no_longer_covers_deletes_nothing():
    """Decided again at the moment it goes: the policy was narrowed to the bot's own account after the request."""
    config = dataclasses.replace(
        parse_config({"accounts": [{"name": "prod", "role_arn": PROD.role_arn}]}), policies=(daily_policy(),)
    )
    plan = Plan(
        "sweep-delete",
        "us-east-1",
        "Delete 1 snapshot",
        (PlanItem("snap-0123456789abcdef0", "snapshot", 8, region="us-east-1"),),
        params={"policy": "daily-db"},
        account="prod",
    )
    seen = []
    results = execute_sweep(Context(None, config, lambda: datetime.now(UTC), threading.Event()), plan, seen.append)
    assert [(r.outcome, r.reason) for r in results] == [
        ("spared", "spared: policy daily-db no longer covers account prod")
    ]
    assert seen == results


def test_the_policy_list_names_each_accounts_part_of_the_last_run_escaped():
    from bot.slack.blocks.lifecycle import lifecycle_list
    from bot.testing.fakeslack import message_text
    from tests.support.factories import daily_policy

    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    last = {
        "started_at": (now - timedelta(hours=1)).isoformat(),
        "state": "failed",
        "summary": {
            "created": 3,
            "deleted": 1,
            "failed": 1,
            "accounts": {
                "default": {"created": 3, "deleted": 1, "failed": 0, "error": ""},
                "prod": {"created": 0, "deleted": 0, "failed": 1, "error": "AccessDenied <@U1> & <!here>"},
            },
        },
    }
    text = message_text(lifecycle_list([(daily_policy(), None, last, ("default", "prod"))], now))
    assert "in `default`, `prod`" in text
    assert "`default` 3 created, 1 deleted · `prod` 0 created, 0 deleted, 1 failed :x: AccessDenied" in text
    assert "&lt;@U1&gt; &amp; &lt;!here&gt;" in text and "<!here>" not in text
    single = message_text(lifecycle_list([(daily_policy(), None, None, ())], now))
    assert "`default`" not in single and " in `" not in single


def test_a_sweep_report_counts_policies_not_reports_and_a_failed_account_claims_no_kept_items():
    from bot.domain.sweep_report import PolicyReport, SweepReport
    from bot.slack.blocks.lifecycle import sweep_report_message
    from bot.testing.fakeslack import message_text

    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    reports = [PolicyReport("daily-db", "delete", account=f"acct{n}", kept=3) for n in range(19)]
    reports.append(PolicyReport("daily-db", "delete", account="acct19", error="I could not reach account acct19"))
    text = message_text(sweep_report_message(SweepReport(tuple(reports), now, 0.05)))
    assert "1 policy in 20 accounts:" in text and "20 policies" not in text
    failed = text.split("account *acct19*")[1].split("account *acct0*")[0]
    assert "could not reach account acct19" in failed and "Kept" not in failed
