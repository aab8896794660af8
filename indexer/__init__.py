"""Build time: read articles, chunk them, embed them, and write the index.

Where an index lives and how it is written is :mod:`indexer.stores` (the local folder format is
documented in docs/index-format.md).
The names below are imported on first use, so that ``import indexer`` (and ``python -m
indexer``, and query time importing :mod:`indexer.errors`) loads nothing heavy.
"""

from __future__ import annotations

import sys

if sys.argv[:1] == ["-m"]:  # `python -m indexer` is importing this package: Ctrl-C from the first moment
    import _signal  # the C module: installing the handler imports nothing
    import os

    def _interrupted(signum: int, frame: object) -> None:
        os.write(2, b"interrupted; the previous index is unchanged.\n")
        os._exit(130)

    _signal.signal(_signal.SIGINT, _interrupted)  # indexer/__main__.py installs its own next

import importlib  # noqa: E402
from typing import Any  # noqa: E402

_EXPORTS = {
    "BuildResult": "indexer.build", "build_index": "indexer.build",
    "chunk_text": "indexer.chunking", "split_sentences": "indexer.chunking",
    "Skipped": "indexer.documents", "load_documents": "indexer.documents",
    "read_document": "indexer.documents",
    "Embedder": "indexer.embedding", "SentenceTransformerEmbedder": "indexer.embedding",
    "load_embedder": "indexer.embedding",
    "VerbatimError": "indexer.errors",
    "ChunkingParams": "indexer.settings", "Limits": "indexer.settings", "Settings": "indexer.settings",
    "Store": "indexer.stores.base", "open_store": "indexer.stores",
    "Chunk": "indexer.types", "Document": "indexer.types", "Span": "indexer.types",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
