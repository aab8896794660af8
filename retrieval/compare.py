"""Compare what each article says about one question.

For every article in the index: its best passage for the question (from a deep hybrid
ranking), whether it addresses the question at all (the same calibrated rule as
abstention), where its relevant passages lie, and which articles say nearly the same
thing (grouped by the similarity of their answering sentences).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from retrieval.answer import AnswerType
from retrieval.features import article_features, best_by_passage, sentence_candidates
from indexer.stores.base import Passage
from retrieval.searcher import Searcher, best_body_similarity, check_question
from retrieval.types import Hit, Result
from retrieval.verdict import CUT, Support, mention_support

# Two answering sentences at least this similar (cosine) say "nearly the same thing".
SAME_POINT = 0.75
# A number standing alone: not part of a name like "S-400" or "TB2", not a decimal tail.
_NUMBER = re.compile(r"(?<![\w.\-])\d[\d,]*(?:\.\d+)?(?![\w\-])")
_YEAR = re.compile(r"^(1[89]|20)\d\d$")


@dataclass(frozen=True)
class Position:
    """A relevant passage's place in its article: offsets and relative position (0..1)."""

    start: int
    end: int
    relative: float
    relevance: float


@dataclass(frozen=True)
class ArticleView:
    """One article's answer to the question (``hit`` is None when nothing in it is close)."""

    doc_id: str
    title: str
    source: str
    date: str | None
    mentioned: bool
    score: float
    hit: Hit | None
    group: int | None = None
    numbers: tuple[str, ...] = ()
    positions: tuple[Position, ...] = ()
    support: Support | None = None  # the verdict (retrieval.verdict), with its reason in words
    same_as: tuple[str, ...] = ()  # doc_ids of the other articles of its group (same point)

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id, "title": self.title, "source": self.source, "date": self.date,
            "mentioned": self.mentioned, "score": round(self.score, 6),
            "hit": self.hit.to_json() if self.hit else None,
            "group": self.group, "numbers": list(self.numbers),
            "positions": [{"start": p.start, "end": p.end, "relative": round(p.relative, 4),
                           "relevance": round(p.relevance, 4)} for p in self.positions],
            "reason": self.support.reason if self.support else "no passage of it comes close to the question",
            "same_as": list(self.same_as),
            **({"probability": round(self.support.probability, 4)}
               if self.support is not None and self.support.probability is not None else {}),
        }


@dataclass(frozen=True)
class Comparison:
    """Every article in the index, mentioned ones first (by score), each listed once."""

    question: str
    articles: tuple[ArticleView, ...]
    conflicts: tuple[str, ...] = ()  # human-readable notes on numbers that differ within a group
    threshold: float = 0.0  # what an article's verdict needs: a similarity (rule) or probability (learned)
    learned: bool = False  # decided by the learned models: each support carries a probability

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "articles": [a.to_json() for a in self.articles],
                "conflicts": list(self.conflicts), "threshold": round(self.threshold, 4)}


def numbers_in(text: str) -> tuple[str, ...]:
    """Numbers stated in ``text`` (years included), normalised ("1,000" -> "1000")."""
    return tuple(dict.fromkeys(m.group(0).replace(",", "") for m in _NUMBER.finditer(text)))


def _group(views: list[ArticleView], vectors: dict[str, np.ndarray]) -> list[int | None]:
    """Single-link groups of mentioned articles whose answer sentences are near-identical."""
    ids = [v.doc_id for v in views if v.mentioned and v.doc_id in vectors]
    parent = {i: i for i in ids}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            if float(vectors[ids[a]] @ vectors[ids[b]]) >= SAME_POINT:
                parent[find(ids[b])] = find(ids[a])
    roots: dict[str, int] = {}
    groups: list[int | None] = []
    for v in views:
        if v.doc_id in parent:
            groups.append(roots.setdefault(find(v.doc_id), len(roots) + 1))
        else:
            groups.append(None)
    return groups


def _conflicts(views: list[ArticleView]) -> list[str]:
    """Within a group of articles making the same point, flag numbers that differ.

    Only non-year numbers are compared, and only when every article in the group states
    at least one: a number that one article gives and another omits is not a conflict.
    """
    notes = []
    by_group: dict[int, list[ArticleView]] = {}
    for v in views:
        if v.group is not None:
            by_group.setdefault(v.group, []).append(v)
    for group, members in sorted(by_group.items()):
        if len(members) < 2:
            continue
        stated = {m.doc_id: {n for n in m.numbers if not _YEAR.match(n)} for m in members}
        if all(stated.values()) and len({frozenset(s) for s in stated.values()}) > 1:
            detail = "; ".join(f"{m.title[:60]}: {', '.join(sorted(stated[m.doc_id]))}" for m in members)
            notes.append(f"Group {group}: the articles give different numbers ({detail}).")
    return notes


