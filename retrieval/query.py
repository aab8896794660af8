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
from indexer.stores.base import LexicalQuery
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


# What makes two askings of one question differ harmlessly: markup, courtesy, punctuation.
_TAGS = re.compile(r"<[^<>]{1,200}>")
_MARKDOWN = re.compile(r"(?<!\w)[*_`~]+|[*_`~]+(?!\w)")
_COURTESY = re.compile(
    r"^(?:(?:please|pls|hi|hello|hey|ok|okay|so)[,!:]?\s+)+|"
    r"^(?:(?:can|could|would|will) you (?:please )?(?:tell|show) me|i(?:'d| would) like to know|"
    r"i want to know|tell me|do you know|please tell me)[,:]?\s+"
    r"(?=(?:who|whom|whose|what|when|where|which|why|how|if|whether)\b)|"
    r"[,;]?\s*(?:please|thanks|thank you|pls)[.!]*$", re.IGNORECASE)
_QUESTION_WORD = re.compile(r"^(?:who|whom|whose|what|when|where|which|why|how|is|are|was|were|do|does|"
                            r"did|can|could|will|would|should|has|have|had)\b", re.IGNORECASE)


def normalise(question: str) -> str:
    """The question without what does not change its meaning: HTML tags and Markdown
    emphasis, courtesy ("please", "can you tell me"), repeated or missing final
    punctuation, runs of spaces. So that "When did Turkey join NATO", "please, when did
    Turkey join NATO??" and "<b>When</b> did Turkey join NATO?" are searched alike.

    >>> normalise("Please, can you tell me *when* did Turkey join NATO??")
    'when did Turkey join NATO?'
    """
    text = _MARKDOWN.sub("", _TAGS.sub(" ", question))
    text = " ".join(text.split())
    for _ in range(3):  # courtesy can come in layers: "Hi, please tell me ..."
        text = _COURTESY.sub("", text).strip()
    body = text.rstrip("?!.;:, ")
    if not body:
        return question.strip()
    return body + "?" if _QUESTION_WORD.match(body) or text.endswith("?") else body


@lru_cache(maxsize=1)
def _ignored_terms() -> frozenset[str]:
    return frozenset(analyze([_QUESTION_WORDS])[0])


@dataclass(frozen=True)
class Query:
    """A checked question, ready for search."""

    question: str  # as asked (stripped)
    text: str  # what is embedded: the question normalised, without framing, places expanded
    terms: tuple[str, ...]  # BM25 terms: analysed, without question words
    kind: AnswerType = AnswerType.ANY  # what the question asks for (retrieval/answer.py)
    words: str = ""  # the words the terms came from, unanalysed (for a store that analyses itself)

    @property
    def lexical(self) -> LexicalQuery:
        """The BM25 side of the question, as stores take it."""
        return LexicalQuery(self.terms, self.words)


def prepare(question: str, gazetteer: Gazetteer | None = None) -> Query:
    """Split a (checked, non-empty) question into what is embedded and what BM25 matches.

    >>> prepare("What do the articles say about Turkey's S-400 purchase?").text
    "Turkey's S-400 purchase?"
    """
    plain = normalise(question)
    text = _FRAMING.sub("", plain).strip() or plain
    ignored = _ignored_terms()
    terms = tuple(t for t in analyze([text])[0] if t not in ignored)
    words = " ".join(w for w, stems in zip(*_words(text)) if stems and not set(stems) & ignored)
    if gazetteer is not None:
        text = gazetteer.expand(text)
    return Query(question, text, terms, expected_type(plain), words)


_WORD_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _words(text: str) -> tuple[list[str], list[list[str]]]:
    """The text's words and the terms each analyses to (none for a stop word)."""
    words = _WORD_TOKEN.findall(text)
    return words, analyze(words)
