"""Checking a written answer sentence by sentence against the exact passages it cites.

A model's answer is split into sentences, each with the citation labels it carries
(``[1]``, ``[2, 3]``, ``[1][2]``; after the sentence, or before it when the model writes
them first). Each sentence is then checked against the body sentences of the passages it
cites (:func:`check`), by measured signals, never by asking a model. In order, the first
that fails decides, and its reason is said in words:

1. **cites**: at least one label of a passage given to the model;
2. **facts that must be there**: every number (digits or number words, "two" = "2"), year,
   month, weekday and relative time ("last month"), and every name (a capitalised word;
   "Turkish" matches "Turkey", "Moscow" Russia, "American" US) appears in the cited passages;
3. **no opposite**: an antonym of what the closest cited sentences say ("supports" for
   "opposes"); a "not"/"no"/"never" the closest sentences lack; a negation (or "refused",
   "failed" ...) dropped from the clause the sentence restates;
4. **no overclaim**: no certainty the passages lack ("will", "all", "fully", "confirmed"),
   and no hedge dropped from the clause it restates ("could use" -> "is using");
5. **no added fact**: no run of :data:`ADDED_WORDS` content words the cited passages lack;
6. **close in meaning**: cosine similarity (the packaged embedding model) to the closest
   cited sentence, or to the closest two together, of at least :data:`SIMILAR`; or of at
   least :data:`SIMILAR_WITH_WORDS` while :data:`WORDS` of its content words (stemmed, as
   BM25 analyses them) are in the cited passages.

A sentence that passes them all is *supported*, linked to the cited sentences that support
it; any other is *unsupported*. The thresholds are measured with ``python -m
bench.grounding`` on hand-labelled pairs (``bench/data/grounding/``; tuned on the two
development sets only, never on the held-out one).

Sentences of a passage that read as instructions to a model ("ignore previous
instructions ...") never count as evidence: an article cannot vouch for what it tells the
model to say.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.lexical import analyze

BODY = 0  # indexer.chunking.BODY (the chunker is build time)

# The decision (python -m bench.grounding measures it; never tuned on the holdout pairs).
SIMILAR = 0.75  # cosine similarity to the closest cited sentence that supports alone
SIMILAR_WITH_WORDS = 0.55  # ... that supports when the cited text also holds WORDS of its words
WORDS = 0.85  # share of the sentence's content words the cited text must hold (with the above)
CUE_SHARE = 0.5  # share of the words after a "not" or "may" that makes a sentence restate its clause
CLAUSE_NEW = 2  # a clause with this many content words the cited passages lack ...
CLAUSE_HELD = 0.6  # ... and fewer than this share of them held, is made up
ADDED_WORDS = 4  # a run of this many content words that the cited text lacks is an added fact

# A citation label: [1], [2, 3], [1-2], [Passage 1], [Source 2]; also 【1】.
LABEL = re.compile(r"[\[【]\s*(?:(?:passage|source|doc(?:ument)?|article)\s*)?(\d{1,3}(?:\s*(?:,|;|-|–|and)\s*"
                   r"(?:(?:passage|source)\s*)?\d{1,3})*)\s*[\]】]", re.IGNORECASE)
_LABEL_NUMBER = re.compile(r"\d{1,3}")
_ABBREVIATIONS = frozenset("mr mrs ms dr gen sen rep st jr sr prof col lt capt sgt gov pres no vs etc inc ltd co "
                           "corp u.s u.k u.n e.g i.e jan feb mar apr jun jul aug sep sept oct nov dec".split())
_END = re.compile(r"[.!?]+[\"'”’)]*")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
                 "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
                 "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                 "ninety": 90, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9,
                 "dozen": 12, "dozens": 12, "hundreds": 100, "thousands": 1000, "millions": 10**6,
                 "billions": 10**9, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "half": 0.5,
                 "twice": 2, "double": 2, "triple": 3}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12,
           "bn": 10**9, "m": 10**6, "k": 1000}
# A number: digits (not inside a name such as "S-400" or "TB2"; "44-day" counts), with an
# optional scale word ("1.5 billion", "$2bn"); or a number word.
_NUMBER = re.compile(r"(?<![\w-])(\d+(?:[,.]\d+)*)(?:\s*(hundred|thousand|million|billion|trillion|bn|m|k)\b)?"
                     r"(?![\w])|(?<![\w-])(" + "|".join(_NUMBER_WORDS) + r")(?![\w-])", re.IGNORECASE)
_RELATIVE = re.compile(r"\b(last|this|next|past|previous|coming)\s+(week|month|year|fall|autumn|spring|summer|"
                       r"winter|weekend|decade)\b", re.IGNORECASE)
_SPAN = re.compile(r"\b(?:within|in|for|over|after)\s+(?:a|an|one|two|three|four|five|six|several|the next|the past|"
                   r"\d+)\s+(day|week|month|year|decade)s?\b", re.IGNORECASE)
_DAYS = re.compile(r"\b(?:yesterday|today|tomorrow|tonight)\b", re.IGNORECASE)
_NAME_NUMBER = re.compile(r"\b[A-Za-z]+-?\d+[A-Za-z\d]*\b|\b\d+[A-Za-z]+\b")  # S-400, TB2, F-35, 5G
_NEGATION = re.compile(r"(?<!\bor )(?<!\bif )\b(?:not|no|never|none|neither|nor|without|cannot|nobody|nothing)\b"
                       r"(?! (?:only|least|just)\b)|n['’]t\b", re.IGNORECASE)
# Words that make a claim less than certain, and words that make it certain or universal:
# a sentence that drops the first or adds the second overclaims.
_HEDGE = re.compile(r"\b(?:may|might|could|possibly|perhaps|reportedly|allegedly|likely|probably|consider(?:s|ing)|"
                    r"(?:plans?|planning|tr(?:y|ies|ying)) to|unclear)\b", re.IGNORECASE)
_CERTAIN = re.compile(r"\b(?:all|every|always|fully|completely|entirely|totally|definitely|certainly|clearly|"
                      r"undoubtedly|surely|solely|must|will|decided|confirmed|proven|guaranteed|entire|whole|"
                      r"officially|formally)\b", re.IGNORECASE)
_NEGATIVE_VERB = re.compile(r"\b(?:refus|refrain|reject|deni|deny|fail|declin|lack|halt|abandon|avoid|prevent)\w*",
                            re.IGNORECASE)
_CAPITALISED = re.compile(r"[A-ZÀ-ÝĀ-Ž][\w’'-]*")
# Capitalised words that are not names when they start a sentence (or stand alone).
_COMMON = frozenset("""a an the this that these those it its he his she her they their them we our i you
in on at by for from with without but and or so as after before while when if since although though
despite according meanwhile however still yet now then there here some many most all both each such
last next earlier later also both what which who whom whose why how where one two three four five
no not yes its among during under over about against between into through because even only just
while unlike like instead overall together further furthermore moreover additionally indeed thus
president prime minister minister foreign defence defense secretary general spokesman spokeswoman
officials official analysts analyst experts army military government state states article articles
passage passages source sources report reports around about nearly roughly approximately almost more less
several other another following having being given based until unless whether whereas within across along
amid behind beyond toward towards upon via per once ever always often sometimes recently currently
previously initially finally eventually ultimately first second third new former""".split())
_FUNCTION_STEMS = frozenset(analyze(["""a an the this that these those it its he his she her they their them we our
i you in on at by for from with without but and or so as after before while when if since although though
there here some many most all both each such also what which who whom whose why how where no not about
into through because even only just did does do has have had be been being would could should can may might
must than very more less other another any its their own same""".replace("\n", " ")])[0])
# Names that stand for one another in news writing (beyond the place aliases of
# retrieval/data/aliases.tsv, which are added to these): each group is one thing.
_SAME = [set(g.split("|")) for g in (
    "us|usa|u.s|united|america|american|americans|washington",
    "uk|u.k|britain|british|united kingdom|london",
    "eu|european|europe|brussels",
    "un|united nations",
    "russia|russian|russians|moscow|kremlin",
    "turkey|turkish|turks|ankara|turkiye",
    "ukraine|ukrainian|ukrainians|kyiv|kiev",
    "nato|alliance",
)]
# Words whose opposite makes the opposite claim (as stems, analysed as the index does).
_OPPOSITES = [tuple(analyze([pair])[0]) for pair in (
    "support oppose", "supports opposes", "increase decrease", "rise fall", "rose fell", "raise lower",
    "agree refuse", "accept reject", "approve reject", "allow ban", "allow forbid", "win lose", "won lost",
    "gain lose", "strengthen weaken", "expand reduce", "expand cut", "more fewer", "more less",
    "higher lower", "larger smaller", "before after", "success failure", "succeeded failed", "ally enemy",
    "friend foe", "welcomed condemned", "praised criticised", "praised criticized", "confirmed denied",
    "start end", "began ended", "open close", "lift impose", "lifted imposed", "buy sell", "bought sold",
    "import export", "offensive defensive", "east west", "north south", "first last", "maximum minimum")]
_OPPOSITES = [p for p in dict.fromkeys(_OPPOSITES) if len(p) == 2 and p[0] != p[1]]
# Sentences of an article that address a model rather than report: they never count as evidence.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget)\b[^.!?\n]{0,40}\b(?:previous|prior|above|earlier|all|any|your)\b[^.!?\n]{0,30}"
    r"\b(?:instructions?|prompts?|rules?|directions?|context)\b"
    r"|\b(?:you are now|act as|pretend to be|new instructions?|system prompt|as an ai\b)"
    r"|\b(?:respond|reply|answer|say|write|state)\s+(?:only\s+)?(?:with|that)\b[^.!?\n]{0,80}\b(?:instead|regardless)\b"
    r"|\b(?:assistant|language model|llm|chatbot|ai model)s?\b[^.!?\n]{0,60}\b(?:must|should|shall|will)\b",
    re.IGNORECASE)
_REFUSAL = re.compile(r"^\s*(?:i\s*(?:am|'m|’m)\s*(?:sorry|unable|not able)|i\s*(?:cannot|can't|can’t|could not|"
                      r"couldn't|do not|don't|don’t)\s+(?:answer|help|provide|find|determine|say)|as an ai\b|"
                      r"(?:sorry|unfortunately),?\s+i\b|the (?:passages|articles|sources) do not (?:say|mention|"
                      r"answer|contain|provide))", re.IGNORECASE)


@dataclass(frozen=True)
class EvidenceSentence:
    """A sentence of a cited passage: document offsets, text, unit vector."""

    start: int
    end: int
    text: str
    vector: np.ndarray

    @property
    def instruction(self) -> bool:
        """Whether it reads as an instruction to a model (:data:`INSTRUCTION`): never evidence."""
        return bool(INSTRUCTION.search(self.text))


@dataclass(frozen=True)
class Source:
    """A passage given to the model under ``label``, with its body sentences."""

    label: int
    doc_id: str
    title: str
    start: int
    end: int
    text: str
    sentences: tuple[EvidenceSentence, ...]

    @property
    def usable(self) -> tuple[EvidenceSentence, ...]:
        """Its sentences that can be evidence (not instructions to a model)."""
        return tuple(s for s in self.sentences if not s.instruction)


@dataclass(frozen=True)
class Cite:
    """A span of a document that a sentence cites: for a supported sentence the cited
    sentences that support it, else the whole cited passage."""

    label: int
    doc_id: str
    start: int
    end: int

    def to_json(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "label": self.label}


@dataclass(frozen=True)
class Claim:
    """A sentence of the written answer, without its labels, and the labels it carries."""

    text: str
    labels: tuple[int, ...]


@dataclass(frozen=True)
class Checked:
    """The verdict on one written sentence, with its signals and the reason in words."""

    text: str
    labels: tuple[int, ...]
    cites: tuple[Cite, ...]
    supported: bool
    reason: str
    similarity: float = 0.0
    coverage: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "cites": [c.to_json() for c in self.cites], "supported": self.supported,
                "reason": self.reason, "similarity": round(self.similarity, 4), "coverage": round(self.coverage, 4)}


# ------------------------------------------------------------------ splitting
def _labels(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for m in LABEL.finditer(text):
        body = m.group(1)
        numbers = [int(n) for n in _LABEL_NUMBER.findall(body)]
        if len(numbers) == 2 and re.search(r"[-–]", body) and 0 < numbers[1] - numbers[0] <= 10:
            numbers = list(range(numbers[0], numbers[1] + 1))
        out.extend(numbers)
    return tuple(dict.fromkeys(out))


def _is_boundary(text: str, end: int) -> bool:
    """Whether sentence-ending punctuation ending at ``end`` ends a sentence (not "Mr." or
    "U.S." before a name)."""
    word = re.search(r"([\w.]+)[.]+[\"'”’)]*$", text[:end])
    if word and word.group(1).lower().rstrip(".") in _ABBREVIATIONS:
        return False
    rest = text[end:]
    if not rest.strip():
        return True
    # A new sentence: a label, a line break, or any word (a model may start one in lower case).
    return bool(re.match(r"\s*(?:[\[【]|\s[\"“‘(]?\w|\n)", rest))


def split_claims(text: str) -> list[Claim]:
    r"""The written answer's sentences with their citation labels. A label right after a
    sentence (or before its final full stop) belongs to it; when the first label opens a
    line, the model puts labels before what they cite, and each belongs to the sentences
    after it, up to the next label.

    >>> [(c.text, c.labels) for c in split_claims("Turkey joined NATO in 1952 [1]. It buys drones. [2][3]")]
    [('Turkey joined NATO in 1952.', (1,)), ('It buys drones.', (2, 3))]
    >>> [(c.text, c.labels) for c in split_claims("Answer:\n[1] In 1952, Turkey joined NATO. It did. [2] In 1953, it did.")]
    [('Answer:', ()), ('In 1952, Turkey joined NATO.', (1,)), ('It did.', (1,)), ('In 1953, it did.', (2,))]
    """
    first = LABEL.search(text)  # labels come first when the first one opens a line
    leading = first is not None and not _BULLET.sub("", text[text.rfind("\n", 0, first.start()) + 1:first.start()]).strip()
    pieces: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        start = 0
        for m in _END.finditer(line):
            if _is_boundary(line, m.end()):
                # Labels right after the punctuation stay with this sentence (trailing style).
                end = m.end()
                if not leading:
                    tail = re.match(r"(?:\s*" + LABEL.pattern + r")+", line[end:], re.IGNORECASE)
                    if tail:
                        end += tail.end()
                pieces.append(line[start:end])
                start = end
        pieces.append(line[start:])
    claims: list[Claim] = []
    carried: tuple[int, ...] = ()  # leading style: the last label, for the sentences after it
    for piece in pieces:
        if not piece.strip():
            continue
        words = LABEL.sub(" ", piece)
        words = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(words.split())).strip()
        labels = _labels(piece)
        if not re.search(r"[^\W\d_]{2}", words):  # labels alone (or punctuation): they go with a neighbour
            if leading:
                carried = labels or carried
            elif claims:
                last = claims[-1]
                claims[-1] = Claim(last.text, tuple(dict.fromkeys((*last.labels, *labels))))
            continue
        if leading:
            carried = labels or carried
            labels = carried
        claims.append(Claim(words, labels))
    return claims


def refusal(text: str) -> bool:
    """Whether the answer opens by declining ("I cannot answer ...", "I'm sorry ...")."""
    return bool(_REFUSAL.search(text))


# ------------------------------------------------------------------ facts
def _fold(word: str) -> str:
    """Lower case without accents or possessive: "Erdoğan’s" -> "erdogan"."""
    word = re.sub(r"[’']s?$", "", word).rstrip(".")
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


def numbers(text: str) -> set[float]:
    """The numbers a text states, as values ("two" and "2" are 2; "1.5 billion" is 1.5e9,
    and also 1.5, as a text may give the scale elsewhere); names such as "S-400" are not
    numbers."""
    text = _NAME_NUMBER.sub(" ", text)
    out: set[float] = set()
    for m in _NUMBER.finditer(text):
        if m.group(3):
            out.add(float(_NUMBER_WORDS[m.group(3).lower()]))
            continue
        raw = m.group(1)
        value = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw) else raw.replace(",", ".")
        try:
            number = float(value)
        except ValueError:
            continue
        out.add(number)
        if m.group(2):
            out.add(number * _SCALES[m.group(2).lower()])
    return out


def times(text: str) -> set[str]:
    """Months and weekdays a text names, and times relative to the article's ("last month",
    "earlier this week", "yesterday"); years are numbers."""
    words = {w.lower().rstrip(".") for w in re.findall(r"[A-Za-z]+\.?", text)}
    months = {m[:3] for m in _MONTHS if m in words and (m != "may" or re.search(r"\bMay\b", text))}
    relative = {f"{m.group(1).lower()} {m.group(2).lower()}" for m in _RELATIVE.finditer(text)}
    relative |= {m.group(0).lower() for m in _DAYS.finditer(text)}
    relative |= {f"{m.group(1).lower()}s" for m in _SPAN.finditer(text)}  # "within a month": a span of months
    return months | {d for d in _WEEKDAYS if d in words} | relative


def names(text: str) -> list[str]:
    """The capitalised words of a sentence that name someone or something (not a common
    word that happens to start it)."""
    out = []
    first = re.search(r"[^\W\d_]", text)
    for m in _CAPITALISED.finditer(text):
        word = m.group(0).strip("’'-")
        folded = _fold(word)
        if len(folded) < 2 or folded in _COMMON or folded in _MONTHS or folded in _WEEKDAYS:
            continue
        if first is not None and m.start() == first.start() and folded.endswith(("ly", "ed", "ing")):
            continue  # "Notably, ...", "Located ...", "Speaking ..." open a sentence
        if any(ch.isdigit() for ch in word):
            continue
        out.append(word)
    return out


def _same_name(a: str, b: str) -> bool:
    """Whether two folded words name the same thing: equal, or the same stem ("turkey" and
    "turkish", "russia" and "russian", "ukraine" and "ukrainian")."""
    if a == b:
        return True
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n >= 5 or (n >= 4 and n >= 0.6 * min(len(a), len(b)))


@lru_cache(maxsize=1)
def _groups() -> dict[str, frozenset[str]]:
    """Each folded name -> the names that stand for the same thing."""
    from retrieval.aliases import load_gazetteer

    groups = [set(g) for g in _SAME]
    for alias, country in load_gazetteer().stands_for.items():
        a, c = _fold(alias.removeprefix("the ")), _fold(country)
        home = next((g for g in groups if c in g), None)
        if home is None:
            groups.append({a, c})
        else:
            home.add(a)
    out: dict[str, frozenset[str]] = {}
    for g in groups:
        for name in g:
            out[name] = frozenset(g) | out.get(name, frozenset())
    return out


def missing_names(sentence: str, evidence: str) -> list[str]:
    """The sentence's names that the evidence does not name (case and accents aside; a
    name stands for its group: "Moscow" for "Russia", "American" for "US")."""
    held = {_fold(w) for w in re.findall(r"[\w’'.-]+", evidence)} | {_fold(w) for w in re.findall(r"[\w’'-]+", evidence)}
    lowered = " " + " ".join(_fold(w) for w in evidence.split()) + " "
    groups = _groups()
    out = []
    for name in names(sentence):
        folded = _fold(name)
        parts = [p for p in re.split(r"-", folded) if p]
        if folded in held or all(any(_same_name(p, h) for h in held) for p in parts):
            continue
        if any(g in held or (" " in g and f" {g} " in lowered) for g in groups.get(folded, ())):
            continue
        out.append(name)
    return out


def missing_numbers(sentence: str, evidence: str) -> list[str]:
    """The sentence's numbers that the evidence does not state, as the sentence writes them."""
    held = numbers(evidence)
    out = []
    for m in _NUMBER.finditer(_NAME_NUMBER.sub(" ", sentence)):
        values = numbers(m.group(0))
        if values and not values & held:
            out.append(m.group(0).strip())
    return out


