"""The one interface to stored data: what query time and build time may ask of an index.

Every reader and writer of an index — :class:`retrieval.searcher.Searcher`, compare, the
app, both command lines, the build and the updates — goes through a :class:`Store`. Two
implement it: :class:`indexer.stores.local.LocalStore` (files: FAISS, BM25 postings,
numpy; the embedded default) and :class:`indexer.stores.milvus.MilvusStore` (a Milvus
server or cluster, or milvus-lite embedded). Re-scoring, answer sentences, verdicts and
compare stay in ``retrieval/`` and work the same on either.

Ids are data, not positions. A document's *key* is ``<doc_id>@<first 12 hex digits of the
sha256 of its file>``: it changes when the content does. A passage's id is
``<key>:p<start>-<end>`` and a sentence's ``<key>:s<start>-<end>`` (character offsets
into the document's text), so the ids of a passage's sentences follow from the passage
and its sentence spans, and unchanged documents keep their ids (and vectors) across
updates.

This module imports nothing heavy: query time loads it without the build pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from indexer.manifest import ModelInfo
from indexer.settings import ChunkingParams
from indexer.types import Document


def document_key(doc_id: str, sha256: str) -> str:
    """``doc_id@sha12``: which version of which document.

    >>> document_key("004_6a67", "0123456789abcdef")
    '004_6a67@0123456789ab'
    """
    return f"{doc_id}@{sha256[:12]}"


def moved_on_message(location: str) -> str:
    """The refusal of a :class:`Change` whose ``based_on`` version is no longer the store's."""
    return (f"Another writer changed the index at {location} while this rebuild was being prepared; "
            "nothing was written, and their change stays. Run the command again.")


def passage_id(key: str, start: int, end: int) -> str:
    return f"{key}:p{start}-{end}"


def sentence_id(key: str, start: int, end: int) -> str:
    return f"{key}:s{start}-{end}"


def parse_id(item_id: str) -> tuple[str, str, int, int]:
    """``(document key, "p" or "s", start, end)`` of a passage or sentence id.

    >>> parse_id("a@0123456789ab:p10-20")
    ('a@0123456789ab', 'p', 10, 20)

    Raises:
        ValueError: not such an id.
    """
    key, _, rest = item_id.rpartition(":")
    if not key or len(rest) < 4 or rest[0] not in "ps" or "-" not in rest:
        raise ValueError(f"not a passage or sentence id: {item_id!r}")
    start, _, end = rest[1:].partition("-")
    return key, rest[0], int(start), int(end)


