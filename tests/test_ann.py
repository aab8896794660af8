"""The vector index chosen by size (indexer.ann): choice, recall against numpy brute force,
reconstruction, and the write/read round trip (plain and memory-mapped)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from indexer import ann

DIM = 384
N = 5_000
K = 10
EXACT_MAX = 1_000  # small, so that N is above it and gets the approximate index


def _unit(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def clustered(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around ``centres`` with a mix of spreads (uniform random unit vectors have
    no neighbourhood structure and make any approximate index look broken)."""
    rng = np.random.default_rng(seed)
    sigma = rng.choice(np.array([0.3, 0.6, 0.9]), n)[:, None]
    noise = rng.standard_normal((n, centres.shape[1])) / np.sqrt(centres.shape[1])
    return _unit(centres[rng.integers(0, len(centres), n)] + sigma * noise)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    centres = _unit(np.random.default_rng(0).standard_normal((60, DIM)))
    return clustered(N, 1, centres), clustered(100, 2, centres)  # queries are not corpus rows


@pytest.fixture(scope="module")
def spec() -> dict:
    return ann.choose_index(N, DIM, EXACT_MAX)


@pytest.fixture(scope="module")
def index(data: tuple[np.ndarray, np.ndarray], spec: dict) -> faiss.Index:
    return ann.build_vector_index(data[0], spec)


def brute_force(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :K]


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found.tolist(), exact.tolist())]))


# --- choosing ---------------------------------------------------------------------------

def test_exact_up_to_the_threshold_approximate_above() -> None:
    assert ann.choose_index(0, DIM, EXACT_MAX) == {"type": "flat"}
    assert ann.choose_index(EXACT_MAX, DIM, EXACT_MAX) == {"type": "flat"}
    above = ann.choose_index(EXACT_MAX + 1, DIM, EXACT_MAX)
    assert above["type"] == "ivf"
    assert 1 <= above["nprobe"] <= above["nlist"] <= (EXACT_MAX + 1) // 39
    assert ann.choose_index(ann.EXACT_MAX, DIM) == {"type": "flat"}
    assert ann.choose_index(ann.EXACT_MAX + 1, DIM)["type"] == "ivf"


def test_lists_grow_with_the_corpus_and_stay_powers_of_two() -> None:
    specs = [ann.choose_index(n, DIM, 0) for n in (200_000, 1_000_000, 10_000_000)]
    nlists = [s["nlist"] for s in specs]
    assert nlists == sorted(nlists) and len(set(nlists)) == 3
    assert all(n & (n - 1) == 0 for n in nlists)
    assert all(s["train_size"] >= 39 * s["nlist"] for s in specs)


def test_bad_specs_name_the_valid_values() -> None:
    with pytest.raises(ValueError, match="valid types: flat, ivf, hnsw"):
        ann.factory_string({"type": "lsh"})
    with pytest.raises(ValueError, match="valid: flat, sq8"):
        ann.factory_string({"type": "ivf", "nlist": 8, "storage": "pq"})
    with pytest.raises(ValueError):
        ann.choose_index(-1, DIM)
    with pytest.raises(ValueError, match="needs at least 64 vectors"):
        ann.build_vector_index(np.eye(8, dtype=np.float32), {"type": "ivf", "nlist": 64, "nprobe": 1})


# --- recall and reconstruction ------------------------------------------------------------

def test_approximate_index_recall_against_brute_force(
    data: tuple[np.ndarray, np.ndarray], spec: dict, index: faiss.Index
) -> None:
    vectors, queries = data
    assert index.ntotal == N and index.metric_type == faiss.METRIC_INNER_PRODUCT
    _, found = index.search(queries, K)
    # 100 queries x 10 = 1000 neighbours; the bench measures 0.98+ at 1M with these rules.
    assert recall(found, brute_force(vectors, queries)) >= 0.95


