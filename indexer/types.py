"""Frozen dataclasses passed between the build-time modules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A half-open character range ``[start, end)`` in a document's source text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid span [{self.start}, {self.end})")

    def slice(self, text: str) -> str:
        return text[self.start : self.end]


@dataclass(frozen=True)
class Document:
    """One article.

    ``text`` is the source text that every offset refers to: for a UTF-8 ``.txt`` or
    ``.md`` file exactly the file decoded as UTF-8; for other formats the extracted text,
    which the index stores.
    """

    doc_id: str
    title: str
    source: str
    text: str
    sha256: str
    url: str | None = None
    date: str | None = None
    note: str | None = None  # how the text was obtained, when noteworthy (e.g. a fallback encoding)

    @property
    def offsets_in(self) -> str:
        """What offsets into ``text`` index: ``"file"`` when ``text`` is exactly the source
        file decoded as UTF-8 (a ``.txt``/``.md`` file without a ``note``), else
        ``"extracted"`` (the extracted or re-decoded text the index stores)."""
        plain = self.source.lower().endswith((".txt", ".md"))
        return "file" if plain and self.note is None else "extracted"


@dataclass(frozen=True)
class Chunk:
    """A passage: a run of whole sentences of one document.

    Invariant: ``document.text[start:end] == text``. ``sentences`` are the spans of the
    sentences it is made of, in document coordinates, in order.
    """

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...]

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"
