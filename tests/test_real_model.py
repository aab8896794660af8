"""Questions with known answers over the seeds, with the real model (slow)."""

from __future__ import annotations

import json

import pytest

from indexer.settings import Settings
from indexer.stores import open_store
from retrieval.searcher import Searcher
from support import REPO_ROOT, read_source

pytestmark = pytest.mark.slow

NATO_DOC = "004_6a67110f8947381e"

# From bench/data/seeds_questions.jsonl: factual questions whose gold article ranks first
# and whose evidence lies in a top-3 passage with the current code.
ROBUST_IDS = ("s009", "s016", "s024", "s026", "s029", "s040")


def _bench_questions() -> dict[str, dict]:  # type: ignore[type-arg]
    lines = (REPO_ROOT / "bench" / "data" / "seeds_questions.jsonl").read_text(encoding="utf-8").splitlines()
    return {q["id"]: q for q in map(json.loads, filter(None, lines))}


BENCH = _bench_questions()
CASES = [(BENCH[i]["question"], BENCH[i]["answers"][0]["doc_id"], BENCH[i]["answers"][0]["evidence"])
         for i in ROBUST_IDS]
ALL_QUESTIONS = ["When did Turkey join NATO?", *(q for q, _, _ in CASES)]


@pytest.fixture(scope="module")
def seeds_searcher(seeds_index: Settings, real_embedder) -> Searcher:  # type: ignore[no-untyped-def]
    return Searcher.load(seeds_index, real_embedder)


def test_the_seeds_index_holds_every_seed(seeds_index: Settings) -> None:
    store = open_store(seeds_index)
    seeds = sorted((REPO_ROOT / "seeds").glob("*.txt"))
    infos = store.document_infos()
    assert [d.doc_id for d in infos] == [p.stem for p in seeds]
    for info in infos:
        doc = store.document(info.doc_id)
        assert doc is not None and doc.source == info.source == f"seeds/{info.doc_id}.txt"
        assert read_source(doc.source) == doc.text and len(doc.text) == info.chars
        assert info.passages > 0 and info.offsets_in == "file"
    assert store.info.model.name == "all-MiniLM-L6-v2"
    assert store.info.model.dimension == 384
    assert store.info.documents == len(seeds) and store.info.passages == sum(d.passages for d in infos)


def test_when_did_turkey_join_nato(seeds_searcher: Searcher) -> None:
    result = seeds_searcher.ask("When did Turkey join NATO?")
    top = result.hits[0]
    assert top.doc_id == NATO_DOC
    assert "1952" in top.answer.text
    assert "joined NATO" in top.answer.text
    assert result.answerable


@pytest.mark.parametrize("question, doc_id, evidence", CASES, ids=ROBUST_IDS)
def test_known_answers(seeds_searcher: Searcher, question: str, doc_id: str, evidence: str) -> None:
    hits = seeds_searcher.ask(question, top_k=5).hits
    assert hits[0].doc_id == doc_id, f"top article {hits[0].doc_id}, expected {doc_id}"
    assert any(h.doc_id == doc_id and evidence in h.text for h in hits[:3]), (
        f"evidence {evidence!r} not in the top-3 passages")


def test_same_answers_after_reloading_from_disk(seeds_index: Settings, seeds_searcher: Searcher,
                                                real_embedder) -> None:  # type: ignore[no-untyped-def]
    reloaded = Searcher.load(seeds_index, real_embedder)
    assert reloaded.store is not seeds_searcher.store
    assert reloaded.store.version() == seeds_searcher.store.version()
    for question in ALL_QUESTIONS:
        before = seeds_searcher.ask(question).to_json()
        after = reloaded.ask(question).to_json()
        assert after == before
    top = reloaded.ask("When did Turkey join NATO?").hits[0]
    assert top.doc_id == NATO_DOC and "1952" in top.answer.text
    for question, doc_id, evidence in CASES:
        hits = reloaded.ask(question).hits
        assert hits[0].doc_id == doc_id
        assert any(evidence in h.text for h in hits[:3])


@pytest.mark.parametrize("question", ALL_QUESTIONS)
def test_every_hit_slices_its_source_file(seeds_searcher: Searcher, question: str) -> None:
    for hit in seeds_searcher.ask(question, top_k=10).hits:
        assert hit.source.startswith("seeds/") and hit.source == f"seeds/{hit.doc_id}.txt"
        source = read_source(hit.source)
        assert source[hit.start:hit.end] == hit.text
        assert source[hit.answer.start:hit.answer.end] == hit.answer.text
        assert hit.start <= hit.answer.start < hit.answer.end <= hit.end
        assert hit.passage_id.startswith(f"{hit.doc_id}@") and hit.passage_id.endswith(f":p{hit.start}-{hit.end}")


def test_unrelated_question_is_not_answerable(seeds_searcher: Searcher) -> None:
    result = seeds_searcher.ask("What is a good recipe for banana bread?")
    assert result.hits, "the nearest passages are still returned"
    assert not result.answerable


@pytest.fixture(scope="module")
def float32_searchers(tmp_path_factory: pytest.TempPathFactory, seeds_index: Settings):  # type: ignore[no-untyped-def]
    """(float32 ONNX, PyTorch) searchers over one seeds index built with the float32 export."""
    from dataclasses import replace

    from indexer.build import build_index
    from indexer.embedding import load_embedder
    from indexer.errors import ModelNotFoundError

    try:
        fp32 = load_embedder(seeds_index.model_path, seeds_index.model_name, "onnx")
    except ModelNotFoundError:
        pytest.skip("no float32 ONNX export (make setup makes one)")
    torch = load_embedder(seeds_index.model_path, seeds_index.model_name, "torch")
    settings = replace(seeds_index, index_dir=tmp_path_factory.mktemp("seeds_fp32"))
    store = open_store(seeds_index)
    documents = [store.document(d.doc_id) for d in store.document_infos()]
    build_index(documents, settings, fp32)
    return Searcher.load(settings, fp32), Searcher.load(settings, torch)


def test_float32_onnx_and_pytorch_give_the_same_answers(float32_searchers) -> None:  # type: ignore[no-untyped-def]
    """VERBATIM_BACKEND=onnx is the same model as VERBATIM_BACKEND=torch (and the fallback
    when there is no export) in another runtime: the same answers."""
    onnx, torch = float32_searchers
    for question in ALL_QUESTIONS:
        a, b = onnx.ask(question), torch.ask(question)
        assert [(h.doc_id, h.start, h.answer.start) for h in a.hits] == \
            [(h.doc_id, h.start, h.answer.start) for h in b.hits], question
        assert a.answerable == b.answerable


def test_the_shipped_backend_finds_what_float32_finds(seeds_searcher: Searcher,
                                                      float32_searchers) -> None:  # type: ignore[no-untyped-def]
    """The shipped backend (auto: int8 when exported) puts the same article first and agrees
    on whether the question is answered, for the questions with known answers."""
    onnx, _ = float32_searchers
    for question in ALL_QUESTIONS:
        shipped, reference = seeds_searcher.ask(question), onnx.ask(question)
        assert shipped.hits[0].doc_id == reference.hits[0].doc_id, question
        assert shipped.answerable == reference.answerable, question
