"""PyTorch vs ONNX embedding backends, side by side in one process.

    python -m bench.onnx_compare                         # the setup-time int8 export + variants
    python -m bench.onnx_compare --variants int8 --rounds 5
    python -m bench.onnx_compare --eval seeds --eval scifact   # + retrieval quality

Texts: ``--passages`` windows of ``--words`` words taken at evenly spaced offsets of
seeds/*.txt (overlapping, since the seeds are short), and the first ``--questions``
labelled seed questions. Each round embeds all passages once per backend (``encode`` with
``--batch-size``) and asks each question alone (batch of 1, warm); rounds alternate the
backends so load from other processes spreads over all of them. The table gives medians
over rounds of passages per second, both wall-clock and per CPU-second of this process
(steadier when other processes share the cores), and the median and 95th percentile of
per-question latency; ratios are against PyTorch in the same run.

Agreement with PyTorch: cosine between the two backends' embeddings of the same texts
(mean and min over passages and questions), and top-10 overlap: for each question, the
share of PyTorch's 10 nearest passages that the backend also ranks in its 10 nearest.
Neighbouring passages overlap by most of their words, so near-ties make this stricter
than retrieval quality; ``--eval`` measures that: ``seeds`` builds an index of seeds/ per
backend (under a temporary folder) and runs the labelled questions (bench.eval), and
``scifact`` scores dense document retrieval on SciFact (nDCG@10, Recall@100; embeds the
5,183 abstracts with each backend: slow).

Variants (exported under a temporary folder, except ``int8`` which reuses the setup-time
export in ``--onnx-dir`` when it is up to date):

    int8             the shipped recipe: eager attention, per-channel int8 MatMul weights
    fp32             the same graph, float32
    int8-fused       onnxruntime.transformers fusion (attention, layer norm, GELU) first
    int8-sdpa        traced through SDPA attention instead of eager
    int8-per-tensor  one scale per weight tensor
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/onnx_compare.py`
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402  (after the sys.path line)

from bench.eval import DEFAULT_QUESTIONS, DEFAULT_SCIFACT, SEEDS_DIR, load_questions  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "int8": {},
    "fp32": {"quantize": False},
    "int8-fused": {"optimize": True},
    "int8-sdpa": {"attention": "sdpa"},
    "int8-per-tensor": {"per_channel": False},
}


def seed_passages(n: int, words: int) -> list[str]:
    """``n`` windows of ``words`` words at evenly spaced offsets over the seed articles."""
    files = [p.read_text(encoding="utf-8").split() for p in sorted(SEEDS_DIR.glob("*.txt"))]
    starts = [(f, s) for f, w in enumerate(files) for s in range(max(1, len(w) - words + 1))]
    if not starts:
        raise SystemExit(f"no seed articles in {SEEDS_DIR}")
    picks = np.unique(np.linspace(0, len(starts) - 1, num=min(n, len(starts))).round().astype(int))
    return [" ".join(files[starts[i][0]][starts[i][1]:starts[i][1] + words]) for i in picks]


def seed_questions(n: int) -> list[str]:
    return [q.question for q in load_questions(DEFAULT_QUESTIONS)][:n]


def top_k_overlap(q_a: np.ndarray, p_a: np.ndarray, q_b: np.ndarray, p_b: np.ndarray, k: int = 10) -> float:
    k = min(k, len(p_a))
    top_a = np.argsort(-(q_a @ p_a.T), axis=1, kind="stable")[:, :k]
    top_b = np.argsort(-(q_b @ p_b.T), axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_a, top_b)]))


class Timed:
    """One backend's measurements over the rounds."""

    def __init__(self, label: str, embedder: Any, variant: str | None = None) -> None:
        # variant: the key of VARIANTS for an ONNX export, None for PyTorch.
        self.label, self.embedder, self.variant = label, embedder, variant
        self.wall_pps: list[float] = []
        self.cpu_pps: list[float] = []
        self.q_ms: list[float] = []
        self.q_cpu_ms: list[float] = []
        self.passages: np.ndarray | None = None
        self.questions: np.ndarray | None = None

    def round(self, passages: list[str], questions: list[str], batch_size: int) -> None:
        w, c = time.perf_counter(), time.process_time()
        vecs = self.embedder.encode(passages, batch_size=batch_size)
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        self.wall_pps.append(len(passages) / wall)
        self.cpu_pps.append(len(passages) / max(cpu, 1e-9))
        self.passages = vecs
        for q in questions[:3]:  # warm
            self.embedder.encode([q])
        rows = []
        for q in questions:
            w, c = time.perf_counter(), time.process_time()
            rows.append(self.embedder.encode([q])[0])
            self.q_ms.append((time.perf_counter() - w) * 1000)
            self.q_cpu_ms.append((time.process_time() - c) * 1000)
        self.questions = np.stack(rows)


