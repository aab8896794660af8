"""The store as a benchmark dimension: the local folder store against milvus-lite, side by side.

    python -m bench --stores local,milvus-lite --sizes 10000,100000     # or: make bench-stores
    python -m bench.stores --sizes 10000 --repeat 2                      # the same, directly

For each corpus size (synthetic articles of N passages, bench/synthetic.py) and store, in a
new process each (so that peak memory is that configuration's alone):

- **build**: ``indexer.build.build_index`` of the whole corpus (passages/s, wall);
- **add one article**: ``indexer.update.add_documents`` of one new two-sentence article to
  the built index (wall, median of ``--adds``), and **remove it** again: once opening the
  store in each call, as ``indexer add`` and ``indexer remove`` (and the app's uploads) do,
  and once on a store opened beforehand, as a long-running ingest could;
- **full rewrite** (local only): writing the whole index again with its stored vectors plus
  that article, which is what every add and remove did before segments (index format 2
  rewrote the generation), as the baseline of the add;
- **query**: warm ``Searcher.ask`` (hybrid ranking, answer sentence, learned verdicts) of
  the labelled seed questions, each asked once untimed, then ``--repeat`` timed passes:
  median and p95 in ms; the store opened in a new process (reopening time reported);
- **peak memory**: VmHWM of the build process and of the query process, plus their child
  processes (milvus-lite runs its engine in one).

The corpus vectors are pseudo-random unit vectors derived from each text's hash, so that
the build and add times are the stores' and not the model's (embedding 100,000 passages and
their sentences takes most of an hour here; bench/perf.py measures the model). Questions are
embedded with the real packaged model. Search results on such vectors are meaningless;
only their cost is measured.

**Quality** is measured on the seeds with the real model on each store: MRR@10 and the
other bench/eval.py metrics over bench/data/seeds_questions*.jsonl (not the blind set), and
how often the top 5 passages of the two stores agree (as sets) on the same question.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STORES = ("local", "milvus-lite")
NEW_ARTICLE = ("Harbour cranes in Gdansk\n\nIn March the port of Gdansk ordered six electric cranes from a "
               "Finnish maker. The first two arrive in the autumn.\n")


class HashEmbedder:
    """Unit vectors from each text's sha256 (no model): what the build costs without it."""

    backend = "onnx-fp32"

    def __init__(self, name: str, dimension: int) -> None:
        self.name, self.dimension = name, dimension

    def encode(self, texts: list[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dimension)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def _settings(store: str, folder: Path) -> Any:
    from indexer.settings import Settings

    base = Settings.from_env()
    uri = "" if store == "local" else f"milvus:{folder / 'verbatim.db'}"
    return replace(base, index_dir=folder / "index", store=uri, verdict="learned")


def _peak_mib() -> float:
    """Peak resident memory of this process and of its living children (MiB)."""
    def hwm(pid: int | str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    total = hwm("self")
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[-1].split()[1] == me:
                total += hwm(proc.name)
    return total / 1024


def _time(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def child_build(store: str, size: int, folder: Path, adds: int) -> dict[str, Any]:
    """Build the synthetic corpus into ``store``; time one add, one remove, a full rewrite."""
    from bench.synthetic import sentence_pool, synthetic_corpus
    from indexer.build import build_index
    from indexer.stores import open_store
    from indexer.types import Document
    from indexer.update import add_documents, remove_documents

    settings = _settings(store, folder)
    pool, _ = sentence_pool()
    docs = synthetic_corpus(size, settings.chunking, pool=pool)
    embedder = HashEmbedder(settings.model_name, 384)
    t0 = time.perf_counter()
    result = build_index(docs, settings, embedder)
    build_s = time.perf_counter() - t0
    text = NEW_ARTICLE

    def article(name: str, n: int) -> Document:
        body = text.replace("six", f"{n + 6}")
        return Document(f"zz-{name}-{n}", "Harbour cranes in Gdansk", f"bench:{name}-{n}", body,
                        hashlib.sha256(body.encode()).hexdigest())

    # As `indexer add` / `indexer remove` run: each call opens the store itself.
    add_s, remove_s = [], []
    for n in range(adds):
        doc = article("new", n)
        add_s.append(_time(lambda d=doc: add_documents([d], settings, embedder)))
        remove_s.append(_time(lambda d=doc: remove_documents([d.doc_id], settings, embedder)))
    # As a long-running ingest would: the store is open already.
    opened = open_store(settings)
    add_open_s, remove_open_s = [], []
    for n in range(adds):
        doc = article("open", n)
        add_open_s.append(_time(lambda d=doc: add_documents([d], settings, embedder, store=opened)))
        remove_open_s.append(_time(lambda d=doc: remove_documents([d.doc_id], settings, embedder, store=opened)))
    peak_open = _peak_mib()  # before close(): milvus-lite's engine process stops with the last user
    opened.close()
    out: dict[str, Any] = {
        "documents": len(docs), "passages": result.chunks, "sentences": result.sentences,
        "build_s": build_s, "passages_per_s": result.chunks / build_s,
        "add_one_s": statistics.median(add_s), "remove_one_s": statistics.median(remove_s), "adds": adds,
        "add_open_s": statistics.median(add_open_s), "remove_open_s": statistics.median(remove_open_s),
    }
    if store == "local":
        from indexer.stores.base import Change
        from indexer.build import model_record, stored_documents, PASSAGE_FIELD

        local = open_store(settings)
        everything = local.stored_documents()  # type: ignore[attr-defined]
        new, _, _, _ = stored_documents([Document("zz-new-x", "Harbour cranes in Gdansk", "bench:new-x", text,
                                                  hashlib.sha256(text.encode()).hexdigest())],
                                        settings, embedder, None)
        change = Change(put=tuple([*everything, *new]), model=model_record(embedder), chunking=settings.chunking,
                        passage_field=PASSAGE_FIELD, replace_all=True)
        out["full_rewrite_s"] = _time(lambda: local.write(change))
        local.compact()  # type: ignore[attr-defined]
    out["peak_mib"] = max(peak_open, _peak_mib())
    return out


def child_query(store: str, folder: Path, repeat: int, n_questions: int) -> dict[str, Any]:
    """Open the store in this new process and time the seed questions against it."""
    from bench.eval import DEFAULT_QUESTIONS, load_questions
    from indexer.embedding import load_embedder
    from indexer.stores import open_store
    from retrieval.searcher import Searcher

    settings = _settings(store, folder)
    embedder = load_embedder(settings.model_path, settings.model_name, settings.backend)
    embedder.encode(["warm up"])
    t0 = time.perf_counter()
    opened = open_store(settings)
    opened.info  # noqa: B018 - opens it
    searcher = Searcher(opened, embedder, settings)
    searcher.ask("warm up question about ports")
    open_s = time.perf_counter() - t0
    questions = [q.question for q in load_questions(DEFAULT_QUESTIONS)][:n_questions]
    for q in questions:
        searcher.ask(q)
    times, encode = [], []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            searcher.ask(q)
            times.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            searcher.encode_question(searcher.prepare(q).text)
            encode.append((time.perf_counter() - t) * 1000)
    out = {"open_s": open_s, "query_median_ms": statistics.median(times),
           "query_p95_ms": float(np.percentile(times, 95)), "encode_median_ms": statistics.median(encode),
           "queries": len(times), "peak_mib": _peak_mib()}
    opened.close()
    return out


def quality(stores: list[str], folder: Path, log: Any) -> dict[str, Any]:
    """The seed question sets on each store with the real model, and top-5 agreement."""
    from bench.eval import DEFAULT_QUESTIONS, HOLDOUT_QUESTIONS, TRAIN_QUESTIONS, evaluate_seeds, load_questions
    from indexer.build import build_index
    from indexer.documents import load_documents
    from indexer.embedding import load_embedder
    from retrieval.searcher import Searcher

    questions = [q for path in (DEFAULT_QUESTIONS, HOLDOUT_QUESTIONS, TRAIN_QUESTIONS) for q in load_questions(path)]
    out: dict[str, Any] = {"questions": len(questions)}
    tops: dict[str, list[tuple[str, ...]]] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)  # sources as seeds/<file>, as make index writes them
    try:
        for store in stores:
            settings = _settings(store, folder / f"quality-{store}")
            embedder = load_embedder(settings.model_path, settings.model_name, settings.backend)
            docs, _ = load_documents(["seeds"], settings.limits, settings.chunking)
            log(f"[quality] {store}: building the seeds index and asking {len(questions)} questions ...")
            build_index(docs, settings, embedder)
            searcher = Searcher.load(settings, embedder)
            m = evaluate_seeds(searcher, questions)
            out[store] = {k: m[k] for k in ("hit@1", "hit@5", "mrr@10", "answer_sentence_acc")}
            tops[store] = [tuple(sorted(h.passage_id for h in searcher.ask(q.question, top_k=5).hits))
                           for q in questions]
            searcher.store.close()
    finally:
        os.chdir(cwd)
    if len(stores) == 2:
        a, b = (tops[s] for s in stores)
        out["top5_agreement"] = sum(x == y for x, y in zip(a, b)) / len(a)
    return out


def _run_child(args: list[str], log: Any) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.stores", "--child", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=4 * 3600)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(stores: list[str], sizes: list[int], repeat: int, n_questions: int, adds: int, with_quality: bool,
        log: Any) -> dict[str, Any]:
    results: dict[str, Any] = {"stores": stores, "sizes": {}, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="verbatim-stores-") as tmp:
        for size in sizes:
            row: dict[str, Any] = {}
            for store in stores:
                folder = Path(tmp) / f"{store}-{size}"
                folder.mkdir()
                log(f"[{size}] {store}: build, add one, remove one ...")
                built = _run_child(["build", store, str(size), str(folder), str(adds)], log)
                log(f"[{size}] {store}: {built['passages']:,} passages in {built['build_s']:.1f} s; "
                    f"add one {built['add_one_s']:.2f} s; queries ...")
                queried = _run_child(["query", store, str(size), str(folder), str(repeat), str(n_questions)], log)
                row[store] = {**built, **{f"q_{k}": v for k, v in queried.items()}}
                shutil.rmtree(folder, ignore_errors=True)
            results["sizes"][str(size)] = row
        if with_quality:
            results["quality"] = quality(stores, Path(tmp), log)
    return results


def table(results: dict[str, Any]) -> str:
    stores = results["stores"]
    lines = []
    for size, row in results["sizes"].items():
        first = row[stores[0]]
        lines += [f"\n{int(size):,} passages requested: {first['documents']:,} articles, {first['passages']:,} "
                  f"passages, {first['sentences']:,} sentences; {results['cores']} CPU cores\n",
                  "| measure | " + " | ".join(stores) + " |", "|---|" + "---:|" * len(stores)]

        def line(label: str, key: str, fmt: str) -> None:
            cells = [fmt.format(row[s][key]) if row[s].get(key) is not None else "" for s in stores]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

        line("build throughput (passages/s, hash vectors)", "passages_per_s", "{:,.0f}")
        line("build (s)", "build_s", "{:.1f}")
        line("add one article, opening the store as `indexer add` does (s, median)", "add_one_s", "{:.3f}")
        line("remove it, the same way (s, median)", "remove_one_s", "{:.3f}")
        line("add one article to a store already open (s, median)", "add_open_s", "{:.3f}")
        line("remove it from the open store (s, median)", "remove_open_s", "{:.3f}")
        line("full rewrite with stored vectors (s; format 2's add)", "full_rewrite_s", "{:.2f}")
        if "full_rewrite_s" in row.get("local", {}):
            loc = row["local"]
            cells = [f"{loc['full_rewrite_s'] / loc['add_one_s']:.0f}x" if s == "local" else "" for s in stores]
            lines.append("| add one: faster than the full rewrite | " + " | ".join(cells) + " |")
        line("open the store in a new process (s)", "q_open_s", "{:.1f}")
        line("warm query median (ms)", "q_query_median_ms", "{:.1f}")
        line("warm query p95 (ms)", "q_query_p95_ms", "{:.1f}")
        line("... of which embedding the question (ms, median)", "q_encode_median_ms", "{:.1f}")
        line("peak memory, build process (MiB)", "peak_mib", "{:,.0f}")
        line("peak memory, query process (MiB)", "q_peak_mib", "{:,.0f}")
    q = results.get("quality")
    if q:
        lines += [f"\nQuality on the seeds ({q['questions']} labelled questions, real model)\n",
                  "| measure | " + " | ".join(stores) + " |", "|---|" + "---:|" * len(stores)]
        for key, label in (("mrr@10", "MRR@10"), ("hit@1", "hit@1"), ("hit@5", "hit@5"),
                           ("answer_sentence_acc", "answer sentence")):
            lines.append(f"| {label} | " + " | ".join(f"{q[s][key]:.3f}" for s in stores) + " |")
        if "top5_agreement" in q:
            lines.append(f"\nTop-5 passages the same on both stores: {q['top5_agreement']:.1%} of the questions.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, store, size, folder, *rest = argv[1:]
        if kind == "build":
            out = child_build(store, int(size), Path(folder), int(rest[0]))
        else:
            out = child_query(store, Path(folder), int(rest[0]), int(rest[1]))
        print(json.dumps(out))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.stores", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default=",".join(STORES), help=f"comma-separated (default {','.join(STORES)})")
    parser.add_argument("--sizes", default="10000,100000", help="passage counts (default 10000,100000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions (default 3)")
    parser.add_argument("--questions", type=int, default=100, help="seed questions timed (default 100)")
    parser.add_argument("--adds", type=int, default=3, help="one-article adds timed (default 3)")
    parser.add_argument("--no-quality", dest="quality", action="store_false", help="skip the seeds quality check")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if not stores or any(s not in STORES for s in stores):
        parser.error(f"--stores takes {', '.join(STORES)}")
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes passage counts, e.g. 10000,100000")
    if args.repeat < 1 or args.questions < 1 or args.adds < 1:
        parser.error("--repeat, --questions and --adds must be at least 1")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = run(stores, sizes, args.repeat, args.questions, args.adds, args.quality, log)
    print(table(results), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