def test_flat_spec_is_exact(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    flat = ann.build_vector_index(vectors, {"type": "flat"})
    scores, found = flat.search(queries, K)
    exact = brute_force(vectors, queries)
    expected = np.take_along_axis(queries @ vectors.T, exact, axis=1)
    np.testing.assert_allclose(scores, expected, atol=1e-5)  # same scores (ties may swap ids)


def test_reconstruct_returns_the_stored_vectors(data: tuple[np.ndarray, np.ndarray],
                                                index: faiss.Index) -> None:
    vectors = data[0]
    np.testing.assert_array_equal(index.reconstruct(0), vectors[0])
    np.testing.assert_array_equal(index.reconstruct(N - 1), vectors[N - 1])
    rows = np.array([3, 4_000, 17, 3], dtype=np.int64)
    np.testing.assert_array_equal(index.reconstruct_batch(rows), vectors[rows])


@pytest.mark.parametrize("spec", [
    {"type": "hnsw", "M": 16, "efConstruction": 40, "efSearch": 64, "storage": "flat"},
    {"type": "ivf", "nlist": 64, "nprobe": 16, "storage": "sq8"},
], ids=["hnsw", "ivf-sq8"])
def test_other_supported_specs(data: tuple[np.ndarray, np.ndarray], spec: dict) -> None:
    vectors, queries = data
    index = ann.build_vector_index(vectors, spec)
    _, found = index.search(queries, K)
    assert recall(found, brute_force(vectors, queries)) >= 0.95
    rows = np.array([5, 6, 4_999], dtype=np.int64)
    if spec["storage"] == "flat":
        np.testing.assert_array_equal(index.reconstruct_batch(rows), vectors[rows])
        np.testing.assert_array_equal(index.reconstruct(5), vectors[5])
    else:  # 8 bits a dimension: the stored vector comes back approximately
        assert np.all(np.sum(index.reconstruct_batch(rows) * vectors[rows], axis=1) > 0.995)
        assert float(index.reconstruct(5) @ vectors[5]) > 0.995


def test_reused_centroids_give_the_same_lists(data: tuple[np.ndarray, np.ndarray], spec: dict,
                                               index: faiss.Index) -> None:
    vectors, queries = data
    quantizer = faiss.extract_index_ivf(index).quantizer
    again = ann.build_vector_index(vectors, spec, centroids=quantizer.reconstruct_n(0, quantizer.ntotal))
    np.testing.assert_array_equal(again.search(queries, K)[1], index.search(queries, K)[1])


# --- on disk --------------------------------------------------------------------------------

@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_write_read_round_trip(tmp_path: Path, data: tuple[np.ndarray, np.ndarray], spec: dict,
                               index: faiss.Index, mmap: bool) -> None:
    vectors, queries = data
    path = tmp_path / "chunk_vectors.faiss"
    ann.write_vector_index(index, path)
    loaded = ann.read_vector_index(path, spec, mmap=mmap)
    assert faiss.extract_index_ivf(loaded).nprobe == spec["nprobe"]
    expected_scores, expected_ids = index.search(queries, K)
    scores, ids = loaded.search(queries, K)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    rows = np.array([0, 2_500, N - 1], dtype=np.int64)
    np.testing.assert_array_equal(loaded.reconstruct_batch(rows), vectors[rows])
    np.testing.assert_array_equal(loaded.reconstruct(7), vectors[7])


def test_configure_for_search_sets_nprobe_on_a_read_index(tmp_path: Path, data: tuple[np.ndarray, np.ndarray],
                                                     spec: dict, index: faiss.Index) -> None:
    path = tmp_path / "v.faiss"
    ann.write_vector_index(index, path)
    loaded = faiss.read_index(str(path))
    ann.configure_for_search(loaded, {**spec, "nprobe": 1})
    assert faiss.extract_index_ivf(loaded).nprobe == 1
    ann.configure_for_search(loaded, spec)
    assert faiss.extract_index_ivf(loaded).nprobe == spec["nprobe"]


def test_mmap_is_available() -> None:
    """The memory-mapped load needs faiss >= 1.9 (IO_FLAG_MMAP_IFC); this venv has it."""
    assert ann.mmap_supported()
