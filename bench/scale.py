"""Search-layer benchmark at scale: exact search against IVF and HNSW, up to 1,000,000 vectors.

    python -m bench.scale --n 1000000 --queries 200     # about 25 minutes on 2 busy cores
    python -m bench.scale --n 1000000 --only ivf --nlist 4096 --no-sq8   # one more IVF size
    python -m bench.scale --n 100000

Only the vector index is measured (no model, BM25 or answer selection).

Corpus: real passage embeddings with structured noise. The real vectors are the
all-MiniLM-L6-v2 embeddings of the seed articles' sentences, passages (the indexer's chunks)
and pairs of consecutive sentences, near-duplicates (cosine > 0.98) removed: a few hundred
centres on one news subject. They form topic 0; 15 more topics are copies of it turned by a
random rotation around a random mean direction (same inner geometry, other directions), so
the corpus has the many-topic shape of a real news collection. Each synthetic vector is

    normalize(base + sigma * z)

where ``base`` is one centre of its topic (half the time) or a mix ``(1-w) c_a + w c_b`` of
two centres of that topic (w uniform in [0.2, 0.6]); ``z`` is 70% (in energy) Gaussian
noise in the topic's 64 principal directions, weighted by their spread, and 30% isotropic
Gaussian noise; sigma is 0.3, 0.5 or 0.8 (probabilities 0.3, 0.4, 0.3: cosine to the base
about 0.96, 0.89, 0.78). Topic 0 holds 30% of the vectors, each other topic 4.7%.

Queries: real question embeddings, never drawn from the corpus: the questions of
bench/data/seeds_questions*.jsonl plus the ones written below (10 of them off-topic), in
a fixed shuffled order; more queries than questions repeat them with Gaussian noise.

Ground truth: exact top-10 by IndexFlatIP. recall@10 = |ANN top 10 ∩ exact top 10| / 10,
averaged over queries (an ANN hit whose true score ties the 10th exact score counts).

Per configuration: build time (training + adding), index size (bytes of the FAISS file),
recall@10, and single-query latency (a batch of 1, warm: 10 queries untimed first) median
and p95 with faiss.omp_set_num_threads(1) and (2). Memory: each chosen index is loaded in a
fresh process, once read into memory and once memory-mapped (faiss.IO_FLAG_MMAP_IFC, after
dropping the file's cached pages with posix_fadvise, so the first queries are cold), with
its anonymous (heap) and file-backed resident memory after --probe-queries queries, cold and
warm latency, and the time to reconstruct 50 random rows.

HNSW is built on a prefix of --hnsw-n vectors (default 200,000) at several M, and at the
full --n only for M = --hnsw-full-m (building HNSW at 1,000,000 takes 5-7 minutes here).

The corpus, real embeddings and ground truth are cached in bench/cache/scale/ (gitignored);
a smaller --n reuses the prefix of a larger cached corpus (the generator is chunk-seeded, so
a prefix is the same sample either way). Results go to bench/results/scale-<n>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import numpy as np

from indexer import ann

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "cache" / "scale"
RESULTS = ROOT / "bench" / "results"
K = 10
GEN_VERSION = 1
CHUNK = 50_000  # generator chunk; each is seeded by (seed, chunk number)
TOPICS = 16
TOPIC0_SHARE = 0.30
NOISE_RANK = 64
STRUCTURED_ENERGY = 0.7
SIGMAS = (0.3, 0.5, 0.8)
SIGMA_P = (0.3, 0.4, 0.3)
MIX_P = 0.5
WARMUP = 10

EXTRA_QUESTIONS = (
    "Why does Turkey sell armed drones to Ukraine?",
    "How did Russia react to Turkish drones being used in Donbas?",
    "What is the Bayraktar TB2 and who makes it?",
    "Who is Selcuk Bayraktar?",
    "Is Turkey a reliable NATO ally?",
    "Why did the United States remove Turkey from the F-35 programme?",
    "What sanctions did Washington impose on Ankara over the S-400?",
    "Could Turkey give its S-400 missiles to Ukraine?",
    "Where are Turkey's S-400 batteries deployed?",
    "Has Turkey activated the Russian air defence system?",
    "How much did Turkey pay Russia for the S-400?",
    "Did Turkey buy a second batch of S-400 systems?",
    "What does CAATSA stand for?",
    "How does Turkey balance its relations with Russia and the West?",
    "What is the Montreux Convention about?",
    "Can Turkey close the Bosphorus to Russian warships?",
    "What role does Turkey play as a mediator between Russia and Ukraine?",
    "Did Erdogan offer to host peace talks between Putin and Zelensky?",
    "What trade ties link Turkey and Russia?",
    "How dependent is Turkey on Russian gas?",
    "Who built the Akkuyu nuclear power plant?",
    "What is the TurkStream pipeline?",
    "How many Russian tourists visit Turkey each year?",
    "Why did Turkey and Russia clash in Syria?",
    "What happened in Idlib in 2020?",
    "Who shot down a Russian jet near the Syrian border in 2015?",
    "How did Turkish drones affect the war in Nagorno-Karabakh?",
    "Which countries have bought Turkish military drones?",
    "Where will the drone factory in Ukraine be built?",
    "How many drones has Ukraine received from Turkey?",
    "What engines do Turkish drones use?",
    "Does Ukraine supply engines to Turkish defence companies?",
    "What did the Kremlin say about weapons deliveries to Kyiv?",
    "How many Russian troops were massed on the Ukrainian border?",
    "When did Russia annex Crimea?",
    "What is Turkey's position on the annexation of Crimea?",
    "Who are the Crimean Tatars?",
    "What did NATO say about Russian troop movements near Ukraine?",
    "Which NATO members sent anti-tank missiles to Ukraine?",
    "What did the United Kingdom send to Ukraine before the invasion?",
    "How did Poland help Ukraine militarily?",
    "What did Germany refuse to send to Ukraine?",
    "Why do some NATO members refuse to buy Russian weapons?",
    "Why do countries such as India buy Russian arms?",
    "What is interoperability in NATO procurement?",
    "Which Russian company exports weapons abroad?",
    "Who heads Rosoboronexport?",
    "What did Russian officials say about the S-400 contract with Ankara?",
    "Could Moscow use the S-400 deal to pressure Ankara?",
    "What is the range of the S-400 system?",
    "What are the Patriot missiles and did Turkey want them?",
    "Why did Turkey not buy the Patriot system from the United States?",
    "What did Wendy Sherman discuss in Ankara?",
    "What did US officials tell Reuters about the S-400 idea?",
    "How did Turkish officials respond to the proposal to send the S-400 to Ukraine?",
    "What did Ibrahim Kalin say about Russia?",
    "What did Mevlut Cavusoglu say about the war in Ukraine?",
    "How did Zelensky thank Erdogan?",
    "Where did Erdogan meet Zelensky in Kyiv?",
    "What agreements did Turkey and Ukraine sign in February 2022?",
    "What is the free trade agreement between Turkey and Ukraine?",
    "How large is trade between Turkey and Ukraine?",
    "What did analysts say about Erdogan's motives?",
    "How does the war affect Turkey's economy?",
    "What are Turkey's interests in the Black Sea?",
    "Why does Russia see Turkish drones as a threat?",
    "What happened at the Zelenopillya attack?",
    "What did Bloomberg report about Russian battalions?",
    "What is the Missile Technology Control Regime?",
    "Which countries condemned the Ukrainian drone strike in Donbas?",
    "Who is Oleksii Reznikov?",
    "What is Baykar?",
    "Is the S-400 compatible with NATO air defence systems?",
    "Why is the F-35 programme important for Turkey?",
    "What did Greece say about Turkish drones?",
    "What did the European Union say about Turkey and Russia?",
    "Which EU defence project does Ankara want to join?",
    "How did Russia respond to NATO enlargement?",
    "What did Peskov say about Turkey?",
    "What did Putin and Erdogan discuss by phone?",
    # Off-topic questions a user might still type: their neighbours lie anywhere.
    "What is the weather forecast for Paris tomorrow?",
    "How do I bake sourdough bread at home?",
    "Who won the football World Cup in 2018?",
    "What causes inflation to rise?",
    "How does a vaccine train the immune system?",
    "What is the capital of Australia?",
    "How do electric cars charge their batteries?",
    "What are the symptoms of influenza?",
    "When was the first moon landing?",
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- real vectors
def real_texts() -> tuple[list[str], list[str]]:
    """Passage texts of the seeds (sentences, chunks, sentence pairs) and the questions."""
    from bench.eval import DEFAULT_QUESTIONS, HOLDOUT_QUESTIONS, load_questions
    from indexer.chunking import chunk_sentences, split_sentences
    from indexer.settings import Settings

    chunking = Settings.from_env().chunking
    passages: list[str] = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        spans = split_sentences(text)
        passages += [s.slice(text) for s in spans]
        passages += [c.text for c in chunk_sentences(text, spans, chunking)]
        passages += [text[a.start:b.end] for a, b in zip(spans, spans[1:])]
    questions = [q.question for f in (DEFAULT_QUESTIONS, HOLDOUT_QUESTIONS) for q in load_questions(f)]
    return passages, questions + list(EXTRA_QUESTIONS)


def real_vectors() -> tuple[np.ndarray, np.ndarray, int]:
    """(centres, question vectors, number of passage texts), embedded once and cached."""
    from indexer.embedding import load_embedder, resolve_backend
    from indexer.settings import Settings

    settings = Settings.from_env()
    # The backend is part of the key: int8 vectors differ slightly from PyTorch's.
    backend = resolve_backend(settings.backend, settings.model_path)
    passages, questions = real_texts()
    path = CACHE / f"real-{_digest(settings.model_name, backend, passages, questions)}.npz"
    if path.is_file():
        data = np.load(path)
        return data["centres"], data["questions"], int(data["n_texts"])
    log(f"embedding {len(passages)} seed passages and {len(questions)} questions")
    embedder = load_embedder(settings.model_path, settings.model_name, backend)
    vectors = embedder.encode(passages, batch_size=settings.batch_size)
    qvecs = embedder.encode(questions, batch_size=settings.batch_size)
    keep: list[int] = []  # drop near-duplicates (a one-sentence chunk is its sentence)
    for i, v in enumerate(vectors):
        if not keep or float(np.max(vectors[keep] @ v)) <= 0.98:
            keep.append(i)
    centres = np.ascontiguousarray(vectors[keep])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, centres=centres, questions=qvecs, n_texts=len(passages))
    return centres, qvecs, len(passages)


# --------------------------------------------------------------------------- corpus
class Generator:
    """The structured-noise corpus around the real centres (see the module docstring)."""

    def __init__(self, centres: np.ndarray, seed: int) -> None:
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        n_c, d = centres.shape
        self.dim = d
        mean = centres.mean(0)
        centred = centres - mean
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        rank = min(NOISE_RANK, len(s))
        # Rows scaled so that a standard normal vector times them has expected norm^2 == 1.
        basis = (s[:rank, None] * vt[:rank]) / math.sqrt(float((s[:rank] ** 2).sum()))
        topics_c, topics_b = [centres], [basis]
        for _ in range(TOPICS - 1):
            q, r = np.linalg.qr(rng.standard_normal((d, d)))
            q *= np.sign(np.diag(r))  # a uniformly random rotation
            direction = rng.standard_normal(d)
            direction *= np.linalg.norm(mean) / np.linalg.norm(direction)
            c = centred @ q.T + direction
            topics_c.append(c / np.linalg.norm(c, axis=1, keepdims=True))
            topics_b.append(basis @ q.T)
        self.centres = np.stack(topics_c).astype(np.float32)  # [T, n_c, d]
        self.bases = np.stack(topics_b).astype(np.float32)  # [T, rank, d]
        self.topic_p = np.array([TOPIC0_SHARE] + [(1 - TOPIC0_SHARE) / (TOPICS - 1)] * (TOPICS - 1))
        self.key = _digest(GEN_VERSION, seed, centres, TOPICS, TOPIC0_SHARE, NOISE_RANK,
                           STRUCTURED_ENERGY, SIGMAS, SIGMA_P, MIX_P, CHUNK)

    def chunk(self, number: int, size: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1, number])
        t_n, n_c, d = self.centres.shape
        topic = rng.choice(t_n, size, p=self.topic_p)
        a, b = rng.integers(0, n_c, size), rng.integers(0, n_c, size)
        w = np.where(rng.random(size) < MIX_P, rng.uniform(0.2, 0.6, size), 0.0).astype(np.float32)
        base = (1 - w)[:, None] * self.centres[topic, a] + w[:, None] * self.centres[topic, b]
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        structured = np.empty((size, d), dtype=np.float32)
        g = rng.standard_normal((size, self.bases.shape[1]), dtype=np.float32)
        for t in range(t_n):
            rows = np.flatnonzero(topic == t)
            structured[rows] = g[rows] @ self.bases[t]
        iso = rng.standard_normal((size, d), dtype=np.float32) / np.float32(math.sqrt(d))
        z = math.sqrt(STRUCTURED_ENERGY) * structured + math.sqrt(1 - STRUCTURED_ENERGY) * iso
        sigma = rng.choice(np.array(SIGMAS, dtype=np.float32), size, p=SIGMA_P)
        x = base + sigma[:, None] * z
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return np.ascontiguousarray(x, dtype=np.float32)


def corpus(gen: Generator, n: int) -> np.ndarray:
    """n vectors, loaded from the cache (or a larger cached corpus's prefix), else generated."""
    CACHE.mkdir(parents=True, exist_ok=True)
    candidates = sorted(CACHE.glob(f"corpus-{gen.key}-n*.npy"),
                        key=lambda p: int(p.stem.rsplit("-n", 1)[1]))
    for path in candidates:
        if int(path.stem.rsplit("-n", 1)[1]) >= n:
            log(f"corpus: {path.name} (first {n:,} rows)")
            return np.ascontiguousarray(np.load(path, mmap_mode="r")[:n])
    path = CACHE / f"corpus-{gen.key}-n{n}.npy"
    log(f"generating {n:,} x {gen.dim} corpus -> {path.name}")
    out = np.lib.format.open_memmap(str(path) + ".tmp.npy", mode="w+", dtype=np.float32,
                                    shape=(n, gen.dim))
    for number, start in enumerate(range(0, n, CHUNK)):
        size = min(CHUNK, n - start)
        out[start:start + size] = gen.chunk(number, CHUNK)[:size]
    out.flush()
    del out
    os.replace(str(path) + ".tmp.npy", path)
    return np.load(path)


def make_queries(questions: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 2])
    order = rng.permutation(len(questions))
    rows = [questions[order[i % len(order)]] for i in range(count)]
    q = np.array(rows, dtype=np.float32)
    extra = np.arange(count) >= len(order)  # repeats get noise so they differ
    noise = rng.standard_normal((int(extra.sum()), q.shape[1]), dtype=np.float32)
    q[extra] += 0.25 * noise / np.sqrt(q.shape[1])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q)


