"""Query time: open a store once, answer questions with cited passages.

Everything stored is reached through a :class:`indexer.stores.base.Store` (the local folder
or Milvus): the same ranking, answer sentences, verdicts and compare on either.

Ranking (the shipped ``HYBRID`` mode), measured with ``python -m bench.eval``:

1. Candidates: the top ``candidates`` passages by dense similarity and by BM25.
2. Three features for every candidate: the passage's cosine similarity to the question,
   the best cosine similarity of any of its body sentences, and its BM25 score.
3. Each feature is standardised over the candidates (z-score) and the three are summed.
4. Inside each passage the answer sentence is chosen by the sentence model
   (:mod:`retrieval.learned`), or under the hand rule by :func:`retrieval.answer.best_sentence`.

Whether a hit answers, and so whether the question is answered, is decided in
:mod:`retrieval.verdict`. Headings (titles, subheadings) are searched but never chosen as
the answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from enum import Enum

import numpy as np

from indexer.embedding import Embedder, load_embedder
from indexer.errors import IndexMismatchError, QuestionError
from indexer.lexical import analyze
from indexer.settings import Settings
from indexer.stores import open_store, store_option
from indexer.stores.base import Passage, Store
from indexer.stores.folder import build_command
from indexer.types import Document
from retrieval.aliases import load_gazetteer
from retrieval.answer import best_sentence, states
from retrieval.citation import cite
from retrieval.features import best_by_passage, question_features, sentence_candidates
from retrieval.fusion import rrf_fuse
from retrieval.learned import VerdictModels, shipped_models
from retrieval.query import Query, prepare
from retrieval.types import AnswerSpan, Hit, Result
from retrieval.verdict import Support, answered, decide, judge

BODY = 0  # indexer.chunking.BODY (the chunker is build time)
# Passages whose sentences the learned models score (at least; 3 x top_k when more).
LEARNED_DEPTH = 15


class RankMode(str, Enum):
    """Which ranking to use: dense only, BM25 only, plain reciprocal-rank fusion of the
    two, or the shipped hybrid (standardised dense, sentence and BM25 scores)."""

    DENSE = "dense"
    BM25 = "bm25"
    RRF = "rrf"
    HYBRID = "hybrid"

    @classmethod
    def from_str(cls, value: str) -> "RankMode":
        try:
            return cls(value.lower())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ValueError(f"Unknown ranking mode {value!r}; valid modes: {valid}") from None


def check_question(question: str, max_chars: int) -> str:
    """The question without surrounding whitespace.

    Raises:
        QuestionError: empty, longer than ``max_chars``, or holding bytes that are not
            text (undecodable command-line bytes).
    """
    question = question.strip()
    if not question:
        raise QuestionError("The question is empty. Type a question about the articles, "
                            "for example: When did Turkey join NATO?")
    broken = next((i for i, ch in enumerate(question) if "\ud800" <= ch <= "\udfff"), None)
    if broken is not None:
        # Python turns bytes that are not UTF-8 in a command line into lone surrogates.
        raise QuestionError(f"The question holds bytes that are not UTF-8 text (at character "
                            f"{broken + 1}). Type it again, in a terminal set to UTF-8.")
    if len(question) > max_chars:
        raise QuestionError(
            f"The question is {len(question):,} characters long; the limit is {max_chars:,} "
            "(setting VERBATIM_MAX_QUESTION_CHARS). Ask it in fewer words."
        )
    return question


def _standardise(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-9 else np.zeros_like(values)


def best_body_similarity(passage: Passage, qvec: np.ndarray) -> float:
    """The best cosine similarity of one of the passage's body sentences (of any, when it
    has only headings)."""
    sims = np.asarray(passage.sentence_vectors) @ qvec
    body = np.array([s.kind == BODY for s in passage.sentences], dtype=bool)
    return float(sims[body].max() if body.any() else sims.max())


class Searcher:
    """A store plus the model that built it. Open once, then call :meth:`ask`.

    >>> searcher = Searcher.load(Settings.from_env())          # doctest: +SKIP
    >>> searcher.ask("When did Turkey join NATO?").hits[0].title  # doctest: +SKIP
    """

    def __init__(self, store: Store, embedder: Embedder, settings: Settings,
                 models: VerdictModels | None = None) -> None:
        info = store.info  # opens (and checks) the store
        problem = info.mismatch(embedder.name, embedder.dimension)
        if problem:
            raise IndexMismatchError(f"The index at {info.location} {problem}. Rebuild it with: "
                                     f"{self.rebuild_command(store, settings)}")
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.gazetteer = load_gazetteer() if settings.place_aliases else None
        # The learned decisions (retrieval/learned.py), unless the hand rule is asked for
        # or no usable model file is there; ``models`` overrides the shipped ones (tests,
        # cross-validation).
        self.models = None if settings.verdict == "rule" else (models or shipped_models())
        self._documents: OrderedDict[str, Document | None] = OrderedDict()
        # What each sentence is, whatever the question (retrieval.features), once computed.
        self.sentence_facts: dict[str, tuple[float, float, float, float, float, float]] = {}
        self._headings: dict[str, tuple[tuple[int, int], ...]] = {}

    @staticmethod
    def rebuild_command(store: Store, settings: Settings) -> str:
        sources = [d.source for d in store.document_infos()]
        if not settings.store:
            return build_command(settings.index_dir, sources)
        return f"{build_command('index', sources)} {store_option(settings)}"

    @classmethod
    def load(cls, settings: Settings, embedder: Embedder | None = None) -> "Searcher":
        """Open the store ``settings`` name and the model (unless one is given).

        Raises:
            IndexNotFoundError, IndexMismatchError, ModelNotFoundError: each says what to run.
        """
        store = open_store(settings)
        if embedder is None:
            problem = store.info.mismatch(settings.model_name)
            if problem:
                raise IndexMismatchError(f"The index at {store.info.location} {problem}. Rebuild it with: "
                                         f"{cls.rebuild_command(store, settings)}")
            embedder = load_embedder(settings.model_path, settings.model_name, settings.backend)
        return cls(store, embedder, settings)

    # ------------------------------------------------------------------ public API
    def ask(self, question: str, top_k: int | None = None) -> Result:
        """The ``top_k`` passages that best answer ``question``, best first.

        Raises:
            QuestionError: empty or too long question, or top_k < 1.
        """
        question = check_question(question, self.settings.max_question_chars)
        top_k = self.settings.top_k if top_k is None else top_k
        if top_k < 1:
            raise QuestionError(f"top_k must be at least 1; got {top_k}.")
        query = self.prepare(question)
        qvec = self.encode_question(query.text)
        ranked, passages, bm25 = self.rank_scored(query, qvec, max(self.settings.candidates, top_k))
        if self.models is None:
            sentence_bm25 = self.sentence_bm25(query, [passages[p] for p, _ in ranked])
            hits, _ = self.distinct_hits(query, qvec, ranked, passages, top_k, sentence_bm25)
            supports = tuple(self.judge(h) for h in hits)
            return Result(question, hits, answerable=answered(supports), supports=supports)
        depth = min(len(ranked), max(LEARNED_DEPTH, 3 * top_k))
        first = [(passages[p], n) for n, (p, _) in enumerate(ranked[:depth], 1)]
        sentence_bm25 = self.sentence_bm25(query, [p for p, _ in first])
        cands = sentence_candidates(self, query, qvec, first, sentence_bm25, bm25)
        probs = self.models.sentence.probability(cands.features)
        choice = best_by_passage(cands, probs)
        hits, shown = self.distinct_hits(query, qvec, ranked, passages, top_k, sentence_bm25, choice)
        where = {p: i for i, p in enumerate(cands.passage_ids)}
        features = question_features(cands, probs, [score for _, score in ranked[:depth]],
                                     [where[p] for p in shown if p in where], len(set(query.terms)))
        confidence = float(self.models.answered.probability(features)[0])
        answerable, supports = decide(hits, [choice.get(p, ("", None))[1] for p in shown], confidence,
                                      self.models.answered_cut)
        return Result(question, hits, answerable=answerable, supports=supports, confidence=confidence)

    def distinct_hits(self, query: Query, qvec: np.ndarray, ranked: list[tuple[str, float]],
                      passages: dict[str, Passage], top_k: int, sentence_bm25: dict[str, float],
                      choice: dict[str, tuple[str, float]] | None = None) -> tuple[tuple[Hit, ...], list[str]]:
        """The first ``top_k`` hits whose answer sentences differ (overlapping passages
        that would highlight the same sentence again are skipped), and their passage ids.
        ``choice`` maps a passage id to the sentence id (and its probability) the sentence
        model chose; other passages get the hand rule's choice."""
        hits: list[Hit] = []
        shown: list[str] = []
        seen: set[tuple[str, int]] = set()
        for pid, score in ranked:
            hit = self.make_hit(len(hits) + 1, score, passages[pid], query, qvec, sentence_bm25, choice)
            if (hit.doc_id, hit.answer.start) in seen:
                continue
            seen.add((hit.doc_id, hit.answer.start))
            hits.append(hit)
            shown.append(pid)
            if len(hits) == top_k:
                break
        return tuple(hits), shown

    def prepare(self, question: str) -> Query:
        """The question's search text and BM25 terms (:func:`retrieval.query.prepare`),
        with place aliases unless ``settings.place_aliases`` is off."""
        return prepare(question, self.gazetteer)

    def encode_question(self, text: str) -> np.ndarray:
        """The unit vector of a question's search text."""
        return self.embedder.encode([text])[0]

    def relevance(self, hit: Hit) -> float:
        """How close the hit's answer sentence is to the question (cosine similarity)."""
        return hit.answer_similarity

    def judge(self, hit: Hit, threshold: float | None = None) -> Support:
        """The hand rule's verdict on ``hit`` (:func:`retrieval.verdict.judge`)."""
        return judge(hit, self.settings, threshold)

    def supports(self, hit: Hit, threshold: float | None = None) -> bool:
        """Whether ``hit`` answers its question under the hand rule (:meth:`judge`)."""
        return self.judge(hit, threshold).supported

    def rank(self, query: Query | str, qvec: np.ndarray, depth: int,
             mode: RankMode = RankMode.HYBRID) -> list[tuple[str, float]]:
        """Passage ids and scores, best first.

        Args:
            query: the prepared question (or its text).
            qvec: the embedding of ``query.text``.
            depth: how many candidates each ranking contributes.
            mode: see :class:`RankMode`.
        """
        return self.rank_scored(query, qvec, depth, mode)[0]

    def rank_scored(self, query: Query | str, qvec: np.ndarray, depth: int, mode: RankMode = RankMode.HYBRID
                    ) -> tuple[list[tuple[str, float]], dict[str, Passage], dict[str, float]]:
        """:meth:`rank`, with the candidate passages and their BM25 scores (hybrid; the
        other modes return the store's ranking alone)."""
        if isinstance(query, str):
            query = self.prepare(query)
        depth = max(depth, 1)
        dense = self.store.dense_search(np.asarray(qvec, dtype=np.float32), depth)
        lexical = [] if mode is RankMode.DENSE else self.store.lexical_search(query.lexical, depth)
        if mode is RankMode.DENSE:
            ranked = dense
        elif mode is RankMode.BM25:
            ranked = lexical
        elif mode is RankMode.RRF:
            ranked = rrf_fuse([[i for i, _ in dense], [i for i, _ in lexical]], k=self.settings.rrf_k)
        else:
            ranked = []
        if mode is not RankMode.HYBRID:  # the store's own rankings: nothing to re-score
            return ranked, {}, dict(lexical)
        ids = list(dict.fromkeys([*(i for i, _ in dense), *(i for i, _ in lexical)]))
        passages = {p.passage_id: p for p in self.store.passages(ids)}
        ids = [i for i in ids if i in passages]
        bm25 = dict(lexical)
        missing = [i for i in ids if i not in bm25]
        if missing and query.terms:
            bm25.update(zip(missing, (float(x) for x in self.store.passage_bm25(query.lexical, missing))))
        if not ids:
            return [], passages, bm25
        passage = np.array([float(passages[i].vector @ qvec) for i in ids])
        sentence = np.array([best_body_similarity(passages[i], qvec) for i in ids])
        lexical_scores = np.array([bm25.get(i, 0.0) for i in ids])
        fused = _standardise(passage) + _standardise(sentence) + _standardise(lexical_scores)
        order = sorted(range(len(ids)), key=lambda n: (-fused[n], ids[n]))
        return [(ids[n], float(fused[n])) for n in order], passages, bm25

    def sentence_bm25(self, query: Query, passages: Sequence[Passage]) -> dict[str, float]:
        """BM25 of every sentence of ``passages`` for the question's terms, by sentence id."""
        ids = list(dict.fromkeys(s.sentence_id for p in passages for s in p.sentences))
        if not ids or not query.terms:
            return {}
        return dict(zip(ids, (float(x) for x in self.store.sentence_bm25(query.lexical, ids))))

    def document(self, doc_id: str) -> Document | None:
        """A stored document with its text (the last few are kept)."""
        if doc_id not in self._documents:
            self._documents[doc_id] = self.store.document(doc_id)
            if len(self._documents) > 64:
                self._documents.popitem(last=False)
        return self._documents[doc_id]

    def article_headings(self, doc_id: str) -> tuple[tuple[int, int], ...]:
        """Spans of an article's title and headings (to show them as headings)."""
        if doc_id not in self._headings:
            self._headings[doc_id] = self.store.headings(doc_id)
        return self._headings[doc_id]

    def make_hit(self, rank: int, score: float, passage: Passage, query: Query, qvec: np.ndarray,
                 sentence_bm25: dict[str, float] | None = None,
                 choice: dict[str, tuple[str, float]] | None = None) -> Hit:
        """The cited passage with its best-answering sentence: the one ``choice`` names for
        it (the sentence model's), else the hand rule's (:func:`retrieval.answer.best_sentence`)."""
        texts = list(passage.sentence_texts)
        body = np.array([s.kind == BODY for s in passage.sentences], dtype=bool)
        ids = [s.sentence_id for s in passage.sentences]
        if choice is not None and passage.passage_id in choice and choice[passage.passage_id][0] in ids:
            best = ids.index(choice[passage.passage_id][0])
            similarity = float(np.asarray(passage.sentence_vectors[best]) @ qvec)
            typed = states(query.kind, texts[best], query.question)
        else:
            lexical = np.array([(sentence_bm25 or {}).get(i, 0.0) for i in ids], dtype=np.float32)
            best, similarity, typed = best_sentence(query.question, qvec, texts, passage.sentence_vectors,
                                                    lexical, query.kind, eligible=body)
        chosen = passage.sentences[best]
        coverage = 0.0
        if query.terms:
            present = set(analyze([texts[best]])[0])
            coverage = sum(t in present for t in set(query.terms)) / len(set(query.terms))
        doc = self.document(passage.doc_id)
        return Hit(
            rank=rank, score=score, doc_id=passage.doc_id, title=passage.title or (doc.title if doc else ""),
            source=doc.source if doc else "", start=passage.start, end=passage.end, text=passage.text,
            answer=AnswerSpan(chosen.start, chosen.end, texts[best]),
            dense=float(passage.vector @ qvec), answer_similarity=similarity, answer_typed=typed,
            answer_coverage=coverage, answer_kind=query.kind.value,
            offsets_in=doc.offsets_in if doc else "extracted", answer_heading=not body[best],
            headings=tuple((s.start, s.end) for s, k in zip(passage.sentences, body) if not k),
            citation=cite(doc, chosen.start, self.article_headings(passage.doc_id)) if doc else None,
            passage_id=passage.passage_id,
        )
