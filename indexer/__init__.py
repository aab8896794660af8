"""Build time: read articles, chunk them, embed them, and write the index.

The index format is owned by :mod:`indexer.store` and documented in docs/index-format.md.
"""

from indexer.build import BuildResult, build_index
from indexer.chunking import chunk_text, split_sentences
from indexer.documents import Skipped, load_documents, read_document
from indexer.embedding import Embedder, SentenceTransformerEmbedder, load_embedder
from indexer.errors import VerbatimError
from indexer.settings import ChunkingParams, Settings
from indexer.store import IndexData, load_index
from indexer.types import Chunk, Document, Span

__all__ = [
    "BuildResult", "Chunk", "ChunkingParams", "Document", "Embedder", "IndexData",
    "SentenceTransformerEmbedder", "Settings", "Skipped", "Span", "VerbatimError",
    "build_index", "chunk_text", "load_documents", "load_embedder", "load_index",
    "read_document", "split_sentences",
]