def _eval_seeds(embedder: Any, tmp: Path) -> dict[str, float]:
    from bench.eval import evaluate_seeds
    from indexer.build import build_index
    from indexer.documents import load_documents
    from indexer.settings import Settings
    from retrieval.searcher import Searcher

    settings = replace(Settings.from_env(), index_dir=tmp, model_name=embedder.name, store="")
    docs, _ = load_documents([SEEDS_DIR], settings.limits, settings.chunking)
    build_index(docs, settings, embedder)
    m = evaluate_seeds(Searcher.load(settings, embedder), load_questions(DEFAULT_QUESTIONS))
    return {k: m[k] for k in ("hit@1", "hit@5", "mrr@10", "answer@1")}


def _eval_scifact(embedder: Any, folder: Path, batch_size: int,
                  log: Callable[[str], None]) -> dict[str, float]:
    from bench.eval import load_scifact, ndcg_at_k, recall_at_k

    docs, queries, qrels = load_scifact(folder, "test")
    ids = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    t = time.perf_counter()
    dvecs = embedder.encode([d.text for d in docs], batch_size=batch_size)
    log(f"[scifact] {getattr(embedder, 'backend', 'torch')}: embedded {len(docs)} abstracts in "
        f"{time.perf_counter() - t:.0f} s")
    qvecs = embedder.encode([queries[q] for q in ids], batch_size=batch_size)
    order = np.argsort(-(qvecs @ dvecs.T), axis=1, kind="stable")[:, :100]
    ndcg, recall = [], []
    for qid, row in zip(ids, order):
        ranking = [docs[i].doc_id for i in row]
        ndcg.append(ndcg_at_k(ranking, qrels[qid], 10))
        recall.append(recall_at_k(ranking, qrels[qid], 100))
    return {"nDCG@10": float(np.mean(ndcg)), "Recall@100": float(np.mean(recall))}


