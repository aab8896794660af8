"""Query time: load an index once, answer questions with cited passages.

Ranking (the shipped ``HYBRID`` mode), measured with ``python -m bench.eval``:

1. Candidates: the top ``candidates`` passages by dense similarity (FAISS) and by BM25.
2. Three features for every candidate: the passage's cosine similarity to the question,
   the best cosine similarity of any of its sentences, and its BM25 score.
3. Each feature is standardised over the candidates (z-score) and the three are summed.
4. Inside each passage the answer sentence is chosen by :func:`retrieval.answer.best_sentence`.

Abstention: whether a hit answers, and so whether the question is answered, is decided
by the one rule of :mod:`retrieval.verdict` (:meth:`Searcher.judge`). Headings (titles,
subheadings: ``IndexData.sentence_kinds``) are searched but never chosen as the answer.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np

from indexer.embedding import Embedder, load_embedder
from indexer.errors import IndexMismatchError, QuestionError
from indexer.lexical import analyze
from indexer.settings import Settings
from indexer.store import IndexData, build_command, load_index
from retrieval.aliases import load_gazetteer
from indexer.chunking import BODY
from retrieval.answer import best_sentence, states
from retrieval.citation import cite
from retrieval.fusion import rrf_fuse
from retrieval.query import Query, prepare
from retrieval.types import AnswerSpan, Hit, Result
from retrieval.features import best_by_passage, question_features, sentence_candidates
from retrieval.learned import VerdictModels, shipped_models
from retrieval.verdict import Support, answered, decide, judge

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


def _rebuild_command(index: IndexData, settings: Settings) -> str:
    """The command that rebuilds ``index`` from its own articles."""
    return build_command(settings.index_dir, [d.source for d in index.documents])


def _standardise(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-9 else np.zeros_like(values)


class Searcher:
    """A loaded index plus the model that built it. Load once, then call :meth:`ask`.

    >>> searcher = Searcher.load(Settings.from_env())          # doctest: +SKIP
    >>> searcher.ask("When did Turkey join NATO?").hits[0].title  # doctest: +SKIP
    """

    def __init__(self, index: IndexData, embedder: Embedder, settings: Settings,
                 models: VerdictModels | None = None) -> None:
        model = index.manifest.model
        if embedder.name != model.name or embedder.dimension != model.dimension:
            raise IndexMismatchError(
                f"The index at {settings.index_dir} was built with the model {model.name!r} "
                f"({model.dimension} dimensions), but the configured model is "
                f"{embedder.name!r} ({embedder.dimension}). Rebuild the index with: "
                f"{_rebuild_command(index, settings)}"
            )
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._rows = {d.doc_id: i for i, d in enumerate(index.documents)}
        # What each sentence is, whatever the question (retrieval.features), once computed.
        self.sentence_facts: dict[int, tuple[str, float, float, float, float, float, float]] = {}
        self.gazetteer = load_gazetteer() if settings.place_aliases else None
        # The learned decisions (retrieval/learned.py), unless the hand rule is asked for
        # or no usable model file is there; ``models`` overrides the shipped ones (tests,
        # cross-validation).
        self.models = None if settings.verdict == "rule" else (models or shipped_models())

    @classmethod
    def load(cls, settings: Settings, embedder: Embedder | None = None) -> "Searcher":
        """Load the index at ``settings.index_dir`` and the model (unless one is given).

        Raises:
            IndexNotFoundError, IndexMismatchError, ModelNotFoundError: each says what to run.
        """
        index = load_index(settings.index_dir)
        if embedder is None:
            wanted = index.manifest.model.name
            if wanted != settings.model_name:
                raise IndexMismatchError(
                    f"The index at {settings.index_dir} was built with the model {wanted!r}, "
                    f"but the configured model is {settings.model_name!r}. Rebuild the index "
                    f"with: {_rebuild_command(index, settings)}"
                )
            embedder = load_embedder(settings.model_path, settings.model_name, settings.backend)
        return cls(index, embedder, settings)

    @property
    def path(self) -> Path:
        return self.index.path

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
        ranked, bm25 = self.rank_scored(query, qvec, max(self.settings.candidates, top_k))
        sentence_bm25 = self.sentence_bm25(query)
        if self.models is None:
            hits, _ = self.distinct_hits(query, qvec, ranked, top_k, sentence_bm25)
            supports = tuple(self.judge(h) for h in hits)
            return Result(question, hits, answerable=answered(supports), supports=supports)
        depth = min(len(ranked), max(LEARNED_DEPTH, 3 * top_k))
        cands = sentence_candidates(self, query, qvec, [(r, n) for n, (r, _) in enumerate(ranked[:depth], 1)],
                                    sentence_bm25, bm25)
        probs = self.models.sentence.probability(cands.features)
        choice = best_by_passage(cands, probs)
        hits, rows = self.distinct_hits(query, qvec, ranked, top_k, sentence_bm25, choice)
        where = {int(r): i for i, r in enumerate(cands.passages)}
        doc_of = np.asarray(self.index.chunks)[cands.passages, 0] if len(cands.passages) else np.zeros(0, np.int64)
        features = question_features(cands, probs, [score for _, score in ranked[:depth]],
                                     [where[r] for r in rows if r in where], doc_of, len(set(query.terms)))
        confidence = float(self.models.answered.probability(features)[0])
        answerable, supports = decide(hits, [choice.get(r, (0, None))[1] for r in rows], confidence,
                                      self.models.answered_cut)
        return Result(question, hits, answerable=answerable, supports=supports, confidence=confidence)

    def distinct_hits(self, query: Query, qvec: np.ndarray, ranked: list[tuple[int, float]], top_k: int,
                      sentence_bm25: np.ndarray | None = None,
                      choice: dict[int, tuple[int, float]] | None = None) -> tuple[tuple[Hit, ...], list[int]]:
        """The first ``top_k`` hits whose answer sentences differ (overlapping passages
        that would highlight the same sentence again are skipped), and their passage rows.
        ``choice`` maps a passage row to the sentence row (and its probability) the
        sentence model chose; other passages get the hand rule's choice."""
        if sentence_bm25 is None:
            sentence_bm25 = self.sentence_bm25(query)
        hits: list[Hit] = []
        rows: list[int] = []
        seen: set[tuple[str, int]] = set()
        for row, score in ranked:
            hit = self.make_hit(len(hits) + 1, score, row, query, qvec, sentence_bm25, choice)
            if (hit.doc_id, hit.answer.start) in seen:
                continue
            seen.add((hit.doc_id, hit.answer.start))
            hits.append(hit)
            rows.append(int(row))
            if len(hits) == top_k:
                break
        return tuple(hits), rows

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
        """The verdict on ``hit``: whether it answers its question, and why
        (:func:`retrieval.verdict.judge`, the one rule the CLI, the app and compare use)."""
        return judge(hit, self.settings, threshold)

    def supports(self, hit: Hit, threshold: float | None = None) -> bool:
        """Whether ``hit`` answers its question (:meth:`judge`)."""
        return self.judge(hit, threshold).supported

    def rank(self, query: Query | str, qvec: np.ndarray, depth: int,
             mode: RankMode = RankMode.HYBRID) -> list[tuple[int, float]]:
        """Passage rows and scores, best first.

        Args:
            query: the prepared question (or its text).
            qvec: the embedding of ``query.text``.
            depth: how many candidates each ranking contributes.
            mode: see :class:`RankMode`.
        """
        return self.rank_scored(query, qvec, depth, mode)[0]

    def rank_scored(self, query: Query | str, qvec: np.ndarray, depth: int,
                    mode: RankMode = RankMode.HYBRID) -> tuple[list[tuple[int, float]], np.ndarray]:
        """:meth:`rank`, and every passage's BM25 score (zeros in the dense mode)."""
        if isinstance(query, str):
            query = self.prepare(query)
        depth = min(len(self.index.chunks), max(depth, 1))
        scores, ids = self.index.chunk_index.search(qvec[None, :].astype(np.float32), depth)
        dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        if mode is RankMode.DENSE:
            return dense, np.zeros(len(self.index.chunks), dtype=np.float32)
        bm25 = self._bm25_scores(query)
        lexical = self._top(bm25, depth)
        if mode is RankMode.BM25:
            return lexical, bm25
        if mode is RankMode.RRF:
            return rrf_fuse([[i for i, _ in dense], [i for i, _ in lexical]], k=self.settings.rrf_k), bm25
        rows = np.array(sorted({i for i, _ in dense} | {i for i, _ in lexical}), dtype=np.int64)
        vectors = self.index.chunk_index.reconstruct_batch(rows) if len(rows) else np.zeros((0, len(qvec)))
        passage = vectors @ qvec
        sentence = self.sentence_similarity(rows, qvec)
        fused = _standardise(passage) + _standardise(sentence) + _standardise(bm25[rows])
        order = np.lexsort((rows, -fused))
        return [(int(rows[i]), float(fused[i])) for i in order], bm25

    def make_hit(self, rank: int, score: float, chunk_row: int, query: Query, qvec: np.ndarray,
                 sentence_bm25: np.ndarray | None = None,
                 choice: dict[int, tuple[int, float]] | None = None) -> Hit:
        """The cited passage at ``chunk_row`` with its best-answering sentence: the one
        ``choice`` names for this passage (the sentence model's), else the hand rule's
        (:func:`retrieval.answer.best_sentence`)."""
        doc_row, start, end, lo, hi = (int(x) for x in self.index.chunks[chunk_row])
        doc = self.index.documents[doc_row]
        spans = np.asarray(self.index.sentences[lo:hi])
        texts = [doc.text[s:e] for _, s, e in spans]
        body = np.asarray(self.index.sentence_kinds[lo:hi]) == BODY
        if choice is not None and chunk_row in choice:
            best = choice[chunk_row][0] - lo
            similarity = float(np.asarray(self.index.sentence_vectors[lo + best]) @ qvec)
            typed = states(query.kind, texts[best], query.question)
        else:
            lexical = sentence_bm25[lo:hi] if sentence_bm25 is not None else np.zeros(hi - lo)
            best, similarity, typed = best_sentence(query.question, qvec, texts, self.index.sentence_vectors[lo:hi],
                                                    lexical, query.kind, eligible=body)
        _, s_start, s_end = (int(x) for x in spans[best])
        dense = float(self.index.chunk_index.reconstruct(chunk_row) @ qvec)
        coverage = 0.0
        if query.terms:
            present = set(analyze([texts[best]])[0])
            coverage = sum(t in present for t in set(query.terms)) / len(set(query.terms))
        return Hit(
            rank=rank, score=score, doc_id=doc.doc_id, title=doc.title, source=doc.source,
            start=start, end=end, text=doc.text[start:end],
            answer=AnswerSpan(s_start, s_end, doc.text[s_start:s_end]),
            dense=dense, answer_similarity=similarity, answer_typed=typed, answer_coverage=coverage,
            answer_kind=query.kind.value, offsets_in=doc.offsets_in, answer_heading=not body[best],
            headings=tuple((int(a), int(b)) for (_, a, b), k in zip(spans, body) if not k),
            citation=cite(doc, s_start, self.article_headings(doc.doc_id)),
        )

    def article_headings(self, doc_id: str) -> tuple[tuple[int, int], ...]:
        """Spans of an article's title and headings (to show them as headings)."""
        row = self._rows.get(doc_id)
        if row is None:
            return ()
        sentences = np.asarray(self.index.sentences)
        lo, hi = np.searchsorted(sentences[:, 0], [row, row + 1])
        kinds = np.asarray(self.index.sentence_kinds[lo:hi])
        return tuple((int(a), int(b)) for (_, a, b), k in zip(sentences[lo:hi], kinds) if k != BODY)

    # ------------------------------------------------------------------ internals
    def _bm25_scores(self, query: Query) -> np.ndarray:
        if not query.terms:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.asarray(self.index.bm25.get_scores(list(query.terms)), dtype=np.float32)

    def sentence_bm25(self, query: Query) -> np.ndarray:
        """BM25 score of every sentence in the index for the query's terms."""
        if not query.terms:
            return np.zeros(len(self.index.sentences), dtype=np.float32)
        return np.asarray(self.index.sentence_bm25.get_scores(list(query.terms)), dtype=np.float32)

    @staticmethod
    def _top(scores: np.ndarray, depth: int) -> list[tuple[int, float]]:
        positive = np.flatnonzero(scores > 0)
        if len(positive) > depth:
            positive = positive[np.argpartition(-scores[positive], depth - 1)[:depth]]
        order = positive[np.lexsort((positive, -scores[positive]))]
        return [(int(i), float(scores[i])) for i in order]

    def sentence_similarity(self, rows: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """For each passage row, the best cosine similarity of one of its sentences."""
        chunks = np.asarray(self.index.chunks)[rows]
        out = np.empty(len(rows), dtype=np.float32)
        for i, (lo, hi) in enumerate(chunks[:, 3:5]):
            sims = np.asarray(self.index.sentence_vectors[lo:hi]) @ qvec
            body = np.asarray(self.index.sentence_kinds[lo:hi]) == BODY
            out[i] = float(sims[body].max() if body.any() else sims.max())
        return out
