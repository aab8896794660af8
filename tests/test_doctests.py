"""The examples in docstrings are run, so they stay true to the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["indexer.ann", "indexer.chunking", "indexer.loaders", "indexer.store", "retrieval.aliases",
           "retrieval.answer", "retrieval.fusion", "retrieval.highlight", "retrieval.query"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples any more: drop it from MODULES"
    assert result.failed == 0
