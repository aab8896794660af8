"""The build pipeline: documents -> sentences and chunks -> embeddings + BM25 -> index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.chunking import chunk_sentences, split_sentences
from indexer.embedding import Embedder
from indexer.lexical import build_bm25
from indexer.settings import Settings
from indexer.store import write_index, write_lock
from indexer.types import Document


@dataclass(frozen=True)
class BuildResult:
    path: Path
    documents: int
    chunks: int
    sentences: int


def passage_field(title: str, text: str) -> str:
    """The text embedded and BM25-indexed for a passage: its article's title, then the passage.

    The title gives a passage the article's topic even when the passage itself only says
    "it" or "the system". Query time never needs this: it searches the stored vectors.
    """
    return f"{title}\n{text}" if title and not text.startswith(title) else text


def build_index(
    documents: Sequence[Document],
    settings: Settings,
    embedder: Embedder,
    *,
    sources: Sequence[str] = (),
    show_progress: bool = False,
) -> BuildResult:
    """Chunk, embed and index ``documents`` into ``settings.index_dir`` (replacing it atomically).

    Args:
        documents: the articles; document ids must be unique.
        settings: chunking parameters, batch size and index folder.
        embedder: the model; its ``name`` and ``dimension`` go into the manifest.
        sources: the paths the documents came from, recorded for the rebuild hint.
        show_progress: show a progress bar while embedding.

    Raises:
        ValueError: duplicate document ids, or no text at all.
        IndexLockedError: another writer holds the index.
    """
    ids = [d.doc_id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("document ids must be unique")
    chunk_rows: list[tuple[int, int, int, int, int]] = []
    sentence_rows: list[tuple[int, int, int]] = []
    chunk_fields: list[str] = []
    sentence_texts: list[str] = []
    for row, doc in enumerate(documents):
        spans = split_sentences(doc.text)
        first = len(sentence_rows)
        index_of = {span: first + i for i, span in enumerate(spans)}
        sentence_rows.extend((row, s.start, s.end) for s in spans)
        sentence_texts.extend(s.slice(doc.text) for s in spans)
        for chunk in chunk_sentences(doc.text, spans, settings.chunking, doc.doc_id):
            lo = index_of[chunk.sentences[0]]
            chunk_rows.append((row, chunk.start, chunk.end, lo, lo + len(chunk.sentences)))
            chunk_fields.append(passage_field(doc.title, chunk.text))

    if not chunk_rows:
        raise ValueError("there is no text to index")
    with write_lock(settings.index_dir):
        chunk_vectors = embedder.encode(chunk_fields, batch_size=settings.batch_size,
                                        show_progress=show_progress)
        sentence_vectors = embedder.encode(sentence_texts, batch_size=settings.batch_size,
                                           show_progress=show_progress)
        bm25 = build_bm25(chunk_fields)
        path = write_index(
            settings.index_dir,
            documents=list(documents),
            chunks=np.array(chunk_rows, dtype=np.int64).reshape(-1, 5),
            sentences=np.array(sentence_rows, dtype=np.int64).reshape(-1, 3),
            chunk_vectors=chunk_vectors,
            sentence_vectors=sentence_vectors,
            bm25=bm25,
            model={"name": embedder.name, "dimension": embedder.dimension, "normalized": True},
            chunking=settings.chunking,
            extra={"sources": list(sources), "passage_field": "title + newline + passage"},
        )
    return BuildResult(path, len(documents), len(chunk_rows), len(sentence_rows))
