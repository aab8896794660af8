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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from indexer.chunking import BODY
from indexer.lexical import analyze
from retrieval.answer import AnswerType, states

if TYPE_CHECKING:
    from retrieval.query import Query
    from retrieval.searcher import Searcher

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

    def held(self, bm25, rows: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
        """[len(rows), len(terms)]: which of the terms each row of a BM25 index holds, read
        from its postings (the same analysis as the search)."""
        held = np.zeros((len(rows), len(self.terms)), dtype=bool)
        scores = bm25.scores
        for k, term in enumerate(self.terms):
            t = bm25.vocab_dict.get(term)
            if t is None:
                continue
            postings = np.asarray(scores["indices"][scores["indptr"][t]:scores["indptr"][t + 1]])
            if not len(postings):
                continue
            at = np.searchsorted(postings, rows)
            held[:, k] = (at < len(postings)) & (postings[np.minimum(at, len(postings) - 1)] == rows)
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
    """IDF (Lucene's, over passages) of each distinct search term; absent terms get the
    IDF of a term in no passage."""
    terms = tuple(dict.fromkeys(query.terms))
    words = " ".join(_NAME_WORD.findall(" " + query.question.split(" ", 1)[-1])) if " " in query.question else ""
    names = tuple(t for t in dict.fromkeys(analyze([words])[0]) if t in terms) if words else ()
    bm25 = searcher.index.bm25
    n = float(bm25.scores["num_docs"])
    indptr = bm25.scores["indptr"]
    df = np.array([float(indptr[i + 1] - indptr[i]) if (i := bm25.vocab_dict.get(t)) is not None else 0.0
                   for t in terms], dtype=np.float64)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)) if len(terms) else np.zeros(0)
    return TermStats(terms, idf, df == 0, names)


@dataclass(frozen=True)
class SentenceCandidates:
    """The body sentences of the first candidate passages, one row each, with features."""

    passages: np.ndarray  # chunk rows, in ranked order
    ranks: np.ndarray  # their 1-based ranks in the question's ranking
    passage_of: np.ndarray  # [S] index into ``passages``
    sentences: np.ndarray  # [S] sentence rows
    features: np.ndarray  # [S, len(SENTENCE_FEATURES)]
    s_cos: np.ndarray  # [S]
    typed: np.ndarray  # [S] bool: states the asked-for kind (retrieval.answer)
    term_cov: np.ndarray  # [S]
    stats: TermStats
    kind: str


def sentence_candidates(searcher: Searcher, query: Query, qvec: np.ndarray,
                        passages: list[tuple[int, int]], sentence_bm25: np.ndarray,
                        passage_bm25: np.ndarray | None = None) -> SentenceCandidates:
    """Features of every body sentence of ``passages`` — (chunk row, 1-based rank in the
    question's ranking) pairs; a sentence shared by two passages gets a row in each: its
    passage features differ."""
    index = searcher.index
    kind = feature_kind(query.question, query.kind)
    stats = term_stats(searcher, query)
    rows = np.array([r for r, _ in passages], dtype=np.int64)
    ranks = np.array([k for _, k in passages], dtype=np.int64)
    chunks = np.asarray(index.chunks)[rows] if len(rows) else np.zeros((0, 5), dtype=np.int64)
    passage_of, sent_rows = [], []
    for i, (_, _, _, lo, hi) in enumerate(chunks):
        body = np.flatnonzero(np.asarray(index.sentence_kinds[lo:hi]) == BODY)
        if not len(body):  # a passage of headings only: its sentences stand in (and rarely answer)
            body = np.arange(hi - lo)
        sent_rows.extend(int(lo) + body)
        passage_of.extend([i] * len(body))
    sent = np.array(sent_rows, dtype=np.int64)
    pof = np.array(passage_of, dtype=np.int64)
    if not len(sent):
        empty = np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32)
        return SentenceCandidates(rows, ranks, pof, sent, empty, np.zeros(0), np.zeros(0, bool), np.zeros(0),
                                  stats, kind)
    s_cos = np.asarray(index.sentence_vectors[sent]) @ qvec
    p_cos = (index.chunk_index.reconstruct_batch(rows) @ qvec) if len(rows) else np.zeros(0)
    lex = np.asarray(sentence_bm25, dtype=np.float32)[sent]
    lex = lex / lex.max() if lex.max() > 0 else np.zeros_like(lex)
    if passage_bm25 is not None and len(rows):
        plex = np.asarray(passage_bm25, dtype=np.float32)[rows]
        plex = plex / plex.max() if plex.max() > 0 else np.zeros_like(plex)
    else:
        plex = np.zeros(len(rows), dtype=np.float32)
    all_sentences = np.asarray(index.sentences)
    features = np.zeros((len(sent), len(SENTENCE_FEATURES)), dtype=np.float32)
    typed = np.zeros(len(sent), dtype=bool)
    cov = np.zeros(len(sent), dtype=np.float32)
    best_in_passage = np.zeros(len(sent), dtype=bool)
    for i in np.unique(pof):
        members = np.flatnonzero(pof == i)
        best_in_passage[members[np.argmax(s_cos[members])]] = True
    top = float(s_cos.max())
    absent = stats.absent_share
    onehot = _one_hot(kind)
    term_covs, idf_covs, name_covs = stats.coverage(stats.held(index.sentence_bm25, sent))
    p_name_covs = stats.coverage(stats.held(index.bm25, rows))[2]
    names_absent = stats.names_absent
    facts = searcher.sentence_facts
    asked = query.kind is not AnswerType.ANY
    for j, row in enumerate(sent.tolist()):
        fact = facts.get(row)
        if fact is None:
            fact = facts[row] = _facts(index, row, all_sentences)
        text, reason, digit, quote, log_words, position, lead = fact
        typed[j] = states(query.kind, text, query.question) if asked else True
        cov[j] = term_covs[j]
        features[j] = [
            s_cos[j], s_cos[j] - top, float(best_in_passage[j]), p_cos[pof[j]],
            math.log1p(ranks[pof[j]]), lex[j], plex[pof[j]], term_covs[j], idf_covs[j],
            float(typed[j]), float(typed[j] and asked), reason, digit, quote, log_words, position, lead,
            absent, name_covs[j], p_name_covs[pof[j]], names_absent, *onehot,
        ]
    return SentenceCandidates(rows, ranks, pof, sent, features, s_cos, typed, cov, stats, kind)


