"""Frozen dataclasses returned by query-time code. ``to_json`` gives the documented contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AnswerSpan:
    """The sentence inside a hit that best answers the question (document coordinates)."""

    start: int
    end: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


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
        }


@dataclass(frozen=True)
class Result:
    """The answer to one question: ranked hits, best first."""

    question: str
    hits: tuple[Hit, ...]
    answerable: bool = True  # False: no passage seems to answer; the hits are only the nearest

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "answerable": self.answerable,
                "hits": [h.to_json() for h in self.hits]}
