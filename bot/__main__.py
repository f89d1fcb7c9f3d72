"""`python -m bot [demo | sweep | manifest | check | backup]`; with no sub-command, serve Slack."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from bot.errors import BotError, ConfigError
from bot.process.logs import configure_logging

log = logging.getLogger("bot")

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}


def subcommand(name: str, help_text: str):
    def add(fn):
        COMMANDS[name] = (help_text, fn)
        return fn

    return add


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (e.g. from the platform) stops like Ctrl-C: jobs drain, store closes


def serve(args: argparse.Namespace) -> int:
    """Serve Slack: HTTP on $PORT (SLACK_SIGNING_SECRET) or Socket Mode (SLACK_APP_TOKEN)."""
    from bot.config import load_config
    from bot.process.runtime import Runtime, SlackSettings, settle_heap

    config = load_config()
    slack = SlackSettings.from_env(os.environ)
    if not slack.bot_token:
        raise ConfigError("SLACK_BOT_TOKEN", "the bot token (xoxb-…) in the environment")
    if not slack.signing_secret and not slack.app_token:
        raise ConfigError("SLACK_SIGNING_SECRET", "a signing secret (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")
    runtime = Runtime(config, slack)
    signal.signal(signal.SIGTERM, _interrupt)
    runtime.start()  # builds the EC2 clients, among other things
    settle_heap()
    try:
        if slack.app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("serving Slack over Socket Mode")
            SocketModeHandler(runtime.app, slack.app_token).start()
        else:
            from bot.slack.server import HttpServer

            server = HttpServer(runtime.app, port=int(os.environ.get("PORT", "3000")))
            log.info("serving Slack over HTTP on port %s (POST /slack/events, GET /healthz)", server.port)
            server.serve_forever()
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        runtime.stop()
    return 0


@subcommand("demo", "run the bot against moto and a simulated Slack, with a console")
def _demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="use this config.toml instead of the demo's")

    def run(args: argparse.Namespace) -> int:
        from bot.demo import run_demo

        return run_demo(config_path=args.config)

    parser.set_defaults(run=run)


def _processes(text: str) -> str | int:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a number of processes (1 or more) or auto, not {text!r}")
    return int(text)


@subcommand("sweep", "run one retention sweep now and print the report (exit 1 if anything failed)")
def _sweep(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", help="only this policy (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="decide and report; create and delete nothing")
    parser.add_argument(
        "--processes",
        default="auto",
        type=_processes,
        help="spread a fleet's accounts over this many processes (default auto: one per CPU core; 1: this process)",
    )

    def run(args: argparse.Namespace) -> int:
        from bot.process.sweep_cli import run_sweep

        return run_sweep(os.environ, args.policy, args.dry_run, print, processes=args.processes)

    parser.set_defaults(run=run)


@subcommand("manifest", "print the Slack app manifest (JSON) to paste into api.slack.com")
def _manifest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="https://YOUR-BOT-HOST", help="public base URL of the bot")
    parser.add_argument("--socket-mode", action="store_true", help="manifest for Socket Mode (no request URLs)")

    def run(args: argparse.Namespace) -> int:
        from bot.slack.manifest import manifest_json

        print(manifest_json(args.url, args.socket_mode))
        return 0

    parser.set_defaults(run=run)


@subcommand("check", "validate config.toml and test the Slack and AWS credentials")
def _check(parser: argparse.ArgumentParser) -> None:
    def run(args: argparse.Namespace) -> int:
        from bot.process.checks import run_checks

        return run_checks(os.environ, print)

    parser.set_defaults(run=run)


@subcommand("backup", "copy the store to a new file while the bot runs (SQLite online backup)")
def _backup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the file to write (it must not exist yet)")

    def run(args: argparse.Namespace) -> int:
        from bot.config import load_config
        from bot.state.store import backup

        config = load_config()
        copy = backup(config.store.path, args.path)
        print(f"backed up {config.store.path} to {copy.path}: {copy.size} bytes, schema version {copy.schema_version}")
        return 0

    parser.set_defaults(run=run)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        configure_logging(os.environ.get("LOG_LEVEL") or "INFO")
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    for name, (help_text, configure) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return serve(args)
        return args.run(args)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except BotError as exc:
        print(str(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