def ground_truth(vectors: np.ndarray, queries: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact top-K (scores, ids) by IndexFlatIP, cached; and seconds to compute (0 if cached)."""
    path = CACHE / f"gt-{key}-n{len(vectors)}-q{_digest(queries)}.npz"
    if path.is_file():
        data = np.load(path)
        return data["scores"], data["ids"], 0.0
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, ids = index.search(queries, K)
    np.savez(path, scores=scores, ids=ids)
    return scores, ids, time.perf_counter() - t0


# --------------------------------------------------------------------------- measuring
def recall_at_k(ids: np.ndarray, gt_scores: np.ndarray, gt_ids: np.ndarray,
                vectors: np.ndarray, queries: np.ndarray) -> float:
    """Mean |ANN top K ∩ exact top K| / K; a hit tying the K-th exact score counts."""
    total = 0
    for qi in range(len(ids)):
        exact = set(gt_ids[qi].tolist())
        kth = gt_scores[qi, K - 1]
        for i in ids[qi]:
            if i in exact or (i >= 0 and float(vectors[i] @ queries[qi]) >= kth - 1e-6):
                total += 1
    return total / (len(ids) * K)


def time_queries(index: faiss.Index, queries: np.ndarray, threads: int) -> tuple[list[float], np.ndarray]:
    """Per-query wall time (ms) of search(batch of 1, K) after a warm-up, and the ids."""
    faiss.omp_set_num_threads(threads)
    for q in queries[:WARMUP]:
        index.search(q[None, :], K)
    times, ids = [], np.empty((len(queries), K), dtype=np.int64)
    for qi, q in enumerate(queries):
        t0 = time.perf_counter()
        _, found = index.search(q[None, :], K)
        times.append((time.perf_counter() - t0) * 1000)
        ids[qi] = found[0]
    return times, ids


def _p95(values: list[float]) -> float:
    return float(np.percentile(np.array(values), 95))


def _rss() -> dict[str, float]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("RssAnon", "RssFile")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def _drop_cached_pages(path: Path) -> None:
    """Ask the kernel to drop this one file's cached pages, so a mapped index starts cold."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _probe(path: str, spec: dict[str, Any], queries: np.ndarray, mmap: bool) -> dict[str, Any]:
    """In a fresh process: load the index (read or mmap), run the queries, report memory.

    The first pass over the queries is timed on its own (for a mapped index whose pages were
    dropped, that is the cold start), then the warm pass; then reconstruct_batch of 50 random
    rows (what the searcher does for each question's candidates)."""
    faiss.omp_set_num_threads(1)
    before = _rss()
    t0 = time.perf_counter()
    index = ann.read_vector_index(path, spec, mmap=mmap)
    load_s = time.perf_counter() - t0
    loaded = _rss()
    first = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], K)
        first.append((time.perf_counter() - t0) * 1000)
    times, ids = time_queries(index, queries, 1)
    rng = np.random.default_rng(3)
    rec = []
    for _ in range(20):
        rows = rng.choice(index.ntotal, 50, replace=False).astype(np.int64)
        t0 = time.perf_counter()
        index.reconstruct_batch(rows)
        rec.append((time.perf_counter() - t0) * 1000)
    after = _rss()
    return {
        "mmap": mmap, "load_s": load_s,
        "anon_mib_loaded": loaded["RssAnon"] - before["RssAnon"],
        "file_mib_loaded": loaded["RssFile"] - before["RssFile"],
        "anon_mib_after_queries": after["RssAnon"] - before["RssAnon"],
        "file_mib_after_queries": after["RssFile"] - before["RssFile"],
        "first_pass_median_ms": statistics.median(first), "first_pass_max_ms": max(first),
        "median_ms": statistics.median(times), "reconstruct_50_ms": statistics.median(rec),
        "ids": ids,
    }


