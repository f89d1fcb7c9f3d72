"""`python -m bot check`: is config.toml valid, and do the Slack and AWS credentials work?"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.errors import BotError, ConfigError


def run_checks(env: Mapping[str, str], say: Callable[[str], None]) -> int:
    """Print one line per check; returns 0 when everything passed, 1 otherwise."""
    from bot.aws.gateway import Ec2Gateway, Fleet
    from bot.aws.pacing import Pacer
    from bot.config import load_config
    from bot.process.app import make_slack_client

    failures = 0
    try:
        config = load_config(env=env)
    except ConfigError as exc:
        say(f"FAIL config: {exc.message}")
        return 1
    say(f"ok   config: {len(config.policies)} policies, regions {', '.join(config.aws.regions)}")

    token = env.get("SLACK_BOT_TOKEN")
    if not token:
        say("FAIL slack: SLACK_BOT_TOKEN is not set")
        failures += 1
    else:
        try:
            resp = make_slack_client(token, env.get("SLACK_API_URL")).auth_test()
            say(f"ok   slack: bot {resp.get('user')} in team {resp.get('team')}")
        except Exception as exc:  # any failure here is the answer the user asked for
            say(f"FAIL slack: {exc}")
            failures += 1
    if not (env.get("SLACK_SIGNING_SECRET") or env.get("SLACK_APP_TOKEN")):
        say("FAIL slack: set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")
        failures += 1

    gateway = Ec2Gateway(max_attempts=2)
    try:
        say(f"ok   aws: account {config.aws.account_name} is {gateway.account_id(config.aws.default_region)}")
        for region in config.aws.regions:
            zones = gateway.availability_zones(region)
            say(f"ok   aws: {region} reachable ({len(zones)} availability zones)")
    except BotError as exc:
        say(f"FAIL aws: {exc}")
        return 1  # without the bot's own credentials no role can be assumed either
    fleet = Fleet(
        gateway,
        config.aws.account_name,
        config.accounts,
        config.aws.default_region,
        new_gateway=lambda session, pacer, _account: Ec2Gateway(session, max_attempts=2, pacer=pacer),
        new_pacer=Pacer,
    )
    for account in config.accounts:  # every role, each on its own: one failing says which, and why
        try:
            assumed = fleet.gateway(account.name)
            found = assumed.account_id(config.aws.default_region)
            if found != account.account_id:
                raise BotError(f"its role acts in account {found}, not {account.account_id} as its ARN says.")
            for region in config.account_regions(account.name):
                assumed.availability_zones(region)
            regions = ", ".join(config.account_regions(account.name))
            say(f"ok   aws: account {account.name} ({found}) through {account.role_arn}: {regions} reachable")
        except BotError as exc:
            say(f"FAIL aws: account {account.name}: {exc}")
            failures += 1
    return 1 if failures else 0
