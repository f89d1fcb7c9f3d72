"""The architecture, held by a test: data flows one way, and each outside world has one door.

Layers, lowest first (README, *Layout*); a module may import its own layer and
the ones below it, never one above, and never its sibling in the same rank:

    base        bot.errors, bot.config
    aws         bot.aws          the gateway (the only boto3 caller), its result models, pacing
    domain      bot.domain       rules and AWS actions: no Slack, no SQLite
    approvals   bot.approvals    executors of destructive plans, in one registry
    state/slack bot.state | bot.slack   the store (only SQLite writer) | grammar, rendering, the only Slack sender
    flows       bot.flows        workflows: domain + store + Slack
    entry       handlers | scheduler    Slack listeners | APScheduler jobs
    process     bot.process      the app, the runtime, the CLI's sweep and check
    tools       bot.testing, bot.demo, bot.__main__   test support, the demo, the command line

Imports under `if TYPE_CHECKING:` are for annotations only and do not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "scheduler")

# (rank, group): a lower rank never imports a higher one; equal ranks in different groups never import each other.
LAYERS: dict[str, tuple[int, str]] = {
    "bot.errors": (0, "base"),
    "bot.config": (0, "base"),
    "bot.aws": (1, "aws"),
    "bot.domain": (2, "domain"),
    "bot.approvals": (3, "approvals"),
    "bot.state": (4, "state"),
    "bot.slack": (4, "slack"),
    "bot.flows": (5, "flows"),
    "handlers": (6, "handlers"),
    "scheduler": (6, "scheduler"),
    "bot.process": (7, "process"),
    "bot.testing": (8, "tools"),
    "bot.demo": (8, "tools"),
    "bot.__main__": (8, "tools"),
    "bot": (8, "tools"),  # bot/__init__.py
}


def layer_of(module: str) -> tuple[int, str]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to the README's layout table)")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import that runs (not under `if TYPE_CHECKING:`), functions included."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{base}" if base else package
            found.append((node.lineno, base))
            # `from bot import x` imports the module bot.x
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def import_table() -> dict[str, list[tuple[int, str]]]:
    table = {}
    for path in sources():
        module = module_name(path)
        table[module] = runtime_imports(ast.parse(path.read_text(), str(path)), module)
    return table


def layering_violations(table: dict[str, list[tuple[int, str]]]) -> list[str]:
    bad = []
    for module, imports in table.items():
        rank, group = layer_of(module)
        for line, name in imports:
            if not ours(name) or not is_module(name) or name == "bot":
                continue
            their_rank, their_group = layer_of(name)
            if their_rank > rank or (their_rank == rank and their_group != group):
                bad.append(f"{module}:{line} ({group}) imports {name} ({their_group})")
    return bad


def test_every_module_is_in_a_layer():
    for path in sources():
        layer_of(module_name(path))


def test_no_layer_imports_a_higher_one_or_its_sibling():
    assert layering_violations(import_table()) == []


def test_the_layer_check_catches_an_upward_import():
    """The check can fail: the domain importing the store, or the store importing Slack, is reported."""
    table = {
        "bot.domain.retention": [(3, "bot.state.store")],
        "bot.state.store": [(7, "bot.slack.blocks")],
        "bot.flows.deps": [(1, "bot.state.store"), (2, "bot.domain.plans")],
    }
    assert layering_violations(table) == [
        "bot.domain.retention:3 (domain) imports bot.state.store (state)",
        "bot.state.store:7 (state) imports bot.slack.blocks (slack)",
    ]


def test_runtime_imports_skip_type_checking_blocks_but_not_functions():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.aws.gateway import Ec2Gateway\n"
        "def f():\n    from bot.state import store\n"
    )
    names = {name for _, name in runtime_imports(tree, "bot.domain.x")}
    assert "bot.aws.gateway" not in names
    assert {"bot.state", "bot.state.store"} <= names


# --- one door per outside world -----------------------------------------------------

# Where each outside world may be reached from product code (bot/testing, bot/demo.py are tools, not product).
DOORS = {
    "boto3": {"bot.aws.gateway"},
    "botocore": {"bot.aws.gateway"},
    "sqlite3": {"bot.state.store"},
    "sqlite_utils": {"bot.state.store"},
}
TOOLS = ("bot.testing", "bot.demo", "bot.__main__")


@pytest.mark.parametrize("library", sorted(DOORS))
def test_one_module_imports_each_outside_library(library):
    users = {
        module
        for module, imports in import_table().items()
        if not module.startswith(TOOLS) and any(name.split(".")[0] == library for _, name in imports)
    }
    assert users == DOORS[library]


SLACK_SENDS = ("chat_postMessage", "chat_update", "chat_postEphemeral", "chat_delete", "views_open", "views_update")


def slack_senders() -> set[str]:
    found = set()
    for path in sources():
        module = module_name(path)
        if module.startswith(TOOLS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if called and (node.func.attr in SLACK_SENDS or node.func.attr.startswith(("chat_", "views_"))):
                found.add(module)
            if isinstance(node, ast.Name) and node.id in ("WebhookClient", "webhook"):
                found.add(module)
    return found


def test_one_module_sends_to_slack():
    # bot.slack.retry builds the response_url client that bot.slack.send sends with.
    assert slack_senders() == {"bot.slack.send", "bot.slack.retry"}


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_rendering_and_the_domain_import_no_aws_slack_client_or_sqlite():
    """Block Kit builders and domain rules are pure: importing them loads no boto3, no sqlite, no Bolt."""
    loaded = imported_after(
        "import bot.slack.blocks, bot.slack.commands, bot.domain.retention, bot.domain.lifecycle, "
        "bot.domain.digest, bot.domain.amis, bot.domain.snapshots, bot.domain.plans"
    )
    assert not loaded & {"boto3", "botocore", "sqlite3", "sqlite_utils", "slack_bolt", "apscheduler_jobstores"}


def test_no_import_is_kept_for_its_side_effects():
    """Registries are filled explicitly: an import nobody uses (noqa: F401) would be a registration by side effect."""
    side_effects = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sources()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "import" in line and "noqa: F401" in line and not path.name == "__init__.py"
    ]
    assert side_effects == []


def test_every_watch_kind_has_a_watcher_and_a_status_hint():
    from scheduler.watch_messages import STATUS_HINTS
    from scheduler.watches import WATCHERS

    assert set(WATCHERS) == set(STATUS_HINTS) == {"snapshot", "volume", "image", "instances"}
