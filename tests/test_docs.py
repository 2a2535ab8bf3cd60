"""The manual stays true to the code: the generated configuration reference is current, and every command line shown
in the README and docs is accepted by the CLI's own parser (so a renamed or removed flag breaks this test, not the
reader)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from neuromusic.daemon import cli
from neuromusic.daemon.config_reference import render_markdown

REPO = Path(__file__).resolve().parent.parent
PAGES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
FENCE = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)
SHELL_OPERATORS = {">", ">>", "|", "&&", ";", "2>", "&"}


def documented_command_lines() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.splitlines():
                line = line.split("  #", 1)[0].strip()
                line = re.sub(r"^(bash scripts/neuromusic|\.venv/bin/neuromusic|\$ neuromusic)", "neuromusic", line)
                if line.startswith("neuromusic ") and not line.split()[1].endswith(":"):  # not printed output
                    found.append((page.name, line))
    return found


def cli_arguments(line: str) -> list[str]:
    words = shlex.split(line.replace("<SESSION>", "SESSION"))[1:]
    for index, word in enumerate(words):
        if word in SHELL_OPERATORS or word.startswith((">", "2>")):
            return words[:index]
    return words


def test_configuration_reference_is_current() -> None:
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == render_markdown(), "run: neuromusic config --reference > docs/configuration.md"


def test_the_docs_show_command_lines() -> None:
    assert len(documented_command_lines()) >= 20


@pytest.mark.parametrize(("page", "line"), documented_command_lines())
def test_documented_command_line_is_accepted(page: str, line: str) -> None:
    parser = cli.build_parser()
    try:
        parser.parse_args(cli_arguments(line))
    except SystemExit as error:
        if error.code == 0:  # --help
            return
        pytest.fail(f"{page}: `{line}` is rejected by the CLI (exit {error.code})")


def test_every_option_is_explained() -> None:
    rows = [line for line in render_markdown().splitlines() if line.startswith("| `")]
    assert len(rows) > 100
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))] for row in rows]
    assert all(len(row) == 4 for row in cells)  # key, type, default, meaning
    unexplained = [row[0] for row in cells if not row[3]]
    assert not unexplained, f"options without a comment in their dataclass: {unexplained}"
