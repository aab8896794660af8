"""The build pipeline: documents -> sentences and chunks -> embeddings + BM25 -> index.

Full builds and incremental updates share one path: :func:`build_index` re-chunks every
document (cheap) and embeds only the passages and sentences whose vectors the previous
index does not already hold (same document id, same content, same spans, same model).
Documents are always stored sorted by id, so any sequence of adds and removes gives the
same index as a fresh build of the same articles.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.ann import choose_index
from indexer.chunking import article_spans, sentence_kinds
from indexer.embedding import Embedder
from indexer.lexical import build_bm25
from indexer.manifest import ModelInfo
from indexer.settings import Settings
from indexer.store import IndexData, check_free_space, write_index, write_lock
from indexer.types import Document

PASSAGE_FIELD = "title + newline + passage"


@dataclass(frozen=True)
class BuildResult:
    path: Path
    documents: int
    chunks: int
    sentences: int
    embedded_chunks: int = 0  # passages embedded in this build (the rest were reused)
    embedded_sentences: int = 0
    reused_documents: tuple[str, ...] = field(default_factory=tuple)


def passage_field(title: str, text: str) -> str:
    """The text embedded and BM25-indexed for a passage: its article's title, then the passage.

    The title gives a passage the article's topic even when the passage itself only says
    "it" or "the system". Query time never needs this: it searches the stored vectors.
    """
    return f"{title}\n{text}" if title and not text.startswith(title) else text


@dataclass
class _Layout:
    """Rows of the new index, and for each document where its rows start."""

    chunk_rows: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    sentence_rows: list[tuple[int, int, int]] = field(default_factory=list)
    sentence_kinds: list[int] = field(default_factory=list)  # indexer.chunking BODY/TITLE/HEADING
    chunk_fields: list[str] = field(default_factory=list)
    sentence_texts: list[str] = field(default_factory=list)
    doc_chunks: list[tuple[int, int]] = field(default_factory=list)  # [lo, hi) per document
    doc_sentences: list[tuple[int, int]] = field(default_factory=list)


def _layout(documents: Sequence[Document], settings: Settings) -> _Layout:
    out = _Layout()
    for row, doc in enumerate(documents):
        spans, chunks = article_spans(doc.text, settings.chunking, doc.doc_id)
        first_sentence, first_chunk = len(out.sentence_rows), len(out.chunk_rows)
        index_of = {span: first_sentence + i for i, span in enumerate(spans)}
        out.sentence_rows.extend((row, s.start, s.end) for s in spans)
        out.sentence_kinds.extend(sentence_kinds(doc.text, spans, doc.title))
        out.sentence_texts.extend(s.slice(doc.text) for s in spans)
        for chunk in chunks:
            lo = index_of[chunk.sentences[0]]
            out.chunk_rows.append((row, chunk.start, chunk.end, lo, lo + len(chunk.sentences)))
            out.chunk_fields.append(passage_field(doc.title, chunk.text))
        out.doc_chunks.append((first_chunk, len(out.chunk_rows)))
        out.doc_sentences.append((first_sentence, len(out.sentence_rows)))
    return out


def _doc_ranges(rows: np.ndarray, n_docs: int) -> list[tuple[int, int]]:
    """[lo, hi) row range of each document, given rows sorted by document (column 0)."""
    bounds = np.searchsorted(rows[:, 0], np.arange(n_docs + 1), side="left")
    return [(int(bounds[i]), int(bounds[i + 1])) for i in range(n_docs)]


def vector_kind(backend: str) -> str:
    """Backends whose vectors may be mixed in one index: PyTorch and the float32 ONNX export
    give the same embeddings (cosine 1.0000); int8 ones differ slightly and are not mixed."""
    return "int8" if "int8" in backend else "float32"


def same_vector_kind(model: ModelInfo, backend: str) -> bool:
    """Whether an index whose manifest ``model`` record this is may take vectors from
    ``backend`` (see :func:`vector_kind`; indexes from before backends were recorded are
    PyTorch's)."""
    return vector_kind(model.backend) == vector_kind(backend)


def _reusable(previous: IndexData | None, embedder: Embedder) -> bool:
    if previous is None:
        return False
    m = previous.manifest
    return (m.model.name == embedder.name and m.model.dimension == embedder.dimension
            and same_vector_kind(m.model, getattr(embedder, "backend", "torch"))
            and m.passage_field == PASSAGE_FIELD)


def estimated_bytes(layout: _Layout, documents: Sequence[Document], dimension: int) -> int:
    """About how many bytes a generation of these documents takes on disk (an upper
    estimate: the stored texts, passage and sentence tables and vectors, BM25 postings)."""
    text = sum(len(d.text.encode("utf-8", "surrogatepass")) for d in documents)
    rows = len(layout.chunk_rows) + len(layout.sentence_rows)
    return int(1.3 * (1.2 * text + rows * (4 * dimension + 48) + 3 * text)) + 1_000_000


Precomputed = Mapping[str, np.ndarray]


def embed_ahead(
    documents: Sequence[Document],
    settings: Settings,
    embedder: Embedder,
    *,
    previous: IndexData | None = None,
    show_progress: bool = False,
) -> dict[str, np.ndarray]:
    """Embed, before the writer lock is taken, the passages and sentences of the
    ``documents`` that ``previous`` does not already hold, keyed by the embedded text.

    An update then holds the lock only to merge and write (:func:`build_index` with
    ``precomputed``): embedding an article, the slow part, never blocks other writers.

    Raises:
        IndexWriteError: the disk cannot hold the index this would make.
    """
    known = ({(d.doc_id, d.sha256) for d in previous.documents}
             if previous is not None and _reusable(previous, embedder) else set())
    todo = [d for d in documents if (d.doc_id, d.sha256) not in known]
    if not todo:
        return {}
    layout = _layout(todo, settings)
    check_free_space(settings.index_dir, estimated_bytes(layout, todo, embedder.dimension)
                     + (previous.manifest.total_bytes if previous is not None else 0))
    out: dict[str, np.ndarray] = {}
    for texts, what in ((layout.chunk_fields, "passages"), (layout.sentence_texts, "sentences")):
        unique = list(dict.fromkeys(t for t in texts if t not in out))
        if unique:
            out.update(zip(unique, _encode(embedder, unique, settings, show_progress, what)))
    return out


def _encode(embedder: Embedder, texts: Sequence[str], settings: Settings, show_progress: bool,
            what: str) -> np.ndarray:
    """Embed ``texts``; the progress bar, when shown, says what it embeds."""
    if show_progress:
        print(f"Embedding {len(texts):,} {what}…", file=sys.stderr, flush=True)
    return embedder.encode(list(texts), batch_size=settings.batch_size, show_progress=show_progress)


def _vectors(
    documents: Sequence[Document],
    layout: _Layout,
    previous: IndexData | None,
    embedder: Embedder,
    settings: Settings,
    show_progress: bool,
    precomputed: Precomputed,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Chunk and sentence vectors for the new layout, copying what ``previous`` holds and
    what was embedded ahead (``precomputed``), embedding the rest."""
    chunk_vectors = np.zeros((len(layout.chunk_rows), embedder.dimension), dtype=np.float32)
    sentence_vectors = np.zeros((len(layout.sentence_rows), embedder.dimension), dtype=np.float32)
    chunk_todo = np.ones(len(layout.chunk_rows), dtype=bool)
    sentence_todo = np.ones(len(layout.sentence_rows), dtype=bool)
    reused: list[str] = []
    if previous is not None and _reusable(previous, embedder):
        old_rows = {d.doc_id: (i, d.sha256) for i, d in enumerate(previous.documents)}
        old_chunks = _doc_ranges(np.asarray(previous.chunks), len(previous.documents))
        old_sentences = _doc_ranges(np.asarray(previous.sentences), len(previous.documents))
        for row, doc in enumerate(documents):
            old = old_rows.get(doc.doc_id)
            if old is None or old[1] != doc.sha256:
                continue
            (clo, chi), (slo, shi) = layout.doc_chunks[row], layout.doc_sentences[row]
            (oclo, ochi), (oslo, oshi) = old_chunks[old[0]], old_sentences[old[0]]
            new_c = np.array(layout.chunk_rows[clo:chi], dtype=np.int64).reshape(-1, 5)
            new_s = np.array(layout.sentence_rows[slo:shi], dtype=np.int64).reshape(-1, 3)
            old_c, old_s = np.asarray(previous.chunks[oclo:ochi]), np.asarray(previous.sentences[oslo:oshi])
            # Same spans (offsets relative to the document's first sentence row) -> same vectors.
            if (new_c.shape != old_c.shape or new_s.shape != old_s.shape
                    or not np.array_equal(new_c[:, 1:3], old_c[:, 1:3])
                    or not np.array_equal(new_c[:, 3:] - slo, old_c[:, 3:] - oslo)
                    or not np.array_equal(new_s[:, 1:], old_s[:, 1:])):
                continue
            if ochi > oclo:  # reconstruct_batch is fast on IVF too (reconstruct_n scans every list)
                chunk_vectors[clo:chi] = previous.chunk_index.reconstruct_batch(
                    np.arange(oclo, ochi, dtype=np.int64))
            sentence_vectors[slo:shi] = previous.sentence_vectors[oslo:oshi]
            chunk_todo[clo:chi] = False
            sentence_todo[slo:shi] = False
            reused.append(doc.doc_id)
    for vectors, todo, texts, what in ((chunk_vectors, chunk_todo, layout.chunk_fields, "passages"),
                                       (sentence_vectors, sentence_todo, layout.sentence_texts, "sentences")):
        for i in np.flatnonzero(todo):
            if texts[i] in precomputed:
                vectors[i] = precomputed[texts[i]]
                todo[i] = False
        rows = np.flatnonzero(todo)
        if len(rows):
            vectors[rows] = _encode(embedder, [texts[i] for i in rows], settings, show_progress, what)
    return chunk_vectors, sentence_vectors, reused


def build_index(
    documents: Sequence[Document],
    settings: Settings,
    embedder: Embedder,
    *,
    previous: IndexData | None = None,
    sources: Sequence[str] = (),
    show_progress: bool = False,
    locked: bool = False,
    precomputed: Precomputed | None = None,
) -> BuildResult:
    """Chunk, embed and index ``documents`` into ``settings.index_dir`` (replacing it atomically).

    Everything but the write happens before the writer lock is taken (unless ``locked``):
    a full build embeds without blocking other writers, and holds the lock to write.

    Args:
        documents: the articles; document ids must be unique. Stored sorted by id.
        settings: chunking parameters, batch size and index folder.
        embedder: the model; its ``name`` and ``dimension`` go into the manifest.
        previous: an index whose vectors may be reused for unchanged documents.
        sources: the paths the documents came from, recorded for the rebuild hint.
        show_progress: show a progress bar while embedding.
        locked: the caller already holds :func:`indexer.store.write_lock` (an update that
            read ``previous`` under the same lock, so no other writer slips in between).
        precomputed: vectors embedded ahead (:func:`embed_ahead`), by text.

    Raises:
        ValueError: duplicate document ids, or no text at all.
        IndexLockedError: another writer holds the index.
        IndexWriteError: the disk cannot hold the new index, or the folder is read-only.
    """
    documents = sorted(documents, key=lambda d: d.doc_id)
    ids = [d.doc_id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("document ids must be unique")
    layout = _layout(documents, settings)
    if not layout.chunk_rows:
        raise ValueError("there is no text to index")
    check_free_space(settings.index_dir, estimated_bytes(layout, documents, embedder.dimension))
    chunk_vectors, sentence_vectors, reused = _vectors(
        documents, layout, previous, embedder, settings, show_progress, precomputed or {})
    bm25, sentence_bm25 = build_bm25(layout.chunk_fields), build_bm25(layout.sentence_texts)
    with contextlib.nullcontext() if locked else write_lock(settings.index_dir):
        path = write_index(
            settings.index_dir,
            documents=list(documents),
            chunks=np.array(layout.chunk_rows, dtype=np.int64).reshape(-1, 5),
            sentences=np.array(layout.sentence_rows, dtype=np.int64).reshape(-1, 3),
            sentence_kinds=np.array(layout.sentence_kinds, dtype=np.uint8),
            chunk_vectors=chunk_vectors,
            sentence_vectors=sentence_vectors,
            bm25=bm25,
            sentence_bm25=sentence_bm25,
            model={"name": embedder.name, "dimension": embedder.dimension, "normalized": True,
                   "backend": getattr(embedder, "backend", "torch")},
            chunking=settings.chunking,
            extra={"sources": list(sources), "passage_field": PASSAGE_FIELD},
            vector_spec=choose_index(len(layout.chunk_rows), embedder.dimension, settings.exact_max),
        )
    reused_chunks = sum(hi - lo for (lo, hi), d in zip(layout.doc_chunks, documents) if d.doc_id in reused)
    reused_sentences = sum(hi - lo for (lo, hi), d in zip(layout.doc_sentences, documents) if d.doc_id in reused)
    return BuildResult(path, len(documents), len(layout.chunk_rows), len(layout.sentence_rows),
                       embedded_chunks=len(layout.chunk_rows) - reused_chunks,
                       embedded_sentences=len(layout.sentence_rows) - reused_sentences,
                       reused_documents=tuple(reused))
