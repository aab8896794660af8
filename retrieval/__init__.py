"""Query time: load the index, answer questions with exactly cited passages.

The names below are imported on first use (``import retrieval`` loads nothing heavy).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "rrf_fuse": "retrieval.fusion",
    "RankMode": "retrieval.searcher", "Searcher": "retrieval.searcher",
    "check_question": "retrieval.searcher",
    "AnswerSpan": "retrieval.types", "Hit": "retrieval.types", "Result": "retrieval.types",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