def _facts(index, row: int, sentences: np.ndarray) -> tuple[str, float, float, float, float, float, float]:  # type: ignore[no-untyped-def]
    """What a sentence is, whatever the question (kept per searcher): its text, whether it
    gives a reason, holds a digit or a quotation, its length, its place in its article and
    whether it is the article's first body sentence."""
    doc_row, start, end = (int(x) for x in sentences[row])
    text = index.documents[doc_row].text[start:end]
    lo, hi = np.searchsorted(sentences[:, 0], [doc_row, doc_row + 1])
    body = np.flatnonzero(np.asarray(index.sentence_kinds[lo:hi]) == BODY)
    lead = int(lo + body[0]) if len(body) else int(lo)
    return (text, float(bool(_GIVES_REASON.search(text))), float(bool(_DIGIT.search(text))),
            float(bool(_QUOTE.search(text))), math.log1p(len(text.split())),
            (row - int(lo)) / max(int(hi - lo), 1), float(row == lead))


def question_features(cands: SentenceCandidates, probs: np.ndarray, fused: list[float],
                      hit_passages: list[int], doc_of_passage: np.ndarray, query_terms: int,
                      support_depth: int = 2) -> np.ndarray:
    """The question's row: how well the best sentences of its first hits answer it.

    Args:
        cands: the sentence candidates.
        probs: the sentence model's probability for each candidate row.
        fused: the ranking scores of the question's first passages, best first.
        hit_passages: indexes (into ``cands.passages``) of the hits shown, in order.
        doc_of_passage: the document row of each passage in ``cands.passages``.
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
    docs = {int(d) for d in doc_of_passage[hit_passages[:5]]} if hit_passages else set()
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


def article_features(cands: SentenceCandidates, probs: np.ndarray,
                     doc_of_passage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per article among the candidates: its best sentence (by the sentence
    model) and how it compares with the best of all articles.

    Args:
        cands: sentence candidates over the articles' best passages (ranks from the deep
            ranking).
        probs: the sentence model's probability for each candidate row.
        doc_of_passage: the document row of each passage in ``cands.passages``.

    Returns:
        (document rows, features [n_docs, len(ARTICLE_FEATURES)]).
    """
    f = cands.features
    name = SENTENCE_FEATURES.index
    docs = np.unique(doc_of_passage[cands.passage_of]) if len(cands.passage_of) else np.zeros(0, np.int64)
    top_p = float(probs.max()) if len(probs) else 0.0
    top_s = float(cands.s_cos.max()) if len(probs) else 0.0
    rows = []
    for d in docs:
        members = np.flatnonzero(doc_of_passage[cands.passage_of] == d)
        j = members[np.argmax(probs[members])]
        rows.append([
            probs[j], probs[j] - top_p, cands.s_cos[j], cands.s_cos[j] - top_s, float(cands.typed[j]),
            f[j, name("term_cov")], f[j, name("idf_cov")], f[j, name("p_cos")],
            math.log1p(float(cands.ranks[cands.passage_of[j]])), cands.stats.absent_share,
            f[j, name("name_cov")], f[j, name("p_name_cov")], cands.stats.names_absent,
            *_one_hot(cands.kind),
        ])
    return docs.astype(np.int64), np.array(rows, dtype=np.float32).reshape(-1, len(ARTICLE_FEATURES))


def best_by_passage(cands: SentenceCandidates, probs: np.ndarray) -> dict[int, tuple[int, float]]:
    """For each candidate passage row, its sentence row with the highest probability (and
    that probability)."""
    out: dict[int, tuple[int, float]] = {}
    for i, row in enumerate(cands.passages):
        members = np.flatnonzero(cands.passage_of == i)
        if len(members):
            j = members[int(np.argmax(probs[members]))]
            out[int(row)] = (int(cands.sentences[j]), float(probs[j]))
    return out
