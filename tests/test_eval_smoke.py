"""Smoke test of the evaluation harness (bench/eval.py) on a tiny index and hand-checked metrics."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest

from bench import eval as bench_eval
from indexer.build import build_index
from indexer.settings import ChunkingParams, Settings
from indexer.types import Document
from retrieval.searcher import Searcher


class FakeEmbedder:
    """Hashed bag of words: deterministic, instant, cosine = word overlap."""

    name = "fake-bow"
    dimension = 4096

    def encode(self, texts, *, batch_size=32, show_progress=False):  # type: ignore[no-untyped-def]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out


ORCHARD = ("Orchard notes\n\nThe valley has many farms. Honeycrisp apples ripen in late September "
           "on the hillside. Farmers sell cider at the market.")
ROCKETS = ("Rocket report\n\nEngineers tested a booster on Tuesday. The launch window opens "
           "at dawn over the ocean.")
QUESTIONS = [
    # Only the orchard article shares words with it, and it holds the evidence: rank 1.
    {"id": "q1", "question": "When do Honeycrisp apples ripen?", "type": "factual",
     "answers": [{"doc_id": "orchard", "evidence": "Honeycrisp apples ripen in late September"}]},
    # Same words, but the labelled evidence lies in the rocket article, which shares no word
    # with the question: it is ranked second, and its answer sentence is its
    # first sentence (all ties), not the evidence.
    {"id": "q2", "question": "Which Honeycrisp apples ripen in September?", "type": "paraphrase",
     "answers": [{"doc_id": "rockets", "evidence": "launch window opens"}]},
    {"id": "q3", "question": "Who won the chess match?", "type": "unanswerable", "answers": []},
]


def _doc(doc_id: str, text: str) -> Document:
    return Document(doc_id=doc_id, title=text.splitlines()[0], source=f"{doc_id}.txt", text=text,
                    sha256=hashlib.sha256(text.encode()).hexdigest())


def test_seeds_suite_on_tiny_index(tmp_path):  # type: ignore[no-untyped-def]
    # One chunk per article, so the ranking is over two passages and easy to reason about.
    settings = replace(Settings(), index_dir=tmp_path / "index", model_name=FakeEmbedder.name,
                       chunking=ChunkingParams(min_words=1000, max_words=1000, overlap_sentences=0))
    embedder = FakeEmbedder()
    build_index([_doc("orchard", ORCHARD), _doc("rockets", ROCKETS)], settings, embedder)
    searcher = Searcher.load(settings, embedder)
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")

    m = bench_eval.evaluate_seeds(searcher, bench_eval.load_questions(qfile))

    rows = {r["id"]: r for r in m["per_question"]}
    assert rows["q1"]["rank"] == 1 and rows["q1"]["answer_ok"] is True and rows["q1"]["answer_at_1"]
    assert rows["q2"]["rank"] == 2 and rows["q2"]["answer_ok"] is False
    assert rows["q3"]["rank"] is None and rows["q3"]["top_doc"] == "orchard"
    assert rows["q1"]["top_dense"] == pytest.approx(rows["q1"]["max_dense"]) and rows["q1"]["top_dense"] > 0
    assert m["answerable"] == 2 and m["missing_evidence"] == []
    assert m["hit@1"] == 0.5 and m["hit@5"] == 1.0
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert m["answer_sentence_acc"] == 0.5 and m["answer@5"] == 0.5 and m["answer@1"] == 0.5
    kinds = {k: {f: v for f, v in g.items() if f in ("n", "hit@1", "hit@5")} for k, g in m["by_type"].items()}
    assert kinds == {"factual": {"n": 1, "hit@1": 1.0, "hit@5": 1.0},
                     "paraphrase": {"n": 1, "hit@1": 0.0, "hit@5": 1.0}, "unanswerable": {"n": 1}}
    assert m["by_type"]["unanswerable"]["flagged"] == rows["q3"]["flagged"]
    assert m["by_type"]["factual"]["answer@5"] == 1.0 and m["by_type"]["paraphrase"]["answer@5"] == 0.0
    # Abstention follows whatever the searcher flagged; checked by hand just below.
    flagged = [rows[q]["flagged"] for q in ("q1", "q2", "q3")]
    assert m["abstention"] == bench_eval.abstention([False, False, True], flagged)

    # The printed table and the JSON dump work on these metrics.
    text = bench_eval.table(("suite", "metric", "value", "note"), bench_eval.seeds_rows(m))
    assert "| seeds | MRR@10" in text and "0.750" in text
    json.dumps(m)


def test_abstention_counts():  # type: ignore[no-untyped-def]
    gold = [True, True, False, False, False]  # two unanswerable questions
    flagged = [True, False, True, False, False]
    a = bench_eval.abstention(gold, flagged)
    assert (a["precision"], a["recall"], a["answerable_wrongly_flagged"]) == (0.5, 0.5, 1)
    assert bench_eval.abstention(gold, [False] * 5)["precision"] is None


def test_evidence_offsets_finds_every_occurrence():  # type: ignore[no-untyped-def]
    assert bench_eval.evidence_offsets("abcab ab", "ab") == [0, 3, 6]
    assert bench_eval.evidence_offsets("aaa", "aa") == [0, 1]
    assert bench_eval.evidence_offsets("abc", "x") == []


def test_ndcg_and_recall_hand_computed():  # type: ignore[no-untyped-def]
    qrels = {"d2": 1, "d3": 2}
    # DCG = 0 + 1/log2(3) + 2/log2(4); ideal = 2/log2(2) + 1/log2(3).
    expected = (1 / math.log2(3) + 1.0) / (2.0 + 1 / math.log2(3))
    assert bench_eval.ndcg_at_k(["d1", "d2", "d3"], qrels, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.6199, abs=1e-4)
    assert bench_eval.ndcg_at_k(["d3", "d2"], qrels, 10) == pytest.approx(1.0)
    assert bench_eval.ndcg_at_k(["d1", "d2", "d3"], qrels, 1) == 0.0
    assert bench_eval.ndcg_at_k(["d1"], {}, 10) == 0.0
    assert bench_eval.recall_at_k(["d1", "d2", "d3"], qrels, 2) == 0.5
    assert bench_eval.recall_at_k(["d3", "d2"], qrels, 100) == 1.0
    # Passage rankings collapse to documents at their first passage.
    assert bench_eval.collapse(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]
