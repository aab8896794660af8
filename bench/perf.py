"""Speed benchmark: index build time and query latency on the seeds, side by side with a
baseline measured in the same run.

    python -m bench            # or: make bench

The baseline is plain sentence-transformers + exact FAISS inner-product search over the
same chunks (no BM25, no fusion, no answer sentence). Latencies are in-process and warm:
the model and index are loaded once, each question is asked once untimed, then timed
``--repeat`` times; the table reports medians and 95th percentiles in milliseconds, and
the ratio of Verbatim's median to the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import numpy as np

from indexer.build import build_index
from indexer.chunking import chunk_text
from indexer.documents import load_documents
from indexer.embedding import load_embedder
from indexer.settings import Settings
from retrieval.searcher import Searcher

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "bench" / "data" / "seeds_questions.jsonl"
FALLBACK_QUESTIONS = ["When did Turkey join NATO?", "Why is Turkey selling drones to Ukraine?",
                      "What did the United States suggest about the S-400?"]


def _questions(limit: int) -> list[str]:
    if QUESTIONS.is_file():
        rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
        return [r["question"] for r in rows][:limit]
    return FALLBACK_QUESTIONS


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def _time_queries(fn, questions: list[str], repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    for q in questions:  # warm-up
        fn(q)
    times = []
    for _ in range(repeat):
        for q in questions:
            t0 = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t0) * 1000)
    return times


def run(corpus: list[str], builds: int, repeat: int, n_questions: int) -> dict[str, dict[str, float]]:
    settings = Settings.from_env()
    docs, skipped = load_documents(corpus, settings.max_file_bytes)
    if not docs:
        raise SystemExit(f"no readable articles in {corpus}")
    embedder = load_embedder(settings.model_path, settings.model_name)
    questions = _questions(n_questions)
    results: dict[str, dict[str, float]] = {}

    with tempfile.TemporaryDirectory(prefix="verbatim-bench-") as tmp:
        # Baseline build: chunk, embed the chunk texts, add to an exact FAISS index.
        base_times, vb_times = [], []
        for _ in range(builds):
            t0 = time.perf_counter()
            texts = [c.text for d in docs for c in chunk_text(d.text, settings.chunking, d.doc_id)]
            vectors = embedder.encode(texts, batch_size=settings.batch_size)
            base_index = faiss.IndexFlatIP(embedder.dimension)
            base_index.add(vectors)
            base_times.append(time.perf_counter() - t0)

            vb_settings = replace(settings, index_dir=Path(tmp) / "index")
            t0 = time.perf_counter()
            result = build_index(docs, vb_settings, embedder)
            vb_times.append(time.perf_counter() - t0)
        n_chunks = result.chunks
        results["build"] = {
            "baseline_s": statistics.median(base_times),
            "verbatim_s": statistics.median(vb_times),
            "chunks": n_chunks,
            "baseline_passages_per_s": n_chunks / statistics.median(base_times),
            "verbatim_passages_per_s": n_chunks / statistics.median(vb_times),
        }

        def baseline_query(q: str) -> None:
            qv = embedder.encode([q])
            base_index.search(qv, settings.top_k)

        searcher = Searcher.load(vb_settings, embedder=embedder)

        def verbatim_query(q: str) -> None:
            searcher.ask(q)

        for name, fn in (("baseline", baseline_query), ("verbatim", verbatim_query)):
            times = _time_queries(fn, questions, repeat)
            results[f"query_{name}"] = {
                "median_ms": statistics.median(times),
                "p95_ms": _percentile(times, 95),
                "n": len(times),
            }
    results["meta"] = {"documents": len(docs), "questions": len(questions)}
    return results


def _table(r: dict[str, dict[str, float]]) -> str:
    b, qb, qv = r["build"], r["query_baseline"], r["query_verbatim"]
    rows = [
        ("index build (s, median)", b["baseline_s"], b["verbatim_s"]),
        ("build throughput (passages/s)", b["baseline_passages_per_s"], b["verbatim_passages_per_s"]),
        ("query latency median (ms)", qb["median_ms"], qv["median_ms"]),
        ("query latency p95 (ms)", qb["p95_ms"], qv["p95_ms"]),
    ]
    lines = ["| measure | baseline | verbatim | ratio |", "|---|---:|---:|---:|"]
    for name, base, vb in rows:
        lines.append(f"| {name} | {base:.2f} | {vb:.2f} | {vb / base:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="*", default=[str(ROOT / "seeds")], metavar="PATH",
                        help="articles to index (default: seeds)")
    parser.add_argument("--builds", type=int, default=3, help="index builds to time (default 3)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the questions (default 5)")
    parser.add_argument("--questions", type=int, default=100, help="how many seed questions to use")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.corpus, args.builds, args.repeat, args.questions)
    meta = results["meta"]
    print(f"Seeds benchmark: {meta['documents']} articles, {results['build']['chunks']:.0f} passages, "
          f"{meta['questions']} questions x {args.repeat}; {os.cpu_count()} CPU cores\n")
    print(_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