def key_doc_id(key: str) -> str:
    """The document id of a document key."""
    return key.rpartition("@")[0]


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: its id, offsets in the document's text, and kind
    (``indexer.chunking`` BODY, TITLE or HEADING)."""

    sentence_id: str
    start: int
    end: int
    kind: int


@dataclass(frozen=True)
class Passage:
    """A stored passage with all query time needs to re-score it and cite it."""

    passage_id: str
    doc_id: str
    start: int
    end: int
    text: str  # document text [start:end]
    sentences: tuple[Sentence, ...]
    sentence_texts: tuple[str, ...]
    vector: np.ndarray  # float32 [dim], unit
    sentence_vectors: np.ndarray  # float32 [len(sentences), dim], unit rows
    title: str = ""  # the document's title


@dataclass(frozen=True)
class DocumentInfo:
    """What is known of a stored document without its text."""

    doc_id: str
    title: str
    source: str
    sha256: str
    url: str | None
    date: str | None
    note: str | None
    chars: int
    passages: int

    @property
    def offsets_in(self) -> str:
        plain = self.source.lower().endswith((".txt", ".md"))
        return "file" if plain and self.note is None else "extracted"


@dataclass(frozen=True)
class StoreInfo:
    """The typed manifest of a store: what built it and what it holds. Compatibility is
    asked of it in one place (:meth:`mismatch`)."""

    kind: str  # "local" or "milvus"
    location: str  # printable: never holds a password or token
    model: ModelInfo
    chunking: ChunkingParams
    passage_field: str
    documents: int
    passages: int
    sentences: int
    built_at: str = ""

    def mismatch(self, model_name: str, dimension: int | None = None) -> str | None:
        """Why an index is not for this model, or None."""
        if self.model.name != model_name:
            return f"was built with the model {self.model.name!r}, but the configured model is {model_name!r}"
        if dimension is not None and self.model.dimension != dimension:
            return (f"holds {self.model.dimension}-dimensional vectors, but the configured model "
                    f"makes {dimension}-dimensional ones")
        return None


@dataclass(frozen=True)
class StoredSentence:
    """A sentence to write: its id, span, kind, text and vector."""

    sentence_id: str
    start: int
    end: int
    kind: int
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class StoredPassage:
    """A passage to write: its id, span, the indexes of its sentences in the document's
    list, the text its BM25 and embedding see (title + passage), and its vector."""

    passage_id: str
    start: int
    end: int
    first_sentence: int
    end_sentence: int
    field_text: str
    vector: np.ndarray


@dataclass(frozen=True)
class StoredDocument:
    """A whole document to write: the document (with its text) and all its rows."""

    document: Document
    passages: tuple[StoredPassage, ...]
    sentences: tuple[StoredSentence, ...]

    @property
    def key(self) -> str:
        return document_key(self.document.doc_id, self.document.sha256)


@dataclass(frozen=True)
class Change:
    """One write: documents to add or replace (by id) and ids to remove, applied together."""

    put: tuple[StoredDocument, ...] = ()
    remove: tuple[str, ...] = ()
    model: ModelInfo | None = None  # recorded with the change (the first write sets it)
    chunking: ChunkingParams | None = None
    passage_field: str = ""
    replace_all: bool = False  # a full rebuild: the store holds exactly ``put`` afterwards
    # The store's version() this change was computed from: when set and the store has moved
    # on since (another writer landed), the write is refused and nothing is written.
    based_on: str | None = None


@dataclass(frozen=True)
class LexicalQuery:
    """A question's BM25 side: its analysed terms (``indexer.lexical.analyze``, question
    words removed; a term may repeat, and then counts twice), and the words they came from,
    unanalysed, for an engine that analyses text itself (Milvus)."""

    terms: tuple[str, ...]
    text: str = ""


@dataclass(frozen=True)
class TermCounts:
    """Collection statistics of BM25 terms: how many rows, and how many hold each term."""

    rows: int
    df: np.ndarray = field(default_factory=lambda: np.zeros(0))


@runtime_checkable
class Store(Protocol):
    """Stored documents, passages and sentences, searchable densely and lexically."""

    @property
    def info(self) -> StoreInfo:
        """What built the store and what it holds."""
        ...

    def version(self) -> str:
        """What the store holds now, as a token that changes with every write that lands
        (read afresh on each call: the app keeps one open store per version).

        Raises:
            IndexNotFoundError, IndexMismatchError: no index there, or a damaged one.
            StoreUnavailableError: its server cannot be reached.
        """
        ...

    def reopen(self) -> None:
        """Forget what this object had opened: the next read sees the latest write."""
        ...

    # -- query time -------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` passages most similar to a unit ``vector`` (inner product), best first."""
        ...

    def lexical_search(self, query: LexicalQuery, k: int) -> list[tuple[str, float]]:
        """The ``k`` best passages by BM25 (title + passage), best first; only passages with
        a positive score."""
        ...

    def passage_bm25(self, query: LexicalQuery, passage_ids: Sequence[str]) -> np.ndarray:
        """BM25 of the given passages (0 where they hold none of the terms)."""
        ...

    def sentence_bm25(self, query: LexicalQuery, sentence_ids: Sequence[str]) -> np.ndarray:
        """BM25 of the given sentences, with the sentences' own collection statistics."""
        ...

    def term_counts(self, query: LexicalQuery) -> TermCounts:
        """How many passages there are, and how many hold each of ``query.terms`` (0: the
        term is nowhere in the collection)."""
        ...

    def passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        """The passages with these ids, in this order (ids no longer stored are left out)."""
        ...

    def document(self, doc_id: str) -> Document | None:
        """A stored document with its text, or None."""
        ...

    def document_infos(self) -> list[DocumentInfo]:
        """Every stored document's metadata, sorted by id."""
        ...

    def headings(self, doc_id: str) -> tuple[tuple[int, int], ...]:
        """Spans of a document's title and heading sentences."""
        ...

    # -- build time -------------------------------------------------------------------
    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of passages and sentences by id (to reuse them; absent ids are
        left out)."""
        ...

    def write(self, change: Change) -> None:
        """Apply ``change`` atomically: afterwards the store answers from all of it or, on
        any failure, from what it held before. Another instance opened before the write
        never answers from a mix of both: it goes on answering from what it had opened
        (local), or opens the new content once what it had opened is gone (Milvus deletes
        replaced rows); open a new one to see the change.

        Raises:
            IndexLockedError: another writer holds the store too long, or it changed since
                ``change.based_on``; nothing was written.
            IndexWriteError: the write failed and the store answers from what it held
                before; or (Milvus) the connection was cut off at the switch itself, and the
                message says the change may or may not have been applied (nothing is lost).
        """
        ...

    def verify(self) -> list[str]:
        """Check the stored data in full; return warnings (e.g. changed source files).

        Raises:
            IndexNotFoundError, IndexMismatchError: missing or damaged (naming the fix).
        """
        ...

    def close(self) -> None:
        """Release what the store holds open (files, connections)."""
        ...
