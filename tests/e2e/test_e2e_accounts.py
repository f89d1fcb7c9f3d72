"""End to end over HTTP: commands in another AWS account, reached through STS assume-role on the moto server.

moto acts in account 111111111111 for credentials it issued for `arn:aws:iam::111111111111:role/…`, so what a
command did lands in that account's EC2 and nowhere else.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import timedelta

import botocore.awsrequest
import pytest

from bot.config import Account
from bot.testing.fakeslack import message_text
from tests.support.approvals import exists
from tests.support.factories import base_config, daily_policy, make_instance, make_snapshot, make_volume
from tests.support.harness import ALICE, BOB

pytestmark = pytest.mark.e2e

PROD_ID = "111111111111"
PROD = Account(name="prod", role_arn=f"arn:aws:iam::{PROD_ID}:role/chatops", external_id="shared-secret")


@pytest.fixture
def prod_ec2(aws):
    """EC2 in the prod account, through the same role the bot assumes."""
    creds = aws.client("sts").assume_role(RoleArn=PROD.role_arn, RoleSessionName="test", ExternalId="shared-secret")
    c = creds["Credentials"]
    return aws.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


@pytest.fixture
def fleet_bot(make_bot, tmp_path):
    return make_bot(dataclasses.replace(base_config(tmp_path), accounts=(PROD,)))


def test_a_command_acts_in_the_account_it_names_and_only_there(fleet_bot, ec2, prod_ec2):
    volume = make_volume(prod_ec2, Name="prod-db")

    fleet_bot.command(f"/snapshot {volume} nightly account=prod")
    fleet_bot.settle()

    [snap] = prod_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert snap["VolumeId"] == volume and snap["Description"] == "nightly"
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []  # nothing in the bot's own account
    assert {"Key": "chatops:requested-by", "Value": ALICE} in snap["Tags"]
    assert fleet_bot.deps.gateway.calls["CreateSnapshot"] == 0  # the own account's gateway was not used
    assert fleet_bot.deps.fleet.gateway("prod", ALICE).calls["CreateSnapshot"] == 1
    # The event is prod's: the bot's own account's digest does not count it.
    since = fleet_bot.deps.now() - timedelta(hours=1)
    assert fleet_bot.deps.store.event_counts(since) == {}
    assert fleet_bot.deps.store.event_counts(since, "prod")["us-east-1"]["created"] == 1


def test_the_default_account_is_the_bots_own(fleet_bot, ec2, prod_ec2):
    volume = make_volume(ec2)
    fleet_bot.command(f"/snapshot {volume}")
    fleet_bot.settle()
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1
    assert prod_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []


def test_an_unknown_account_is_a_usage_error_naming_the_accounts_before_any_aws_call(fleet_bot):
    ack = fleet_bot.command("/snapshot list account=staging")
    fleet_bot.settle()

    text = ack.text
    assert "account=staging" in text and "`default`" in text and "`prod`" in text
    assert sum(fleet_bot.deps.gateway.calls.values()) == 0
    assert fleet_bot.deps.fleet._gateways == {}  # no role was even assumed


def test_lists_read_the_named_account(fleet_bot, ec2, prod_ec2):
    own, prod = make_volume(ec2), make_volume(prod_ec2)
    fleet_bot.command("/volume list account=prod")
    fleet_bot.settle()
    [reply] = fleet_bot.responses()[-1:]
    assert prod in reply and own not in reply


def test_an_approval_in_another_account_names_it_and_deletes_there(fleet_bot, ec2, prod_ec2):
    snap = make_snapshot(prod_ec2)
    fleet_bot.command(f"/snapshot delete {snap} account=prod")
    fleet_bot.settle()
    [message] = fleet_bot.approval_messages()
    assert "(account prod)" in message_text(message)

    fleet_bot.click(message, "approval_approve", user=BOB)
    fleet_bot.settle()

    assert not exists(prod_ec2, snap)
    [row] = fleet_bot.deps.store.db["approvals"].rows
    assert row["state"] == "done"
    assert fleet_bot.deps.gateway.calls["DeleteSnapshot"] == 0


def test_a_restore_in_another_account_attaches_there_from_its_watch(fleet_bot, prod_ec2):
    snap = make_snapshot(prod_ec2)
    instance = make_instance(prod_ec2)
    fleet_bot.command(f"/snapshot restore {snap} instance={instance} device=/dev/sdf account=prod")
    fleet_bot.settle()
    fleet_bot.wait_watches_done()

    [watch] = fleet_bot.deps.store.db["watches"].rows
    assert watch["state"] == "done" and json.loads(watch["data"])["account"] == "prod"
    [volume] = [v for v in prod_ec2.describe_volumes()["Volumes"] if v.get("SnapshotId") == snap]
    assert [a["InstanceId"] for a in volume["Attachments"]] == [instance]  # attached by the watch, in prod


def test_share_with_an_account_by_name(fleet_bot, ec2):
    image = ec2.register_image(Name="golden", RootDeviceName="/dev/sda1", BlockDeviceMappings=[])["ImageId"]
    fleet_bot.command(f"/ami share {image} prod")
    fleet_bot.settle()
    [message] = fleet_bot.approval_messages()
    assert PROD_ID in message_text(message)

    fleet_bot.click(message, "approval_approve", user=BOB)
    fleet_bot.settle()
    perms = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    assert {"UserId": PROD_ID} in perms


def test_share_with_a_name_that_is_no_account_is_refused_in_the_ack(fleet_bot, ec2):
    image = ec2.register_image(Name="golden", RootDeviceName="/dev/sda1", BlockDeviceMappings=[])["ImageId"]
    ack = fleet_bot.command(f"/ami share {image} staging")
    fleet_bot.settle()
    assert "`staging`" in ack.text and "`prod`" in ack.text
    assert fleet_bot.approval_messages() == []


def test_check_tests_every_role(aws, fake_slack, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[aws]\ndefault_region = "us-east-1"\nregions = ["us-east-1"]\naccount_name = "ops"\n\n'
        f'[[accounts]]\nname = "prod"\nrole_arn = "{PROD.role_arn}"\nexternal_id = "shared-secret"\n'
        'regions = ["us-east-1", "eu-west-1"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATOPS_"))}
    env.update(
        CHATOPS_CONFIG=str(config),
        CHATOPS_DB=str(tmp_path / "check.db"),
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret",
        SLACK_API_URL=fake_slack.api_url,
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   aws: account ops is 123456789012" in result.stdout
    assert (
        f"ok   aws: account prod ({PROD_ID}) through {PROD.role_arn}: us-east-1, eu-west-1 reachable" in result.stdout
    )


BROKEN_ROLE = "arn:aws:iam::222222222222:role/chatops"


@pytest.fixture
def sts_refusing_broken_role():
    """STS in front of the moto server that refuses BROKEN_ROLE as AWS does when the trust policy does not allow
    the bot, and passes everything else through (moto assumes any role)."""

    class Sts(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if urllib.parse.parse_qs(body.decode()).get("RoleArn") == [BROKEN_ROLE]:
                status, answer = (
                    403,
                    (
                        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                        b"<Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole on "
                        b"resource: "
                        + BROKEN_ROLE.encode()
                        + b"</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                    ),
                )
            else:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"], body, headers, method="POST")
                with urllib.request.urlopen(request) as response:
                    status, answer = response.status, response.read()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_check_says_which_role_fails_and_why_and_exits_non_zero(aws, fake_slack, tmp_path, sts_refusing_broken_role):
    config = tmp_path / "config.toml"
    config.write_text(
        '[aws]\ndefault_region = "us-east-1"\nregions = ["us-east-1"]\n\n'
        f'[[accounts]]\nname = "prod"\nrole_arn = "{PROD.role_arn}"\n\n'
        f'[[accounts]]\nname = "broken"\nrole_arn = "{BROKEN_ROLE}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATOPS_"))}
    env.update(
        CHATOPS_CONFIG=str(config),
        CHATOPS_DB=str(tmp_path / "check.db"),
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret",
        SLACK_API_URL=fake_slack.api_url,
        AWS_ENDPOINT_URL_STS=sts_refusing_broken_role,
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"ok   aws: account prod ({PROD_ID})" in result.stdout
    [failure] = [line for line in result.stdout.splitlines() if "account broken" in line]
    assert failure.startswith("FAIL") and BROKEN_ROLE in failure and "AccessDenied" in failure


def test_replies_name_the_account_when_there_are_several(fleet_bot, ec2, prod_ec2):
    prod, own = make_volume(prod_ec2), make_volume(ec2)
    fleet_bot.command("/volume list account=prod")
    fleet_bot.command("/volume list")
    fleet_bot.settle()
    [prod_reply] = [r for r in fleet_bot.responses() if prod in r]
    [own_reply] = [r for r in fleet_bot.responses() if own in r]
    assert "account *prod*" in prod_reply and prod_reply.startswith("[prod] ")
    assert "account *default*" in own_reply


def test_a_single_account_bot_says_nothing_of_accounts(bot, ec2):
    make_volume(ec2)
    bot.command("/volume list")
    bot.settle()
    assert "account" not in bot.responses()[-1]


# --- policies over several accounts ------------------------------------------------------------


def policy_snapshots(client) -> list[str]:
    found = client.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:chatops:policy", "Values": ["daily-db"]}]
    )
    return [s["SnapshotId"] for s in found["Snapshots"]]


@pytest.fixture
def fleet_policy_bot(make_bot, tmp_path):
    def make(**changes):
        changes.setdefault("accounts", ("*",))
        config = dataclasses.replace(base_config(tmp_path), accounts=(PROD,), policies=(daily_policy(**changes),))
        return make_bot(config)

    return make


def test_a_policy_over_every_account_backs_up_and_sweeps_each_in_its_own_account(fleet_policy_bot, ec2, prod_ec2):
    bot = fleet_policy_bot(on_expired="delete", keep=1)
    own, prod = make_volume(ec2, Backup="daily"), make_volume(prod_ec2, Backup="daily")

    for i in range(2):
        if i:
            time.sleep(1.1)  # moto stamps StartTime to the second; retention orders by it
        bot.command("/lifecycle run daily-db")
        bot.settle()

    own_left, prod_left = policy_snapshots(ec2), policy_snapshots(prod_ec2)
    assert len(own_left) == 1 and len(prod_left) == 1  # keep=1 in each account, the older one deleted in each
    assert ec2.describe_snapshots(SnapshotIds=own_left)["Snapshots"][0]["VolumeId"] == own
    assert prod_ec2.describe_snapshots(SnapshotIds=prod_left)["Snapshots"][0]["VolumeId"] == prod
    report = "\n".join(message_text(m) for m in bot.posted() if "daily-db" in message_text(m))
    assert "account *default*" in report and "account *prod*" in report
    since = bot.deps.now() - timedelta(hours=1)
    assert bot.deps.store.event_counts(since, "prod")["us-east-1"] == {"created": 2, "deleted": 1, "failed": 0}
    assert bot.deps.store.event_counts(since)["us-east-1"] == {"created": 2, "deleted": 1, "failed": 0}


def test_an_approved_sweep_in_another_account_deletes_there(fleet_policy_bot, ec2, prod_ec2):
    bot = fleet_policy_bot(on_expired="approve", keep=1, accounts=("prod",))
    make_volume(prod_ec2, Backup="daily")
    make_volume(ec2, Backup="daily")  # not covered: the policy is prod's only
    for i in range(2):
        if i:
            time.sleep(1.1)
        bot.command("/lifecycle run daily-db")
        bot.settle()
    assert policy_snapshots(ec2) == []
    [message] = bot.approval_messages()
    assert "(account prod)" in message_text(message)
    bot.click(message, "approval_approve", user=BOB)
    bot.settle()
    assert len(policy_snapshots(prod_ec2)) == 1
    [row] = bot.deps.store.db["approvals"].rows
    assert row["state"] == "done"


def test_an_account_whose_role_fails_is_reported_and_the_others_complete(fleet_policy_bot, ec2, prod_ec2):
    bot = fleet_policy_bot(on_expired="report")
    make_volume(ec2, Backup="daily")
    make_volume(prod_ec2, Backup="daily")

    def refuse(params, **_):  # STS refusing the role, as AWS does for a trust policy that does not allow the bot
        if params.get("body", {}).get("RoleArn") == PROD.role_arn:
            error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sts:AssumeRole"}}
            return botocore.awsrequest.AWSResponse("", 403, {}, None), {
                **error,
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
        return None

    bot.deps.gateway.session.events.register("before-call.sts.AssumeRole", refuse)
    bot.command("/lifecycle run daily-db")
    bot.settle()

    assert len(policy_snapshots(ec2)) == 1  # the bot's own account completed
    assert policy_snapshots(prod_ec2) == []
    report = message_text([m for m in bot.posted() if "daily-db" in message_text(m)][-1])
    assert "account *prod*" in report and "AccessDenied" in report and PROD.role_arn in report
    [run] = bot.deps.store.db["runs"].rows
    assert run["state"] == "failed"

    bot.command("/lifecycle list")
    bot.settle()  # the listing is answered after the ack: read it once it is there
    listing = bot.responses()[-1]
    assert "in `default`, `prod`" in listing
    assert "`default` 1 created, 0 deleted" in listing
    assert "`prod` 0 created, 0 deleted, 2 failed :x:" in listing and "AccessDenied" in listing


def test_the_digest_covers_every_account_then_region_with_fleet_totals(fleet_bot, ec2, prod_ec2):
    make_snapshot(ec2)
    make_snapshot(prod_ec2)
    make_snapshot(prod_ec2)
    fleet_bot.command("/lifecycle digest")
    fleet_bot.settle()

    [digest] = [m for m in fleet_bot.posted() if m.get("channel") == "C0DIGEST" or "Digest" in message_text(m)][-1:]
    text = message_text(digest)
    lines = {
        line.split("*")[1]: line for line in text.splitlines() if line.startswith("*") and "/" in line.split("*")[1]
    }
    assert "1 snapshot " in lines["default/us-east-1"] and "2 snapshots" in lines["prod/us-east-1"]
    assert list(lines).index("default/us-east-1") < list(lines).index("prod/us-east-1")
    assert "3 snapshots" in text  # the fleet's total
