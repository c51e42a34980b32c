"""The layers hold: models <- bot <- the two adapters (handlers for Slack, portal_api for the
portal) <- bot/runtime (the composition root). Neither adapter imports the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLACK_OR_ADAPTER = ("slack_sdk", "slack_bolt", "handlers")
WEB_OR_PORTAL_ADAPTER = ("fastapi", "starlette", "uvicorn", "portal_api")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


COMPOSITION_ROOT = REPO / "bot" / "runtime" / "process.py"


@pytest.mark.parametrize(
    "path",
    [p for p in _modules("bot") if p != COMPOSITION_ROOT],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_the_core_imports_no_slack_and_no_adapter(path: Path) -> None:
    """Only the one composition root may know the adapters; the CLI and the rest of
    bot/runtime reach Slack and the portal API through it."""
    assert _offending(path, (*SLACK_OR_ADAPTER, *WEB_OR_PORTAL_ADAPTER)) == []


@pytest.mark.parametrize("path", _modules("portal_api"), ids=lambda p: str(p.relative_to(REPO)))
def test_the_portal_adapter_imports_neither_slack_nor_the_composition_root(path: Path) -> None:
    assert _offending(path, (*SLACK_OR_ADAPTER, "bot.runtime")) == []


@pytest.mark.parametrize("path", _modules("models"), ids=lambda p: str(p.relative_to(REPO)))
def test_models_import_neither_core_nor_adapter(path: Path) -> None:
    assert _offending(path, ("bot", *SLACK_OR_ADAPTER)) == []


@pytest.mark.parametrize("path", _modules("handlers"), ids=lambda p: str(p.relative_to(REPO)))
def test_the_adapter_never_imports_the_composition_root(path: Path) -> None:
    assert _offending(path, ("bot.runtime", *WEB_OR_PORTAL_ADAPTER)) == []


def test_the_core_top_holds_a_dozen_modules_at_most() -> None:
    top = [p.name for p in (REPO / "bot").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 12, sorted(top)


def test_every_domain_package_says_what_it_owns_and_may_import() -> None:
    for init in (REPO / "bot").glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(docstring.split()) >= 20 and "import" in docstring, init.parent.name


def test_the_layer_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from slack_sdk.models.blocks import SectionBlock\nimport handlers.app\n")
    assert _offending(sample, SLACK_OR_ADAPTER) == ["handlers.app", "slack_sdk.models.blocks"]
