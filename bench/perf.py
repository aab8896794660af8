"""Speed benchmark: index build time and query latency on the seeds, side by side with a
baseline measured in the same run.

    python -m bench            # or: make bench

The baseline is plain sentence-transformers + exact FAISS inner-product search over the
same chunks (no BM25, no fusion, no answer sentence). Latencies are in-process and warm:
the model and index are loaded once, each question is asked once untimed, then timed
``--repeat`` times; the table reports medians and 95th percentiles in milliseconds, and
the ratio of Verbatim's median to the baseline's. Cold starts run in new processes:
``python -m retrieval ask`` against a baseline script that loads the same model with
sentence-transformers and searches an exact FAISS index, and the app (through
streamlit.testing's AppTest) from process start to the first rendered answer; each
reports its peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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


def run(corpus: list[str], builds: int, repeat: int, n_questions: int,
        cold: int = 0) -> dict[str, dict[str, float]]:
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
        if cold:
            base_path = Path(tmp) / "baseline.faiss"
            faiss.write_index(base_index, str(base_path))
            results.update(_cold_starts(vb_settings.index_dir, base_path, settings, questions[0], cold))
    results["meta"] = {"documents": len(docs), "questions": len(questions)}
    return results


# A child process that reports its wall time to first answer and its peak memory (KiB).
_CHILD = """
import os, resource, runpy, sys, time
t0 = time.perf_counter()
kind, arg = sys.argv[1], sys.argv[2:]
try:
    if kind == "cli":
        sys.argv = ["python -m retrieval", *arg]
        runpy.run_module("retrieval", run_name="__main__")
    elif kind == "baseline":
        import faiss
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer(arg[0], device="cpu", local_files_only=True)
        index = faiss.read_index(arg[1])
        index.search(model.encode([arg[2]], normalize_embeddings=True), 5)
    elif kind == "app":
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file(arg[0], default_timeout=300).run()
        at.text_input[0].input(arg[1])
        at.button[0].click().run()
        assert not at.exception, at.exception
        assert any("mark" in str(h.proto.body) for h in at.get("html")), "no answer rendered"
except SystemExit:
    pass
finally:
    print(f"@@ {time.perf_counter() - t0:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}",
          file=sys.stderr)
"""


def _child(kind: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run one cold child process; return (wall seconds from interpreter start, peak RSS MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    marks = [line for line in proc.stderr.splitlines() if line.startswith("@@ ")]
    if proc.returncode != 0 or not marks:
        raise RuntimeError(f"{kind} child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, int(marks[-1].split()[2]) / 1024


def _cold_starts(index_dir: Path, base_path: Path, settings: Settings, question: str,
                 runs: int) -> dict[str, dict[str, float]]:
    """CLI cold start (new process: imports, model and index load, one answer) for Verbatim
    and the baseline, and app start to first answer (AppTest in a new process)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VERBATIM_INDEX_DIR": str(index_dir)}
    measures = {
        "cli_baseline": ("baseline", [str(settings.model_path), str(base_path), question]),
        "cli_verbatim": ("cli", ["ask", question, "--index", str(index_dir), "--json"]),
        "app_first_answer": ("app", [str(ROOT / "app.py"), question]),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (kind, args) in measures.items():
        samples = [_child(kind, args, env) for _ in range(runs)]
        out[name] = {"median_s": statistics.median(w for w, _ in samples),
                     "peak_rss_mib": max(m for _, m in samples), "n": runs}
    return out


def _table(r: dict[str, dict[str, float]]) -> str:
    b, qb, qv = r["build"], r["query_baseline"], r["query_verbatim"]
    rows = [
        ("index build (s, median)", b["baseline_s"], b["verbatim_s"]),
        ("build throughput (passages/s)", b["baseline_passages_per_s"], b["verbatim_passages_per_s"]),
        ("query latency median (ms)", qb["median_ms"], qv["median_ms"]),
        ("query latency p95 (ms)", qb["p95_ms"], qv["p95_ms"]),
    ]
    lines = ["| measure | baseline | verbatim | ratio |", "|---|---:|---:|---:|"]
    if "cli_verbatim" in r:
        cb, cv = r["cli_baseline"], r["cli_verbatim"]
        rows += [("CLI cold start to first answer (s, median)", cb["median_s"], cv["median_s"]),
                 ("CLI peak memory (MiB)", cb["peak_rss_mib"], cv["peak_rss_mib"])]
    for name, base, vb in rows:
        lines.append(f"| {name} | {base:.2f} | {vb:.2f} | {vb / base:.2f}x |")
    if "app_first_answer" in r:
        app = r["app_first_answer"]
        lines.append(f"| app start to first answer (s, median; AppTest, new process) | | "
                     f"{app['median_s']:.2f} | |")
        lines.append(f"| app peak memory (MiB) | | {app['peak_rss_mib']:.0f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="*", default=[str(ROOT / "seeds")], metavar="PATH",
                        help="articles to index (default: seeds)")
    parser.add_argument("--builds", type=int, default=3, help="index builds to time (default 3)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the questions (default 5)")
    parser.add_argument("--questions", type=int, default=100, help="how many seed questions to use")
    parser.add_argument("--cold", type=int, default=3,
                        help="cold-start runs (new processes) for CLI and app timings; 0 skips them")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.corpus, args.builds, args.repeat, args.questions, args.cold)
    meta = results["meta"]
    print(f"Seeds benchmark: {meta['documents']} articles, {results['build']['chunks']:.0f} passages, "
          f"{meta['questions']} questions x {args.repeat}; {os.cpu_count()} CPU cores\n")
    print(_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