def probe_memory(path: Path, spec: dict[str, Any], queries: np.ndarray) -> dict[str, Any]:
    """Read, then (after dropping the file's cached pages) memory-map the index, each in a
    fresh process."""
    ctx = multiprocessing.get_context("spawn")
    out: dict[str, Any] = {}
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for mmap in (False, True):
            if mmap:
                _drop_cached_pages(path)
            out["mmap" if mmap else "read"] = pool.apply(_probe, (str(path), spec, queries, mmap))
    out["same_results"] = bool(np.array_equal(out["read"].pop("ids"), out["mmap"].pop("ids")))
    return out


class Bench:
    """Runs configurations over one vector set and collects rows."""

    def __init__(self, vectors: np.ndarray, queries: np.ndarray, gt: tuple[np.ndarray, np.ndarray],
                 threads: list[int], probe_queries: int) -> None:
        self.vectors, self.queries, self.gt = vectors, queries, gt
        self.threads, self.probe_queries = threads, probe_queries
        self.rows: list[dict[str, Any]] = []
        self.memory: list[dict[str, Any]] = []

    def build(self, spec: dict[str, Any], **kw: Any) -> tuple[faiss.Index, float]:
        log(f"building {ann.factory_string(spec)} over {len(self.vectors):,}")
        t0 = time.perf_counter()
        faiss.omp_set_num_threads(max(self.threads))
        index = ann.build_vector_index(self.vectors, spec, **kw)
        return index, time.perf_counter() - t0

    def measure(self, name: str, index: faiss.Index, spec: dict[str, Any], build_s: float,
                size: int, params: str) -> dict[str, Any]:
        ann.configure_for_search(index, spec)
        row: dict[str, Any] = {"index": name, "n": len(self.vectors), "params": params,
                               "spec": dict(spec), "build_s": build_s, "bytes": size}
        for t in self.threads:
            times, ids = time_queries(index, self.queries, t)
            row[f"p50_ms_{t}t"] = statistics.median(times)
            row[f"p95_ms_{t}t"] = _p95(times)
            if t == self.threads[0]:
                row["recall"] = recall_at_k(ids, *self.gt, self.vectors, self.queries)
        self.rows.append(row)
        log(f"  {name} {params}: recall@10 {row['recall']:.4f}, p50 "
            + ", ".join(f"{row[f'p50_ms_{t}t']:.2f} ms ({t}t)" for t in self.threads))
        return row

    def file_size(self, index: faiss.Index, name: str, spec: dict[str, Any],
                  probe: bool) -> int:
        path = CACHE / "tmp" / f"{name}-{os.getpid()}.faiss"
        path.parent.mkdir(parents=True, exist_ok=True)
        ann.write_vector_index(index, path)
        try:
            size = path.stat().st_size
            if probe:
                log(f"  memory probe of {name} ({size / 2**20:.0f} MiB file)")
                mem = probe_memory(path, spec, self.queries[: self.probe_queries])
                self.memory.append({"index": name, "n": len(self.vectors), "bytes": size,
                                    "spec": dict(spec), **mem})
        finally:
            path.unlink(missing_ok=True)
        return size


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def run(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    centres, questions, n_texts = real_vectors()
    gen = Generator(centres, args.seed)
    vectors = corpus(gen, args.n)
    queries = make_queries(questions, args.queries, args.seed)
    gt_scores, gt_ids, gt_s = ground_truth(vectors, queries, gen.key)
    top1, top10 = gt_scores[:, 0], gt_scores[:, K - 1]
    meta = {
        "n": args.n, "dim": int(vectors.shape[1]), "queries": len(queries),
        "real_centres": len(centres), "real_texts": n_texts, "questions": len(questions),
        "topics": TOPICS, "cpu_count": os.cpu_count(), "load_avg": os.getloadavg(),
        "faiss": faiss.__version__, "threads": args.threads,
        "gt_top1_cos_median": float(np.median(top1)), "gt_top10_cos_median": float(np.median(top10)),
    }
    log(f"queries' exact top-1 cosine median {meta['gt_top1_cos_median']:.3f}, "
        f"10th {meta['gt_top10_cos_median']:.3f}")
    bench = Bench(vectors, queries, (gt_scores, gt_ids), _ints(args.threads), args.probe_queries)

    families = set(args.only.split(","))
    if "flat" in families:
        spec = {"type": "flat"}
        index, build_s = bench.build(spec)
        size = bench.file_size(index, "flat", spec, probe=args.probe)
        bench.measure("exact (Flat)", index, spec, build_s, size, "-")
        del index

    if "ivf" in families:
        nprobes = _ints(args.nprobe)
        chosen = ann.choose_index(args.n, vectors.shape[1], 0)
        nlists = _ints(args.nlist) if args.nlist else sorted({chosen["nlist"] // 2, chosen["nlist"]})
        for nlist in nlists:
            spec = {**chosen, "nlist": nlist, "train_size": min(args.n, ann.TRAIN_POINTS_PER_LIST * nlist)}
            index, build_s = bench.build(spec)
            probe_spec = {**spec, "nprobe": args.probe_nprobe or chosen["nprobe"]}
            size = bench.file_size(index, f"ivf{nlist}", probe_spec,
                                   probe=args.probe and nlist == nlists[-1])
            for nprobe in (p for p in nprobes if p <= nlist):
                bench.measure("IVF-Flat", index, {**spec, "nprobe": nprobe}, build_s, size,
                              f"nlist={nlist} nprobe={nprobe}")
            if args.sq8 and nlist == nlists[-1]:
                quantizer = faiss.extract_index_ivf(index).quantizer
                centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
                del index
                sq_spec = {**spec, "storage": "sq8"}
                sq, sq_build = bench.build(sq_spec, centroids=centroids)
                sq_size = bench.file_size(sq, f"ivf{nlist}sq8", {**sq_spec, "nprobe": probe_spec["nprobe"]},
                                          probe=args.probe)
                for nprobe in (p for p in nprobes if p <= nlist):
                    bench.measure("IVF-SQ8", sq, {**sq_spec, "nprobe": nprobe}, sq_build, sq_size,
                                  f"nlist={nlist} nprobe={nprobe} (centroids reused)")
                del sq
            else:
                del index

    if "hnsw" in families:
        ef_searches = _ints(args.ef_search)
        sub_n = min(args.n, args.hnsw_n)
        sizes = [(sub_n, _ints(args.hnsw_m))]
        if args.hnsw_full_m and sub_n < args.n:
            sizes.append((args.n, [args.hnsw_full_m]))
        for n, ms in sizes:
            sub = bench if n == args.n else Bench(
                vectors[:n], queries, ground_truth(vectors[:n], queries, gen.key)[:2],
                bench.threads, args.probe_queries)
            variants = [(m, "flat") for m in ms] + ([(max(ms), "sq8")] if args.sq8 and n == sub_n else [])
            if sub is not bench:  # exact latency at this smaller size, for the ratios
                spec = {"type": "flat"}
                index, build_s = sub.build(spec)
                sub.measure("exact (Flat)", index, spec, build_s, int(index.ntotal) * index.d * 4, "-")
                del index
            for m, storage in variants:
                spec = {"type": "hnsw", "M": m, "efConstruction": args.ef_construction,
                        "efSearch": ef_searches[0], "storage": storage}
                index, build_s = sub.build(spec)
                probe = args.probe and (n == args.n) and storage == "flat"
                size = sub.file_size(index, f"hnsw{m}{storage}", {**spec, "efSearch": 128}, probe=probe)
                label = "HNSW-Flat" if storage == "flat" else "HNSW-SQ8"
                for ef in ef_searches:
                    sub.measure(label, index, {**spec, "efSearch": ef}, build_s, size,
                                f"M={m} efC={args.ef_construction} efSearch={ef}")
                del index
            if sub is not bench:
                bench.rows += sub.rows
                bench.memory += sub.memory

    meta["total_s"] = time.perf_counter() - t_start
    meta["gt_s"] = gt_s
    return {"meta": meta, "rows": bench.rows, "memory": bench.memory}


# --------------------------------------------------------------------------- report
def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def table(results: dict[str, Any]) -> str:
    rows = results["rows"]
    threads = results["meta"]["threads"].split(",")
    exact = {r["n"]: r for r in rows if r["index"].startswith("exact")}
    head = ["index", "n", "params", "build s", "size MiB", "size / exact", "recall@10"]
    for t in threads:
        head += [f"p50 ms {t}t", f"p95 ms {t}t"]
    head.append(f"p50 / exact ({threads[0]}t)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
    for r in rows:
        base = exact.get(r["n"])
        ratio_size = f"{r['bytes'] / base['bytes']:.2f}" if base else ""
        ratio_t = f"{r[f'p50_ms_{threads[0]}t'] / base[f'p50_ms_{threads[0]}t']:.3f}" if base else ""
        cells = [r["index"], f"{r['n']:,}", r["params"], f"{r['build_s']:.1f}", _mib(r["bytes"]),
                 ratio_size, f"{r['recall']:.4f}"]
        for t in threads:
            cells += [f"{r[f'p50_ms_{t}t']:.2f}", f"{r[f'p95_ms_{t}t']:.2f}"]
        cells.append(ratio_t)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(results: dict[str, Any]) -> str:
    lines = ["| index | n | file MiB | read: heap MiB | read: load s | read p50 ms | mmap: heap MiB "
             "| mmap: file pages after queries MiB | mmap cold first pass p50 / max ms "
             "| mmap warm p50 ms | reconstruct 50 rows ms (read / mmap) | same results |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m in results["memory"]:
        r, mm = m["read"], m["mmap"]
        lines.append(f"| {ann.factory_string(m['spec'])} | {m['n']:,} | {_mib(m['bytes'])} | "
                     f"{r['anon_mib_after_queries']:,.0f} | {r['load_s']:.2f} | {r['median_ms']:.2f} | "
                     f"{mm['anon_mib_after_queries']:,.0f} | {mm['file_mib_after_queries']:,.0f} | "
                     f"{mm['first_pass_median_ms']:.2f} / {mm['first_pass_max_ms']:.0f} | "
                     f"{mm['median_ms']:.2f} | {r['reconstruct_50_ms']:.3f} / "
                     f"{mm['reconstruct_50_ms']:.3f} | {m['same_results']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="corpus size (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="number of queries (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument("--threads", default="1,2", help="faiss thread counts to time (default 1,2)")
    parser.add_argument("--only", default="flat,ivf,hnsw", help="families to run (default all)")
    parser.add_argument("--nlist", default="",
                        help="IVF list counts (default: indexer.ann's choice and half of it)")
    parser.add_argument("--nprobe", default="8,16,32,64,128", help="IVF nprobe values")
    parser.add_argument("--probe-nprobe", type=int, default=0,
                        help="nprobe for the memory probe (default: indexer.ann's choice)")
    parser.add_argument("--hnsw-m", default="16,32", help="HNSW M values, at --hnsw-n vectors")
    parser.add_argument("--hnsw-n", type=int, default=200_000,
                        help="HNSW grid corpus size (a prefix; default 200,000: building at 1M is slow)")
    parser.add_argument("--hnsw-full-m", type=int, default=32,
                        help="also build this one HNSW M at the full --n (0: skip)")
    parser.add_argument("--ef-construction", type=int, default=80, help="HNSW efConstruction (default 80)")
    parser.add_argument("--ef-search", default="32,64,128,256,512,1024", help="HNSW efSearch values")
    parser.add_argument("--no-sq8", dest="sq8", action="store_false", help="skip the SQ8 variants")
    parser.add_argument("--no-probe", dest="probe", action="store_false", help="skip the memory probes")
    parser.add_argument("--probe-queries", type=int, default=50, help="queries run in each memory probe")
    parser.add_argument("--json", metavar="FILE", help="results file (default bench/results/scale-<n>.json)")
    args = parser.parse_args(argv)
    if args.n < 1000 or args.queries < 1:
        parser.error("--n must be at least 1000 and --queries at least 1")

    results = run(args)
    meta = results["meta"]
    print(f"Search-layer benchmark: {meta['n']:,} x {meta['dim']} float32 unit vectors; "
          f"{meta['queries']} queries; faiss {meta['faiss']}; {meta['cpu_count']} CPU cores "
          f"(load average at start {meta['load_avg'][0]:.1f}); total {meta['total_s'] / 60:.1f} min\n")
    print(f"Corpus: real passage embeddings with structured noise: {meta['real_centres']} "
          f"all-MiniLM-L6-v2 centres (of {meta['real_texts']} seed sentences, chunks and sentence "
          f"pairs) x {TOPICS} topics (topic 0 real, 15 rotated copies); each vector = "
          f"normalize(base + sigma*z), base a centre or a 2-centre mix, z 70% principal-subspace + "
          f"30% isotropic Gaussian, sigma in {SIGMAS}.")
    print(f"Queries: embeddings of {meta['questions']} real questions (not corpus vectors); exact "
          f"top-1 cosine median {meta['gt_top1_cos_median']:.3f}, 10th {meta['gt_top10_cos_median']:.3f}. "
          f"Ground truth: IndexFlatIP top-{K}. Latency: one query per search call, warm.\n")
    print(table(results))
    if results["memory"]:
        print("\nMemory (each load in a fresh process, one thread, the first --probe-queries queries; "
              "heap = RssAnon growth; file pages = mapped file resident after the queries, which is "
              "page cache the OS can reclaim; the mapped load starts with the file's cached pages "
              "dropped, so its first pass is cold):\n")
        print(memory_table(results))
    out = Path(args.json) if args.json else RESULTS / f"scale-{args.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nResults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
