"""Choosing the sentence inside a passage that best answers the question, and checking
that it can answer it at all.

Two signals pick the sentence: its embedding's cosine similarity to the question, plus a
share of its BM25 score (normalised within the passage), weighted by ``LEXICAL_WEIGHT``.
A question that asks for a number ("how many", "how much", "what price"), a time ("when",
"what year") or a person ("who") is only answered by a sentence that states one the
question does not already contain: such sentences get a bonus, and the abstention rule requires one.
"""

from __future__ import annotations

import re
from enum import Enum

import numpy as np

LEXICAL_WEIGHT = 0.3
TYPE_BONUS = 0.1

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|"
           "december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|"
                 "hundreds?|thousands?|millions?|billions?|several|half|quarter|twice|double|"
                 "triple")
_DATE = re.compile(rf"\b(?:(?:1[89]|20)\d\d|{_MONTHS}|{_WEEKDAYS}|yesterday|today|tomorrow|"
                   r"last (?:year|month|week)|next (?:year|month|week)|(?:\d{1,2}(?:st|nd|rd|th)?)"
                   r"(?= (?:of )?(?:" + _MONTHS + r")))\b", re.IGNORECASE)
# A count or amount: digits (not part of a name like "S-400" or "TB2"; "44-day" counts) or
# a number word.
_NUMBER = re.compile(rf"(?<![\w-])(?:\d(?:[\d,.]*\d)?%?(?![\w])|(?:{_NUMBER_WORDS})(?![\w-]))", re.IGNORECASE)
# Capitalised words that start sentences rather than names ("The Ukrainian version ...").
_NOT_NAMES = ("The|A|An|This|That|These|Those|In|On|At|By|For|From|With|Without|But|And|Or|So|"
              "It|Its|He|His|She|Her|They|Their|We|Our|I|You|As|After|Before|While|When|If|"
              "Since|Although|Though|Despite|According|Meanwhile|However|Still|Yet|Now|Then|"
              "There|Here|Some|Many|Most|All|Both|Each|Such|Last|Next|Earlier|Later")
# Upper- and lower-case letters, Latin-1 and Latin Extended-A included ("İzmir", "Çelik").
_UP = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x180)) if c.isupper())
_LOW = "a-z" + "".join(c for c in map(chr, range(0xC0, 0x180)) if c.islower())
# A person's name: two or more capitalised words in a row ("Aaron Stein", "Recep Tayyip
# Erdoğan", "Tip O'Neill"), each a capital then a lower-case letter or apostrophe (not
# "S-400"), the first not one of _NOT_NAMES.
_WORD = rf"[{_UP}][{_LOW}’'][{_LOW}’'-]*"
_NAME = re.compile(rf"\b(?!(?:{_NOT_NAMES})\b){_WORD}(?:\s+[{_UP}]\.)?(?:\s+{_WORD})+")
# A person named by one word, where the sentence says so: "…,” Yinanc wrote in his column",
# "said Stein", "according to Karako".
_SAYS = r"(?:said|says|wrote|writes|told|noted|added|argued|explained|warned|stressed|claimed|tweeted)"
_ONE_NAME = re.compile(rf"\b(?!(?:{_NOT_NAMES})\b)({_WORD})\s+{_SAYS}\b|\b(?:{_SAYS}|according to)\s+"
                       rf"(?!(?:{_NOT_NAMES})\b)({_WORD})\b(?!\s+{_WORD})")
_ASKS_PERSON = re.compile(r"^\s*who\b(?!\s+(?:else|has|have|had)\b)", re.IGNORECASE)
_YEAR = re.compile(r"^(?:1[89]|20)\d\d$")
_ASKS_TIME = re.compile(
    r"^\s*(?:when\b|(?:in|on|by|since|until) (?:what|which) (?:year|month|day|date)\b|"
    r"(?:what|which) (?:year|month|day|date)\b|how long ago\b)", re.IGNORECASE)
_ASKS_NUMBER = re.compile(
    r"\b(?:how (?:many|much|far|long|big|large|old|often)|what (?:percentage|percent|number|"
    r"amount|share|proportion|size|range|price)|(?:what|which) is the (?:number|amount|range|cost|"
    r"price|size|value) of|what (?:is|was|are|were) (?:\w+['’]s )?(?:\w+ ){0,2}(?:budget|"
    r"population|salary|revenue)s?|in (?:kilometres|kilometers|km|miles|metres|meters|percent|"
    r"dollars|euros|tons|tonnes))\b", re.IGNORECASE)


