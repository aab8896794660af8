"""The index on disk: FAISS vs brute force, round trip, checks on load, atomic writes, lock."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, replace
from pathlib import Path

import bm25s
import faiss
import numpy as np
import pytest

import indexer.store as store
from indexer.build import build_index, passage_field
from indexer.chunking import chunk_text, split_sentences
from indexer.documents import load_documents
from indexer.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from indexer.settings import ChunkingParams
from indexer.store import (
    CURRENT,
    FORMAT_VERSION,
    MANIFEST,
    corpus_hash,
    current_generation,
    load_index,
    write_lock,
)
from retrieval.searcher import Searcher
from support import FakeIndex, write_articles

REBUILD = "python -m indexer build"


# --- FAISS against numpy ----------------------------------------------------------------

class RandomEmbedder:
    """Unit vectors drawn from a generator seeded by sha256(text): unrelated texts get
    unrelated directions, identical texts identical vectors (exact ties)."""

    name = "random-unit-32"
    dimension = 32

    def encode(self, texts, *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:  # type: ignore[no-untyped-def]
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
                .standard_normal(self.dimension) for t in texts]
        rows = np.array(rows, dtype=np.float64).reshape(-1, self.dimension)
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_faiss_search_matches_numpy_brute_force(tmp_path: Path, seed: int) -> None:
    # 300 one-sentence passages; ten of them repeat one line, so their vectors tie exactly.
    lines = [f"Line {seed}-{i} of the article." for i in range(290)] + ["A repeated line."] * 10
    article = "Random vectors\n" + "\n".join(lines) + "\n"
    folder = write_articles(tmp_path / "a", {"random.txt": article})
    docs, _ = load_documents([folder])
    embedder = RandomEmbedder()
    settings = replace(_settings(tmp_path), model_name=embedder.name,
                       chunking=ChunkingParams(min_words=1, max_words=1, overlap_sentences=0))
    build_index(docs, settings, embedder)
    data = load_index(settings.index_dir)
    fields = [passage_field(docs[0].title, docs[0].text[s:e]) for _, s, e, _, _ in data.chunks.tolist()]
    assert len(fields) == 301
    vectors = embedder.encode(fields)

    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((20, embedder.dimension)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries = np.vstack([queries, embedder.encode([fields[-1]])])  # a query that ties 10 ways
    k = 10
    scores, ids = data.chunk_index.search(queries, k)
    exact = queries @ vectors.T
    for q in range(len(queries)):
        expected_scores = np.sort(exact[q])[::-1][:k]
        np.testing.assert_allclose(scores[q], expected_scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(exact[q][ids[q]], scores[q], rtol=0, atol=1e-5)
        # Every id scoring clearly above the k-th score must be returned (ties tolerated).
        must = set(np.flatnonzero(exact[q] > expected_scores[-1] + 1e-5).tolist())
        assert must <= set(ids[q].tolist())
        assert len(set(ids[q].tolist())) == k


# --- round trip -------------------------------------------------------------------------

def test_manifest_and_arrays_survive_reload(fake_index: FakeIndex) -> None:
    settings, docs, embedder = fake_index.settings, fake_index.documents, fake_index.embedder
    data = load_index(settings.index_dir)
    m = data.manifest
    assert m.format == "verbatim-index" and m.format_version == FORMAT_VERSION
    assert asdict(m.model) == {"name": embedder.name, "dimension": embedder.dimension, "normalized": True,
                               "backend": "torch"}
    assert m.chunking == settings.chunking and data.chunking == settings.chunking
    assert m.corpus.hash == corpus_hash(list(docs))
    assert list(m.sources) == [d.source for d in docs]
    assert set(m.files) >= set(store.DATA_FILES)

    # Documents come back identical, in build order.
    assert data.documents == docs

    # Sentences and chunks are exactly what the chunker produces for each document (these
    # articles end without page furniture, so every sentence is indexed).
    expected_sentences, expected_chunks, fields = [], [], []
    for row, doc in enumerate(docs):
        spans = split_sentences(doc.text)
        base = len(expected_sentences)
        expected_sentences += [(row, s.start, s.end) for s in spans]
        for chunk in chunk_text(doc.text, settings.chunking, doc.doc_id):
            lo = base + spans.index(chunk.sentences[0])
            expected_chunks.append((row, chunk.start, chunk.end, lo, lo + len(chunk.sentences)))
            fields.append(passage_field(doc.title, chunk.text))
    assert data.sentences.tolist() == [list(r) for r in expected_sentences]
    assert data.chunks.tolist() == [list(r) for r in expected_chunks]
    assert asdict(m.corpus) == {"hash": m.corpus.hash, "documents": len(docs),
                                "chunks": len(expected_chunks), "sentences": len(expected_sentences)}
    assert len(docs) < len(expected_chunks) < len(expected_sentences) + len(docs)

    for doc_row, start, end, lo, hi in data.chunks.tolist():
        text = docs[doc_row].text
        assert text[data.sentences[lo][1]:data.sentences[hi - 1][2]] == text[start:end]
        assert all(data.sentences[i][0] == doc_row for i in range(lo, hi))

    # The stored vectors are the embeddings of the passage fields and sentences.
    stored = np.vstack([data.chunk_index.reconstruct(i) for i in range(data.chunk_index.ntotal)])
    np.testing.assert_allclose(stored, embedder.encode(fields), atol=1e-6)
    sentence_texts = [docs[d].text[s:e] for d, s, e in data.sentences.tolist()]
    np.testing.assert_allclose(data.sentence_vectors, embedder.encode(sentence_texts), atol=1e-6)
    assert data.sentence_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(data.sentence_vectors, axis=1), 1.0, atol=1e-5)


def test_chunk_text_equals_source_file_slice(fake_index: FakeIndex) -> None:
    data = load_index(fake_index.settings.index_dir)
    for doc_row, start, end, _, _ in data.chunks.tolist():
        doc = data.documents[doc_row]
        source = Path(doc.source).read_bytes().decode("utf-8")
        assert source == doc.text
        assert source[start:end].strip() == source[start:end] != ""


def test_rebuild_replaces_the_generation(fake_index: FakeIndex) -> None:
    index_dir = fake_index.settings.index_dir
    first = current_generation(index_dir)
    docs = list(fake_index.documents[:1])
    result = build_index(docs, fake_index.settings, fake_index.embedder)
    assert current_generation(index_dir) == result.path != first
    assert first.exists(), "the previous generation is kept for readers that just resolved it"
    assert [d.doc_id for d in load_index(index_dir).documents] == [docs[0].doc_id]
    assert sorted(p.name for p in index_dir.iterdir() if not p.name.startswith(".")) == sorted(
        [CURRENT, first.name, result.path.name])
    third = build_index(list(fake_index.documents), fake_index.settings, fake_index.embedder)
    assert not first.exists(), "generations older than the previous one are removed"
    assert sorted(p.name for p in index_dir.iterdir() if not p.name.startswith(".")) == sorted(
        [CURRENT, result.path.name, third.path.name])


# --- refusing a bad index ---------------------------------------------------------------

def test_missing_index_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError) as info:
        load_index(tmp_path / "nowhere")
    assert f"python -m indexer build seeds --index {tmp_path / 'nowhere'}" in str(info.value)


def _edit_manifest(index_dir: Path, **changes: object) -> None:
    path = current_generation(index_dir) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # the last data bytes: size unchanged, content changed
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage, message", [
    (lambda d: _edit_manifest(d, format_version=FORMAT_VERSION + 1), "format version"),
    (lambda d: _edit_manifest(d, format="something-else"), "does not hold a Verbatim index"),
    (lambda d: _drop_manifest_key(d, "corpus"), "lacks 'corpus'"),
    (lambda d: (current_generation(d) / MANIFEST).write_text("{not json", encoding="utf-8"), "cannot be read"),
    (lambda d: (current_generation(d) / "sentences.npy").unlink(), "sentences.npy is missing"),
    (lambda d: _truncate(current_generation(d) / "chunk_vectors.faiss"), "chunk_vectors.faiss has"),
    (lambda d: _flip_last_byte(current_generation(d) / "chunks.npy"), "chunks.npy does not match its checksum"),
    (lambda d: _flip_last_byte(current_generation(d) / "documents.jsonl"), "documents.jsonl does not match"),
    (lambda d: _flip_last_byte(current_generation(d) / "sentence_vectors.npy"), "sentence_vectors.npy"),
    (lambda d: (d / CURRENT).write_text("gen-does-not-exist\n", encoding="utf-8"), "damaged"),
], ids=["format-version", "format-name", "manifest-key", "manifest-json", "missing-file", "truncated",
        "corrupt-chunks", "corrupt-documents", "corrupt-vectors", "current-dangling"])
def test_damaged_index_is_refused_with_the_rebuild_command(fake_index: FakeIndex, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    index_dir = fake_index.settings.index_dir
    damage(index_dir)
    with pytest.raises(IndexMismatchError) as info:
        load_index(index_dir)
    assert message in str(info.value)
    # The indexed articles' folder where the index still says what it holds, else the seeds
    # with a word on naming your own folders instead.
    assert (f"{REBUILD} {fake_index.folder} --index {index_dir}" in str(info.value)
            or f"{REBUILD} seeds --index {index_dir} (that indexes the example articles" in str(info.value))
    with pytest.raises(IndexMismatchError):
        Searcher.load(fake_index.settings, fake_index.embedder)


def _drop_manifest_key(index_dir: Path, key: str) -> None:
    path = current_generation(index_dir) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest[key]
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_build_command_default_index_has_no_flag() -> None:
    assert store.build_command("index") == "python -m indexer build seeds"
    assert store.build_command(Path("/x/y")) == "python -m indexer build seeds --index /x/y"


def test_build_command_names_a_folder_only_when_all_its_articles_were_indexed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("my articles/a.txt", "my articles/sub/b.md", "mixed/c.txt", "mixed/d.txt", "e.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text", encoding="utf-8")
    (tmp_path / "my articles" / "notes.csv").write_text("not an article", encoding="utf-8")
    # Every article file under "my articles" is indexed: the folder. Only c.txt of "mixed":
    # the file. A file in the working directory: the file, never ".". Gone: the file.
    sources = ["my articles/a.txt", "my articles/sub/b.md", "mixed/c.txt", "e.txt", "/gone/f.txt"]
    assert (store.build_command("my index", sources)
            == "python -m indexer build e.txt /gone/f.txt mixed/c.txt 'my articles' --index 'my index'")


def test_rebuild_hint_names_the_indexed_articles(fake_index: FakeIndex) -> None:
    hint = store.rebuild_hint(fake_index.settings.index_dir)
    assert hint == f"Rebuild it with: python -m indexer build {fake_index.folder} --index {fake_index.settings.index_dir}"


def test_rebuild_hint_without_an_index_falls_back_to_the_seeds_with_a_caveat(tmp_path: Path) -> None:
    hint = store.rebuild_hint(tmp_path / "nowhere")
    assert hint.startswith(f"Rebuild it with: python -m indexer build seeds --index {tmp_path / 'nowhere'} (")
    assert "name your own articles' folders instead" in hint


# --- atomic writes ----------------------------------------------------------------------

class InjectedFailure(BaseException):
    """Raised from inside write_index; a BaseException, like KeyboardInterrupt."""


def _boom(*args: object, **kwargs: object) -> None:
    raise InjectedFailure("disk full")


@pytest.mark.parametrize("target", ["np.save", "faiss.write_index", "bm25s.BM25.save"])
def test_failed_write_keeps_the_previous_index(
    fake_index: FakeIndex, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    before = current_generation(settings.index_dir)
    question = "Where do emperor penguins breed?"
    expected = Searcher.load(settings, embedder).ask(question).to_json()

    owner, _, name = target.rpartition(".")
    monkeypatch.setattr({"np": np, "faiss": faiss, "bm25s.BM25": bm25s.BM25}[owner], name, _boom)
    with pytest.raises(InjectedFailure):
        build_index(fake_index.documents[:1], settings, embedder)
    monkeypatch.undo()

    assert current_generation(settings.index_dir) == before
    leftovers = [p.name for p in settings.index_dir.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    assert [p.name for p in settings.index_dir.glob("gen-*")] == [before.name]
    searcher = Searcher.load(settings, embedder)
    assert len(searcher.index.documents) == len(fake_index.documents)
    assert searcher.ask(question).to_json() == expected


def test_searcher_loaded_before_a_rebuild_keeps_working(fake_index: FakeIndex) -> None:
    searcher = Searcher.load(fake_index.settings, fake_index.embedder)
    before = searcher.ask("Where do emperor penguins breed?").to_json()
    others = [d for d in fake_index.documents if d.doc_id != "penguins"]
    build_index(others, fake_index.settings, fake_index.embedder)
    # The old generation's files are deleted, but the loaded (memory-mapped) arrays still work.
    assert searcher.ask("Where do emperor penguins breed?").to_json() == before
    fresh = Searcher.load(fake_index.settings, fake_index.embedder)
    assert {d.doc_id for d in fresh.index.documents} == {d.doc_id for d in others}


# --- the writer lock --------------------------------------------------------------------

def test_second_writer_times_out_while_the_lock_is_held(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with write_lock(index_dir):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(IndexLockedError, match="Another process is writing the index"):
            with write_lock(index_dir, wait_seconds=0.3):
                pass
    finally:
        release.set()
        holder.join(10)
    with write_lock(index_dir, wait_seconds=0.3):  # free again once released
        pass


def test_build_refused_while_another_writer_holds_the_lock(fake_index: FakeIndex, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fake_index.settings
    before = current_generation(settings.index_dir)
    real_lock = store.write_lock
    monkeypatch.setattr("indexer.build.write_lock", lambda d: real_lock(d, wait_seconds=0.2))
    with write_lock(settings.index_dir):
        with pytest.raises(IndexLockedError):
            build_index(fake_index.documents, settings, fake_index.embedder)
    assert current_generation(settings.index_dir) == before
    load_index(settings.index_dir)


def test_build_refuses_duplicate_ids_and_empty_text(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    folder = write_articles(tmp_path / "a", {"one.txt": "Some text here."})
    docs, _ = load_documents([folder])
    settings = replace(_settings(tmp_path), model_name=fake_embedder.name)
    with pytest.raises(ValueError, match="unique"):
        build_index(docs + docs, settings, fake_embedder)
    blank = replace(docs[0], text=" \n ")
    with pytest.raises(ValueError, match="no text"):
        build_index([blank], settings, fake_embedder)
    assert not (settings.index_dir / CURRENT).exists()


def _settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    from indexer.settings import Settings

    return Settings(index_dir=tmp_path / "index", model_path=None)


def test_corpus_without_bm25_terms_still_builds(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    folder = write_articles(tmp_path / "a", {"short.txt": "It is.\nA b c.\n"})
    docs, skipped = load_documents([folder])
    assert docs and not skipped
    settings = replace(_settings(tmp_path), model_name=fake_embedder.name)
    build_index(docs, settings, fake_embedder)
    hits = Searcher.load(settings, fake_embedder).ask("What is it?").hits
    assert hits and hits[0].doc_id == "short"
