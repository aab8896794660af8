"""The Milvus store (indexer/stores/milvus.py) on milvus-lite in tmp_path: round trips,
write semantics, rows of failed writes, lexical statistics, errors, and serving a file on
127.0.0.1 (indexer/stores/milvus_server.py). Everything started here is stopped here."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from indexer.chunking import BODY, article_spans, sentence_kinds  # noqa: E402
from indexer.errors import (  # noqa: E402
    ConfigError, IndexLockedError, IndexMismatchError, IndexNotFoundError, IndexWriteError, StoreUnavailableError,
)
from indexer.lexical import analyze  # noqa: E402
from indexer.manifest import ModelInfo  # noqa: E402
from indexer.settings import Settings  # noqa: E402
from indexer.stores import milvus as mv  # noqa: E402
from indexer.stores.base import (  # noqa: E402
    Change, LexicalQuery, StoredDocument, StoredPassage, StoredSentence, document_key, passage_id, sentence_id,
)
from indexer.stores.milvus import MilvusStore  # noqa: E402
from indexer.stores.milvus_server import free_port, serve  # noqa: E402
from indexer.types import Document  # noqa: E402
from support import FAKE_CHUNKING, REPO_ROOT, SYNTHETIC_ARTICLES, FakeEmbedder  # noqa: E402

pytestmark = pytest.mark.slow

EMBEDDER = FakeEmbedder()
MODEL = ModelInfo(EMBEDDER.name, EMBEDDER.dimension, True, "fake")
FIELD = "title + newline + passage"


# --------------------------------------------------------------------------- helpers

def make_document(doc_id: str, text: str, source: str | None = None, **extra: str | None) -> Document:
    title = text.strip().splitlines()[0].lstrip("# ").strip()
    return Document(doc_id, title, source or f"/nonexistent/{doc_id}.txt", text,
                    hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), **extra)


def stored(doc: Document) -> StoredDocument:
    """A document cut, identified and embedded as the build does (by hand: sentences with
    kinds, passages with the title prepended, FakeEmbedder vectors)."""
    key = document_key(doc.doc_id, doc.sha256)
    spans, chunks = article_spans(doc.text, FAKE_CHUNKING, doc.doc_id)
    kinds = sentence_kinds(doc.text, spans, doc.title)
    index_of = {s: i for i, s in enumerate(spans)}
    texts = [s.slice(doc.text) for s in spans]
    fields = [f"{doc.title}\n{c.text}" if doc.title and not c.text.startswith(doc.title) else c.text for c in chunks]
    sv, pv = EMBEDDER.encode(texts), EMBEDDER.encode(fields)
    sentences = tuple(StoredSentence(sentence_id(key, s.start, s.end), s.start, s.end, k, t, v)
                      for s, k, t, v in zip(spans, kinds, texts, sv))
    passages = tuple(StoredPassage(passage_id(key, c.start, c.end), c.start, c.end, index_of[c.sentences[0]],
                                   index_of[c.sentences[0]] + len(c.sentences), f, v)
                     for c, f, v in zip(chunks, fields, pv))
    return StoredDocument(doc, passages, sentences)


def synthetic() -> list[StoredDocument]:
    return [stored(make_document(name.rsplit(".", 1)[0], text, f"/nonexistent/{name}"))
            for name, text in SYNTHETIC_ARTICLES.items()]


def full(docs: list[StoredDocument]) -> Change:
    return Change(put=tuple(docs), model=MODEL, chunking=FAKE_CHUNKING, passage_field=FIELD, replace_all=True)


def settings(**kw: str) -> Settings:
    return Settings(model_path=None, model_name=EMBEDDER.name, chunking=FAKE_CHUNKING, **kw)


def all_passage_ids(docs: list[StoredDocument]) -> list[str]:
    return [p.passage_id for d in docs for p in d.passages]


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def open_store(db: Path):
    """MilvusStore factory on milvus:<tmp>/store.db; every store made is closed afterwards."""
    made: list[MilvusStore] = []

    def make(uri: str | None = None, **kw: str) -> MilvusStore:
        store = MilvusStore(uri or f"milvus:{db}", settings(**kw))
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        store.close()


# --------------------------------------------------------------------------- round trips

def test_round_trip_of_a_small_write(open_store) -> None:
    docs = synthetic()
    store = open_store()
    store.write(full(docs))

    info = store.info
    assert (info.kind, info.model, info.chunking, info.passage_field) == ("milvus", MODEL, FAKE_CHUNKING, FIELD)
    assert (info.documents, info.passages, info.sentences) == (
        3, sum(len(d.passages) for d in docs), sum(len(d.sentences) for d in docs))
    assert info.built_at and info.mismatch(EMBEDDER.name, EMBEDDER.dimension) is None
    assert "384-dimensional" in info.mismatch(EMBEDDER.name, 384)
    assert "other-model" in info.mismatch("other-model")

    infos = store.document_infos()
    assert [i.doc_id for i in infos] == ["chess", "penguins", "volcano"]
    for i, d in zip(infos, sorted(docs, key=lambda d: d.document.doc_id)):
        assert (i.title, i.source, i.sha256, i.chars, i.passages) == (
            d.document.title, d.document.source, d.document.sha256, len(d.document.text), len(d.passages))
        assert (i.url, i.date, i.note) == (None, None, None)

    # passages(): exact offsets, sentences, texts and vectors, in the order asked
    ids = all_passage_ids(docs)[::-1] + ["nope@0123456789ab:p0-5", "not an id"]
    got = store.passages(ids)
    assert [p.passage_id for p in got] == all_passage_ids(docs)[::-1]
    by_id = {p.passage_id: (d, p) for d in docs for p in d.passages}
    for p in got:
        d, sp = by_id[p.passage_id]
        text = d.document.text
        assert p.doc_id == d.document.doc_id and p.title == d.document.title
        assert (p.start, p.end) == (sp.start, sp.end) and p.text == text[p.start:p.end]
        sentences = d.sentences[sp.first_sentence:sp.end_sentence]
        assert [(s.sentence_id, s.start, s.end, s.kind) for s in p.sentences] == [
            (s.sentence_id, s.start, s.end, s.kind) for s in sentences]
        assert list(p.sentence_texts) == [text[s.start:s.end] for s in p.sentences]
        np.testing.assert_allclose(p.vector, sp.vector, atol=1e-6)
        np.testing.assert_allclose(p.sentence_vectors, np.stack([s.vector for s in sentences]), atol=1e-6)
        assert p.vector.dtype == np.float32 and p.sentence_vectors.shape == (len(sentences), EMBEDDER.dimension)

    for d in docs:
        doc = store.document(d.document.doc_id)
        assert doc == d.document
        assert store.headings(d.document.doc_id) == tuple((s.start, s.end) for s in d.sentences if s.kind != BODY)
    assert store.document("missing") is None and store.headings("missing") == ()

    wanted = [docs[0].passages[0].passage_id, docs[1].sentences[2].sentence_id, "gone@0123456789ab:s0-1"]
    vectors = store.vectors(wanted)
    assert set(vectors) == set(wanted[:2])
    np.testing.assert_allclose(vectors[wanted[1]], docs[1].sentences[2].vector, atol=1e-6)

    # dense search: a passage's own vector finds it first (inner product of unit vectors)
    target = docs[2].passages[1]
    hits = store.dense_search(target.vector, 5)
    assert hits[0][0] == target.passage_id and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert store.verify() == [f"{d.document.doc_id}: source file {d.document.source} is missing (the index keeps "
                              "its text; citations still work)" for d in sorted(docs, key=lambda d: d.document.doc_id)]

    # version(): read afresh, changes with every write that lands
    token = store.version()
    assert token == store.version() == open_store().version()
    store.write(Change(remove=("chess",)))
    assert store.version() != token
    store.write(Change(put=tuple(d for d in docs if d.document.doc_id == "chess")))

    # A new object (after this one is closed) reads the same.
    store.close()
    again = open_store()
    assert [p.passage_id for p in again.passages(ids)] == all_passage_ids(docs)[::-1]
    assert [i.doc_id for i in again.document_infos()] == ["chess", "penguins", "volcano"]


def test_long_text_in_pieces_and_awkward_ids(open_store) -> None:
    paragraph = ("The Zürich archive holds letters 📜 from the glacier survey. Each entry names the valley. "
                 "Surveyors measured the ice every spring!\n")
    long_text = "Glacier survey letters\n\n" + paragraph * 400  # about 48,000 characters: 3+ pieces
    odd_id = 'it\'s "odd" \\ 100%\tid\nhere'
    surrogate_text = "A title with a bad byte\n\nThis text has a lone surrogate \udcff in it. Another sentence here."
    docs = [stored(make_document("long", long_text, url="https://example.org/x", date="2024-05-01")),
            stored(make_document(odd_id, SYNTHETIC_ARTICLES["chess.md"], note="")),
            stored(make_document("surrogate", surrogate_text))]
    assert len(docs[0].document.text) > 3 * mv.PIECE_CHARS
    store = open_store()
    store.write(full(docs))

    for d in docs:
        assert store.document(d.document.doc_id) == d.document  # url/date/note, "" and None, kept apart
    assert store.document(odd_id).note == "" and store.document("long").note is None
    client, version = store._client, store._state.pointer.version
    pieces = client.query(f"verbatim_v{version}_texts", filter='pk != ""', output_fields=["pk", "n"])
    assert sorted(r["n"] for r in pieces) == list(range(-(-len(long_text) // mv.PIECE_CHARS)))

    ids = all_passage_ids(docs)
    got = store.passages(ids)
    assert [p.passage_id for p in got] == ids
    text_of = {d.document.doc_id: d.document.text for d in docs}
    crossing = 0
    for p in got:
        assert p.text == text_of[p.doc_id][p.start:p.end]
        assert list(p.sentence_texts) == [text_of[p.doc_id][s.start:s.end] for s in p.sentences]
        crossing += p.doc_id == "long" and p.start // mv.PIECE_CHARS != (p.end - 1) // mv.PIECE_CHARS
    assert crossing >= 1  # some passage spans two pieces
    assert store.headings(odd_id) == tuple((s.start, s.end) for s in docs[1].sentences if s.kind != BODY)

    store.write(Change(remove=(odd_id,)))
    assert [i.doc_id for i in store.document_infos()] == ["long", "surrogate"]
    assert store.passages(all_passage_ids(docs[1:2])) == []
    assert store.verify() == [f"{i}: source file /nonexistent/{i}.txt is missing (the index keeps its text; "
                              "citations still work)" for i in ("long", "surrogate")]


# --------------------------------------------------------------------------- write semantics

def test_put_remove_and_replace_all(open_store) -> None:
    docs = synthetic()
    by_id = {d.document.doc_id: d for d in docs}
    store = open_store()
    store.write(full(docs))
    old_penguins = by_id["penguins"]
    new_text = SYNTHETIC_ARTICLES["penguins.txt"] + "Krill swarms feed the colony in summer.\n"
    new_penguins = stored(make_document("penguins", new_text, "/nonexistent/penguins.txt"))
    assert new_penguins.key != old_penguins.key

    store.write(Change(put=(new_penguins,), remove=("chess",)))
    assert [i.doc_id for i in store.document_infos()] == ["penguins", "volcano"]
    assert store.document("penguins").text == new_text and store.document("chess") is None
    assert store.passages(all_passage_ids([old_penguins, by_id["chess"]])) == []
    assert store.vectors(all_passage_ids([old_penguins])) == {}
    assert [p.passage_id for p in store.passages(all_passage_ids([new_penguins]))] == all_passage_ids([new_penguins])
    live = {d.key for d in (new_penguins, by_id["volcano"])}
    for pid, _ in store.dense_search(old_penguins.passages[0].vector, 50):
        assert pid.rpartition(":")[0] in live
    assert [p for p, _ in store.lexical_search(LexicalQuery(("krill",), "krill"), 5)] == [
        p.passage_id for p in new_penguins.passages if "Krill" in p.field_text]
    assert store.lexical_search(LexicalQuery(("chess",), "chess"), 5) == []
    info = store.info
    assert (info.documents, info.passages) == (2, len(new_penguins.passages) + len(by_id["volcano"].passages))
    # nothing of the replaced versions is left in the collections
    version = store._state.pointer.version
    keys = {r["key"] for r in store._client.query(f"verbatim_v{version}_passages", filter='pk != ""',
                                                   output_fields=["key"])}
    assert keys == live

    # the same content again (same key) with another source: the row changes, the passages stay
    moved = StoredDocument(replace(new_penguins.document, source="/elsewhere/penguins.txt"),
                           new_penguins.passages, new_penguins.sentences)
    store.write(Change(put=(moved,)))
    assert store.document_infos()[0].source == "/elsewhere/penguins.txt"
    assert len(store.passages(all_passage_ids([new_penguins]))) == len(new_penguins.passages)

    # removing everything is refused (as by the local store), and changes nothing
    with pytest.raises(ValueError, match="no text"):
        store.write(Change(remove=("penguins", "volcano")))
    assert len(store.document_infos()) == 2

    store.write(full([by_id["chess"]]))
    assert [i.doc_id for i in store.document_infos()] == ["chess"]
    names = sorted(store._client.list_collections(timeout=10))
    v = store._state.pointer.version
    assert names == sorted([f"verbatim_v{v}_{k}" for k in mv.KINDS] + ["verbatim_meta"]) and v == version + 1
    assert store.info.documents == 1 and store.verify()


def test_rows_of_a_failed_write_are_never_returned(open_store, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = synthetic()
    store = open_store()
    store.write(full(docs))
    before = store.document_infos()
    word = "quetzalcoatlus"
    text = SYNTHETIC_ARTICLES["volcano.txt"] + f"A {word} fossil was found in the ash.\n"
    new_volcano = stored(make_document("volcano", text, "/nonexistent/volcano.txt"))
    newcomer = stored(make_document("newcomer", f"Newcomer article\n\nThe {word} flew over the plain. It was big.\n"))

    def crash(self, old, value):  # the process dies just before the switch
        raise mv._Failure("unreachable", "simulated crash")

    monkeypatch.setattr(mv._Writer, "_switch", crash)
    monkeypatch.setattr(mv._Writer, "undo", lambda self: None)  # ... so nothing is cleaned up
    with pytest.raises(IndexWriteError, match="nothing was changed: it still answers from what it held before"):
        store.write(Change(put=(new_volcano, newcomer)))
    monkeypatch.undo()

    version = store._state.pointer.version if store._state else 1
    raw = store._client.query(f"verbatim_v{version}_passages", filter='pk != ""', output_fields=["key"])
    orphan_keys = {new_volcano.key, newcomer.key}
    assert orphan_keys <= {r["key"] for r in raw}  # the rows are there ...

    for reader in (store, open_store()):  # ... and answer nothing, in this object or a new one
        assert reader.document_infos() == before
        assert reader.document("newcomer") is None
        assert reader.lexical_search(LexicalQuery(("quetzalcoatlus",), word), 10) == []
        assert reader.term_counts(LexicalQuery(("quetzalcoatlus",), word)).df.tolist() == [0.0]
        for pid, _ in reader.dense_search(newcomer.passages[0].vector, 100):
            assert pid.rpartition(":")[0] not in orphan_keys
        assert reader.passages(all_passage_ids([new_volcano, newcomer])) == []
        assert reader.vectors(all_passage_ids([newcomer])) == {}
        assert reader.passage_bm25(LexicalQuery(("quetzalcoatlus",), word),
                                   all_passage_ids([newcomer])).tolist() == [0.0] * len(newcomer.passages)
    assert any("unfinished write" in w for w in store.verify())

    # the next write removes them
    store.write(Change(put=(newcomer,)))
    raw = store._client.query(f"verbatim_v{version}_passages", filter='pk != ""', output_fields=["key"])
    assert new_volcano.key not in {r["key"] for r in raw}
    assert [p for p, _ in store.lexical_search(LexicalQuery(("quetzalcoatlus",), word), 10)] == [
        p.passage_id for p in newcomer.passages if word in p.field_text]
    assert not any("unfinished write" in w for w in store.verify())


def test_a_failed_insert_half_way_keeps_the_previous_content(open_store, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = synthetic()
    store = open_store()
    store.write(full(docs))
    calls = {"n": 0}
    real = mv._Writer._insert_batch

    def flaky(self, collection, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise mv._Failure("other", "(code=65535, message=simulated failure)")
        return real(self, collection, batch)

    monkeypatch.setattr(mv._Writer, "_insert_batch", flaky)
    bigger = stored(make_document("volcano", SYNTHETIC_ARTICLES["volcano.txt"] + "More lava came.\n"))
    with pytest.raises(IndexWriteError) as err:
        store.write(Change(put=(bigger,)))
    assert "simulated failure" in str(err.value) and "Traceback" not in str(err.value)
    # a full rebuild failing half-way: the new version's collections are dropped
    calls["n"] = 0
    with pytest.raises(IndexWriteError):
        store.write(full([bigger]))
    monkeypatch.undo()
    fresh = open_store()
    assert [i.doc_id for i in fresh.document_infos()] == ["chess", "penguins", "volcano"]
    assert fresh.document("volcano").text == SYNTHETIC_ARTICLES["volcano.txt"]
    assert sorted(fresh._client.list_collections(timeout=10)) == sorted(
        [f"verbatim_v1_{k}" for k in mv.KINDS] + ["verbatim_meta"])
    assert fresh.verify()  # (source files missing) and no damage


def test_a_pointer_insert_that_landed_but_timed_out_keeps_the_new_content(open_store, monkeypatch) -> None:
    """The switch's insert reaching the server but failing on the way back (a timeout) must
    not be undone: the pointer already names the new rows, and dropping them would leave
    nothing to answer from."""
    store = open_store()
    store.write(full(synthetic()))
    real = mv.MilvusStore._rpc

    def late(self, method, *args, **kwargs):
        out = real(self, method, *args, **kwargs)
        if method == "insert" and args[0] == self._meta and args[1][0]["pk"].startswith("ptr:"):
            raise mv._Failure("unreachable", "simulated: deadline exceeded after the insert")
        return out

    monkeypatch.setattr(mv.MilvusStore, "_rpc", late)
    newcomer = stored(make_document("newcomer", "Newcomer article\n\nThe heron waded in the reeds. It ate.\n"))
    store.write(Change(put=(newcomer,)))  # incremental
    store.write(full([newcomer, *synthetic()[:1]]))  # full: a new version of the collections
    monkeypatch.undo()
    fresh = open_store()
    assert [i.doc_id for i in fresh.document_infos()] == sorted(["newcomer", synthetic()[0].document.doc_id])
    assert fresh.document("newcomer").text == newcomer.document.text
    assert not fresh.verify() or all("source file" in w for w in fresh.verify())


def test_a_pointer_insert_cut_off_is_never_undone(open_store, monkeypatch) -> None:
    """A timeout on the switch that did not (yet) land: nothing is undone (it might land
    later), the message says the change may be missing, the store answers as before, and
    the next write goes through."""
    store = open_store()
    store.write(full(synthetic()))
    before = store.document_infos()
    real = mv.MilvusStore._rpc

    def cut_off(self, method, *args, **kwargs):
        if method == "insert" and args[0] == self._meta and args[1][0]["pk"].startswith("ptr:"):
            raise mv._Failure("unreachable", "simulated: deadline exceeded")
        return real(self, method, *args, **kwargs)

    monkeypatch.setattr(mv.MilvusStore, "_rpc", cut_off)
    dropped: list[str] = []
    monkeypatch.setattr(mv._Writer, "undo", lambda self: dropped.append("undo") if not self.committed else None)
    newcomer = stored(make_document("newcomer", "Newcomer article\n\nThe heron waded in the reeds. It ate.\n"))
    for change in (Change(put=(newcomer,)), full([newcomer])):
        with pytest.raises(IndexWriteError, match="may or may not have been applied, and nothing is lost"):
            store.write(change)
    assert dropped == []
    monkeypatch.undo()
    fresh = open_store()
    assert fresh.document_infos() == before
    fresh.write(Change(put=(newcomer,)))
    assert "newcomer" in [i.doc_id for i in fresh.document_infos()]


def test_a_second_writer_waits_its_turn_and_gives_up_with_a_message(open_store, monkeypatch) -> None:
    docs = synthetic()
    store = open_store()
    store.write(full(docs))
    other = open_store()
    writer = mv._Writer(other, Change())
    other._connect(create=True)
    writer.lock()
    monkeypatch.setattr(mv, "LOCK_WAIT", 2.0)
    try:
        with pytest.raises(IndexLockedError, match="has been writing the Milvus store .* Wait until it finishes"):
            store.write(Change(remove=("chess",)))
    finally:
        writer.unlock()
    # Waiting in line: the holder lets go after a while, and the second write goes through.
    writer = mv._Writer(other, Change())
    writer.lock()
    monkeypatch.setattr(mv, "LOCK_WAIT", 60.0)
    release = threading.Timer(2.0, writer.unlock)
    release.start()
    started = time.monotonic()
    try:
        store.write(Change(remove=("chess",)))
    finally:
        release.join()
    assert time.monotonic() - started >= 1.5
    assert len(store.document_infos()) == 2


def test_another_dimension_needs_a_rebuild(open_store) -> None:
    store = open_store()
    store.write(full(synthetic()))
    with pytest.raises(IndexMismatchError, match="64-dimensional .* 32-dimensional .*python -m indexer build"):
        store.write(Change(put=(synthetic()[0],), model=replace(MODEL, dimension=32)))
    with pytest.raises(IndexMismatchError, match="64-dimensional vectors, but the query vector has 32"):
        store.dense_search(np.ones(32, dtype=np.float32) / np.sqrt(32), 3)


# --------------------------------------------------------------------------- lexical

def test_lexical_search_finds_a_word_present_once_and_counts_terms(open_store) -> None:
    docs = synthetic()
    word = "xylophonist"
    docs.append(stored(make_document("music", f"Music news\n\nA {word} played in the square on Friday. "
                                              "The crowd cheered loudly. Everyone danced until late.\n")))
    store = open_store()
    store.write(full(docs))
    holder = [p for d in docs for p in d.passages if word in p.field_text]
    assert len(holder) == 1
    query = LexicalQuery(tuple(analyze([word])[0]), word)
    hits = store.lexical_search(query, 10)
    assert [p for p, _ in hits] == [holder[0].passage_id] and hits[0][1] > 0

    others = [docs[0].passages[0].passage_id, "gone@0123456789ab:p0-3"]
    scores = store.passage_bm25(query, [holder[0].passage_id, *others])
    assert scores[0] == pytest.approx(hits[0][1], rel=1e-5) and scores[1:].tolist() == [0.0, 0.0]
    sentence = next(s for d in docs for s in d.sentences if word in s.text)
    s_scores = store.sentence_bm25(query, [sentence.sentence_id, docs[0].sentences[0].sentence_id])
    assert s_scores[0] > 0 and s_scores[1] == 0

    # term_counts: present vs absent; exact against the local analysis on these articles
    words = "Why do emperor penguins breed on the sea ice in winter near Grindavik zzyzzyx?"
    terms = tuple(t for t in analyze([words])[0])
    counts = store.term_counts(LexicalQuery(terms, words))
    assert counts.rows == sum(len(d.passages) for d in docs)
    fields = [set(toks) for toks in analyze([p.field_text for d in docs for p in d.passages])]
    assert counts.df.tolist() == [float(sum(t in f for f in fields)) for t in terms]
    assert counts.df[terms.index("zzyzzyx")] == 0 and counts.df[terms.index("penguin")] > 0
    assert store.term_counts(LexicalQuery((), "")).df.shape == (0,)
    assert store.lexical_search(LexicalQuery((), "the of"), 5) == []


def test_term_counts_past_the_search_limit(open_store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mv, "TOPK_MAX", 8)  # as if every term were held by more passages than a search returns
    docs = synthetic()
    store = open_store()
    store.write(full(docs))
    terms = ("penguin", "ice", "lava")
    counts = store.term_counts(LexicalQuery(terms, "penguins ice lava"))
    fields = [set(toks) for toks in analyze([p.field_text for d in docs for p in d.passages])]
    assert counts.df.tolist() == [float(sum(t in f for f in fields)) for t in terms]
    assert counts.df[0] > 6


# --------------------------------------------------------------------------- errors

def test_a_store_never_built(open_store, db: Path) -> None:
    store = open_store()
    with pytest.raises(IndexNotFoundError, match=r"No index in the Milvus store milvus:.*store\.db .*Build it with: "
                                                 r"python -m indexer build seeds --store milvus:"):
        _ = store.info
    with pytest.raises(IndexNotFoundError, match="Build it with"):
        store.version()
    assert not db.exists()  # a read creates nothing
    assert store.vectors(["a@0123456789ab:p0-1"]) == {}
    store.write(full(synthetic()))
    other = open_store(milvus_collection="another")
    with pytest.raises(IndexNotFoundError, match="no collection another_meta.*VERBATIM_MILVUS_COLLECTION=another"):
        other.document_infos()


def test_a_second_process_on_the_same_file_gets_the_clear_error(open_store, db: Path) -> None:
    store = open_store()
    store.write(full(synthetic()))
    done = run_python(f"""
        from indexer.settings import Settings
        from indexer.stores.milvus import MilvusStore
        try:
            MilvusStore("milvus:{db}", Settings(model_path=None)).info
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("IndexLockedError The milvus-lite file")
    assert (f"is open in another process: serve it once with python -m indexer serve --store milvus:{db} and use "
            "http://127.0.0.1:PORT in both") in done.stdout
    assert "Traceback" not in done.stderr and "pkg_resources" not in done.stderr
    # after this process closes it, another one opens it
    store.close()
    done = run_python(f"""
        from indexer.settings import Settings
        from indexer.stores.milvus import MilvusStore
        print(len(MilvusStore("milvus:{db}", Settings(model_path=None)).document_infos()))
    """)
    assert done.stdout.strip() == "3", done.stderr


