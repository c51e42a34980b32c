"""What a practice's IT person reads — the README, .env.example, manifest.yml and the CLI's
help — speaks in words and README sections, never in this project's internal spec sections,
and every file the README points at is in the repository."""

from __future__ import annotations

import argparse
import re

import pytest

from bot.runtime.cli import build_parser
from tests.support.paths import REPO_ROOT

USER_FILES = ("README.md", ".env.example", "manifest.yml")
SPEC_MENTION = re.compile(r"SPEC|§")


@pytest.mark.parametrize("name", USER_FILES)
def test_user_facing_files_name_no_spec_section(name: str) -> None:
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    found = [line for line in text.splitlines() if SPEC_MENTION.search(line)]
    assert found == [], found


def _helps(parser: argparse.ArgumentParser) -> list[str]:
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                texts += _helps(child)
    return texts


def test_cli_help_names_no_spec_section() -> None:
    helps = _helps(build_parser())
    assert len(helps) > 10  # every verb's own help
    assert [h for h in helps if SPEC_MENTION.search(h)] == []


def test_every_file_the_readme_points_at_exists() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\]\(((?!https?:|#)[^)]+)\)", readme)
    named = {"LICENSE", "docs/pinbot.service", "bench/RESULTS.md", "bench/SOAK.md"}
    assert named <= set(linked) | set(re.findall(r"`([\w./-]+)`", readme))
    for path in {*linked, *named}:
        assert (REPO_ROOT / path).exists(), path
