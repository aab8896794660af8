"""The measures the learned decisions weigh (retrieval/learned.py), computed in one place.

For one question and its ranked candidate passages: a row of features for every body
sentence of the first candidates (to choose the answer sentence), a row for the question
(answered or not), and a row for each article (mentioned or not). Cheap: no model is run
and nothing is computed for every sentence of the corpus beyond the BM25 scores the
searcher already has; everything comes from stored vectors, the BM25 index and the text
of the candidates.

The feature names below are the contract with the fitted parameters
(``retrieval/data/verdict_models.json``): a model file names its features, and loading
refuses one that names others.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from indexer.lexical import analyze
from indexer.stores.base import LexicalQuery, Passage
from retrieval.answer import AnswerType, states

if TYPE_CHECKING:
    from retrieval.query import Query
    from retrieval.searcher import Searcher

BODY, TITLE = 0, 1  # indexer.chunking's sentence kinds (the chunker is build time)

# What a question asks for, for the features: the checkable kinds of retrieval.answer, and
# two the models may learn to use (a reason, a place) that no hand rule checks.
KINDS = ("any", "time", "number", "person", "reason", "place")
_ASKS_REASON = re.compile(r"^\s*(?:why\b|what (?:is|was|are|were) the reasons?\b|for what reason\b|how come\b)",
                          re.IGNORECASE)
_ASKS_PLACE = re.compile(r"^\s*(?:where\b|in (?:what|which) (?:country|city|region|town|place)\b|"
                         r"(?:what|which) (?:country|city|region|town|place)\b)", re.IGNORECASE)
_GIVES_REASON = re.compile(r"\b(?:because|since|due to|owing to|so that|in order to|as a result|"
                           r"reason|aims? to|seeks? to|wants? to|hopes? to|to (?:counter|deter|prevent|"
                           r"protect|avoid|balance|secure|strengthen))\b", re.IGNORECASE)
_QUOTE = re.compile(r"[\"“”]|\b(?:said|says|told|according to)\b", re.IGNORECASE)
# Names in a question: capitalised words after its first ("Israel", "Macron", "NATO").
_NAME_WORD = re.compile(r"(?<=\s)[A-Z][\w'’-]*")
_DIGIT = re.compile(r"\d")

SENTENCE_FEATURES = (
    "s_cos", "s_cos_gap", "s_cos_best_in_passage", "p_cos", "p_log_rank", "s_bm25", "p_bm25",
    "term_cov", "idf_cov", "typed", "typed_asked", "gives_reason", "has_digit", "quote",
    "log_words", "position", "lead_sentence", "absent_share", "name_cov", "p_name_cov",
    "names_absent", *(f"kind_{k}" for k in KINDS),
)
QUESTION_FEATURES = (
    "p1", "p2", "best_s_cos", "best_typed", "best_term_cov", "best_idf_cov", "absent_share",
    "absent_any", "fused_gap", "top_p_cos", "log_terms", "docs_in_top5", "best_name_cov",
    "best_p_name_cov", "names_absent", "log_names", *(f"kind_{k}" for k in KINDS),
)
ARTICLE_FEATURES = (
    "a_p", "a_p_gap", "a_s_cos", "a_s_cos_gap", "a_typed", "a_term_cov", "a_idf_cov", "a_p_cos",
    "a_log_rank", "absent_share", "a_name_cov", "a_p_name_cov", "names_absent",
    *(f"kind_{k}" for k in KINDS),
)


def feature_kind(question: str, kind: AnswerType) -> str:
    """The question's kind for the features (see :data:`KINDS`)."""
    if kind is not AnswerType.ANY:
        return kind.value
    if _ASKS_REASON.search(question):
        return "reason"
    if _ASKS_PLACE.search(question):
        return "place"
    return "any"


def _one_hot(kind: str) -> list[float]:
    return [float(kind == k) for k in KINDS]