class AnswerType(Enum):
    """What kind of answer a question asks for (only the kinds we can check reliably)."""

    ANY = "any"
    TIME = "time"
    NUMBER = "number"
    PERSON = "person"


def expected_type(question: str) -> AnswerType:
    """``TIME`` for when/what-year questions, ``NUMBER`` for how-many/how-much/what-price,
    ``PERSON`` for who-questions, else ``ANY``.

    >>> expected_type("When did Turkey join NATO?")
    <AnswerType.TIME: 'time'>
    >>> expected_type("How many drones did Ukraine buy?")
    <AnswerType.NUMBER: 'number'>
    """
    if _ASKS_TIME.search(question):
        return AnswerType.TIME
    if _ASKS_NUMBER.search(question):
        return AnswerType.NUMBER
    if _ASKS_PERSON.search(question):
        return AnswerType.PERSON
    return AnswerType.ANY


def _mentions(pattern: re.Pattern[str], text: str, question: str, *, skip_years: bool = False) -> bool:
    asked = {m.group(0).lower() for m in pattern.finditer(question)}
    for match in pattern.finditer(text):
        token = match.group(0).lower()
        if token in asked or (skip_years and _YEAR.match(token)):
            continue
        return True
    return False


def _one_name(sentence: str, question: str) -> bool:
    """A one-word name the sentence attributes words to, not one the question holds."""
    asked = question.lower()
    for match in _ONE_NAME.finditer(sentence):
        name = (match.group(1) or match.group(2) or "").lower()
        if name and name not in asked:
            return True
    return False


def states(kind: AnswerType, sentence: str, question: str) -> bool:
    """Whether ``sentence`` states an answer of ``kind`` that ``question`` does not contain.

    >>> states(AnswerType.TIME, "Turkey joined NATO in 1952.", "When did Turkey join NATO?")
    True
    >>> states(AnswerType.NUMBER, "The first delivery arrived in July 2019.", "How many S-400s came?")
    False
    """
    if kind is AnswerType.TIME:
        return _mentions(_DATE, sentence, question)
    if kind is AnswerType.NUMBER:
        return _mentions(_NUMBER, sentence, question, skip_years=True)
    if kind is AnswerType.PERSON:
        return _mentions(_NAME, sentence, question) or _one_name(sentence, question)
    return True


def best_sentence(
    question: str,
    question_vector: np.ndarray,
    sentences: list[str],
    sentence_vectors: np.ndarray,
    lexical: np.ndarray,
    kind: AnswerType | None = None,
    eligible: np.ndarray | None = None,
) -> tuple[int, float, bool]:
    """Pick the answering sentence of a passage.

    Args:
        question: the question text (for the answer-type check).
        question_vector: its unit vector ``[dim]``.
        sentences: the passage's sentences (n >= 1).
        sentence_vectors: their unit vectors ``[n, dim]``.
        lexical: their BM25 scores for the question ``[n]`` (zeros when unknown).
        kind: what the question asks for, when the caller knows it already (default:
            :func:`expected_type` of ``question``).
        eligible: which sentences may answer ``[n]`` (headings may not); the best of all
            is returned only when none may.

    Returns:
        (index within the passage, cosine similarity of that sentence, whether it states
        an answer of the expected type).
    """
    sims = np.asarray(sentence_vectors, dtype=np.float32) @ question_vector
    lex = np.asarray(lexical, dtype=np.float32)
    top = float(lex.max()) if len(lex) else 0.0
    score = sims + (LEXICAL_WEIGHT * lex / top if top > 0 else 0.0)
    kind = expected_type(question) if kind is None else kind
    typed = np.array([states(kind, s, question) for s in sentences], dtype=bool)
    if kind is not AnswerType.ANY:
        score = score + TYPE_BONUS * typed
    if eligible is not None and np.any(eligible):
        score = np.where(eligible, score, -np.inf)
    best = int(np.argmax(score))
    return best, float(sims[best]), bool(typed[best])