def compare(searcher: Searcher, question: str, depth: int = 400, per_article: int = 3) -> Comparison:
    """What each article in the index says about ``question``.

    Args:
        searcher: a loaded searcher.
        question: checked like :meth:`Searcher.ask` (empty or too long -> QuestionError).
        depth: candidates each ranking contributes; articles with no passage among them
            are "not mentioned".
        per_article: of each article's best-ranked passages, how many compete for its
            quote (the one whose answer sentence is closest to the question wins).

    An article is "mentioned" when its quote passes the abstention rule
    (:meth:`Searcher.supports`) at the per-article threshold ``settings.mention_relevance``.
    """
    question = check_question(question, searcher.settings.max_question_chars)
    query = searcher.prepare(question)
    qvec = searcher.encode_question(query.text)
    ranked, passages, bm25 = searcher.rank_scored(query, qvec, max(depth, searcher.settings.candidates))
    by_doc: dict[str, list[tuple[int, Passage, float]]] = {}
    for rank, (pid, score) in enumerate(ranked, 1):
        by_doc.setdefault(passages[pid].doc_id, []).append((rank, passages[pid], score))
    closeness = {pid: best_body_similarity(passages[pid], qvec) for pid, _ in ranked}
    chosen = [c for candidates in by_doc.values() for c in candidates[:per_article]]
    sentence_bm25 = searcher.sentence_bm25(query, [p for _, p, _ in chosen])
    threshold = searcher.settings.mention_relevance
    learned = _learned_mentions(searcher, query, qvec, chosen, sentence_bm25, bm25)
    views: list[ArticleView] = []
    answer_vectors: dict[str, np.ndarray] = {}
    for info in searcher.store.document_infos():
        candidates = by_doc.get(info.doc_id, [])
        if not candidates:
            views.append(ArticleView(info.doc_id, info.title, info.source, info.date, False, 0.0, None))
            continue
        if learned is not None:
            choice, probability, answered = learned
            rank, passage, score = max(candidates[:per_article],
                                       key=lambda c: choice.get(c[1].passage_id, ("", -1.0))[1])
            hit = searcher.make_hit(rank, score, passage, query, qvec, sentence_bm25, choice)
            support = mention_support(probability.get(info.doc_id, 0.0), hit.answer_similarity, answered)
        else:
            hits = [searcher.make_hit(rank, score, passage, query, qvec, sentence_bm25)
                    for rank, passage, score in candidates[:per_article]]
            judged = [(searcher.judge(h, threshold), h) for h in hits]
            support, hit = max(judged, key=lambda j: (j[0].supported, searcher.relevance(j[1]), -j[1].rank))
        mentioned = support.supported
        if mentioned:
            answer_vectors[info.doc_id] = _sentence_vector(passages, hit)
        doc_len = max(info.chars, 1)
        # Where the article's passages that come close to the question lie (for the chart).
        positions = tuple(sorted(
            (Position(p.start, p.end, p.start / doc_len, closeness[p.passage_id])
             for _, p, _ in candidates if closeness[p.passage_id] >= searcher.settings.min_relevance),
            key=lambda p: p.start))
        views.append(ArticleView(info.doc_id, info.title, info.source, info.date, mentioned,
                                 searcher.relevance(hit), hit, numbers=numbers_in(hit.answer.text),
                                 positions=positions, support=support))
    views.sort(key=lambda v: (not v.mentioned, -v.score, v.doc_id))
    groups = _group(views, answer_vectors)
    members: dict[int, list[str]] = {}
    for v, g in zip(views, groups):
        if g is not None:
            members.setdefault(g, []).append(v.doc_id)
    views = [replace(v, group=g, same_as=tuple(d for d in members.get(g, []) if d != v.doc_id) if g else ())
             for v, g in zip(views, groups)]
    if learned is not None:
        return Comparison(question, tuple(views), tuple(_conflicts(views)), threshold=CUT, learned=True)
    low = (searcher.settings.min_relevance_number if query.kind is AnswerType.NUMBER
           else searcher.settings.min_relevance)
    return Comparison(question, tuple(views), tuple(_conflicts(views)),
                      threshold=max(threshold, searcher.settings.min_relevance, low))


def _sentence_vector(passages: dict[str, Passage], hit: Hit) -> np.ndarray:
    """The stored vector of a hit's answer sentence."""
    passage = passages[hit.passage_id]
    n = next(i for i, s in enumerate(passage.sentences) if s.start == hit.answer.start)
    return np.asarray(passage.sentence_vectors[n])


def _learned_mentions(searcher: Searcher, query: Any, qvec: np.ndarray,
                      chosen: list[tuple[int, Passage, float]], sentence_bm25: dict[str, float],
                      bm25: dict[str, float]) -> tuple[dict[str, tuple[str, float]], dict[str, float], Result] | None:
    """Under the learned verdict: each candidate passage's best sentence (by the sentence
    model), each article's probability of mentioning the answer, and the question's own
    verdict (the Answers view's: when the articles do not answer it, none mentions it);
    None under the rule."""
    if searcher.models is None:
        return None
    selected = sorted(((p, rank) for rank, p, _ in chosen), key=lambda s: s[1])
    cands = sentence_candidates(searcher, query, qvec, selected, sentence_bm25, bm25)
    probs = searcher.models.sentence.probability(cands.features)
    docs, rows = article_features(cands, probs)
    mention = searcher.models.mentioned.probability(rows) if len(rows) else np.zeros(0)
    return (best_by_passage(cands, probs), {d: float(p) for d, p in zip(docs, mention)},
            searcher.ask(query.question))
