"""The command lines, run as processes from the repository root with the real model (slow)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from indexer.settings import Settings
from support import REPO_ROOT, finish_all, read_source, run_module, start_module

pytestmark = pytest.mark.slow

Q1 = "When did Turkey join NATO?"
Q2 = "Which European Union defence program did Erdogan say Ankara wants to join?"


@pytest.fixture(scope="module")
def runs(seeds_index: Settings) -> dict[str, subprocess.CompletedProcess[str]]:
    """The model-loading commands, started together (each loads the model once)."""
    index = str(seeds_index.index_dir)
    return finish_all({
        # The index comes from the environment here, from --index below.
        "json": start_module("retrieval", "ask", "--json", Q1, Q2, VERBATIM_INDEX_DIR=index),
        "top2": start_module("retrieval", "ask", "--json", "--top-k", "2", "--index", index, Q1),
        "human": start_module("retrieval", "ask", "--top-k", "3", "--index", index, Q1),
    })


def _json_lines(proc: subprocess.CompletedProcess[str]) -> list[dict]:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(line.strip() for line in lines), "no blank lines between JSON objects"
    return [json.loads(line) for line in lines]


def _check_hit(hit: dict, rank: int) -> None:  # type: ignore[type-arg]
    types = {"rank": int, "score": float, "doc_id": str, "title": str, "source": str,
             "start": int, "end": int, "text": str, "answer": dict, "offsets_in": str, "passage_id": str}
    # The contract's fields, plus the documented extensions (README, "--json format").
    extras = {"citation": dict, "support": dict}
    assert set(types) <= set(hit) <= set(types) | set(extras)
    assert set(hit["citation"]) == {"outlet", "date", "paragraph", "url"}
    # "probability": the learned models' (the default verdict), absent under the hand rule.
    assert {"answers", "reason", "similarity", "threshold"} <= set(hit["support"]) <= {
        "answers", "reason", "similarity", "threshold", "probability"}
    assert type(hit["support"]["answers"]) is bool and hit["support"]["reason"]
    for key, kind in types.items():
        assert type(hit[key]) is kind, f"{key} is {type(hit[key]).__name__}, expected {kind.__name__}"
    assert hit["rank"] == rank
    answer = hit["answer"]
    assert set(answer) == {"start", "end", "text"}
    assert type(answer["start"]) is int and type(answer["end"]) is int and type(answer["text"]) is str
    source = read_source(hit["source"])
    assert source[hit["start"]:hit["end"]] == hit["text"]
    assert source[answer["start"]:answer["end"]] == answer["text"]
    assert hit["start"] <= answer["start"] < answer["end"] <= hit["end"]
    assert hit["source"] == f"seeds/{hit['doc_id']}.txt"
    assert hit["offsets_in"] == "file"  # UTF-8 .txt: offsets index the file itself
    # The passage's id: the document's id and content (the file's sha256), and the span.
    sha12 = hashlib.sha256((REPO_ROOT / hit["source"]).read_bytes()).hexdigest()[:12]
    assert hit["passage_id"] == f"{hit['doc_id']}@{sha12}:p{hit['start']}-{hit['end']}"


def test_ask_json_prints_one_object_per_question(runs) -> None:  # type: ignore[no-untyped-def]
    objects = _json_lines(runs["json"])
    assert [o["question"] for o in objects] == [Q1, Q2]
    for obj in objects:
        assert {"question", "answerable", "hits"} <= set(obj) <= {"question", "answerable", "hits", "confidence"}
        assert 0 <= obj.get("confidence", 0.5) <= 1
        assert type(obj["answerable"]) is bool
        assert len(obj["hits"]) == 5  # VERBATIM_TOP_K default
        for rank, hit in enumerate(obj["hits"], 1):
            _check_hit(hit, rank)
        scores = [h["score"] for h in obj["hits"]]
        assert scores == sorted(scores, reverse=True)
    nato = objects[0]["hits"][0]
    assert nato["doc_id"] == "004_6a67110f8947381e" and "1952" in nato["answer"]["text"]
    assert "PESCO" in objects[1]["hits"][0]["text"]


def test_ask_top_k(runs) -> None:  # type: ignore[no-untyped-def]
    (obj,) = _json_lines(runs["top2"])
    assert [h["rank"] for h in obj["hits"]] == [1, 2]
    for rank, hit in enumerate(obj["hits"], 1):
        _check_hit(hit, rank)
    # The same question without --top-k starts with the same two hits.
    assert obj["hits"] == _json_lines(runs["json"])[0]["hits"][:2]


def test_ask_human_output_cites_title_and_span(runs) -> None:  # type: ignore[no-untyped-def]
    proc = runs["human"]
    assert proc.returncode == 0, proc.stderr
    top = _json_lines(runs["json"])[0]["hits"][:3]
    for hit in top:
        assert f"{hit['rank']}. {hit['title']}" in proc.stdout
        assert f"{hit['source']} [{hit['start']}:{hit['end']}]" in proc.stdout
    assert len(re.findall(r"\[\d+:\d+\]", proc.stdout)) == 3
    assert "1952" in proc.stdout


def test_missing_index_says_how_to_build_it(tmp_path: Path) -> None:
    proc = run_module("retrieval", "ask", "--index", str(tmp_path / "no-index"), Q1)
    assert proc.returncode != 0
    assert "python -m indexer build" in proc.stderr and str(tmp_path / "no-index") in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_is_refused(seeds_index: Settings, question: str) -> None:
    proc = run_module("retrieval", "ask", "--index", str(seeds_index.index_dir), question)
    assert proc.returncode != 0
    assert "question is empty" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bad_top_k_is_refused(seeds_index: Settings) -> None:
    proc = run_module("retrieval", "ask", "--top-k", "0", "--index", str(seeds_index.index_dir), Q1)
    assert proc.returncode != 0 and "--top-k must be at least 1" in proc.stderr


@pytest.mark.parametrize("args, words", [
    (("indexer", "build", "--help"), ("--index", "--if-changed", "PATH")),
    (("retrieval", "ask", "--help"), ("--top-k", "--index", "--json", "QUESTION")),
])
def test_help_exits_zero(args: tuple[str, ...], words: tuple[str, ...]) -> None:
    proc = run_module(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m ")
    for word in words:
        assert word in proc.stdout