def missing_times(sentence: str, evidence: str) -> list[str]:
    return sorted(times(sentence) - times(evidence))


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def _negation_dropped(sentence: str, evidence: str) -> str | None:
    """The evidence's negation ("not", "refused", ...) when the sentence restates the
    negated words without it (:func:`_cue_dropped`)."""
    if _NEGATIVE_VERB.search(sentence):
        return None
    return _cue_dropped(sentence, evidence, _NEGATION) or _cue_dropped(sentence, evidence, _NEGATIVE_VERB)


def _cue_dropped(sentence: str, evidence: str, cue: re.Pattern[str]) -> str | None:
    """A cue word of the evidence ("not", "may", ...) whose clause the sentence restates
    without it: at least two, and :data:`CUE_SHARE`, of the four content words after it
    are in the sentence, and no such cue comes in the five words before them there."""
    tokens = re.findall(r"[\w’'-]+", sentence)
    stems = [analyze([t])[0] for t in tokens]
    held = {st for group in stems for st in group}
    for m in cue.finditer(evidence):
        after = [w for w in analyze([evidence[m.end():m.end() + 80]])[0] if w not in _FUNCTION_STEMS][:4]
        shared = {w for w in after if w in held}
        if len(shared) < 2 or len(shared) < CUE_SHARE * len(after):
            continue
        at = next(i for i, group in enumerate(stems) if shared & set(group))
        before = " ".join(tokens[max(0, at - 5):at])
        if not cue.search(before):
            return m.group(0)
    return None