@dataclass(frozen=True)
class TermStats:
    """The question's search terms, their IDF in the passage index, and which the
    collection does not hold at all."""

    terms: tuple[str, ...]
    idf: np.ndarray  # per term
    absent: np.ndarray  # bool per term: in no passage of the collection
    names: tuple[str, ...] = ()  # the terms of the question's names (capitalised words)

    @property
    def names_absent(self) -> float:
        """The share of the question's name terms that occur nowhere in the collection."""
        if not self.names:
            return 0.0
        missing = {t for t, a in zip(self.terms, self.absent) if a}
        return sum(t in missing for t in self.names) / len(self.names)

    @property
    def absent_share(self) -> float:
        """IDF-weighted share of the question's terms that occur nowhere in the collection."""
        total = float(self.idf.sum())
        return float(self.idf[self.absent].sum()) / total if total > 0 else 0.0

    def held(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), len(terms)]: which of the terms each text holds (the search's analysis)."""
        held = np.zeros((len(texts), len(self.terms)), dtype=bool)
        if self.terms:
            index = {t: k for k, t in enumerate(self.terms)}
            for row, tokens in enumerate(analyze(texts)):
                for t in set(tokens):
                    if t in index:
                        held[row, index[t]] = True
        return held

    def coverage(self, held: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row of ``held``: the share of the terms held, IDF-weighted share, and the
        share of the name terms held (0 when the question has no names)."""
        n = len(held)
        if not self.terms:
            return np.zeros(n), np.zeros(n), np.zeros(n)
        total = float(self.idf.sum())
        weighted = held @ self.idf / total if total > 0 else np.zeros(n)
        is_name = np.array([t in self.names for t in self.terms], dtype=bool)
        names = held[:, is_name].mean(axis=1) if is_name.any() else np.zeros(n)
        return held.mean(axis=1), weighted, names


def term_stats(searcher: Searcher, query: Query) -> TermStats:
    """IDF (Lucene's, over passages) of each distinct search term; a term no passage holds
    gets the IDF of a term in no passage."""
    terms = tuple(dict.fromkeys(query.terms))
    words = " ".join(_NAME_WORD.findall(" " + query.question.split(" ", 1)[-1])) if " " in query.question else ""
    names = tuple(t for t in dict.fromkeys(analyze([words])[0]) if t in terms) if words else ()
    counts = searcher.store.term_counts(LexicalQuery(terms, query.words))
    n, df = float(counts.rows), np.asarray(counts.df, dtype=np.float64)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)) if len(terms) else np.zeros(0)
    return TermStats(terms, idf, df == 0, names)


@dataclass(frozen=True)
class SentenceCandidates:
    """The body sentences of the first candidate passages, one row each, with features."""

    passage_ids: list[str]  # in ranked order
    doc_ids: list[str]  # each passage's document
    ranks: np.ndarray  # their 1-based ranks in the question's ranking
    passage_of: np.ndarray  # [S] index into ``passage_ids``
    sentence_ids: list[str]  # [S]
    features: np.ndarray  # [S, len(SENTENCE_FEATURES)]
    s_cos: np.ndarray  # [S]
    typed: np.ndarray  # [S] bool: states the asked-for kind (retrieval.answer)
    term_cov: np.ndarray  # [S]
    stats: TermStats
    kind: str


def sentence_candidates(searcher: Searcher, query: Query, qvec: np.ndarray,
                        passages: Sequence[tuple[Passage, int]], sentence_bm25: dict[str, float],
                        passage_bm25: dict[str, float] | None = None) -> SentenceCandidates:
    """Features of every body sentence of ``passages`` — (passage, 1-based rank in the
    question's ranking) pairs; a sentence shared by two passages gets a row in each: its
    passage features differ."""
    kind = feature_kind(query.question, query.kind)
    stats = term_stats(searcher, query)
    ranks = np.array([k for _, k in passages], dtype=np.int64)
    pof: list[int] = []
    rows: list[tuple[Passage, int]] = []  # (passage, index of the sentence in it)
    for i, (passage, _) in enumerate(passages):
        body = [n for n, s in enumerate(passage.sentences) if s.kind == BODY]
        for n in body or range(len(passage.sentences)):  # headings only: they stand in (and rarely answer)
            rows.append((passage, n))
            pof.append(i)
    pid = [p.passage_id for p, _ in passages]
    docs = [p.doc_id for p, _ in passages]
    passage_of = np.array(pof, dtype=np.int64)
    if not rows:
        empty = np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32)
        return SentenceCandidates(pid, docs, ranks, passage_of, [], empty, np.zeros(0), np.zeros(0, bool),
                                  np.zeros(0), stats, kind)
    sids = [p.sentences[n].sentence_id for p, n in rows]
    s_cos = np.array([float(np.asarray(p.sentence_vectors[n]) @ qvec) for p, n in rows])
    p_cos = np.array([float(p.vector @ qvec) for p, _ in passages])
    lex = np.array([(sentence_bm25 or {}).get(i, 0.0) for i in sids], dtype=np.float32)
    lex = lex / lex.max() if lex.max() > 0 else np.zeros_like(lex)
    plex = np.array([(passage_bm25 or {}).get(i, 0.0) for i in pid], dtype=np.float32)
    plex = plex / plex.max() if len(plex) and plex.max() > 0 else np.zeros_like(plex)
    best_in_passage = np.zeros(len(rows), dtype=bool)
    for i in np.unique(passage_of):
        members = np.flatnonzero(passage_of == i)
        best_in_passage[members[np.argmax(s_cos[members])]] = True
    top = float(s_cos.max())
    absent = stats.absent_share
    onehot = _one_hot(kind)
    texts = [p.sentence_texts[n] for p, n in rows]
    term_covs, idf_covs, name_covs = stats.coverage(stats.held(texts))
    p_name_covs = stats.coverage(stats.held([f"{p.title}\n{p.text}" for p, _ in passages]))[2]
    names_absent = stats.names_absent
    facts = searcher.sentence_facts
    asked = query.kind is not AnswerType.ANY
    features = np.zeros((len(rows), len(SENTENCE_FEATURES)), dtype=np.float32)
    typed = np.zeros(len(rows), dtype=bool)
    for j, (passage, n) in enumerate(rows):
        fact = facts.get(sids[j])
        if fact is None:
            fact = facts[sids[j]] = _facts(searcher, passage, n)
        reason, digit, quote, log_words, position, lead = fact
        typed[j] = states(query.kind, texts[j], query.question) if asked else True
        features[j] = [
            s_cos[j], s_cos[j] - top, float(best_in_passage[j]), p_cos[passage_of[j]],
            math.log1p(ranks[passage_of[j]]), lex[j], plex[passage_of[j]], term_covs[j], idf_covs[j],
            float(typed[j]), float(typed[j] and asked), reason, digit, quote, log_words, position, lead,
            absent, name_covs[j], p_name_covs[passage_of[j]], names_absent, *onehot,
        ]
    return SentenceCandidates(pid, docs, ranks, passage_of, sids, features, s_cos, typed,
                              np.asarray(term_covs, dtype=np.float32), stats, kind)


def _facts(searcher: Searcher, passage: Passage, n: int) -> tuple[float, float, float, float, float, float]:
    """What a sentence is, whatever the question (kept per searcher): whether it gives a
    reason, holds a digit or a quotation, its length, where it lies in its article (by
    characters), and whether it is the article's lead (the first body sentence after the
    title)."""
    text = passage.sentence_texts[n]
    s = passage.sentences[n]
    doc = searcher.document(passage.doc_id)
    chars = max(len(doc.text), 1) if doc is not None else max(passage.end, 1)
    first_body = next((k for k, x in enumerate(passage.sentences) if x.kind == BODY), None)
    lead = bool(passage.sentences and passage.sentences[0].kind == TITLE and n == first_body)
    return (float(bool(_GIVES_REASON.search(text))), float(bool(_DIGIT.search(text))),
            float(bool(_QUOTE.search(text))), math.log1p(len(text.split())), s.start / chars, float(lead))


def question_features(cands: SentenceCandidates, probs: np.ndarray, fused: list[float],
                      hit_passages: list[int], query_terms: int, support_depth: int = 2) -> np.ndarray:
    """The question's row: how well the best sentences of its first hits answer it.

    Args:
        cands: the sentence candidates.
        probs: the sentence model's probability for each candidate row.
        fused: the ranking scores of the question's first passages, best first.
        hit_passages: indexes (into ``cands.passage_ids``) of the hits shown, in order.
        query_terms: how many search terms the question has.
    """
    best = []
    for i in hit_passages:
        members = np.flatnonzero(cands.passage_of == i)
        if len(members):
            best.append(members[np.argmax(probs[members])])
    first = best[:support_depth]
    p_sorted = sorted((float(probs[j]) for j in first), reverse=True) + [0.0, 0.0]
    j = first[int(np.argmax([probs[k] for k in first]))] if first else None
    f = cands.features
    name = SENTENCE_FEATURES.index
    docs = {cands.doc_ids[i] for i in hit_passages[:5]}
    gap = (fused[0] - fused[1]) if len(fused) > 1 else 0.0
    return np.array([
        p_sorted[0], p_sorted[1],
        float(max((cands.s_cos[k] for k in best[:5]), default=0.0)),
        float(cands.typed[j]) if j is not None else 0.0,
        float(f[j, name("term_cov")]) if j is not None else 0.0,
        float(f[j, name("idf_cov")]) if j is not None else 0.0,
        cands.stats.absent_share, float(bool(cands.stats.absent.any())), gap,
        float(f[best[0], name("p_cos")]) if best else 0.0,
        math.log1p(query_terms), float(len(docs)),
        float(f[j, name("name_cov")]) if j is not None else 0.0,
        float(f[j, name("p_name_cov")]) if j is not None else 0.0,
        cands.stats.names_absent, math.log1p(len(cands.stats.names)),
        *_one_hot(cands.kind),
    ], dtype=np.float32)


def article_features(cands: SentenceCandidates, probs: np.ndarray) -> tuple[list[str], np.ndarray]:
    """One row per article among the candidates: its best sentence (by the sentence
    model) and how it compares with the best of all articles.

    Args:
        cands: sentence candidates over the articles' best passages (ranks from the deep
            ranking).
        probs: the sentence model's probability for each candidate row.

    Returns:
        (document ids, features [n_docs, len(ARTICLE_FEATURES)]).
    """
    f = cands.features
    name = SENTENCE_FEATURES.index
    doc_of_row = np.array([cands.doc_ids[i] for i in cands.passage_of], dtype=object)
    docs = list(dict.fromkeys(doc_of_row.tolist()))
    top_p = float(probs.max()) if len(probs) else 0.0
    top_s = float(cands.s_cos.max()) if len(probs) else 0.0
    rows = []
    for d in docs:
        members = np.flatnonzero(doc_of_row == d)
        j = members[np.argmax(probs[members])]
        rows.append([
            probs[j], probs[j] - top_p, cands.s_cos[j], cands.s_cos[j] - top_s, float(cands.typed[j]),
            f[j, name("term_cov")], f[j, name("idf_cov")], f[j, name("p_cos")],
            math.log1p(float(cands.ranks[cands.passage_of[j]])), cands.stats.absent_share,
            f[j, name("name_cov")], f[j, name("p_name_cov")], cands.stats.names_absent,
            *_one_hot(cands.kind),
        ])
    return docs, np.array(rows, dtype=np.float32).reshape(-1, len(ARTICLE_FEATURES))


def best_by_passage(cands: SentenceCandidates, probs: np.ndarray) -> dict[str, tuple[str, float]]:
    """For each candidate passage id, its sentence id with the highest probability (and
    that probability)."""
    out: dict[str, tuple[str, float]] = {}
    for i, pid in enumerate(cands.passage_ids):
        members = np.flatnonzero(cands.passage_of == i)
        if len(members):
            j = members[int(np.argmax(probs[members]))]
            out[pid] = (cands.sentence_ids[j], float(probs[j]))
    return out
