"""The passage-vector index, chosen by corpus size: exact while small, IVF above that.

Vectors are float32, C-contiguous and L2-normalised, so inner product is cosine; every
index here uses the inner-product metric.

* Up to ``exact_max`` vectors (:data:`EXACT_MAX` = 100,000): ``IndexFlatIP``, exact search.
  It needs no training or tuning, and scans 100,000 384-d vectors in about 7 ms a query
  (13-22 ms at 200,000, 83-187 ms at 1,000,000; one thread, 2 shared cores; ``python -m
  bench.scale``).
* Above it: ``IndexIVFFlat`` (inverted file, uncompressed vectors). k-means on a sample
  splits the vectors into ``nlist`` lists (the power of two nearest ``2 * sqrt(n)``); a query
  scans the ``nprobe`` lists whose centroids are nearest (``nlist / 32``, at least 64).
  Measured on 1,000,000 structured passage vectors (real embeddings plus noise, real
  questions as queries): IVF2048 with nprobe 64 finds 0.9935 of the exact top 10 with a median
  of 2.1-2.8 ms a query (p95 6-7 ms) and builds in under a minute; at 100,000 vectors
  IVF512/nprobe 64 recalls 0.991.

Why IVF and not HNSW: in the same benchmark HNSW (M=32, efConstruction=80) reached recall@10
0.988 at 200,000 vectors but only 0.957 at 1,000,000 (efSearch 1024), and took 5-7 minutes
to build at 1,000,000; efConstruction 200 lifts recall (0.9955 at 200,000) at 2.5x the build
time. An IVF index can also be memory-mapped usefully: a query touches only the ``nprobe``
lists it scans, while HNSW walks its graph across the whole file, so a mapped HNSW index is
as resident as a loaded one, plus ``2 * M * 4`` bytes a vector of graph. HNSW specs stay
supported (``"hnsw"``) for measuring.

Memory-mapping: :func:`read_vector_index` with ``mmap=True`` loads the index with
``faiss.IO_FLAG_MMAP_IFC`` (faiss >= 1.9), which maps the stored vectors (flat codes, IVF
lists, HNSW storage) from the file instead of copying them to the heap (measured: 1,484 MiB
of heap for IVF2048 at 1,000,000 vectors read normally, 10 MiB mapped; the mapped pages are
page cache the OS can drop under pressure, 552 MiB of them touched by 100 queries). Search
results are identical either way; warm queries are as fast, cold ones read their lists from
disk (median 32 ms for the first 100 queries after the file's pages were dropped). The
mapped index is read-only, which is all the searcher needs (every write makes a new
generation).

Every index supports ``reconstruct(i)`` and ``reconstruct_batch(rows)``: IVF indexes get a
direct map (row -> list, offset) at build time, which is written with the index.

A spec is a plain JSON-able dict, to be recorded in the index manifest::

    {"type": "flat"}
    {"type": "ivf", "nlist": 2048, "nprobe": 64, "storage": "flat", "train_size": 81920,
     "niter": 10, "seed": 1234}
    {"type": "hnsw", "M": 32, "efConstruction": 80, "efSearch": 128, "storage": "flat"}

``storage`` may be ``"sq8"`` (8-bit scalar quantisation: 4x smaller, but vectors come back
only approximately and recall@10 tops out near 0.98: 0.9815 for IVF2048 with nprobe 128 at
1,000,000), which the defaults do not use.

>>> choose_index(50_000, 384)
{'type': 'flat'}
>>> {k: v for k, v in choose_index(1_000_000, 384).items() if k in ("type", "nlist", "nprobe")}
{'type': 'ivf', 'nlist': 2048, 'nprobe': 64}
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np

# Largest corpus searched exactly. Measured on 2 shared CPU cores (bench.scale, one thread):
# exact search takes ~7 ms a query over 100,000 384-d vectors, 13-22 ms over 200,000 and
# 83-187 ms over 1,000,000 (depending on the other load), where IVF answers in 2-3 ms at
# recall@10 0.99.
EXACT_MAX = 100_000

# Lists: the power of two nearest NLIST_FACTOR * sqrt(n).
NLIST_FACTOR = 2
# Lists scanned: nlist / NPROBE_DIVISOR, at least MIN_NPROBE. Measured recall@10 (bench.scale):
# 100,000 vectors: IVF512 nprobe 32 0.977, 64 0.991; IVF1024 nprobe 32 0.975, 64 0.994.
# 1,000,000 vectors: IVF2048 nprobe 32 0.975, 64 0.994; IVF4096 nprobe 64 0.984, 128 0.997.
NPROBE_DIVISOR = 32
MIN_NPROBE = 64
# Points per centroid in the k-means sample (faiss warns below 39).
TRAIN_POINTS_PER_LIST = 40
KMEANS_ITERATIONS = 10
SEED = 1234

HNSW_DEFAULT = {"M": 32, "efConstruction": 80, "efSearch": 128}

_TYPES = ("flat", "ivf", "hnsw")
# How faiss's write errors read, and the errno each stands for.
_WRITE_ERRORS = ((errno.ENOSPC, "No space left"), (errno.EDQUOT, "quota"), (errno.EROFS, "Read-only"),
                 (errno.EACCES, "Permission denied"))
_STORAGE = {"flat": "Flat", "sq8": "SQ8"}


def _power_of_two(x: float) -> int:
    return 1 << max(0, round(math.log2(max(1.0, x))))


def choose_index(n_vectors: int, dim: int, exact_max: int = EXACT_MAX) -> dict[str, Any]:
    """The index spec for ``n_vectors`` vectors of ``dim`` dimensions.

    Args:
        n_vectors: how many vectors the index will hold.
        dim: their dimension (recorded for the caller; the choice does not depend on it).
        exact_max: the largest count searched exactly (``IndexFlatIP``).

    Returns:
        ``{"type": "flat"}`` up to ``exact_max`` vectors, else an IVF spec whose ``nlist``
        is the power of two nearest ``2 * sqrt(n_vectors)`` (fewer when there are under
        39 vectors a list) and ``nprobe`` is ``nlist / 32``, at least 64 (at most nlist).

    Raises:
        ValueError: a negative count or a dimension below 1.
    """
    if n_vectors < 0 or dim < 1:
        raise ValueError(f"choose_index needs n_vectors >= 0 and dim >= 1; got {n_vectors}, {dim}.")
    if n_vectors <= exact_max:
        return {"type": "flat"}
    nlist = _power_of_two(NLIST_FACTOR * math.sqrt(n_vectors))
    while nlist > 1 and nlist * 39 > n_vectors:  # k-means wants 39+ training points a list
        nlist //= 2
    nprobe = min(nlist, max(MIN_NPROBE, nlist // NPROBE_DIVISOR))
    return {
        "type": "ivf",
        "nlist": nlist,
        "nprobe": nprobe,
        "storage": "flat",
        "train_size": min(n_vectors, TRAIN_POINTS_PER_LIST * nlist),
        "niter": KMEANS_ITERATIONS,
        "seed": SEED,
    }


def _check_spec(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ValueError(f"Unknown vector index type {kind!r}; valid types: {', '.join(_TYPES)}.")
    storage = spec.get("storage", "flat")
    if storage not in _STORAGE:
        raise ValueError(f"Unknown vector storage {storage!r}; valid: {', '.join(_STORAGE)}.")
    return str(kind)


def factory_string(spec: dict[str, Any]) -> str:
    """The ``faiss.index_factory`` string for ``spec`` (e.g. ``"IVF4096,Flat"``)."""
    kind = _check_spec(spec)
    storage = _STORAGE[spec.get("storage", "flat")]
    if kind == "flat":
        return "Flat"
    if kind == "ivf":
        return f"IVF{int(spec['nlist'])},{storage}"
    m = int(spec.get("M", HNSW_DEFAULT["M"]))
    return f"HNSW{m},Flat" if storage == "Flat" else f"HNSW{m}_{storage}"


def build_vector_index(vectors: np.ndarray, spec: dict[str, Any], *,
                       centroids: np.ndarray | None = None) -> faiss.Index:
    """Build the index described by ``spec`` over ``vectors`` (row i gets id i).

    Args:
        vectors: float32 ``[n, dim]``, unit rows (inner product = cosine).
        spec: from :func:`choose_index` (or hand-written, see the module docstring).
        centroids: for IVF, coarse centroids ``[nlist, dim]`` from an earlier build to reuse
            instead of running k-means (the lists are still filled from ``vectors``).

    Returns:
        The filled index, configured for search (:func:`configure_for_search`).

    Raises:
        ValueError: an unknown spec, or an IVF spec with more lists than vectors.
    """
    kind = _check_spec(spec)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array; got shape {vectors.shape}.")
    n, dim = vectors.shape
    index = faiss.index_factory(dim, factory_string(spec), faiss.METRIC_INNER_PRODUCT)
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        nlist = int(spec["nlist"])
        if centroids is not None:
            ivf.quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
            ivf.quantizer.is_trained = True
        elif n < nlist:
            raise ValueError(f"An IVF index with {nlist} lists needs at least {nlist} vectors; got {n}.")
        ivf.cp.niter = int(spec.get("niter", KMEANS_ITERATIONS))
        ivf.cp.seed = int(spec.get("seed", SEED))
        train_size = min(n, int(spec.get("train_size", TRAIN_POINTS_PER_LIST * nlist)))
        ivf.cp.max_points_per_centroid = max(1, -(-train_size // nlist))
        rng = np.random.default_rng(int(spec.get("seed", SEED)))
        sample = vectors if train_size >= n else vectors[np.sort(rng.choice(n, train_size, replace=False))]
        index.train(sample)  # trains only what is untrained (SQ ranges, or the centroids too)
    elif kind == "hnsw":
        index.hnsw.efConstruction = int(spec.get("efConstruction", HNSW_DEFAULT["efConstruction"]))
        if not index.is_trained:  # the SQ8 storage learns its value ranges
            index.train(vectors)
    if n:
        index.add(vectors)
    if kind == "ivf":
        faiss.extract_index_ivf(index).make_direct_map()  # reconstruct(i) needs it
    configure_for_search(index, spec)
    return index


def configure_for_search(index: faiss.Index, spec: dict[str, Any]) -> None:
    """Set the query-time parameters of ``spec`` (``nprobe``, ``efSearch``) on ``index``.

    Search parameters are not all stored in the index file, so call this after every
    :func:`read_vector_index`.
    """
    kind = _check_spec(spec)
    if kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(spec["nprobe"])
    elif kind == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = int(spec.get("efSearch", HNSW_DEFAULT["efSearch"]))


def write_vector_index(index: faiss.Index, path: str | Path) -> None:
    """Write ``index`` in FAISS's own format (readable by :func:`read_vector_index`).

    Raises:
        OSError: the file cannot be written (faiss reports it as a RuntimeError whose
            message names the cause: a full disk, a read-only folder).
    """
    try:
        faiss.write_index(index, str(path))
    except RuntimeError as exc:
        text = str(exc)
        code = next((c for c, words in _WRITE_ERRORS if words in text), errno.EIO)
        raise OSError(code, f"{os.strerror(code)}: {path} ({text.strip().splitlines()[-1][:200]})") from exc


def mmap_supported() -> bool:
    """Whether this faiss can map stored vectors from the file (``IO_FLAG_MMAP_IFC``)."""
    return hasattr(faiss, "IO_FLAG_MMAP_IFC")


def read_vector_index(path: str | Path, spec: dict[str, Any], *, mmap: bool = False) -> faiss.Index:
    """Read an index written by :func:`write_vector_index` and configure it for search.

    Args:
        path: the index file.
        spec: the spec it was built with (from the manifest).
        mmap: map the stored vectors from the file instead of reading them into memory
            (read-only; falls back to a plain read where faiss cannot map).
    """
    flags = faiss.IO_FLAG_MMAP_IFC if mmap and mmap_supported() else 0
    index = faiss.read_index(str(path), flags)
    configure_for_search(index, spec)
    return index
