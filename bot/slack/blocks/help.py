"""Help: every command and verb with its usage, from the command grammar."""

from __future__ import annotations

from bot.slack.blocks.common import Message, context, escape, message, section
from bot.slack.commands import COMMAND_SUMMARIES, COMMANDS, Verb


def verb_help(verb: Verb) -> str:
    return f"`{escape(verb.usage)}`{' :lock:' if verb.destructive else ''}\n{escape(verb.summary)}"


def help_message(command: str | None = None, verb: Verb | None = None) -> Message:
    """Help for one verb, one command, or (command None / chatops) everything."""
    if verb is not None:
        return message(f"Help: {verb.usage}", [section(verb_help(verb))])
    commands = [command] if command and command != "chatops" else list(COMMANDS)
    blocks = []
    for name in commands:
        lines = [f"*/{name}* — {escape(COMMAND_SUMMARIES.get(name, ''))}"]
        lines += [verb_help(v) for v in COMMANDS[name].values()]
        blocks.append(section("\n".join(lines)))
    blocks.append(
        context(
            "Every command takes `region=…` and `help`; those on snapshots, volumes, instances and AMIs "
            "also `account=…` (see config.toml). :lock: = needs an approver. "
            "IDs look like `vol-0123456789abcdef0`."
        )
    )
    title = f"/{command} help" if command and command != "chatops" else "Snapshot & AMI bot help"
    return message(title, blocks)