def _antonym(sentence: str, evidence: Sequence[str]) -> tuple[str, str] | None:
    """A word of the sentence whose opposite the closest evidence says instead ("supports"
    where it says "opposes"), as (the sentence's word, the evidence's)."""
    mine = _words(sentence)
    theirs = set().union(*(_words(t) for t in evidence)) if evidence else set()
    for a, b in _OPPOSITES:
        for x, y in ((a, b), (b, a)):
            if x in mine and x not in theirs and y in theirs:
                return _shown(sentence, x), _shown(" ".join(evidence), y)
    return None


def _shown(text: str, stem: str) -> str:
    """The word of ``text`` that analyses to ``stem``."""
    for word in re.findall(r"[\w’'-]+", text):
        if analyze([word])[0] == [stem]:
            return word
    return stem


# ------------------------------------------------------------------ checking
def _words(text: str) -> set[str]:
    return set(analyze([text])[0])


def held_words(sentence: str, evidence: str) -> dict[str, bool]:
    """For each content word of the sentence (lower case): whether the evidence holds it
    (the same stems, as BM25 analyses words)."""
    stems = {st for w in _content_words(evidence) for st in analyze([w])[0]}
    return {word: all(st in stems for st in analyze([word])[0]) for word in _content_words(sentence)}


def _content_words(text: str) -> set[str]:
    """The text's words that carry content (lower case): not function words, not digits."""
    out = set()
    for word in re.findall(r"[^\W\d_][\w’'-]*", text.lower()):
        word = word.strip("’'-")
        stems = analyze([word])[0]
        if stems and not all(st in _FUNCTION_STEMS for st in stems):
            out.add(word)
    return out


