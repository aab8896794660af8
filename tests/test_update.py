"""Incremental updates: add, update and remove articles without losing anything.

The property: after any sequence of adds, updates, removes and compactions, the store
answers exactly as a fresh build of the same articles (same documents, passages, ids,
vectors, dense and BM25 scores, answers). Adding writes one new segment and leaves the
others untouched; removing writes only a generation."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import indexer.stores.local as local
from indexer.build import build_index
from indexer.errors import DocumentError, IndexLockedError, IndexWriteError
from indexer.settings import Limits, Settings
from indexer.stores import open_store
from indexer.stores.base import document_key
from indexer.stores.folder import MANIFEST, read_pointer, write_lock
from indexer.stores.local import MAX_SEGMENTS, LocalStore
from indexer.types import Document
from indexer.update import LazyEmbedder, add_documents, remove_documents, upload_articles
from retrieval.searcher import Searcher
from support import FAKE_CHUNKING, FakeEmbedder, store_answers

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
    return replace(Settings(), index_dir=folder, chunking=FAKE_CHUNKING, top_k=3, model_name=FakeEmbedder().name,
                   upload_dir=folder.parent / "uploads")


def ids(settings: Settings) -> list[str]:
    return [d.doc_id for d in open_store(settings).document_infos()]


def snapshot(index_dir: Path) -> list[tuple]:  # type: ignore[type-arg]
    """Every stored document with all its rows and vectors, as plain data."""
    return [(d.document, [(p.passage_id, p.start, p.end, p.first_sentence, p.end_sentence, p.field_text,
                           p.vector.tolist()) for p in d.passages],
             [(s.sentence_id, s.start, s.end, s.kind, s.text, np.asarray(s.vector).tolist()) for s in d.sentences])
            for d in LocalStore(index_dir).stored_documents()]


def segment_state(index_dir: Path) -> dict[str, dict[str, tuple[int, int, int]]]:
    """For every segment folder: inode, mtime (ns) and size of each file (unchanged: not rewritten)."""
    return {seg.name: {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
                       for p in sorted(seg.iterdir())}
            for seg in sorted(index_dir.glob("seg-*"))}


def live_segments(index_dir: Path) -> list[tuple[str, tuple[int, ...]]]:
    return [(s.name, s.removed) for s in LocalStore(index_dir).manifest.segments]


def assert_same_as_fresh(settings: Settings, documents: list[Document], root: Path, embedder: FakeEmbedder,
                         **changes: object) -> None:
    """The store at ``settings`` answers exactly as a fresh build of ``documents``."""
    fresh = replace(fake_settings(root / "fresh"), **changes)  # type: ignore[arg-type]
    build_index(documents, fresh, embedder)
    assert snapshot(settings.index_dir) == snapshot(fresh.index_dir)
    assert store_answers(LocalStore(settings.index_dir), embedder) == store_answers(LocalStore(fresh.index_dir),
                                                                                      embedder)
    for question in ("volcano lava Iceland", "Where do penguins breed?", "Who signed a striker?"):
        incremental = Searcher.load(settings, embedder).ask(question)
        rebuilt = Searcher.load(fresh, embedder).ask(question)
        assert incremental.to_json() == rebuilt.to_json()


# --- the property -----------------------------------------------------------------------

operations = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "change", "compact"]), st.sampled_from(sorted(TOPICS))),
    min_size=1, max_size=7)


@hsettings(max_examples=20)
@given(ops=operations, max_segments=st.sampled_from([2, 3, MAX_SEGMENTS]))
def test_any_adds_updates_and_removes_equal_a_fresh_build(tmp_path_factory: pytest.TempPathFactory, ops,  # type: ignore[no-untyped-def]
                                                          max_segments: int) -> None:
    root = tmp_path_factory.mktemp("ops")
    settings = fake_settings(root / "index")
    embedder = FakeEmbedder()
    current: dict[str, Document] = {"a": doc("a", TOPICS["a"])}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "MAX_SEGMENTS", max_segments)  # small limits: merges happen within a few steps
        add_documents([current["a"]], settings, embedder)
        for step, (op, key) in enumerate(ops):
            if op == "add" and key not in current:
                current[key] = doc(key, TOPICS[key])
                assert add_documents([current[key]], settings, embedder).added == (key,)
            elif op == "change" and key in current:
                current[key] = doc(key, TOPICS[key] + f" Update number {step} was added later.")
                assert add_documents([current[key]], settings, embedder).updated == (key,)
            elif op == "remove" and key in current and len(current) > 1:
                del current[key]
                assert remove_documents([key], settings, embedder).removed == (key,)
            elif op == "compact":
                LocalStore(settings.index_dir).compact()
                assert len(live_segments(settings.index_dir)) == 1
            assert len(live_segments(settings.index_dir)) <= max_segments
            assert ids(settings) == sorted(current)
    assert_same_as_fresh(settings, list(current.values()), root, embedder)


# --- what a write writes ----------------------------------------------------------------

def test_an_add_writes_one_segment_and_rewrites_nothing(tmp_path: Path) -> None:
    settings, embedder = fake_settings(tmp_path / "index"), FakeEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "abc"], settings, embedder)
    add_documents([doc("d", TOPICS["d"])], settings, embedder)
    before, segments = segment_state(settings.index_dir), live_segments(settings.index_dir)
    generation = read_pointer(settings.index_dir)
    add_documents([doc("e", TOPICS["e"])], settings, embedder)
    after = segment_state(settings.index_dir)
    (new,) = set(after) - set(before)
    assert {name: after[name] for name in before} == before, "existing segments are not rewritten"
    assert live_segments(settings.index_dir) == [*segments, (new, ())]
    assert read_pointer(settings.index_dir) != generation
    assert [d["doc_id"] for d in LocalStore(settings.index_dir).segments[-1].docs] == ["e"]
    # An update writes one segment with the new version; the old one's row is marked removed.
    changed = doc("b", TOPICS["b"] + " The airport stayed open.")
    before = segment_state(settings.index_dir)
    assert add_documents([changed], settings, embedder).updated == ("b",)
    after = segment_state(settings.index_dir)
    (newer,) = set(after) - set(before)
    assert {name: after[name] for name in before} == before
    first = LocalStore(settings.index_dir).segments[0]
    row_b = [d["doc_id"] for d in first.docs].index("b")
    assert live_segments(settings.index_dir) == [(segments[0][0], (row_b,)), segments[1], (new, ()), (newer, ())]
    # Ids follow the content: the new version's passages have new ids, the old ones are gone.
    store = LocalStore(settings.index_dir)
    (stored,) = store.stored_documents(["b"])
    assert stored.document == changed
    assert all(p.passage_id.startswith(document_key("b", changed.sha256) + ":p") for p in stored.passages)
    old_key = document_key("b", doc("b", TOPICS["b"]).sha256)
    assert store.passages([f"{old_key}:p0-10"]) == [] and not store.vectors([f"{old_key}:p0-10"])
    assert_same_as_fresh(settings, [doc(k, TOPICS[k]) for k in "acde"] + [changed], tmp_path, embedder)


def test_a_remove_writes_only_a_generation(tmp_path: Path) -> None:
    settings, embedder = fake_settings(tmp_path / "index"), FakeEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "abcd"], settings, embedder)
    add_documents([doc("e", TOPICS["e"])], settings, embedder)
    before, segments = segment_state(settings.index_dir), live_segments(settings.index_dir)
    generations = {p.name for p in settings.index_dir.glob("gen-*")}
    remove_documents(["c"], settings, embedder)  # a fifth of the passages: not enough to compact
    assert segment_state(settings.index_dir) == before, "no segment written or rewritten"
    (new_generation,) = {p.name for p in settings.index_dir.glob("gen-*")} - generations
    assert read_pointer(settings.index_dir) == new_generation
    assert [p.name for p in (settings.index_dir / new_generation).iterdir()] == [MANIFEST]
    assert live_segments(settings.index_dir) == [(segments[0][0], (2,)), segments[1]]
    assert ids(settings) == list("abde")
    # Removing every article of a segment drops the segment from the generation.
    remove_documents(["e"], settings, embedder)
    assert live_segments(settings.index_dir) == [(segments[0][0], (2,))]
    assert_same_as_fresh(settings, [doc(k, TOPICS[k]) for k in "abd"], tmp_path, embedder)


# --- embedding only what is new ---------------------------------------------------------

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
    embedder.texts = 0
    result = build_index([doc(k, TOPICS[k]) for k in "acd"], settings, embedder)  # a rebuild reuses vectors
    assert embedder.texts == 0 and sorted(result.reused_documents) == list("acd")
    assert_same_as_fresh(settings, [doc(k, TOPICS[k]) for k in "acd"], tmp_path, FakeEmbedder())


def test_remove_never_loads_the_model(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc(k, TOPICS[k]) for k in "ab"], settings, FakeEmbedder())

    def explode():  # type: ignore[no-untyped-def]
        raise AssertionError("the model was loaded")

    lazy = LazyEmbedder(FakeEmbedder().name, FakeEmbedder().dimension, explode)
    remove_documents(["a"], settings, lazy)
    assert ids(settings) == ["b"]
    assert add_documents([doc("b", TOPICS["b"])], settings, lazy).unchanged == ("b",)  # nor does an unchanged add


def test_duplicates_and_bad_removals_are_reported(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc("a", TOPICS["a"])], settings, FakeEmbedder())
    generation = read_pointer(settings.index_dir)
    twin = replace(doc("a", TOPICS["a"]), doc_id="copy", source="copy.txt")
    report = add_documents([twin], settings, FakeEmbedder())
    assert report.added == () and "duplicate" in report.skipped[0].reason and "'a'" in report.skipped[0].reason
    with pytest.raises(DocumentError, match="python -m indexer list"):
        remove_documents(["nope"], settings, FakeEmbedder())
    with pytest.raises(DocumentError, match="empty index"):
        remove_documents(["a"], settings, FakeEmbedder())
    assert ids(settings) == ["a"]
    assert read_pointer(settings.index_dir) == generation, "nothing was written"


# --- failures ---------------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["add", "remove"])
def test_a_failure_mid_update_keeps_the_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       operation: str) -> None:
    settings = fake_settings(tmp_path / "index")
    embedder = FakeEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "abcde"], settings, embedder)
    before, generation = snapshot(settings.index_dir), read_pointer(settings.index_dir)
    segments, answers = segment_state(settings.index_dir), store_answers(LocalStore(settings.index_dir), embedder)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full (injected)")

    if operation == "add":
        monkeypatch.setattr(local.np, "save", broken)
        with pytest.raises(IndexWriteError, match="injected.*the existing index is unchanged"):
            add_documents([doc("x", TOPICS["c"] + " Again.")], settings, embedder)
    else:  # a remove writes only the generation: fail its switch
        monkeypatch.setattr(local, "write_pointer", broken)
        with pytest.raises(IndexWriteError, match="injected.*the existing index is unchanged"):
            remove_documents(["c"], settings, embedder)
    monkeypatch.undo()
    assert read_pointer(settings.index_dir) == generation
    assert snapshot(settings.index_dir) == before and segment_state(settings.index_dir) == segments
    assert store_answers(LocalStore(settings.index_dir), embedder) == answers
    assert Searcher.load(settings, embedder).ask("penguins eggs").hits[0].doc_id == "a"
    assert not list(settings.index_dir.glob(".tmp-*")) and len(list(settings.index_dir.glob("gen-*"))) == 1


def test_a_second_writer_fails_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc("a", TOPICS["a"])], settings, FakeEmbedder())
    original = local.write_lock
    # The update waits for the lock; make the wait short for the test.
    monkeypatch.setattr(local, "write_lock", lambda index_dir, wait_seconds=10.0: original(index_dir, 0.2))
    with write_lock(settings.index_dir):
        with pytest.raises(IndexLockedError, match="Another process is writing the index") as info:
            add_documents([doc("b", TOPICS["b"])], settings, FakeEmbedder())
        assert "the existing index stays usable" in str(info.value)
        assert ids(settings) == ["a"], "readers are not blocked by the lock"
    assert ids(settings) == ["a"]


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
    store = open_store(settings)
    assert ids(settings) == ["evil", "good"]
    for info in store.document_infos():
        stored = store.document(info.doc_id)
        assert stored is not None and Path(info.source).read_bytes().decode("utf-8") == stored.text


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    add_documents([doc("a", TOPICS["a"])], settings, FakeEmbedder())
    errors: list[BaseException] = []

    def add(key: str) -> None:
        try:
            add_documents([doc(key, TOPICS[key])], settings, FakeEmbedder())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(k,)) for k in "bcde"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ids(settings) == ["a", "b", "c", "d", "e"]
    assert_same_as_fresh(settings, [doc(k, TOPICS[k]) for k in "abcde"], tmp_path, FakeEmbedder())


def test_large_index_path_ivf_search_and_reuse(tmp_path: Path) -> None:
    """Above exact_max the passages go into an IVF index (indexer/ann.py); search,
    reconstruct and incremental reuse work the same way there."""
    settings = replace(fake_settings(tmp_path / "index"), exact_max=2)
    embedder = FakeEmbedder()
    add_documents([doc(k, TOPICS[k]) for k in "abc"], settings, embedder)
    store = LocalStore(settings.index_dir, exact_max=2)
    assert store.segments[0].manifest.vector_index["type"] == "ivf"
    assert Searcher.load(settings, embedder).ask("volcano lava Iceland").hits[0].doc_id == "b"
    add_documents([doc("d", TOPICS["d"])], settings, embedder)
    # The index kind is chosen by each segment's size: d's two passages are searched exactly.
    assert [s.manifest.vector_index["type"] for s in LocalStore(settings.index_dir).segments] == ["ivf", "flat"]
    # These IVF indexes have one list (too few vectors for more), so they search exhaustively
    # and answer exactly as the fresh build (one IVF segment) does.
    assert_same_as_fresh(settings, [doc(k, TOPICS[k]) for k in "abcd"], tmp_path, embedder, exact_max=2)
