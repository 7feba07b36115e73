"""Every ```python block in docs/ runs, in order per page, against a fresh embedded home.

Snippets that need a running server are marked ```py and are shown, not run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelward.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
PAGES = sorted(p for p in DOCS.glob("*.md") if BLOCK.search(p.read_text()))


def test_some_docs_pages_carry_runnable_examples() -> None:
    assert PAGES, "docs/ should show runnable examples"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_page_examples_run(page: Path, settings: Settings) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(BLOCK.findall(page.read_text())):
        exec(compile(block, f"{page.name}[block {i}]", "exec"), namespace)


def test_the_registry_example_runs_again_in_the_same_home(settings: Settings) -> None:
    """A reader runs the example twice in their own ./.modelward: it must not assume an empty home."""
    page = DOCS / "registry.md"
    for run in range(2):
        namespace: dict[str, object] = {"__name__": f"docs_registry_{run}"}
        for i, block in enumerate(BLOCK.findall(page.read_text())):
            exec(compile(block, f"{page.name}[block {i}, run {run + 1}]", "exec"), namespace)