def check(claims: Sequence[Claim], sources: Mapping[int, Source],
          embed: Callable[[list[str]], np.ndarray]) -> list[Checked]:
    """The verdict on each claim (see the module docstring).

    Args:
        claims: the written answer's sentences (:func:`split_claims`).
        sources: the passages given to the model, by label.
        embed: unit vectors for texts (the packaged embedding model).
    """
    if not claims:
        return []
    vectors = np.asarray(embed([c.text for c in claims]), dtype=np.float32)
    return [_check_one(c, v, sources, embed) for c, v in zip(claims, vectors)]


def _check_one(claim: Claim, vector: np.ndarray, sources: Mapping[int, Source],
               embed: Callable[[list[str]], np.ndarray]) -> Checked:
    text = claim.text
    if not claim.labels:
        return Checked(text, (), (), False, "it cites no passage, so nothing vouches for it")
    unknown = [n for n in claim.labels if n not in sources]
    cited = [sources[n] for n in claim.labels if n in sources]
    passage_cites = tuple(Cite(s.label, s.doc_id, s.start, s.end) for s in cited)
    if not cited:
        return Checked(text, claim.labels, (), False,
                       f"it cites {_label_text(unknown)}, which is not one of the passages given to the model")
    usable = [(s, e) for s in cited for e in s.usable]
    if not usable:
        return Checked(text, claim.labels, passage_cites, False,
                       f"the cited passage{'s' if len(cited) > 1 else ''} {_label_text(claim.labels)} "
                       "hold only text addressed to the model, which cannot vouch for anything")
    sims = np.array([float(e.vector @ vector) for _, e in usable])
    order = np.argsort(-sims)
    similarity = float(sims[order[0]])
    if len(order) > 1:  # a sentence that joins two facts: compare it with its two closest sentences together
        pair = " ".join(usable[int(i)][1].text for i in sorted(order[:2], key=lambda i: (usable[int(i)][0].label,
                                                                                        usable[int(i)][1].start)))
        similarity = max(similarity, float(np.asarray(embed([pair]), dtype=np.float32)[0] @ vector))
    scope = " ".join(e.text for _, e in usable)
    where = f"the cited passage{'s' if len(cited) > 1 else ''} {_label_text(claim.labels)}"
    held = held_words(text, scope)
    coverage = sum(held.values()) / len(held) if held else 1.0
    facts: list[str] = []
    facts += [f"give {x}" for x in missing_numbers(text, scope)]
    facts += [f"give {x.capitalize()}" if " " not in x and not x.endswith("s") or x in _WEEKDAYS else f"give “{x}”"
              for x in missing_times(text, scope)]
    facts += [f"name {x}" for x in missing_names(text, scope)]
    if facts:
        return Checked(text, claim.labels, passage_cites, False, f"{where} do{'es' if len(cited) == 1 else ''} not "
                       f"{_and(facts)}", similarity, coverage)
    close = [usable[int(i)][1].text for i in order[:2]]
    flipped = _antonym(text, close)
    if flipped:
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} says the opposite: “{flipped[1]}”, where this sentence says “{flipped[0]}”",
                       similarity, coverage)
    if _negated(text) and not any(_negated(t) for t in close):
        word = _NEGATION.search(text).group(0)  # type: ignore[union-attr]
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} says the opposite: this sentence has “{word}”, and the passage's closest "
                       "sentences do not", similarity, coverage)
    dropped = next((w for _, e in usable if (w := _negation_dropped(text, e.text))), None)
    if not _negated(text) and dropped:
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} says the opposite: it has “{dropped}” where this sentence has no negation",
                       similarity, coverage)
    certain = [m.group(0) for m in _CERTAIN.finditer(text)
               if not re.search(rf"\b{re.escape(m.group(0))}\b", scope, re.IGNORECASE)]
    if certain:
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} do{'es' if len(cited) == 1 else ''} not say “{certain[0]}”: this sentence is surer "
                       "than the passage", similarity, coverage)
    hedge = next((w for _, e in usable if (w := _cue_dropped(text, e.text, _HEDGE))), None)
    if hedge:
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} only says “{hedge}”: this sentence states as certain what the passage does not",
                       similarity, coverage)
    clause = unheld_clause(text, held)
    if clause:
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} do{'es' if len(cited) == 1 else ''} not say “{clause}”", similarity, coverage)
    added, count = novel_run(text, held)
    if count >= ADDED_WORDS:
        return Checked(text, claim.labels, passage_cites, False,
                       f"{where} do{'es' if len(cited) == 1 else ''} not say “{' '.join(added)}”", similarity, coverage)
    if unknown:
        note = f" (it also cites {_label_text(unknown)}, which was not given)"
    else:
        note = ""
    if similarity >= SIMILAR or (similarity >= SIMILAR_WITH_WORDS and coverage >= WORDS):
        cites = _support_cites(text, usable, order, sims)
        return Checked(text, claim.labels, cites, True,
                       f"{where} say{'s' if len(cited) == 1 else ''} this: it is {similarity:.2f} similar to the closest "
                       f"cited sentence (or two), and {coverage:.0%} of its words are there{note}", similarity, coverage)
    need = (f"{SIMILAR:.2f} needed, or {SIMILAR_WITH_WORDS:.2f} with {WORDS:.0%} of the words"
            if similarity >= SIMILAR_WITH_WORDS else f"{SIMILAR_WITH_WORDS:.2f} at least")
    return Checked(text, claim.labels, passage_cites, False,
                   f"{where} do{'es' if len(cited) == 1 else ''} not say this: it is only {similarity:.2f} similar to "
                   f"the closest cited sentence (or two) ({need}), and {coverage:.0%} of its words are there", similarity, coverage)


