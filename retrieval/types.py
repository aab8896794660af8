"""Frozen dataclasses returned by query-time code. ``to_json`` gives the documented contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrieval.verdict import Support


@dataclass(frozen=True)
class AnswerSpan:
    """The sentence inside a hit that best answers the question (document coordinates)."""

    start: int
    end: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Citation:
    """A passage's source in words a reader can check: the article's outlet (the URL's
    site, else the file's folder), its date when known (ISO), the paragraph that holds the
    answer sentence (1 = the first paragraph after the headline), and a link when the
    article has a URL."""

    outlet: str
    date: str | None
    paragraph: int
    url: str | None

    def to_json(self) -> dict[str, Any]:
        return {"outlet": self.outlet, "date": self.date, "paragraph": self.paragraph, "url": self.url}


@dataclass(frozen=True)
class Hit:
    """A cited passage: ``source_text[start:end] == text``, and the answer lies inside it."""

    rank: int
    score: float
    doc_id: str
    title: str
    source: str
    start: int
    end: int
    text: str
    answer: AnswerSpan
    dense: float = 0.0  # cosine similarity of the passage to the question
    answer_similarity: float = 0.0  # cosine similarity of the answer sentence
    answer_typed: bool = True  # the answer sentence states the kind of answer asked for
    answer_coverage: float = 0.0  # share of the question's search terms in the answer sentence
    answer_kind: str = "any"  # what the question asks for: "any", "time", "number", "person"
    offsets_in: str = "file"  # "file" (the UTF-8 source file) or "extracted" (the stored text)
    answer_heading: bool = False  # the passage has only headings: its "answer" is one, and cannot answer
    headings: tuple[tuple[int, int], ...] = ()  # spans of the passage's title and headings
    citation: Citation | None = None
    passage_id: str = ""  # the store's id of the passage (indexer.stores.base)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "answer": self.answer.to_json(),
            "offsets_in": self.offsets_in,
            **({"citation": self.citation.to_json()} if self.citation else {}),
            **({"passage_id": self.passage_id} if self.passage_id else {}),
        }


@dataclass(frozen=True)
class Result:
    """The answer to one question: ranked hits, best first, and the verdict on each
    (:mod:`retrieval.verdict`)."""

    question: str
    hits: tuple[Hit, ...]
    answerable: bool = True  # False: no passage seems to answer; the hits are only the nearest
    supports: tuple["Support", ...] = ()  # one per hit, same order
    confidence: float | None = None  # the learned probability that the articles answer it

    def answers(self, rank: int) -> bool:
        """Whether the hit at ``rank`` (1-based) is shown as an answer: it supports one and
        the question is answered (when it is not, every hit is only a weak match)."""
        return self.answerable and bool(self.supports) and self.supports[rank - 1].supported

    @property
    def lead(self) -> Hit | None:
        """The best answering hit, or None when the articles do not answer."""
        return next((h for h in self.hits if self.answers(h.rank)), None)

    def to_json(self) -> dict[str, Any]:
        hits = []
        for hit, support in zip(self.hits, self.supports or [None] * len(self.hits)):
            item = hit.to_json()
            if support is not None:
                item["support"] = {**support.to_json(), "answers": self.answers(hit.rank)}
            hits.append(item)
        out: dict[str, Any] = {"question": self.question, "answerable": self.answerable, "hits": hits}
        if self.confidence is not None:
            out["confidence"] = round(self.confidence, 4)
        return out
