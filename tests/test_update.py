"""Incremental updates: add, update and remove articles without losing anything.

The property: after any sequence of adds and removes, the index equals a fresh build of
the same articles (same rows, same offsets, same vectors, same answers)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from support import FAKE_CHUNKING, FakeEmbedder
from indexer.build import build_index
from indexer.errors import DocumentError, IndexLockedError, IndexWriteError
from indexer.settings import Limits, Settings
from indexer.store import load_index, write_lock
from indexer.types import Document
from indexer.update import LazyEmbedder, add_documents, remove_documents, upload_articles
from retrieval.searcher import Searcher


TOPICS = {
    "a": "Penguins breed on the sea ice. The males keep the eggs warm for two months.",
    "b": "A volcano erupted in Iceland on Monday. Lava flowed toward the town of Grindavik.",
    "c": "The central bank raised interest rates. Inflation stayed above the target all year.",
    "d": "The football club signed a new striker. Fans cheered at the stadium on Sunday.",
    "e": "Engineers tested a solar car in the desert. It crossed the salt flats at noon.",
}


def doc(doc_id: str, text: str) -> Document:
    body = f"Title {doc_id}\n\n{text}"
    return Document(doc_id=doc_id, title=f"Title {doc_id}", source=f"{doc_id}.txt", text=body,
                    sha256=hashlib.sha256(body.encode()).hexdigest())


def fake_settings(folder: Path) -> Settings:
    return replace(Settings(), index_dir=folder, chunking=FAKE_CHUNKING, top_k=3,
                   upload_dir=folder.parent / "uploads")


def snapshot(index_dir: Path) -> tuple:  # type: ignore[type-arg]
    index = load_index(index_dir)
    vectors = index.chunk_index.reconstruct_n(0, index.chunk_index.ntotal)
    return ([d.doc_id for d in index.documents], [d.sha256 for d in index.documents],
            np.asarray(index.chunks).tolist(), np.asarray(index.sentences).tolist(),
            vectors, np.asarray(index.sentence_vectors))


def assert_same(a: tuple, b: tuple) -> None:  # type: ignore[type-arg]
    assert a[:4] == b[:4]
    np.testing.assert_allclose(a[4], b[4], atol=1e-6)
    np.testing.assert_allclose(a[5], b[5], atol=1e-6)


operations = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "change"]), st.sampled_from(sorted(TOPICS))),
    min_size=1, max_size=6)


@hsettings(max_examples=25)
@given(ops=operations)
def test_any_adds_and_removes_equal_a_fresh_build(tmp_path_factory: pytest.TempPathFactory, ops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("ops")
    settings = fake_settings(root / "index")
    embedder = FakeEmbedder()
    current: dict[str, Document] = {"a": doc("a", TOPICS["a"])}
    add_documents([current["a"]], settings, embedder)
    for step, (op, key) in enumerate(ops):
        if op == "add" and key not in current:
            current[key] = doc(key, TOPICS[key])
            add_documents([current[key]], settings, embedder)
        elif op == "change" and key in current:
            current[key] = doc(key, TOPICS[key] + f" Update number {step} was added later.")
            report = add_documents([current[key]], settings, embedder)
            assert report.updated == (key,)
        elif op == "remove" and key in current and len(current) > 1:
            del current[key]
            remove_documents([key], settings, embedder)
    fresh = fake_settings(root / "fresh")
    build_index(list(current.values()), fresh, embedder)
    assert_same(snapshot(settings.index_dir), snapshot(fresh.index_dir))
    incremental = Searcher.load(settings, embedder).ask("volcano lava Iceland")
    rebuilt = Searcher.load(fresh, embedder).ask("volcano lava Iceland")
    assert [(h.doc_id, h.start, h.end) for h in incremental.hits] == [(h.doc_id, h.start, h.end) for h in rebuilt.hits]


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def encode(self, texts, *, batch_size=32, show_progress=False):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return super().encode(texts, batch_size=batch_size, show_progress=show_progress)


def test_only_new_or_changed_articles_are_embedded(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    embedder = CountingEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "abc"], settings, embedder)
    first = embedder.texts
    assert first > 0
    embedder.texts = 0
    report = add_documents([doc("a", TOPICS["a"]), doc("d", TOPICS["d"])], settings, embedder)
    assert report.added == ("d",) and report.unchanged == ("a",)
    alone = CountingEmbedder()
    build_index([doc("d", TOPICS["d"])], fake_settings(tmp_path / "alone"), alone)
    assert embedder.texts == alone.texts  # exactly d's passages and sentences
    embedder.texts = 0
    remove_documents(["b"], settings, embedder)
    assert embedder.texts == 0  # removal re-embeds nothing


def test_remove_never_loads_the_model(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc(k, TOPICS[k]) for k in "ab"], settings, FakeEmbedder())

    def explode():  # type: ignore[no-untyped-def]
        raise AssertionError("the model was loaded")

    lazy = LazyEmbedder(FakeEmbedder().name, FakeEmbedder().dimension, explode)
    remove_documents(["a"], settings, lazy)
    assert [d.doc_id for d in load_index(settings.index_dir).documents] == ["b"]


def test_duplicates_and_bad_removals_are_reported(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc("a", TOPICS["a"])], settings, FakeEmbedder())
    twin = replace(doc("a", TOPICS["a"]), doc_id="copy", source="copy.txt")
    report = add_documents([twin], settings, FakeEmbedder())
    assert report.added == () and "duplicate" in report.skipped[0].reason and "'a'" in report.skipped[0].reason
    with pytest.raises(DocumentError, match="python -m indexer list"):
        remove_documents(["nope"], settings, FakeEmbedder())
    with pytest.raises(DocumentError, match="empty index"):
        remove_documents(["a"], settings, FakeEmbedder())
    assert [d.doc_id for d in load_index(settings.index_dir).documents] == ["a"]


def test_a_failure_mid_update_keeps_the_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fake_settings(tmp_path / "index")
    embedder = FakeEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "ab"], settings, embedder)
    before = snapshot(settings.index_dir)

    import indexer.store

    def broken_save(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full (injected)")

    monkeypatch.setattr(indexer.store.np, "save", broken_save)
    with pytest.raises(IndexWriteError, match="injected.*the existing index is unchanged"):
        add_documents([doc("c", TOPICS["c"])], settings, embedder)
    monkeypatch.undo()
    assert_same(snapshot(settings.index_dir), before)
    assert Searcher.load(settings, embedder).ask("penguins eggs").hits[0].doc_id == "a"
    assert not list(settings.index_dir.glob(".tmp-*"))


def test_a_second_writer_fails_with_a_message(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc("a", TOPICS["a"])], settings, FakeEmbedder())
    import indexer.store

    original = indexer.store.write_lock
    with write_lock(settings.index_dir):
        # The update waits for the lock; make the wait short for the test.
        def quick(index_dir, wait_seconds=10.0):  # type: ignore[no-untyped-def]
            return original(index_dir, wait_seconds=0.2)

        import indexer.build
        indexer.build.write_lock = quick  # type: ignore[assignment]
        try:
            with pytest.raises(IndexLockedError, match="Another process is writing"):
                add_documents([doc("b", TOPICS["b"])], settings, FakeEmbedder())
        finally:
            indexer.build.write_lock = original  # type: ignore[assignment]
    assert [d.doc_id for d in load_index(settings.index_dir).documents] == ["a"]


def test_uploads_are_saved_under_safe_names(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    files = [
        ("../../evil.txt", b"Evil title\n\nSomeone tried a path trick with this upload name."),
        ("good.md", "# Good news\n\nThe bridge reopened after repairs on Friday.".encode()),
        ("empty.txt", b"   \n"),
        ("binary.txt", b"\x00\x01\x02 not text"),
        ("big.txt", b"x" * 50),
    ]
    small = replace(settings, limits=Limits(max_file_bytes=40))
    report = upload_articles(files[:4], settings, FakeEmbedder())
    assert sorted(report.added) == ["evil", "good"]
    assert {p.name for p in settings.upload_dir.iterdir()} == {"evil.txt", "good.md"}
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    reasons = {s.path: s.reason for s in report.skipped}
    assert "no text" in reasons["empty.txt"] or "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    report = upload_articles(files[4:], small, FakeEmbedder())
    assert "over the limit" in report.skipped[0].reason
    index = load_index(settings.index_dir)
    assert [d.doc_id for d in index.documents] == ["evil", "good"]
    for d in index.documents:
        assert Path(d.source).read_bytes().decode("utf-8") == d.text


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    import threading

    settings = fake_settings(tmp_path / "index")
    add_documents([doc("a", TOPICS["a"])], settings, FakeEmbedder())
    errors: list[BaseException] = []

    def add(key: str) -> None:
        try:
            add_documents([doc(key, TOPICS[key])], settings, FakeEmbedder())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(k,)) for k in "bcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [d.doc_id for d in load_index(settings.index_dir).documents] == ["a", "b", "c", "d"]


def test_large_index_path_ivf_search_and_reuse(tmp_path: Path) -> None:
    """Above exact_max the passages go into an IVF index (indexer/ann.py); search,
    reconstruct and incremental reuse work the same way there."""
    settings = replace(fake_settings(tmp_path / "index"), exact_max=2)
    embedder = FakeEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "abc"], settings, embedder)
    index = load_index(settings.index_dir)
    assert index.manifest.vector_index["type"] == "ivf"
    assert Searcher.load(settings, embedder).ask("volcano lava Iceland").hits[0].doc_id == "b"
    add_documents([doc("d", TOPICS["d"])], settings, embedder)
    fresh = replace(fake_settings(tmp_path / "fresh"), exact_max=2)
    build_index([doc(k, TOPICS[k]) for k in "abcd"], fresh, embedder)
    assert_same(snapshot(settings.index_dir), snapshot(fresh.index_dir))