def test_serve_shares_a_file_between_processes(open_store, db: Path) -> None:
    with pytest.raises(ConfigError, match="127.0.0.1 only"):
        with serve(db, host="0.0.0.0"):
            pass
    with serve(db) as uri:
        port = int(uri.rsplit(":", 1)[1])
        assert uri == f"http://127.0.0.1:{port}" and listening(port)
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert out.strip() and all("127.0.0.1" in line for line in out.splitlines())
        with pytest.raises(IndexLockedError, match="served by this process"):
            _ = open_store().info
        store = open_store(uri, milvus_token="root:not-checked")  # milvus-lite checks no credentials
        store.write(full(synthetic()))
        assert store.info.location == uri
        done = run_python(f"""
            from indexer.settings import Settings
            from indexer.stores.base import Change
            from indexer.stores.milvus import MilvusStore
            s = MilvusStore({uri!r}, Settings(model_path=None))
            print([i.doc_id for i in s.document_infos()])
            s.write(Change(remove=("chess",)))
            s.close()
        """)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "['chess', 'penguins', 'volcano']"
        assert [i.doc_id for i in open_store(uri).document_infos()] == ["penguins", "volcano"]
        done = run_python(f"""
            from indexer.settings import Settings
            from indexer.stores.milvus import MilvusStore
            from indexer.stores.milvus_server import serve
            try:
                MilvusStore("milvus:{db}", Settings(model_path=None)).info
            except Exception as exc:
                print(type(exc).__name__, exc)
            try:
                with serve({str(db)!r}):
                    pass
            except Exception as exc:
                print(type(exc).__name__, exc)
        """)
        assert done.stdout.splitlines() == [
            f"IndexLockedError The milvus-lite file {db} is served by another process at {uri}: use --store {uri} "
            f"(VERBATIM_STORE={uri}) while it runs.",
            f"IndexLockedError The milvus-lite file {db} is already served at {uri}: use that."], done.stderr
        store.close()
    deadline = time.monotonic() + 5
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening(port)
    assert [i.doc_id for i in open_store().document_infos()] == ["penguins", "volcano"]  # embedded again


