"""Query time: load an index once, answer questions with cited passages."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np

from indexer.embedding import Embedder, load_embedder
from indexer.errors import IndexMismatchError, QuestionError
from indexer.lexical import analyze
from indexer.settings import Settings
from indexer.store import IndexData, build_command, load_index
from retrieval.answer import best_sentence
from retrieval.fusion import rrf_fuse
from retrieval.types import AnswerSpan, Hit, Result


class RankMode(str, Enum):
    """Which ranking to use: dense vectors only, BM25 only, or both fused (the default)."""

    DENSE = "dense"
    BM25 = "bm25"
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
        QuestionError: empty, or longer than ``max_chars``.
    """
    question = question.strip()
    if not question:
        raise QuestionError("The question is empty. Type a question about the articles, "
                            "for example: When did Turkey join NATO?")
    if len(question) > max_chars:
        raise QuestionError(
            f"The question is {len(question):,} characters long; the limit is {max_chars:,} "
            "(setting VERBATIM_MAX_QUESTION_CHARS). Ask it in fewer words."
        )
    return question


class Searcher:
    """A loaded index plus the model that built it. Load once, then call :meth:`ask`.

    >>> searcher = Searcher.load(Settings.from_env())          # doctest: +SKIP
    >>> searcher.ask("When did Turkey join NATO?").hits[0].title  # doctest: +SKIP
    """

    def __init__(self, index: IndexData, embedder: Embedder, settings: Settings) -> None:
        model = index.manifest["model"]
        if embedder.name != model["name"] or embedder.dimension != model["dimension"]:
            raise IndexMismatchError(
                f"The index at {settings.index_dir} was built with the model {model['name']!r} "
                f"({model['dimension']} dimensions), but the configured model is "
                f"{embedder.name!r} ({embedder.dimension}). Rebuild the index with: "
                f"{build_command(settings.index_dir)}"
            )
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._doc_ids = [d.doc_id for d in index.documents]

    @classmethod
    def load(cls, settings: Settings, embedder: Embedder | None = None) -> "Searcher":
        """Load the index at ``settings.index_dir`` and the model (unless one is given).

        Raises:
            IndexNotFoundError, IndexMismatchError, ModelNotFoundError: each says what to run.
        """
        index = load_index(settings.index_dir)
        if embedder is None:
            wanted = index.manifest["model"]["name"]
            if wanted != settings.model_name:
                raise IndexMismatchError(
                    f"The index at {settings.index_dir} was built with the model {wanted!r}, "
                    f"but the configured model is {settings.model_name!r}. Rebuild the index "
                    f"with: {build_command(settings.index_dir)}"
                )
            embedder = load_embedder(settings.model_path, settings.model_name)
        return cls(index, embedder, settings)

    @property
    def path(self) -> Path:
        return self.index.path

    def ask(self, question: str, top_k: int | None = None) -> Result:
        """The ``top_k`` passages that best answer ``question``, best first.

        Raises:
            QuestionError: empty or too long question.
        """
        question = check_question(question, self.settings.max_question_chars)
        top_k = self.settings.top_k if top_k is None else top_k
        if top_k < 1:
            raise QuestionError(f"top_k must be at least 1; got {top_k}.")
        qvec = self.encode_question(question)
        ranked = self.rank(question, qvec, max(self.settings.candidates, top_k))[:top_k]
        hits = tuple(self.make_hit(rank, score, row, qvec) for rank, (row, score) in enumerate(ranked, 1))
        return Result(question, hits, answerable=any(self.supports(h) for h in hits))

    def encode_question(self, question: str) -> np.ndarray:
        """The question's unit vector (the question must already be checked)."""
        return self.embedder.encode([question])[0]

    def relevance(self, hit: Hit) -> float:
        """How strongly a hit seems to answer its question, on the scale of
        ``settings.min_relevance`` (the abstention threshold; see README, "Abstention")."""
        return max(hit.dense, hit.answer_similarity)

    def supports(self, hit: Hit) -> bool:
        """Whether a hit seems to answer its question (the calibrated abstention rule)."""
        return self.relevance(hit) >= self.settings.min_relevance

    def rank(
        self, question: str, qvec: np.ndarray, depth: int, mode: RankMode = RankMode.HYBRID
    ) -> list[tuple[int, float]]:
        """Chunk rows and scores, best first, at most ``depth`` of them.

        Args:
            question: the (checked) question, for BM25.
            qvec: its embedding, for dense search.
            depth: how many candidates each ranking contributes.
            mode: dense, BM25 or hybrid (RRF of the two).
        """
        depth = min(len(self.index.chunks), depth)
        dense: list[tuple[int, float]] = []
        if mode is not RankMode.BM25:
            scores, ids = self.index.chunk_index.search(qvec[None, :], depth)
            dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        if mode is RankMode.DENSE:
            return dense
        lexical = self._bm25_ranking(question, depth)
        if mode is RankMode.BM25:
            return lexical
        return rrf_fuse([[i for i, _ in dense], [i for i, _ in lexical]], k=self.settings.rrf_k)

    def _bm25_ranking(self, question: str, depth: int) -> list[tuple[int, float]]:
        tokens = analyze([question])[0]
        if not tokens:
            return []
        scores = self.index.bm25.get_scores(tokens)
        positive = np.flatnonzero(scores > 0)
        if len(positive) > depth:
            positive = positive[np.argpartition(-scores[positive], depth - 1)[:depth]]
        order = positive[np.lexsort((positive, -scores[positive]))]
        return [(int(i), float(scores[i])) for i in order]

    def make_hit(self, rank: int, score: float, chunk_row: int, qvec: np.ndarray) -> Hit:
        """The cited passage at ``chunk_row`` with its best-answering sentence."""
        doc_row, start, end, lo, hi = (int(x) for x in self.index.chunks[chunk_row])
        doc = self.index.documents[doc_row]
        dense = float(self.index.chunk_index.reconstruct(chunk_row) @ qvec)
        best, similarity = best_sentence(qvec, self.index.sentence_vectors[lo:hi])
        _, s_start, s_end = (int(x) for x in self.index.sentences[lo + best])
        return Hit(
            rank=rank, score=score, doc_id=doc.doc_id, title=doc.title, source=doc.source,
            start=start, end=end, text=doc.text[start:end],
            answer=AnswerSpan(s_start, s_end, doc.text[s_start:s_end]),
            dense=dense, answer_similarity=similarity,
        )
