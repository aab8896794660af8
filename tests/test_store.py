"""The local store on disk (format 3): FAISS and BM25 against references, round trip,
checks on load, generations and segments, the merge policy, atomic writes, the lock."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, replace
from pathlib import Path

import faiss
import numpy as np
import pytest

import indexer.stores.local as local
from indexer.build import PASSAGE_FIELD, build_index, passage_field
from indexer.chunking import chunk_text, sentence_kinds, split_sentences
from indexer.documents import load_documents
from indexer.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from indexer.lexical import build_bm25
from indexer.manifest import FORMAT_VERSION
from indexer.settings import ChunkingParams, Settings
from indexer.stores import open_store
from indexer.stores.base import Store, document_key, passage_id, sentence_id
from indexer.stores.folder import CURRENT, MANIFEST, build_command, read_pointer, rebuild_hint, write_lock
from indexer.stores.local import MAX_REMOVED_SHARE, MAX_SEGMENTS, SEGMENT_FILES, SEGMENT_MANIFEST, LocalStore
from indexer.types import Document
from indexer.update import add_documents, remove_documents
from retrieval.query import prepare
from retrieval.searcher import Searcher
from support import FAKE_CHUNKING, FakeEmbedder, FakeIndex, run_module, store_answers, write_articles

REBUILD = "python -m indexer build"


def _live(index_dir: Path) -> Path:
    """The folder of the generation ``CURRENT`` names."""
    name = read_pointer(index_dir)
    assert name is not None
    return index_dir / name


def _segments(index_dir: Path) -> list[Path]:
    """The segment folders the live generation lists, in its order."""
    return [index_dir / s.name for s in LocalStore(index_dir).manifest.segments]


def _entries(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.iterdir() if not p.name.startswith(".")}


def _file_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Inode, mtime (ns) and size of every file under ``folder``: unchanged means not rewritten."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _doc(doc_id: str, text: str) -> Document:
    body = f"Title {doc_id}\n\n{text}"
    return Document(doc_id=doc_id, title=f"Title {doc_id}", source=f"{doc_id}.txt", text=body,
                    sha256=hashlib.sha256(body.encode()).hexdigest())


def _settings(index_dir: Path, **changes: object) -> Settings:
    return replace(Settings(index_dir=index_dir, model_path=None, model_name=FakeEmbedder().name,
                            chunking=FAKE_CHUNKING), **changes)  # type: ignore[arg-type]


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


@pytest.mark.parametrize("layout", ["one-segment", "segments-and-removal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_search_matches_numpy_brute_force(tmp_path: Path, seed: int, layout: str) -> None:
    # 300 one-sentence passages; ten of them repeat one line, so their vectors tie exactly.
    lines = [f"Line {seed}-{i} of the article." for i in range(290)] + ["A repeated line."] * 10
    parts = [lines] if layout == "one-segment" else [lines[:100], lines[100:200], lines[200:]]
    articles = {f"random{n}.txt": "Random vectors\n" + "\n".join(p) + "\n" for n, p in enumerate(parts)}
    folder = write_articles(tmp_path / "a", articles)
    docs, _ = load_documents([folder])
    embedder = RandomEmbedder()
    settings = replace(_settings(tmp_path / "index"), model_name=embedder.name,
                       chunking=ChunkingParams(min_words=1, max_words=1, overlap_sentences=0))
    removed_key = None
    if layout == "one-segment":
        build_index(docs, settings, embedder)
    else:  # three segments, and a small article added with the last one and removed again
        extra = _doc("extra", "\n".join(f"Extra line {seed}-{i}." for i in range(8)))
        add_documents(docs[:1], settings, embedder)
        add_documents(docs[1:2], settings, embedder)
        add_documents([docs[2], extra], settings, embedder)
        removed_key = document_key(extra.doc_id, extra.sha256)
        remove_documents([extra.doc_id], settings, embedder)
    store = LocalStore(settings.index_dir)
    manifest = store.manifest
    if layout == "one-segment":
        assert len(manifest.segments) == 1
    else:
        assert len(manifest.segments) == 3 and [len(s.removed) for s in manifest.segments] == [0, 0, 1]
    stored = store.stored_documents()
    ids = [p.passage_id for d in stored for p in d.passages]
    fields = [passage_field(d.document.title, d.document.text[p.start:p.end]) for d in stored for p in d.passages]
    assert len(ids) == len(set(ids)) == 300 + len(parts)  # every line, and each article's title line
    vectors = embedder.encode(fields)

    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((20, embedder.dimension)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries = np.vstack([queries, embedder.encode([fields[-1]])])  # a query that ties 10 ways
    if removed_key is not None:  # a query nearest to a removed passage
        queries = np.vstack([queries, embedder.encode([f"Title extra\nExtra line {seed}-3."])])
    k = 10
    exact = queries @ vectors.T
    for q in range(len(queries)):
        found = store.dense_search(queries[q], k)
        got_ids = [pid for pid, _ in found]
        scores = np.array([s for _, s in found])
        expected_scores = np.sort(exact[q])[::-1][:k]
        np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-5)
        rows = [ids.index(pid) for pid in got_ids]  # a removed passage would not be found here
        np.testing.assert_allclose(exact[q][rows], scores, rtol=0, atol=1e-5)
        # Every passage scoring clearly above the k-th score must be returned (ties tolerated).
        must = {ids[i] for i in np.flatnonzero(exact[q] > expected_scores[-1] + 1e-5)}
        assert must <= set(got_ids)
        assert len(set(got_ids)) == k and list(scores) == sorted(scores, reverse=True)
        assert removed_key is None or not any(pid.startswith(removed_key) for pid in got_ids)


def test_ties_are_broken_by_id_whatever_the_segments(tmp_path: Path) -> None:
    """Passages that score exactly alike come in id order, in a fresh build and across
    segments alike (ids such as "a@…" and "a0@…" sort otherwise than the rows they are in)."""
    embedder = FakeEmbedder()
    docs = []
    for n, doc_id in enumerate(["a", "a0", "a1", "a2"]):  # the same passage, four documents
        body = "Same news\n\nThe same words are here." + " " * n
        docs.append(Document(doc_id, "Same news", f"{doc_id}.txt", body, hashlib.sha256(body.encode()).hexdigest()))
    fresh = _settings(tmp_path / "fresh")
    build_index(docs, fresh, embedder)
    split = _settings(tmp_path / "split")
    add_documents(docs[:2], split, embedder)
    add_documents(docs[2:], split, embedder)
    stores = [LocalStore(fresh.index_dir), LocalStore(split.index_dir)]
    assert [len(s.manifest.segments) for s in stores] == [1, 2]
    pids = sorted(p.passage_id for d in stores[0].stored_documents() for p in d.passages)
    assert len(pids) == 4 and pids[0].startswith("a0@") and pids[-1].startswith("a@")
    vector, lexical = embedder.encode(["The same words"])[0], prepare("same words").lexical
    for store in stores:
        for k in range(1, 5):
            dense, bm25 = store.dense_search(vector, k), store.lexical_search(lexical, k)
            assert [pid for pid, _ in dense] == [pid for pid, _ in bm25] == pids[:k]
            assert len({s for _, s in dense}) == len({s for _, s in bm25}) == 1, "exact ties"


# --- BM25 against bm25s -----------------------------------------------------------------

def test_bm25_matches_the_bm25s_reference_across_segments_and_removals(fake_index: FakeIndex) -> None:
    """Lucene BM25 over the postings of all live segments equals bm25s's over the live
    passages (and sentences) as one corpus: the statistics are the whole index's."""
    settings, embedder = fake_index.settings, fake_index.embedder
    add_documents([_doc("x", "The penguins of the zoo swam in the cold pool. Keepers fed them fish."),
                   _doc("y", "Iceland's volcano calmed down on Friday. Lava stopped flowing.")],
                  settings, embedder)
    add_documents([_doc("z", "A chess club for penguins fans opened in Geneva near the lake.")], settings, embedder)
    remove_documents(["chess"], settings, embedder)
    store = LocalStore(settings.index_dir)
    assert len(store.manifest.segments) == 3 and store.manifest.segments[0].removed, "rows are only marked removed"
    stored = store.stored_documents()
    assert "chess" not in {d.document.doc_id for d in stored}
    pids = [p.passage_id for d in stored for p in d.passages]
    sids = [s.sentence_id for d in stored for s in d.sentences]
    passages = build_bm25([p.field_text for d in stored for p in d.passages])
    sentences = build_bm25([s.text for d in stored for s in d.sentences])
    for question in ("Where do the penguins swim?", "volcano lava Iceland Friday", "chess Geneva tournament",
                     "fish fish penguins", "nothing matches qqq"):
        lexical = prepare(question).lexical
        terms = list(lexical.terms)
        reference = passages.get_scores(terms) if terms else np.zeros(len(pids))
        np.testing.assert_allclose(store.passage_bm25(lexical, pids), reference, rtol=0, atol=1e-5)
        reference_s = sentences.get_scores(terms) if terms else np.zeros(len(sids))
        np.testing.assert_allclose(store.sentence_bm25(lexical, sids), reference_s, rtol=0, atol=1e-5)
        found = store.lexical_search(lexical, 5)
        positive = np.flatnonzero(reference > 0)
        assert len(found) == min(5, len(positive))
        expected = np.sort(reference[positive])[::-1][:5]
        np.testing.assert_allclose([s for _, s in found], expected, rtol=0, atol=1e-5)
        for pid, score in found:
            assert abs(reference[pids.index(pid)] - score) < 1e-5
        counts = store.term_counts(lexical)
        assert counts.rows == len(pids)
        assert counts.df.tolist() == [sum(t in toks for toks in _analysed(stored)) for t in terms]
    # The removed article's words count nowhere.
    assert store.term_counts(prepare("grandmaster").lexical).df.tolist() == [0.0]
    assert store.lexical_search(prepare("grandmaster").lexical, 5) == []