_CLAUSE = re.compile(r"\s*(?:;|:|,\s+(?:and|but|while|whereas|although|though|yet|so)\b|\s(?:but|whereas|and later|"
                     r"and then|and so|only to)\b)\s*", re.IGNORECASE)


def unheld_clause(sentence: str, held: Mapping[str, bool]) -> str | None:
    """A clause of the sentence (split at ";", ", and", ", but", " and later" ...) that the
    cited passages do not hold: under half of its content words are there, or at least
    :data:`CLAUSE_NEW` are not and under :data:`CLAUSE_HELD` are. A made-up clause joined
    to a true one."""
    parts = _CLAUSE.split(sentence)
    if len(parts) < 2:
        return None
    for part in parts:
        words = [w for w in _content_words(part) if w in held]
        new = sum(not held[w] for w in words)
        share = (len(words) - new) / len(words) if words else 1.0
        if share < 0.5 or new >= CLAUSE_NEW and share < CLAUSE_HELD:
            return part.strip(" .")
    return None


def novel_run(sentence: str, held: Mapping[str, bool]) -> tuple[list[str], int]:
    """The longest run of the sentence's content words that the evidence lacks (``held``:
:func:`held_words`), as written; function words inside a run are kept, not
    counted. A long one is an added fact."""
    best: list[str] = []
    run: list[str] = []
    counted = best_count = 0
    for word in re.findall(r"[\w’'-]+", sentence):
        key = word.lower().strip("’'-")
        if key not in held:
            if run:
                run.append(word)
            continue
        if not held[key]:
            run.append(word)
            counted += 1
            if counted > best_count:
                best, best_count = list(run), counted
        else:
            run, counted = [], 0
    return best, best_count


