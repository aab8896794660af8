"""Preparing a question for search: the text to embed and the BM25 terms.

Questions carry words that say nothing about the topic: question words ("what", "did"),
and framing such as "What do the articles say about …" or "according to the article".
Both are removed before matching, so BM25 weighs the words that name the subject.
With a gazetteer (:mod:`retrieval.aliases`), the embedded text also names the country
after a capital or seat of government that stands for it ("Ankara (Turkey)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from indexer.lexical import analyze
from retrieval.aliases import Gazetteer
from retrieval.answer import AnswerType, expected_type

_FRAMING = re.compile(
    r"^\s*(?:(?:what|how) (?:do|does|did) (?:the |these |both |all )?(?:articles?|reports?|sources?|"
    r"stories|story|coverage|pieces?) (?:say|report|describe|explain|tell us|mention|claim)(?: about)?"
    r"|according to (?:the |this |each )?(?:articles?|reports?|sources?)\s*,)\s*",
    re.IGNORECASE,
)
# Question and framing words that BM25 should not count (on top of its stop words).
_QUESTION_WORDS = (
    "what which who whom whose when where why how did does do is are was were will would could "
    "should can has have had the a an of in on to for according article articles say says said "
    "describe describes explain explains mention mentions report reports"
)


@lru_cache(maxsize=1)
def _ignored_terms() -> frozenset[str]:
    return frozenset(analyze([_QUESTION_WORDS])[0])


@dataclass(frozen=True)
class Query:
    """A checked question, ready for search."""

    question: str  # as asked (stripped)
    text: str  # what is embedded: the question without framing, places expanded
    terms: tuple[str, ...]  # BM25 terms: analysed, without question words
    kind: AnswerType = AnswerType.ANY  # what the question asks for (retrieval/answer.py)


def prepare(question: str, gazetteer: Gazetteer | None = None) -> Query:
    """Split a (checked, non-empty) question into what is embedded and what BM25 matches.

    >>> prepare("What do the articles say about Turkey's S-400 purchase?").text
    "Turkey's S-400 purchase?"
    """
    text = _FRAMING.sub("", question).strip() or question
    ignored = _ignored_terms()
    terms = tuple(t for t in analyze([text])[0] if t not in ignored)
    if gazetteer is not None:
        text = gazetteer.expand(text)
    return Query(question, text, terms, expected_type(question))