def _analysed(stored) -> list[set[str]]:  # type: ignore[no-untyped-def]
    from indexer.lexical import analyze

    return [set(t) for t in analyze([p.field_text for d in stored for p in d.passages])]


# --- round trip -------------------------------------------------------------------------

def test_manifest_rows_and_vectors_survive_reload(fake_index: FakeIndex) -> None:
    settings, docs, embedder = fake_index.settings, fake_index.documents, fake_index.embedder
    store = open_store(settings)
    assert isinstance(store, LocalStore) and isinstance(store, Store)
    m = store.manifest
    assert m.format == "verbatim-index" and m.format_version == FORMAT_VERSION == 3
    assert asdict(m.model) == {"name": embedder.name, "dimension": embedder.dimension, "normalized": True,
                               "backend": "torch"}
    assert m.chunking == settings.chunking and m.passage_field == PASSAGE_FIELD
    assert len(m.segments) == 1 and m.segments[0].removed == ()
    segment = settings.index_dir / m.segments[0].name
    seg_manifest = json.loads((segment / SEGMENT_MANIFEST).read_text(encoding="utf-8"))
    assert set(seg_manifest["files"]) == set(SEGMENT_FILES) == {p.name for p in segment.iterdir()} - {SEGMENT_MANIFEST}
    assert m.segments[0].checksum == hashlib.sha256((segment / SEGMENT_MANIFEST).read_bytes()).hexdigest()

    # Documents come back identical; their metadata sorted by id.
    assert [store.document(d.doc_id) for d in docs] == list(docs)
    assert store.document("nope") is None
    infos = store.document_infos()
    assert [i.doc_id for i in infos] == sorted(d.doc_id for d in docs)
    by_id = {d.doc_id: d for d in docs}
    for info in infos:
        d = by_id[info.doc_id]
        assert (info.title, info.source, info.sha256, info.chars, info.url, info.date, info.note) == (
            d.title, d.source, d.sha256, len(d.text), d.url, d.date, d.note)
        assert info.offsets_in == "file"

    # Sentences and passages are exactly what the chunker produces for each document (these
    # articles end without page furniture, so every sentence is indexed); ids follow from
    # the document's content hash and the spans.
    total_p = total_s = 0
    for d in docs:
        key = document_key(d.doc_id, d.sha256)
        spans = split_sentences(d.text)
        kinds = sentence_kinds(d.text, spans, d.title)
        chunks = chunk_text(d.text, settings.chunking, d.doc_id)
        pids = [passage_id(key, c.start, c.end) for c in chunks]
        passages = store.passages(pids)
        assert [p.passage_id for p in passages] == pids
        assert len(chunks) > 1
        for chunk, p in zip(chunks, passages):
            assert (p.doc_id, p.title, p.start, p.end, p.text) == (d.doc_id, d.title, chunk.start, chunk.end,
                                                                    d.text[chunk.start:chunk.end])
            assert [(s.start, s.end) for s in p.sentences] == [(s.start, s.end) for s in chunk.sentences]
            assert [s.sentence_id for s in p.sentences] == [sentence_id(key, s.start, s.end) for s in chunk.sentences]
            assert [s.kind for s in p.sentences] == [kinds[spans.index(s)] for s in chunk.sentences]
            assert p.sentence_texts == tuple(d.text[s.start:s.end] for s in chunk.sentences)
            # The stored vectors are the embeddings of the passage field and the sentences.
            np.testing.assert_allclose(p.vector, embedder.encode([passage_field(d.title, chunk.text)])[0], atol=1e-6)
            np.testing.assert_allclose(p.sentence_vectors, embedder.encode(list(p.sentence_texts)), atol=1e-6)
            assert p.vector.dtype == p.sentence_vectors.dtype == np.float32
            np.testing.assert_allclose(np.linalg.norm(p.sentence_vectors, axis=1), 1.0, atol=1e-5)
        assert store.headings(d.doc_id) == tuple((s.start, s.end) for s, k in zip(spans, kinds) if k != 0)
        assert store.headings(d.doc_id), "every synthetic article has a title line"
        total_p += len(chunks)
        total_s += len(spans)
    assert (m.documents, m.passages, m.sentences) == (len(docs), total_p, total_s)
    assert (store.info.documents, store.info.passages, store.info.sentences) == (len(docs), total_p, total_s)
    assert len(docs) < total_p < total_s + len(docs)
    # Stored vectors are reusable by id; unknown ids are left out.
    last = passages[-1]
    found = store.vectors(["not an id", passage_id("gone@000000000000", 0, 1), passage_id(key, 0, 1),
                           last.passage_id, last.sentences[0].sentence_id])
    assert list(found) == [last.passage_id, last.sentences[0].sentence_id]
    np.testing.assert_array_equal(found[last.passage_id], last.vector)
    np.testing.assert_array_equal(found[last.sentences[0].sentence_id], last.sentence_vectors[0])
    # A second store opened on the same folder answers exactly the same.
    assert store_answers(LocalStore(settings.index_dir), embedder) == store_answers(store, embedder)


