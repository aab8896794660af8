"""The examples in docstrings are run, so they stay true to the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["indexer.ann", "indexer.chunking", "indexer.embedding", "indexer.loaders", "indexer.settings",
           "indexer.stores.__init__", "indexer.stores.base", "indexer.stores.folder", "indexer.terminal", "retrieval.aliases", "retrieval.answer",
           "retrieval.citation", "retrieval.fusion", "retrieval.grounding", "retrieval.highlight", "retrieval.query"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples any more: drop it from MODULES"
    assert result.failed == 0


def test_every_module_with_examples_is_listed() -> None:
    """A module that gains examples (other than skipped ones) is run here too."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = set()
    for package in ("indexer", "retrieval"):
        for path in (root / package).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").splitlines()
            if any(line.strip().startswith(">>> ") and "doctest: +SKIP" not in line for line in lines):
                found.add(".".join(path.relative_to(root).with_suffix("").parts))
    assert found <= set(MODULES), f"modules with examples not run: {sorted(found - set(MODULES))}"