def _fmt_ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.onnx_compare",
        description="Speed and agreement of the ONNX embedding backend (and export variants) "
        "against the PyTorch sentence-transformers model, measured side by side in one process. "
        "Prints a markdown table.")
    parser.add_argument("--variants", default="int8,fp32,int8-fused,int8-sdpa,int8-per-tensor",
                        help=f"comma-separated ONNX variants among {', '.join(VARIANTS)} "
                        "(default: all of them)")
    parser.add_argument("--onnx-dir", metavar="DIR", default=None,
                        help="setup-time export to reuse for the int8 variant when up to date "
                        "(default: the one `python -m indexer.onnx_backend export` writes)")
    parser.add_argument("--passages", type=int, default=200, help="passages to embed (default: 200)")
    parser.add_argument("--words", type=int, default=150, help="words per passage (default: 150)")
    parser.add_argument("--questions", type=int, default=50, help="questions to time (default: 50)")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default: 32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and onnxruntime (default: their defaults, all CPUs)")
    parser.add_argument("--eval", action="append", choices=("seeds", "scifact"), default=[],
                        help="also compare retrieval quality (repeatable): seeds = bench.eval's labelled "
                        "seed questions; scifact = dense nDCG@10 / Recall@100 on SciFact test (slow)")
    parser.add_argument("--scifact-dir", metavar="DIR",
                        default=str(DEFAULT_SCIFACT),
                        help="SciFact in BEIR layout (default: ../shared/bench/scifact)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the numbers as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose among {list(VARIANTS)}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    import torch

    from indexer.embedding import load_embedder
    from indexer.onnx_backend import OnnxEmbedder, default_onnx_dir, export_is_current, export_onnx
    from indexer.settings import Settings

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings.from_env()
    torch_embedder = load_embedder(settings.model_path, settings.model_name, "torch")
    passages = seed_passages(args.passages, args.words)
    questions = seed_questions(args.questions)
    log(f"{len(passages)} passages of {args.words} words, {len(questions)} questions; "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")

    backends = [Timed("pytorch (sentence-transformers)", torch_embedder)]
    onnx_dir = Path(args.onnx_dir) if args.onnx_dir else default_onnx_dir()
    with tempfile.TemporaryDirectory(prefix="verbatim-onnx-compare-") as tmp:
        export_info: dict[str, Any] = {}
        for v in variants:
            options = VARIANTS[v]
            folder = Path(tmp) / v
            if v == "int8" and export_is_current(settings.model_path, onnx_dir):
                folder = onnx_dir
                log(f"[{v}] reusing {onnx_dir}")
            else:
                log(f"[{v}] exporting ...")
                export_onnx(settings.model_path, folder, name=settings.model_name, min_cosine=-1.0, **options)
            manifest = json.loads((folder / "export.json").read_text(encoding="utf-8"))
            export_info[v] = {"MB": manifest["model_bytes"] / 1e6, "export_s": manifest["export_seconds"]}
            embedder = OnnxEmbedder(folder, settings.model_name, threads=args.threads)
            mode = "each text alone" if embedder.per_text else "batched"
            backends.append(Timed(f"onnx {v} ({mode})", embedder, variant=v))

        for r in range(args.rounds):
            for b in (backends if r % 2 == 0 else backends[:1] + backends[:0:-1]):
                b.round(passages, questions, args.batch_size)
            log(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{b.variant or 'torch'} {b.wall_pps[-1]:.1f}/s" for b in backends))

        base = backends[0]
        base_pps, base_cpu = statistics.median(base.wall_pps), statistics.median(base.cpu_pps)
        base_q = statistics.median(base.q_ms)
        assert base.passages is not None and base.questions is not None
        rows, report = [], {"passages": len(passages), "questions": len(questions), "rounds": args.rounds,
                            "cpus": os.cpu_count(), "threads": args.threads, "backends": {}}
        for b in backends:
            assert b.passages is not None and b.questions is not None
            cos = np.concatenate([np.sum(b.passages * base.passages, axis=1),
                                  np.sum(b.questions * base.questions, axis=1)])
            overlap = top_k_overlap(b.questions, b.passages, base.questions, base.passages)
            pps, cpu_pps = statistics.median(b.wall_pps), statistics.median(b.cpu_pps)
            q_med, q_p95 = statistics.median(b.q_ms), float(np.percentile(b.q_ms, 95))
            q_cpu = statistics.median(b.q_cpu_ms)
            info = export_info.get(b.variant, {}) if b.variant else {}
            row = {"passages_per_s": pps, "passages_per_cpu_s": cpu_pps, "question_ms_median": q_med,
                   "question_ms_p95": q_p95, "question_cpu_ms_median": q_cpu, "cos_mean": float(cos.mean()),
                   "cos_min": float(cos.min()), "top10_overlap": overlap, **info}
            report["backends"][b.label] = row
            rows.append((b.label, f"{pps:.1f}", _fmt_ratio(pps, base_pps), f"{cpu_pps:.1f}",
                         _fmt_ratio(cpu_pps, base_cpu), f"{q_med:.1f}", f"{q_p95:.1f}",
                         _fmt_ratio(base_q, q_med), f"{cos.mean():.4f}", f"{cos.min():.4f}", f"{overlap:.3f}",
                         f"{info['MB']:.1f}" if info else "-"))
        header = ("backend", "passages/s", "x torch", "passages/CPU-s", "x torch", "question ms (median)",
                  "p95", "x torch (speed-up)", "cos mean", "cos min", "top-10 overlap", "MB")
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")

        if args.eval:
            quality_rows = []
            for b in backends[:1] + [b for b in backends if b.variant == "int8"]:
                scores: dict[str, float] = {}
                if "seeds" in args.eval:
                    with tempfile.TemporaryDirectory(prefix="seeds-", dir=tmp) as index_dir:
                        scores.update(_eval_seeds(b.embedder, Path(index_dir)))
                if "scifact" in args.eval:
                    scores.update(_eval_scifact(b.embedder, Path(args.scifact_dir), args.batch_size, log))
                quality_rows.append((b.label, scores))
                report["backends"][b.label]["quality"] = scores
            if quality_rows:
                keys = list(quality_rows[0][1])
                print()
                print("| backend | " + " | ".join(keys) + " |")
                print("|---|" + "|".join("---" for _ in keys) + "|")
                base_scores = quality_rows[0][1]
                for label, scores in quality_rows:
                    cells = [f"{scores[k]:.4f}" + ("" if label == quality_rows[0][0] or not base_scores[k]
                                                   else f" ({(scores[k] / base_scores[k] - 1) * 100:+.1f}%)")
                             for k in keys]
                    print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