def test_passage_text_equals_source_file_slice(fake_index: FakeIndex) -> None:
    store = LocalStore(fake_index.settings.index_dir)
    for stored in store.stored_documents():
        source = Path(stored.document.source).read_bytes().decode("utf-8")
        assert source == stored.document.text
        for p in store.passages([q.passage_id for q in stored.passages]):
            assert source[p.start:p.end] == p.text and p.text.strip() == p.text != ""


def test_rebuild_replaces_the_generation_and_keeps_the_previous(fake_index: FakeIndex) -> None:
    index_dir = fake_index.settings.index_dir
    first, (first_seg,) = _live(index_dir), _segments(index_dir)
    docs = list(fake_index.documents[:1])
    build_index(docs, fake_index.settings, fake_index.embedder)
    second, (second_seg,) = _live(index_dir), _segments(index_dir)
    assert second != first and second_seg != first_seg
    assert first.exists() and first_seg.exists(), "the previous generation is kept for readers that just opened it"
    assert [d.doc_id for d in LocalStore(index_dir).document_infos()] == [docs[0].doc_id]
    assert _entries(index_dir) == {CURRENT, first.name, second.name, first_seg.name, second_seg.name}
    build_index(list(fake_index.documents), fake_index.settings, fake_index.embedder)
    third, (third_seg,) = _live(index_dir), _segments(index_dir)
    assert not first.exists() and not first_seg.exists(), "generations older than the previous one are removed"
    assert _entries(index_dir) == {CURRENT, second.name, third.name, second_seg.name, third_seg.name}