def _support_cites(text: str, usable: list[tuple[Source, EvidenceSentence]], order: np.ndarray,
                   sims: np.ndarray) -> tuple[Cite, ...]:
    """The exact spans that support a sentence: its closest cited sentence, and the next
    closest ones that hold a number, time, name or word it needs that those before lack."""
    need = _words(text)
    facts = numbers(text) | times(text) | {_fold(n) for n in names(text)}
    chosen: list[int] = [int(order[0])]
    have = _words(usable[chosen[0]][1].text)
    have_facts = _facts_of(usable[chosen[0]][1].text)
    for i in order[1:4]:
        i = int(i)
        if sims[i] < SIMILAR_WITH_WORDS - 0.15:
            break
        adds = (need - have) & _words(usable[i][1].text) or (facts - have_facts) & _facts_of(usable[i][1].text)
        if adds:
            chosen.append(i)
            have |= _words(usable[i][1].text)
            have_facts |= _facts_of(usable[i][1].text)
    spans = sorted({(usable[i][0].label, usable[i][0].doc_id, usable[i][1].start, usable[i][1].end) for i in chosen},
                   key=lambda x: (x[0], x[2]))
    return tuple(Cite(label, doc, start, end) for label, doc, start, end in spans)


def _facts_of(text: str) -> set[Any]:
    return numbers(text) | times(text) | {_fold(n) for n in names(text)}


def _label_text(labels: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in labels)


def _and(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
