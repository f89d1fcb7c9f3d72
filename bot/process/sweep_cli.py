"""`python -m bot sweep [--policy NAME] [--dry-run]`: one retention sweep from the shell.

Runs the same sweep as the scheduler (without creating new backups), prints
the report as text, posts it to the digest channel when Slack is configured,
and exits non-zero when anything failed or was left undone, or when a
freeze (`/lifecycle freeze`) kept it from deleting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.config import load_config
from bot.errors import ConfigError
from bot.flows import lifecycle_flow
from bot.process import sweep_processes
from bot.process.runtime import SlackSettings, build_deps, settle_heap, stop_on_signals
from bot.slack import blocks
from bot.slack.plaintext import render_blocks


def report_text(msg: blocks.Message) -> str:
    lines = render_blocks(msg["blocks"], lambda _: 0, {})
    return "\n".join(line.replace("*", "") for line in lines)


def run_sweep(
    env: Mapping[str, str],
    policy_name: str | None,
    dry_run: bool,
    say: Callable[[str], None],
    processes: str | int = sweep_processes.AUTO,
) -> int:
    """One sweep of `policy_name` (or every policy); `processes` spreads a fleet's accounts over child processes.

    With one account, or `processes` 1, everything runs in this process.
    """
    config = load_config(env=env)
    if policy_name and config.policy(policy_name) is None:
        known = ", ".join(p.name for p in config.policies) or "none"
        raise ConfigError("--policy", f"one of the configured policies ({known}), not {policy_name!r}")
    policies = [config.policy(policy_name)] if policy_name else list(config.policies)
    slack = SlackSettings.from_env(env)
    deps = build_deps(config, slack)
    widest = max((len(config.policy_accounts(p)) for p in policies), default=1)
    count = sweep_processes.process_count(processes, widest)
    fan_out = sweep_processes.ProcessFanOut(env, config, count, dry_run, deps.stopping) if count > 1 else None
    if fan_out is None:
        deps.gateway.warm_up(config.aws.regions)
    settle_heap()
    restore = stop_on_signals(deps.stopping)
    try:
        if dry_run:
            reports = [r for p in policies for r in lifecycle_flow.preview_policy(deps, p, fan_out=fan_out)]
        else:
            reports = [
                r
                for p in policies
                for r in lifecycle_flow.run_policy(deps, p, create=False, trigger="cli", fan_out=fan_out)
            ]
        report = lifecycle_flow.sweep_report(deps, reports)
        say(report_text(blocks.sweep_report_message(report)))
        if slack.bot_token and not dry_run:
            lifecycle_flow.post_report(deps, report)
        if report.frozen and not dry_run:
            say("Nothing was deleted: " + "; ".join(report.frozen) + ". An approver lifts it with /lifecycle thaw.")
            return 1
        return 0 if report.ok else 1
    finally:
        restore()
        deps.worker.shutdown()
        deps.store.close()
