"""Build time: read articles, chunk them, embed them, and write the index.

The index format is owned by :mod:`indexer.store` and documented in docs/index-format.md.
The names below are imported on first use, so that ``import indexer`` (and ``python -m
indexer``, and query time importing :mod:`indexer.errors`) loads nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuildResult": "indexer.build", "build_index": "indexer.build",
    "chunk_text": "indexer.chunking", "split_sentences": "indexer.chunking",
    "Skipped": "indexer.documents", "load_documents": "indexer.documents",
    "read_document": "indexer.documents",
    "Embedder": "indexer.embedding", "SentenceTransformerEmbedder": "indexer.embedding",
    "load_embedder": "indexer.embedding",
    "VerbatimError": "indexer.errors",
    "ChunkingParams": "indexer.settings", "Limits": "indexer.settings", "Settings": "indexer.settings",
    "IndexData": "indexer.store", "load_index": "indexer.store",
    "Chunk": "indexer.types", "Document": "indexer.types", "Span": "indexer.types",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
