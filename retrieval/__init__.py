"""Query time: load the index, answer questions with exactly cited passages.

The names below are imported on first use (``import retrieval`` loads nothing heavy).
"""

from __future__ import annotations

import sys

if sys.argv[:1] == ["-m"]:  # `python -m retrieval` is importing this package: Ctrl-C from the first moment
    import _signal  # the C module: installing the handler imports nothing
    import os

    def _interrupted(signum: int, frame: object) -> None:
        os.write(2, b"interrupted.\n")
        os._exit(130)

    _signal.signal(_signal.SIGINT, _interrupted)  # retrieval/__main__.py installs its own next

import importlib  # noqa: E402
from typing import Any  # noqa: E402

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
