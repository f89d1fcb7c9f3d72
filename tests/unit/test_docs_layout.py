"""The README's layout table matches the tree, and the docs link only inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def layout_rows() -> list[tuple[list[str], str]]:
    """(paths in the first column, the second column) of each row of README's *Layout* table."""
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1]))
    return rows


def named_modules(text: str) -> set[str]:
    """Module and package names a row's description mentions in backticks: `gateway.py`, `blocks/`."""
    return {m for m in re.findall(r"`([\w]+(?:\.py|/))`", text)}


def test_every_path_in_the_layout_table_exists():
    paths = [p for cells, _ in layout_rows() for p in cells]
    assert paths, "no layout table found"
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_every_layer_of_bot_is_in_the_layout_table():
    listed = {p.rstrip("/") for cells, _ in layout_rows() for p in cells}
    packages = {f"bot/{p.name}" for p in (ROOT / "bot").iterdir() if (p / "__init__.py").exists()}
    modules = {f"bot/{p.name}" for p in (ROOT / "bot").glob("*.py") if p.name != "__init__.py"}
    tops = {"handlers", "scheduler", "tests", "benchmarks", "docs"}
    assert (packages | modules | tops) - listed == set()


@pytest.mark.parametrize("package", sorted(p.name for p in (ROOT / "bot").iterdir() if (p / "__init__.py").exists()))
def test_each_layer_row_names_exactly_the_modules_it_has(package):
    """A row for a bot/ sub-package names each of its modules, and nothing that is not there."""
    [text] = [text for cells, text in layout_rows() if f"bot/{package}/" in cells]
    on_disk = {p.name for p in (ROOT / "bot" / package).glob("*.py") if p.name != "__init__.py"}
    on_disk |= {f"{p.name}/" for p in (ROOT / "bot" / package).iterdir() if (p / "__init__.py").exists()}
    if package == "testing":  # its row describes the package, not each module
        assert on_disk
        return
    assert named_modules(text) == on_disk


def test_handler_and_scheduler_modules_named_in_the_table_exist():
    for cells, text in layout_rows():
        for top in ("handlers/", "scheduler/"):
            if top in cells:
                missing = {m for m in named_modules(text) if not (ROOT / top / m).exists()}
                assert missing == set(), top


LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_link_only_inside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        assert not re.match(r"[a-z]+:", target), f"{doc.name} links outside the repository: {target}"
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert path.exists(), f"{doc.name} links to {target}, which does not exist"