def test_an_open_store_answers_from_what_it_opened(fake_index: FakeIndex) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    store = LocalStore(settings.index_dir)
    before, version = store_answers(store, embedder), store.version()
    add_documents([_doc("x", "Penguins breed on sea ice too, said another report.")], settings, embedder)
    assert store.version() != version, "version() is read afresh"
    assert store_answers(store, embedder) == before
    store.reopen()
    assert "x" in {d.doc_id for d in store.document_infos()}


# --- refusing a bad index ---------------------------------------------------------------

def test_missing_index_names_the_build_command(tmp_path: Path) -> None:
    for attempt in (lambda s: s.info, lambda s: s.version(), lambda s: s.document_infos(), lambda s: s.verify()):
        with pytest.raises(IndexNotFoundError) as info:
            attempt(LocalStore(tmp_path / "nowhere"))
        assert f"python -m indexer build seeds --index {tmp_path / 'nowhere'}" in str(info.value)


def _edit_manifest(index_dir: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = _live(index_dir) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _seg(index_dir: Path) -> Path:
    return _segments(index_dir)[0]


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # the last data bytes: size unchanged, content changed
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


@pytest.mark.parametrize("damage, message", [
    (lambda d: _edit_manifest(d, lambda m: m.update(format_version=FORMAT_VERSION + 1)), "format version 4"),
    (lambda d: _edit_manifest(d, lambda m: m.update(format="something-else")), "does not hold a Verbatim index"),
    (lambda d: _edit_manifest(d, lambda m: m.pop("segments")), "lacks 'segments'"),
    (lambda d: (_live(d) / MANIFEST).write_text("{not json", encoding="utf-8"), "cannot be read"),
    (lambda d: (_seg(d) / "sentences.npy").unlink(), "sentences.npy is missing"),
    (lambda d: _truncate(_seg(d) / "passage_vectors.faiss"), "passage_vectors.faiss has"),
    (lambda d: _flip_last_byte(_seg(d) / "passages.npy"), "passages.npy does not match its checksum"),
    (lambda d: _flip_last_byte(_seg(d) / "documents.jsonl"), "documents.jsonl does not match its checksum"),
    (lambda d: _flip_last_byte(_seg(d) / "texts.bin"), "texts.bin does not match its checksum"),
    (lambda d: _flip_last_byte(_seg(d) / "sentence_vectors.npy"), "sentence_vectors.npy does not match"),
    (lambda d: _flip_last_byte(_seg(d) / "passage_terms.rows.npy"), "passage_terms.rows.npy does not match"),
    (lambda d: _flip_last_byte(_seg(d) / SEGMENT_MANIFEST), "segment.json does not match its checksum"),
    (lambda d: _rmtree(_seg(d)), "is missing"),
    (lambda d: (d / CURRENT).write_text("gen-does-not-exist\n", encoding="utf-8"), "damaged"),
    (lambda d: (d / CURRENT).write_bytes(b"garbage \x00\x01\n"), "not the name of a generation"),
    (lambda d: (d / CURRENT).unlink(), "CURRENT file is missing"),
], ids=["format-version", "format-name", "manifest-key", "manifest-json", "missing-file", "truncated",
        "corrupt-passages", "corrupt-documents", "corrupt-texts", "corrupt-vectors", "corrupt-postings",
        "corrupt-segment-manifest", "segment-deleted", "current-dangling", "current-garbage", "current-missing"])
def test_damaged_index_is_refused_with_the_rebuild_command(fake_index: FakeIndex, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    index_dir = fake_index.settings.index_dir
    damage(index_dir)
    for attempt in (lambda: LocalStore(index_dir).document_infos(), lambda: LocalStore(index_dir).verify(),
                    lambda: Searcher.load(fake_index.settings, fake_index.embedder).ask("penguins")):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert message in str(info.value)
        # The indexed articles' folder where the index still says what it holds, else the
        # seeds with a word on naming your own folders instead.
        assert (f"{REBUILD} {fake_index.folder} --index {index_dir}" in str(info.value)
                or f"{REBUILD} seeds --index {index_dir} (that indexes the example articles" in str(info.value))


def test_checksums_are_checked_on_load_up_to_a_size_and_always_by_verify(
        fake_index: FakeIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    index_dir = fake_index.settings.index_dir
    _flip_last_byte(_seg(index_dir) / "texts.bin")  # same size, other content
    with pytest.raises(IndexMismatchError, match="texts.bin does not match its checksum"):
        LocalStore(index_dir).document_infos()
    monkeypatch.setattr(local, "FULL_CHECK_BYTES", 0)  # as if the index were large: sizes only
    assert len(LocalStore(index_dir).document_infos()) == len(fake_index.documents)
    with pytest.raises(IndexMismatchError, match="texts.bin does not match its checksum"):
        LocalStore(index_dir).verify()
    _truncate(_seg(index_dir) / "sentence_vectors.npy")  # sizes are checked at any size
    with pytest.raises(IndexMismatchError, match="sentence_vectors.npy has"):
        LocalStore(index_dir).document_infos()


def test_build_command_default_index_has_no_flag() -> None:
    assert build_command("index") == "python -m indexer build seeds"
    assert build_command(Path("/x/y")) == "python -m indexer build seeds --index /x/y"


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
    assert (build_command("my index", sources)
            == "python -m indexer build e.txt /gone/f.txt mixed/c.txt 'my articles' --index 'my index'")


def test_rebuild_hint_names_the_indexed_articles(fake_index: FakeIndex) -> None:
    index_dir = fake_index.settings.index_dir
    expected = f"Rebuild it with: python -m indexer build {fake_index.folder} --index {index_dir}"
    assert rebuild_hint(index_dir) == expected
    # Across segments, and without the removed articles: only penguins and volcano are left
    # of the folder, so the hint names their files.
    add_documents([_doc("x", "Another article about penguins and their eggs on the ice.")], fake_index.settings,
                  fake_index.embedder)
    remove_documents(["chess", "x"], fake_index.settings, fake_index.embedder)
    hint = rebuild_hint(index_dir)
    assert hint == (f"Rebuild it with: python -m indexer build {fake_index.folder / 'penguins.txt'} "
                    f"{fake_index.folder / 'volcano.txt'} --index {index_dir}")


def test_rebuild_hint_without_an_index_falls_back_to_the_seeds_with_a_caveat(tmp_path: Path) -> None:
    hint = rebuild_hint(tmp_path / "nowhere")
    assert hint.startswith(f"Rebuild it with: python -m indexer build seeds --index {tmp_path / 'nowhere'} (")
    assert "name your own articles' folders instead" in hint


# --- segments: the merge policy and compaction ------------------------------------------

BIG = " ".join(f"Report line {i} says the harbour handled {i} ships this week." for i in range(60))


def test_more_than_max_segments_merge_the_small_ones_and_keep_the_large_one(tmp_path: Path) -> None:
    settings, embedder = _settings(tmp_path / "index"), FakeEmbedder()
    docs = [_doc("big", BIG)]
    add_documents(docs, settings, embedder)
    (big,) = _segments(settings.index_dir)
    big_files = _file_state(big)
    big_passages = LocalStore(settings.index_dir).info.passages
    for n in range(MAX_SEGMENTS):  # tiny articles, one segment each, until the limit
        docs.append(_doc(f"t{n:02d}", f"Tiny note {n}."))
        add_documents(docs[-1:], settings, embedder)
        segs = _segments(settings.index_dir)
        if n < MAX_SEGMENTS - 1:
            assert len(segs) == n + 2 and segs[0] == big
    # The add that would make MAX_SEGMENTS + 1: the small ones join the new one, the large
    # one stays as it is (not rewritten).
    assert (MAX_SEGMENTS - 1) * 4 <= big_passages, "the small segments are small beside the large one"
    segs = _segments(settings.index_dir)
    assert len(segs) == 2 and segs[0] == big and _file_state(big) == big_files
    merged = LocalStore(settings.index_dir).segments[1]
    assert sorted(d["doc_id"] for d in merged.docs) == [f"t{n:02d}" for n in range(MAX_SEGMENTS)]
    fresh = _settings(tmp_path / "fresh")
    build_index(docs, fresh, embedder)
    assert (store_answers(LocalStore(settings.index_dir), embedder)
            == store_answers(LocalStore(fresh.index_dir), embedder))


def test_alike_segments_merge_into_one(tmp_path: Path) -> None:
    settings, embedder = _settings(tmp_path / "index"), FakeEmbedder()
    docs = [_doc(f"n{n:02d}", f"News item {n} about the town council and its budget for year {n}.")
            for n in range(MAX_SEGMENTS + 1)]
    for d in docs:
        add_documents([d], settings, embedder)
    store = LocalStore(settings.index_dir)
    assert len(store.manifest.segments) == 1 and len(store.segments[0].docs) == len(docs)
    fresh = _settings(tmp_path / "fresh")
    build_index(docs, fresh, embedder)
    assert store_answers(store, embedder) == store_answers(LocalStore(fresh.index_dir), embedder)


def test_removing_a_large_share_compacts(tmp_path: Path) -> None:
    settings, embedder = _settings(tmp_path / "index"), FakeEmbedder()
    docs = [_doc(k, f"Story {k} about the river {k} and the bridge over it, built in the year 19{n}0.")
            for n, k in enumerate("abcdefgh")]
    add_documents(docs[:4], settings, embedder)
    add_documents(docs[4:], settings, embedder)
    segs = _segments(settings.index_dir)
    remove_documents(["a"], settings, embedder)  # 1 of 8 alike articles: under the share
    store = LocalStore(settings.index_dir)
    assert _segments(settings.index_dir) == segs and [len(s.removed) for s in store.manifest.segments] == [1, 0]
    remove_documents(["b", "c"], settings, embedder)  # 3 of 8: over MAX_REMOVED_SHARE
    assert 3 / 8 > MAX_REMOVED_SHARE
    store = LocalStore(settings.index_dir)
    assert [len(s.removed) for s in store.manifest.segments] == [0]
    assert sorted(d["doc_id"] for d in store.segments[0].docs) == list("defgh")
    fresh = _settings(tmp_path / "fresh")
    build_index(docs[3:], fresh, embedder)
    assert store_answers(store, embedder) == store_answers(LocalStore(fresh.index_dir), embedder)


def test_compact_gives_one_segment_with_the_same_answers(tmp_path: Path) -> None:
    settings, embedder = _settings(tmp_path / "index"), FakeEmbedder()
    docs = [_doc(k, f"Story {k} about the river {k} and the bridge over it, built in the year 19{n}0.")
            for n, k in enumerate("abcdefgh")]
    for n in range(0, 8, 2):
        add_documents(docs[n:n + 2], settings, embedder)
    add_documents([_doc("c", "The river c story was corrected.")], settings, embedder)
    remove_documents(["e"], settings, embedder)
    store = LocalStore(settings.index_dir)
    assert len(store.manifest.segments) == 5 and sum(len(s.removed) for s in store.manifest.segments) == 2
    before = store_answers(store, embedder)
    store.compact()
    assert len(store.manifest.segments) == 1 and store.manifest.segments[0].removed == ()
    assert len(list(settings.index_dir.glob("seg-*"))) == 1 + 5, "the previous generation's segments stay"
    assert store_answers(store, embedder) == before
    final = [d for d in docs if d.doc_id not in "ce"] + [_doc("c", "The river c story was corrected.")]
    fresh = _settings(tmp_path / "fresh")
    build_index(final, fresh, embedder)
    assert store_answers(LocalStore(fresh.index_dir), embedder) == before
    # The command line: compacting one clean segment again changes nothing.
    done = run_module("indexer", "compact", "--index", str(settings.index_dir))
    assert done.returncode == 0 and "already one segment" in done.stdout, done.stderr
    assert store_answers(LocalStore(settings.index_dir), embedder) == before


# --- atomic writes ----------------------------------------------------------------------

class InjectedFailure(BaseException):
    """Raised from inside a write; a BaseException, like KeyboardInterrupt."""


def _boom(*args: object, **kwargs: object) -> None:
    raise InjectedFailure("disk full")


@pytest.mark.parametrize("operation", ["rebuild", "add"])
@pytest.mark.parametrize("target", ["np.save", "faiss.write_index", "local.Postings.save", "local.fsync_tree",
                                    "os.rename", "local.write_pointer"])
def test_failed_write_keeps_the_previous_index(fake_index: FakeIndex, monkeypatch: pytest.MonkeyPatch,
                                               target: str, operation: str) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    before, segs = _live(settings.index_dir), _segments(settings.index_dir)
    question = "Where do emperor penguins breed?"
    expected = Searcher.load(settings, embedder).ask(question).to_json()
    answers = store_answers(LocalStore(settings.index_dir), embedder)

    owner, _, name = target.rpartition(".")
    monkeypatch.setattr({"np": np, "faiss": faiss, "local.Postings": local.Postings, "local": local,
                         "os": os}[owner], name, _boom)
    with pytest.raises(InjectedFailure):
        if operation == "rebuild":
            build_index(fake_index.documents[:1], settings, embedder)
        else:
            add_documents([_doc("x", "Penguins breed again, a new report said.")], settings, embedder)
    monkeypatch.undo()

    assert _live(settings.index_dir) == before
    assert [p.name for p in settings.index_dir.iterdir() if ".tmp" in p.name] == []
    assert _entries(settings.index_dir) == {CURRENT, before.name, *(s.name for s in segs)}
    assert Searcher.load(settings, embedder).ask(question).to_json() == expected
    assert store_answers(LocalStore(settings.index_dir), embedder) == answers
    LocalStore(settings.index_dir).verify()


def test_searcher_loaded_before_rebuilds_keeps_working(fake_index: FakeIndex) -> None:
    settings = fake_index.settings
    searcher = Searcher.load(settings, fake_index.embedder)
    before = searcher.ask("Where do emperor penguins breed?").to_json()
    (first,) = _segments(settings.index_dir)
    others = [d for d in fake_index.documents if d.doc_id != "penguins"]
    build_index(others, settings, fake_index.embedder)
    build_index(others[:1], settings, fake_index.embedder)
    assert not first.exists(), "the searcher's segment was deleted"
    # The loaded (memory-mapped) files still work.
    assert searcher.ask("Where do emperor penguins breed?").to_json() == before
    fresh = Searcher.load(settings, fake_index.embedder)
    assert [d.doc_id for d in fresh.store.document_infos()] == [others[0].doc_id]


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


@pytest.mark.parametrize("operation", ["build", "add", "remove", "compact"])
def test_writes_refused_while_another_writer_holds_the_lock(fake_index: FakeIndex, monkeypatch: pytest.MonkeyPatch,
                                                            operation: str) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    before = _live(settings.index_dir)
    answers = store_answers(LocalStore(settings.index_dir), embedder)
    real_lock = local.write_lock
    monkeypatch.setattr(local, "write_lock", lambda d: real_lock(d, wait_seconds=0.2))
    run = {"build": lambda: build_index(fake_index.documents, settings, embedder),
           "add": lambda: add_documents([_doc("x", "Some new words here.")], settings, embedder),
           "remove": lambda: remove_documents(["chess"], settings, embedder),
           "compact": lambda: LocalStore(settings.index_dir).compact()}[operation]
    with write_lock(settings.index_dir):
        with pytest.raises(IndexLockedError, match="Another process is writing the index"):
            run()
    assert _live(settings.index_dir) == before
    assert store_answers(LocalStore(settings.index_dir), embedder) == answers
    run()  # and works once the lock is free


def test_build_refuses_duplicate_ids_and_empty_text(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    folder = write_articles(tmp_path / "a", {"one.txt": "Some text here."})
    docs, _ = load_documents([folder])
    settings = _settings(tmp_path / "index")
    with pytest.raises(ValueError, match="unique"):
        build_index(docs + docs, settings, fake_embedder)
    blank = replace(docs[0], text=" \n ")
    with pytest.raises(ValueError, match="no text"):
        build_index([blank], settings, fake_embedder)
    assert not (settings.index_dir / CURRENT).exists()
    assert not list(settings.index_dir.glob("seg-*")) and not list(settings.index_dir.glob("gen-*"))


def test_corpus_without_bm25_terms_still_builds(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    folder = write_articles(tmp_path / "a", {"short.txt": "It is.\nA b c.\n"})
    docs, skipped = load_documents([folder])
    assert docs and not skipped
    settings = _settings(tmp_path / "index")
    build_index(docs, settings, fake_embedder)
    store = LocalStore(settings.index_dir)
    assert store.lexical_search(prepare("What is it?").lexical, 5) == []
    hits = Searcher.load(settings, fake_embedder).ask("What is it?").hits
    assert hits and hits[0].doc_id == "short"