def test_a_killed_serving_process_leaves_no_server(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from indexer.stores.milvus_server import serve
        with serve({str(db)!r}) as uri:
            print(uri, flush=True)
            time.sleep(120)
    """)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        uri = proc.stdout.readline().strip()
        port = int(uri.rsplit(":", 1)[1])
        assert listening(port)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not listening(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_an_unreachable_server_fails_within_seconds(open_store) -> None:
    port = free_port()
    store = open_store(f"http://user:pw-secret@127.0.0.1:{port}", milvus_token="tok-secret")
    assert store.location == f"http://127.0.0.1:{port}"
    t = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=f"Cannot reach the Milvus server at http://127.0.0.1:{port} .*"
                                                 "python -m indexer serve --store milvus:PATH.db") as err:
        store.document_infos()
    assert time.monotonic() - t < 5
    assert "secret" not in str(err.value)

    # a port that accepts connections but never answers: bounded by the connect timeout
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        store = open_store(f"http://127.0.0.1:{silent.getsockname()[1]}")
        t = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="Cannot reach the Milvus server"):
            _ = store.info
        assert time.monotonic() - t < mv.CONNECT_TIMEOUT + 5
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        silent.close()


def test_bad_uris_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at most 36"):
        MilvusStore("milvus:/tmp/" + "x" * 40 + ".db", settings())
    with pytest.raises(ConfigError, match="ending in .db"):
        MilvusStore("milvus:/tmp/store.sqlite", settings())
    with pytest.raises(ConfigError, match="http://HOST:PORT"):
        MilvusStore("http://", settings())


def test_importing_the_module_does_not_import_pymilvus() -> None:
    done = run_python("""
        import sys
        import indexer.stores.milvus, indexer.stores.milvus_server
        print("pymilvus" in sys.modules, "milvus_lite" in sys.modules)
    """)
    assert done.stdout.strip() == "False False", done.stderr


def test_no_token_in_the_printable_location(open_store) -> None:
    store = open_store("https://root:Milvus@db.example.org:19530/", milvus_token="user:pass")
    assert store.location == "https://db.example.org:19530"
    assert "pass" not in repr(store) and "Milvus@" not in repr(store)
    assert open_store("http://u:p@127.0.0.1:19530", milvus_db="news").location == "http://127.0.0.1:19530/news"
    assert json.dumps(store.location)


def test_refused_credentials_are_a_config_error_without_the_token() -> None:
    """milvus-lite checks no credentials, so a refusal is made up as pymilvus reports it: a
    failed connect wrapped around the server's UNAUTHENTICATED answer."""
    import grpc

    class Refused(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAUTHENTICATED

        def details(self) -> str:
            return "auth check failure, please check username and password (token tok-secret)"

    pm = mv._pymilvus()
    store = MilvusStore("http://127.0.0.1:19530", settings(milvus_token="tok-secret"))
    try:
        try:
            raise Refused()
        except Refused as cause:
            raise pm.exceptions.MilvusException(code=2, message="Fail connecting to server on 127.0.0.1:19530, "
                                                "illegal connection params or server unavailable") from cause
    except pm.exceptions.MilvusException as exc:
        error = store._translate(mv._classify(exc))
    assert isinstance(error, ConfigError)
    assert str(error).startswith("The Milvus server at http://127.0.0.1:19530 refused the credentials")
    assert "Set VERBATIM_MILVUS_TOKEN to user:password or an API key" in str(error)
    assert "tok-secret" not in str(error)


def test_verify_finds_missing_rows(open_store) -> None:
    docs = synthetic()
    store = open_store()
    store.write(full(docs))
    victim = docs[0].passages[1].passage_id
    store._client.delete("verbatim_v1_passages", filter=f"pk in {mv._lit([victim])}", timeout=10)
    with pytest.raises(IndexMismatchError, match=r"'penguins' has \d+ passages, .* its row says .*Rebuild it with: "
                                                 r"python -m indexer build seeds --store milvus:"):
        store.verify()


def test_readers_never_see_two_versions_of_a_document(open_store, db: Path) -> None:
    base = SYNTHETIC_ARTICLES["volcano.txt"]
    versions = [stored(make_document("volcano", base + f"The {word} report came out on Tuesday.\n"))
                for word in ("alphaword", "betaword")]
    docs = synthetic()
    store = open_store()
    store.write(full([d for d in docs if d.document.doc_id != "volcano"] + [versions[0]]))
    seen: list[str] = []
    gaps: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            reader = MilvusStore(f"milvus:{db}", settings())
            try:
                info = {i.doc_id: i for i in reader.document_infos()}
                if "volcano" not in info:
                    problems.append("volcano missing")
                    continue
                key = document_key("volcano", info["volcano"].sha256)
                hits = reader.lexical_search(LexicalQuery(("alphaword", "betaword"), "alphaword betaword"), 20)
                keys = {pid.rpartition(":")[0] for pid, _ in hits}
                if not keys:  # the writer deleted the rows this reader's version had: a gap, no mix
                    gaps.append(key)
                    continue
                if keys != {key}:
                    problems.append(f"hits of {keys} with document {key}")
                word = "alphaword" if key == versions[0].key else "betaword"
                if word not in reader.document("volcano").text:
                    problems.append("text of another version")
                seen.append(key)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                problems.append(repr(exc))
            finally:
                reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(6):
            store.write(Change(put=(versions[(n + 1) % 2],)))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not problems, problems[:5]
    assert len(set(seen)) == 2 and len(gaps) < len(seen)  # the reader saw both versions, each whole


def test_main_serves_until_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "main.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import sys; from indexer.stores.milvus_server import main; sys.exit(main({str(db)!r}))"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        line = proc.stdout.readline().strip()
        uri = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert line == (f"Serving milvus:{db} at {uri} (127.0.0.1 only). Use --store {uri} in every program that "
                        "shares it. Press Ctrl-C to stop.")
        port = int(uri.rsplit(":", 1)[1])
        assert listening(port)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and out.strip() == "Stopping…", err
        assert not listening(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_a_server_that_goes_away_is_reported_at_once(open_store, db: Path) -> None:
    import os

    with serve(db) as uri:
        store = open_store(uri)
        store.write(full(synthetic()))
        ids = all_passage_ids(synthetic())
        assert len(store.passages(ids)) == len(ids)
        (pid, address), = mv.lite_processes(db)
        assert uri == f"http://{address}"
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        store.reopen()
        t = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=f"Cannot reach the Milvus server at {uri}"):
            store.passages(ids)
        assert time.monotonic() - t < 5
