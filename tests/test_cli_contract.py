"""The command lines' contract, run as processes: exact exit codes (README, "Exit codes"),
the documented `compare --json` fields, and the index maintenance commands on a small
temporary corpus (slow: they start processes, and some load the real model)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from indexer.settings import Settings
from support import REPO_ROOT, finish_all, read_source, run_module, start_module

pytestmark = pytest.mark.slow

Q1 = "When did Turkey join NATO?"
OFF_TOPIC = "What is the best recipe for sourdough bread?"
SEED_IDS = sorted(p.stem for p in (REPO_ROOT / "seeds").glob("*.txt"))

OK, BAD_INPUT, INDEX_ERROR = 0, 2, 3


def _clean_failure(proc: subprocess.CompletedProcess[str], code: int) -> None:
    """Exit ``code``, a message on stderr, no traceback, nothing on stdout."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.stderr.strip() and "Traceback" not in proc.stderr
    assert proc.stdout == ""


# --- exit codes -------------------------------------------------------------------------

@pytest.mark.parametrize("args, env, message", [
    (("ask", ""), {}, "The question is empty"),
    (("ask", "   "), {}, "The question is empty"),
    (("ask", Q1, ""), {}, "The question is empty"),  # any bad question refuses them all
    (("compare", ""), {}, "The question is empty"),
    (("ask", "--top-k", "0", Q1), {}, "--top-k must be at least 1; got 0"),
    (("ask", "--top-k", "-3", Q1), {}, "--top-k must be at least 1; got -3"),
    (("ask", "a question that is too long"), {"VERBATIM_MAX_QUESTION_CHARS": "10"},
     "the limit is 10"),
])
def test_bad_question_or_top_k_exits_2_before_loading_anything(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    # The index does not exist: the input is refused first (2), not the missing index (3).
    command, *rest = args
    proc = run_module("retrieval", command, "--index", str(tmp_path / "no-index"), *rest, **env)
    _clean_failure(proc, BAD_INPUT)
    assert message in proc.stderr


@pytest.mark.parametrize("args, message", [
    (("retrieval", "frobnicate"), "invalid choice: 'frobnicate'"),
    (("indexer", "frobnicate"), "invalid choice: 'frobnicate'"),
    (("retrieval",), "required"),
    (("retrieval", "ask"), "required"),
    (("retrieval", "ask", "--top-k", "abc", Q1), "invalid int value: 'abc'"),
    (("indexer", "remove"), "required"),
    (("indexer", "list", "--bogus"), "unrecognized arguments: --bogus"),
])
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = run_module(*args)
    _clean_failure(proc, BAD_INPUT)
    assert proc.stderr.startswith(f"usage: python -m {args[0]}")
    assert message in proc.stderr


@pytest.mark.parametrize("args", [
    ("retrieval", "ask", Q1),
    ("retrieval", "compare", Q1),
    ("indexer", "list"),
    ("indexer", "verify"),
])
def test_missing_index_exits_3_naming_the_build_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    index = tmp_path / "no-index"
    proc = run_module(*args, "--index", str(index))
    _clean_failure(proc, INDEX_ERROR)
    assert f"error: No index at {index}." in proc.stderr
    assert f"python -m indexer build seeds --index {index}" in proc.stderr


def test_build_without_readable_articles_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("  \n", encoding="utf-8")
    proc = run_module("indexer", "build", str(tmp_path / "empty"), "--index", str(tmp_path / "index"))
    assert proc.returncode == BAD_INPUT, proc.stderr
    assert "warning: skipped" in proc.stderr and "blank.txt" in proc.stderr
    assert "error: no readable articles" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_add_of_nothing_readable_without_an_index_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_module("indexer", "add", str(tmp_path / "empty"), "--index", str(tmp_path / "index"))
    assert proc.returncode == BAD_INPUT, proc.stderr
    assert "error: no readable articles" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


# --- compare --json ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def compare_runs(seeds_index: Settings) -> dict[str, subprocess.CompletedProcess[str]]:
    """The model-loading compare commands, started together."""
    index = str(seeds_index.index_dir)
    return finish_all({
        "q1": start_module("retrieval", "compare", Q1, "--index", index, "--json"),
        "off": start_module("retrieval", "compare", "--json", "--index", index, OFF_TOPIC),
        "human": start_module("retrieval", "compare", Q1, "--index", index),
    })


def _comparison(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == OK, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1, "one JSON object on one line"
    obj: dict = json.loads(proc.stdout)  # type: ignore[type-arg]
    assert set(obj) >= {"question", "articles", "conflicts"}
    assert type(obj["articles"]) is list and type(obj["conflicts"]) is list
    return obj


def _check_hit(hit: dict, article: dict) -> None:  # type: ignore[type-arg]
    """A compare hit has the same fields as an ask hit, and its offsets slice the source."""
    types = {"rank": int, "score": float, "doc_id": str, "title": str, "source": str,
             "start": int, "end": int, "text": str, "answer": dict, "offsets_in": str, "passage_id": str}
    assert set(hit) >= set(types)
    for key, kind in types.items():
        assert type(hit[key]) is kind, f"{key} is {type(hit[key]).__name__}, expected {kind.__name__}"
    assert hit["rank"] >= 1
    assert (hit["doc_id"], hit["title"], hit["source"]) == (article["doc_id"], article["title"],
                                                            article["source"])
    answer = hit["answer"]
    assert set(answer) >= {"start", "end", "text"}
    source = read_source(hit["source"])
    assert hit["offsets_in"] == "file"  # UTF-8 .txt seeds
    assert source[hit["start"]:hit["end"]] == hit["text"]
    assert source[answer["start"]:answer["end"]] == answer["text"]
    assert hit["start"] <= answer["start"] < answer["end"] <= hit["end"]
    assert hit["passage_id"].startswith(f"{hit['doc_id']}@") and hit["passage_id"].endswith(
        f":p{hit['start']}-{hit['end']}")


def _check_articles(obj: dict) -> list[dict]:  # type: ignore[type-arg]
    articles = obj["articles"]
    # Every article in the index exactly once.
    assert sorted(a["doc_id"] for a in articles) == SEED_IDS
    contract = {"doc_id": str, "title": str, "source": str, "mentioned": bool, "score": float}
    for a in articles:
        assert set(a) >= set(contract) | {"hit", "date", "group", "numbers", "positions"}
        for key, kind in contract.items():
            assert type(a[key]) is kind, f"{key} is {type(a[key]).__name__}, expected {kind.__name__}"
        assert a["source"] == f"seeds/{a['doc_id']}.txt"
        if a["hit"] is None:
            assert not a["mentioned"]
        else:
            _check_hit(a["hit"], a)
        if a["mentioned"]:
            assert a["hit"] is not None and type(a["group"]) is int and a["group"] >= 1
            assert a["score"] >= 0.35  # VERBATIM_MIN_RELEVANCE: nothing weaker is "mentioned"
        else:
            assert a["group"] is None
        assert all(type(n) is str for n in a["numbers"])
        text = read_source(a["source"])
        starts = [p["start"] for p in a["positions"]]
        assert starts == sorted(starts)
        for p in a["positions"]:
            assert 0 <= p["start"] < p["end"] <= len(text)
    # Mentioned ones first; within each part, by score.
    order = [(not a["mentioned"], -a["score"]) for a in articles]
    assert order == sorted(order)
    return articles


def test_compare_json_lists_every_article_once(compare_runs) -> None:  # type: ignore[no-untyped-def]
    obj = _comparison(compare_runs["q1"])
    assert obj["question"] == Q1
    articles = _check_articles(obj)
    assert any(a["mentioned"] for a in articles)
    nato = next(a for a in articles if a["doc_id"] == "004_6a67110f8947381e")
    assert nato["mentioned"] and "1952" in nato["hit"]["answer"]["text"] and "1952" in nato["numbers"]
    assert all(type(note) is str for note in obj["conflicts"])


def test_compare_off_topic_question_mentions_nothing(compare_runs) -> None:  # type: ignore[no-untyped-def]
    obj = _comparison(compare_runs["off"])
    assert obj["question"] == OFF_TOPIC
    articles = _check_articles(obj)
    assert not any(a["mentioned"] for a in articles)
    assert obj["conflicts"] == []


def test_compare_human_output_marks_not_mentioned(compare_runs) -> None:  # type: ignore[no-untyped-def]
    proc = compare_runs["human"]
    assert proc.returncode == OK, proc.stderr
    articles = _comparison(compare_runs["q1"])["articles"]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"Q: {Q1}"
    heads = [line for line in lines if line.startswith(("● ", "○ "))]
    assert len(heads) == len(articles)
    for head, a in zip(heads, articles):
        assert head.startswith("● " if a["mentioned"] else "○ ")
        assert f"{a['title']}  ({a['source']})" in head
    assert proc.stdout.count("   not mentioned") == sum(not a["mentioned"] for a in articles)
    for a in articles:
        if a["mentioned"]:
            assert f"[{a['hit']['start']}:{a['hit']['end']}]" in proc.stdout


# --- index maintenance ------------------------------------------------------------------

def _listed(index: Path) -> list[dict]:  # type: ignore[type-arg]
    proc = run_module("indexer", "list", "--index", str(index), "--json")
    assert proc.returncode == OK, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    types = {"doc_id": str, "title": str, "source": str, "chunks": int, "chars": int}
    for row in rows:
        assert set(row) >= set(types) | {"date", "url"}
        for key, kind in types.items():
            assert type(row[key]) is kind, f"{key} is {type(row[key]).__name__}, expected {kind.__name__}"
        assert row["chunks"] >= 1 and row["chars"] == len(read_source(row["source"]))
        assert row["date"] is None or type(row["date"]) is str
        assert row["url"] is None or type(row["url"]) is str
    assert [r["doc_id"] for r in rows] == sorted(r["doc_id"] for r in rows)
    return rows


def test_build_add_remove_list_verify(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    first, second, third = SEED_IDS[:3]
    for doc_id in (first, second):
        shutil.copy(REPO_ROOT / "seeds" / f"{doc_id}.txt", corpus)

    proc = run_module("indexer", "build", str(corpus), "--index", str(index))
    assert proc.returncode == OK, proc.stderr
    assert proc.stdout.startswith("Indexed 2 articles")
    rows = _listed(index)
    assert [r["doc_id"] for r in rows] == [first, second]
    assert [r["source"] for r in rows] == [str(corpus / f"{i}.txt") for i in (first, second)]

    extra = shutil.copy(REPO_ROOT / "seeds" / f"{third}.txt", tmp_path / f"{third}.txt")
    proc = run_module("indexer", "add", str(extra), "--index", str(index))
    assert proc.returncode == OK, proc.stderr
    assert "Added 1, updated 0, unchanged 0, skipped 0." in proc.stdout
    assert [r["doc_id"] for r in _listed(index)] == [first, second, third]

    proc = run_module("indexer", "remove", second, "--index", str(index))
    assert proc.returncode == OK, proc.stderr
    assert proc.stdout.startswith(f"Removed {second}. Index now holds 2 articles")
    assert [r["doc_id"] for r in _listed(index)] == [first, third]

    # An unknown id (here the removed one, and a typo of an indexed one) changes nothing.
    current = (index / "CURRENT").read_text(encoding="utf-8")
    proc = run_module("indexer", "remove", first[:-1], second, "--index", str(index))
    _clean_failure(proc, INDEX_ERROR)
    assert f"No article with id '{first[:-1]}' (did you mean {first}?)" in proc.stderr
    assert repr(second) in proc.stderr and "List the ids with: python -m indexer list" in proc.stderr
    assert (index / "CURRENT").read_text(encoding="utf-8") == current

    # A changed source file is a warning; the index itself is intact.
    with (corpus / f"{first}.txt").open("a", encoding="utf-8") as f:
        f.write("\nAn added line.\n")
    proc = run_module("indexer", "verify", "--index", str(index))
    assert proc.returncode == OK, proc.stderr
    assert proc.stdout.strip() == f"Index at {index} is intact."
    assert f"warning: {first}: source file {corpus / f'{first}.txt'} changed" in proc.stderr
    assert "python -m indexer add" in proc.stderr

    # The rebuild command names the indexed articles (here single files: the corpus folder
    # also holds the removed article), never the seeds.
    third_source, first_source = str(tmp_path / f"{third}.txt"), str(corpus / f"{first}.txt")
    rebuild = f"python -m indexer build {third_source} {first_source} --index {index}"
    segment = _segment_holding(index, first)
    # Same size, one byte flipped: only the checksum tells.
    vectors = segment / "sentence_vectors.npy"
    original = vectors.read_bytes()
    damaged = bytearray(original)
    damaged[-1] ^= 0xFF
    vectors.write_bytes(bytes(damaged))
    proc = run_module("indexer", "verify", "--index", str(index))
    _clean_failure(proc, INDEX_ERROR)
    assert f"{segment.name}/sentence_vectors.npy does not match its checksum" in proc.stderr
    assert rebuild in proc.stderr
    vectors.write_bytes(original)
    proc = run_module("indexer", "verify", "--index", str(index))
    assert proc.returncode == OK, proc.stderr

    # Truncated: verify, and the commands that read the index, refuse it with the rebuild command.
    passages = segment / "passages.npy"
    size = passages.stat().st_size
    passages.write_bytes(passages.read_bytes()[:100])
    for args in (("indexer", "verify"), ("retrieval", "ask", Q1), ("indexer", "list")):
        proc = run_module(*args, "--index", str(index))
        _clean_failure(proc, INDEX_ERROR)
        assert f"{segment.name}/passages.npy has 100 bytes, the manifest says {size}" in proc.stderr
        assert rebuild in proc.stderr


def _segment_holding(index: Path, doc_id: str) -> Path:
    """The folder of the live segment that stores article ``doc_id`` (index format 3)."""
    generation = index / (index / "CURRENT").read_text(encoding="utf-8").strip()
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == 3
    found = []
    for ref in manifest["segments"]:
        rows = (index / ref["name"] / "documents.jsonl").read_text(encoding="utf-8").splitlines()
        ids = [json.loads(line)["doc_id"] for line in rows]
        found += [index / ref["name"] for n, i in enumerate(ids) if i == doc_id and n not in ref["removed"]]
    assert len(found) == 1, found
    return found[0]
