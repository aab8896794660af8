"""The build pipeline: documents -> sentences and passages -> embeddings -> a store.

A document becomes a :class:`indexer.stores.base.StoredDocument`: its sentences (with their
kinds: body, title, heading) and passages with exact offsets, ids derived from the
document's content and the spans, and vectors. Vectors the store already holds for the
same ids (same document content, same spans) are reused when they were made by the same
model and kind of backend; only the rest is embedded. Full builds and updates share this
path; the store writes the result (:meth:`Store.write`), so any sequence of adds and
removes answers as a fresh build of the same articles does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from indexer.chunking import article_spans, sentence_kinds
from indexer.embedding import Embedder
from indexer.manifest import ModelInfo
from indexer.settings import Settings
from indexer.stores import open_store
from indexer.stores.base import (
    Change, Store, StoredDocument, StoredPassage, StoredSentence, document_key, passage_id, sentence_id,
)
from indexer.types import Document

PASSAGE_FIELD = "title + newline + passage"


@dataclass(frozen=True)
class BuildResult:
    location: str  # where the store is (printable)
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


@dataclass(frozen=True)
class _Plan:
    """A document cut into sentences and passages, with ids, before embedding."""

    document: Document
    sentences: tuple[tuple[str, int, int, int, str], ...]  # id, start, end, kind, text
    passages: tuple[tuple[str, int, int, int, int, str], ...]  # id, start, end, first, end sentence, field


def plan(document: Document, settings: Settings) -> _Plan:
    """Sentences (with kinds) and passages of a document, with their ids. Trailing page
    furniture has no sentences (indexer.boilerplate)."""
    key = document_key(document.doc_id, document.sha256)
    spans, chunks = article_spans(document.text, settings.chunking, document.doc_id)
    kinds = sentence_kinds(document.text, spans, document.title)
    index_of = {span: i for i, span in enumerate(spans)}
    sentences = tuple((sentence_id(key, s.start, s.end), s.start, s.end, k, s.slice(document.text))
                      for s, k in zip(spans, kinds))
    passages = tuple(
        (passage_id(key, c.start, c.end), c.start, c.end, index_of[c.sentences[0]],
         index_of[c.sentences[0]] + len(c.sentences), passage_field(document.title, c.text))
        for c in chunks)
    return _Plan(document, sentences, passages)


def vector_kind(backend: str) -> str:
    """Backends whose vectors may be mixed in one index: PyTorch and the float32 ONNX export
    give the same embeddings (cosine 1.0000); int8 ones differ slightly and are not mixed."""
    return "int8" if "int8" in backend else "float32"


def same_vector_kind(model: ModelInfo, backend: str) -> bool:
    """Whether an index whose manifest ``model`` record this is may take vectors from
    ``backend`` (see :func:`vector_kind`; indexes from before backends were recorded are
    PyTorch's)."""
    return vector_kind(model.backend) == vector_kind(backend)


def reusable(store: Store | None, embedder: Embedder) -> bool:
    """Whether ``store``'s vectors may be reused by ``embedder`` (same model, dimension,
    kind of backend and passage text)."""
    if store is None:
        return False
    try:
        info = store.info
    except Exception:  # noqa: BLE001 - no index yet, or one that cannot be read: nothing to reuse
        return False
    return (info.model.name == embedder.name and info.model.dimension == embedder.dimension
            and same_vector_kind(info.model, getattr(embedder, "backend", "torch"))
            and info.passage_field == PASSAGE_FIELD)


def estimated_bytes(plans: Sequence[_Plan], dimension: int) -> int:
    """About how many bytes the stored documents take (an upper estimate)."""
    text = sum(len(p.document.text.encode("utf-8", "surrogatepass")) for p in plans)
    rows = sum(len(p.passages) + len(p.sentences) for p in plans)
    return int(1.3 * (1.2 * text + rows * (4 * dimension + 48) + 3 * text)) + 1_000_000


Precomputed = Mapping[str, np.ndarray]


def _encode(embedder: Embedder, texts: Sequence[str], settings: Settings, show_progress: bool,
            what: str) -> np.ndarray:
    """Embed ``texts``; the progress bar, when shown, says what it embeds."""
    if show_progress:
        print(f"Embedding {len(texts):,} {what}…", file=sys.stderr, flush=True)
    return embedder.encode(list(texts), batch_size=settings.batch_size, show_progress=show_progress)


def _check_room(store: Store, plans: Sequence[_Plan], dimension: int) -> None:
    check = getattr(store, "check_room", None)
    if callable(check):
        check(estimated_bytes(plans, dimension))


def stored_documents(documents: Sequence[Document], settings: Settings, embedder: Embedder, store: Store | None,
                     *, precomputed: Precomputed | None = None, vectors_from: Store | None = None,
                     show_progress: bool = False) -> tuple[list[StoredDocument], int, int, tuple[str, ...]]:
    """The documents cut, identified and embedded, ready to write to ``store``.

    Vectors are taken, in order, from ``vectors_from`` (default: ``store``; same ids, when
    :func:`reusable`), from ``precomputed`` (by text: :func:`embed_ahead`), else embedded now.

    Returns:
        (stored documents, passages and sentences embedded for this write (now or ahead),
        ids of the documents whose vectors all came from the store).

    Raises:
        IndexWriteError: the disk cannot hold what would be written (checked first).
    """
    plans = [plan(d, settings) for d in documents]
    if store is not None:
        _check_room(store, plans, embedder.dimension)
    known: dict[str, np.ndarray] = {}
    lender = vectors_from if vectors_from is not None else store
    if reusable(lender, embedder):
        ids = [i for p in plans for i in (*(s[0] for s in p.sentences), *(q[0] for q in p.passages))]
        known = lender.vectors(ids)  # type: ignore[union-attr]
    ahead = precomputed or {}
    embedded = [0, 0]  # passages, sentences whose vectors did not come from the store
    vectors: dict[str, np.ndarray] = dict(known)
    for kind, rows in (("passages", [(q[0], q[5]) for p in plans for q in p.passages]),
                       ("sentences", [(s[0], s[4]) for p in plans for s in p.sentences])):
        todo = []
        for item_id, text in rows:
            if item_id in vectors:
                continue
            embedded[kind == "sentences"] += 1
            if text in ahead:
                vectors[item_id] = ahead[text]
            else:
                todo.append((item_id, text))
        if todo:
            unique = list(dict.fromkeys(t for _, t in todo))
            fresh = dict(zip(unique, _encode(embedder, unique, settings, show_progress, kind)))
            for item_id, text in todo:
                vectors[item_id] = fresh[text]
    out = []
    for p in plans:
        sentences = tuple(StoredSentence(i, s, e, k, t, vectors[i]) for i, s, e, k, t in p.sentences)
        passages = tuple(StoredPassage(i, s, e, lo, hi, f, vectors[i]) for i, s, e, lo, hi, f in p.passages)
        out.append(StoredDocument(p.document, passages, sentences))
    reused = tuple(p.document.doc_id for p in plans
                   if all(q[0] in known for q in p.passages) and all(s[0] in known for s in p.sentences))
    return out, embedded[0], embedded[1], reused


def embed_ahead(documents: Sequence[Document], settings: Settings, embedder: Embedder, *,
                store: Store | None = None, show_progress: bool = False) -> dict[str, np.ndarray]:
    """Embed, before any lock is taken, the passages and sentences of ``documents`` that
    ``store`` does not already hold, keyed by the embedded text.

    An update then holds the lock only to merge and write: embedding an article, the slow
    part, never blocks other writers.

    Raises:
        IndexWriteError: the disk cannot hold what this would add.
    """
    plans = [plan(d, settings) for d in documents]
    if not plans:
        return {}
    if store is not None:
        _check_room(store, plans, embedder.dimension)
    known: set[str] = set()
    if reusable(store, embedder):
        ids = [i for p in plans for i in (*(s[0] for s in p.sentences), *(q[0] for q in p.passages))]
        known = set(store.vectors(ids))  # type: ignore[union-attr]
    out: dict[str, np.ndarray] = {}
    for kind, texts in (("passages", [q[5] for p in plans for q in p.passages if q[0] not in known]),
                        ("sentences", [s[4] for p in plans for s in p.sentences if s[0] not in known])):
        unique = list(dict.fromkeys(t for t in texts if t not in out))
        if unique:
            out.update(zip(unique, _encode(embedder, unique, settings, show_progress, kind)))
    return out


def model_record(embedder: Embedder) -> ModelInfo:
    """What the store records of the model that made its vectors."""
    return ModelInfo(embedder.name, embedder.dimension, True, getattr(embedder, "backend", "torch"))


def build_index(
    documents: Sequence[Document],
    settings: Settings,
    embedder: Embedder,
    *,
    store: Store | None = None,
    previous: Store | None = None,
    show_progress: bool = False,
    precomputed: Precomputed | None = None,
    based_on: str | None = None,
) -> BuildResult:
    """Chunk, embed and store ``documents``, replacing what the store held (atomically).

    Args:
        documents: the articles; document ids must be unique.
        settings: chunking parameters, batch size, and which store (``settings.store`` /
            ``index_dir``) unless ``store`` is given.
        embedder: the model; its ``name`` and ``dimension`` are recorded.
        store: the store to write (default: :func:`indexer.stores.open_store` of settings);
            its vectors are reused for unchanged passages and sentences.
        previous: another store to take unchanged vectors from instead (same model).
        show_progress: show a progress bar while embedding.
        precomputed: vectors embedded ahead (:func:`embed_ahead`), by text.
        based_on: the store's ``version()`` that ``documents`` were read from (a rebuild of
            what it held): the write is refused if another writer has changed it since.

    Raises:
        ValueError: duplicate document ids, or no text at all.
        IndexLockedError: another writer holds the index, or changed it since ``based_on``.
        IndexWriteError: the disk cannot hold the new index, or the folder is read-only.
    """
    documents = sorted(documents, key=lambda d: d.doc_id)
    ids = [d.doc_id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("document ids must be unique")
    store = store if store is not None else open_store(settings)
    stored, emb_p, emb_s, reused = stored_documents(documents, settings, embedder, store, precomputed=precomputed,
                                                    vectors_from=previous, show_progress=show_progress)
    if not any(d.passages for d in stored):
        raise ValueError("there is no text to index")
    store.write(Change(put=tuple(stored), model=model_record(embedder), chunking=settings.chunking,
                       passage_field=PASSAGE_FIELD, replace_all=True, based_on=based_on))
    return BuildResult(store.info.location, len(stored), sum(len(d.passages) for d in stored),
                       sum(len(d.sentences) for d in stored), emb_p, emb_s, reused)
