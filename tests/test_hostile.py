"""A hostile run: damaged indexes, hostile files and names, a full or read-only disk, and
interrupts. Every case either succeeds or is refused with a message naming the fix, and
no article is ever lost (issue "Nothing lost, nothing hangs": one test per failure found).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import indexer.stores.folder as folder
import indexer.stores.local as local
from indexer.build import build_index
from indexer.documents import load_documents
from indexer.errors import DocumentError, IndexMismatchError, IndexNotFoundError, IndexWriteError
from indexer.loaders import extract, upload_name
from indexer.settings import Limits, Settings
from indexer.stores.folder import CURRENT, MANIFEST, file_table, read_pointer, sha256_file
from indexer.stores.legacy import legacy_documents
from indexer.stores.local import SEGMENT_MANIFEST, LocalStore, repair_index
from indexer.terminal import json_line, printable
from indexer.update import add_documents, remove_documents, upload_articles
from support import FAKE_CHUNKING, SYNTHETIC_ARTICLES, FakeEmbedder, FakeIndex, module_command, \
    run_module, store_answers, subprocess_env, write_articles
from retrieval.searcher import Searcher, check_question

NEW_ARTICLE = "Glacier report\n\nThe glacier retreated forty metres this summer, the survey found.\n"
# A format-2 index (the format before segments) of two short articles, written by the
# previous release's indexer/store.py with the fake embedder and FAKE_CHUNKING.
V2_INDEX = Path(__file__).resolve().parent / "data" / "index-v2"


def _ids(index_dir: Path) -> list[str]:
    return [d.doc_id for d in LocalStore(index_dir).document_infos()]


def _live(index_dir: Path) -> Path:
    name = read_pointer(index_dir)
    assert name is not None
    return index_dir / name


def _segments(index_dir: Path, generation: str | None = None) -> list[Path]:
    """The segment folders a generation (default: the live one) lists."""
    raw = json.loads((index_dir / (generation or _live(index_dir).name) / MANIFEST).read_text(encoding="utf-8"))
    return [index_dir / s["name"] for s in raw["segments"]]


def _new_doc(tmp_path: Path, name: str = "glacier.txt", text: str = NEW_ARTICLE):  # type: ignore[no-untyped-def]
    path = tmp_path / "new" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    docs, skipped = load_documents([path])
    assert not skipped
    return docs[0]


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # size unchanged, content changed
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _loads(index_dir: Path, generation: str) -> bool:
    """Whether ``generation`` is whole: CURRENT pointed at it passes a full verify (CURRENT is restored)."""
    saved = (index_dir / CURRENT).read_bytes()
    try:
        (index_dir / CURRENT).write_text(generation + "\n", encoding="utf-8")
        LocalStore(index_dir).verify()
        return True
    except IndexMismatchError:
        return False
    finally:
        (index_dir / CURRENT).write_bytes(saved)


# --- 1. CURRENT deleted: damage, not "no index yet" -------------------------------------

def test_missing_current_beside_generations_is_damage_and_repair_restores(fake_index: FakeIndex,
                                                                           tmp_path: Path) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    before = _ids(settings.index_dir)
    answers = store_answers(LocalStore(settings.index_dir), embedder)
    (settings.index_dir / CURRENT).unlink()
    for attempt in (lambda: LocalStore(settings.index_dir).document_infos(),
                    lambda: add_documents([_new_doc(tmp_path)], settings, embedder),
                    lambda: remove_documents(["chess"], settings, embedder)):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert "CURRENT file is missing" in str(info.value)
        assert "python -m indexer repair --index" in str(info.value)
    assert list(settings.index_dir.glob("gen-*")) and list(settings.index_dir.glob("seg-*")), "nothing was deleted"
    done = repair_index(settings.index_dir)
    assert done.switched and done.documents == len(before)
    assert store_answers(LocalStore(settings.index_dir), embedder) == answers
    # Now writes work again, and keep every article.
    add_documents([_new_doc(tmp_path)], settings, embedder)
    assert _ids(settings.index_dir) == sorted([*before, "glacier"])


def test_repair_of_an_intact_index_changes_nothing(fake_index: FakeIndex, tmp_path: Path) -> None:
    index_dir = fake_index.settings.index_dir
    add_documents([_new_doc(tmp_path)], fake_index.settings, fake_index.embedder)
    live = _live(index_dir).name
    entries = sorted(p.name for p in index_dir.iterdir())
    done = repair_index(index_dir)
    assert (done.generation, done.switched, done.documents, done.damaged) == (live, False, 4, ())
    assert sorted(p.name for p in index_dir.iterdir()) == entries
    # An intact current generation is left as it is, even when a newer one is intact too.
    older = min(p.name for p in index_dir.glob("gen-*"))
    (index_dir / CURRENT).write_text(older + "\n", encoding="utf-8")
    done = repair_index(index_dir)
    assert (done.generation, done.switched, done.documents) == (older, False, 3)
    assert read_pointer(index_dir) == older and "glacier" not in _ids(index_dir)
    with pytest.raises(IndexNotFoundError, match="nothing to repair"):
        repair_index(index_dir.parent / "nowhere")


# --- damage to the newest generation: repair goes back to the previous one --------------

def _new_segment(index_dir: Path) -> Path:
    return _segments(index_dir)[-1]


@pytest.mark.parametrize("damage, words", [
    (lambda d: (_new_segment(d) / "passages.npy").write_bytes(b"garbage"), "passages.npy has"),
    (lambda d: _truncate(_new_segment(d) / "passage_vectors.faiss"), "passage_vectors.faiss has"),
    (lambda d: _flip_last_byte(_new_segment(d) / "texts.bin"), "texts.bin does not match its checksum"),
    (lambda d: _flip_last_byte(_new_segment(d) / "sentence_terms.tf.npy"), "does not match its checksum"),
    (lambda d: shutil.rmtree(_new_segment(d)), "is missing"),
    (lambda d: (_live(d) / MANIFEST).write_text('{"format": "verbatim-index", "format_version": 3}'),
     "lacks 'model'"),
    (lambda d: (_live(d) / MANIFEST).write_bytes(b"\x00\xff not json"), "cannot be read"),
], ids=["segment-file-garbage", "segment-truncated", "segment-byte-flipped", "postings-byte-flipped",
        "segment-deleted", "manifest-malformed", "manifest-not-json"])
def test_repair_passes_over_a_damaged_newest_generation(fake_index: FakeIndex, tmp_path: Path, damage,  # type: ignore[no-untyped-def]
                                                        words: str) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    first = _live(settings.index_dir).name
    answers = store_answers(LocalStore(settings.index_dir), embedder)
    add_documents([_new_doc(tmp_path)], settings, embedder)
    newest = _live(settings.index_dir)
    damage(settings.index_dir)
    for attempt in (lambda: LocalStore(settings.index_dir).document_infos(),
                    lambda: LocalStore(settings.index_dir).verify(),
                    lambda: Searcher.load(settings, embedder).ask("glacier"),
                    lambda: add_documents([_new_doc(tmp_path, "other.txt", "Other\n\nAnother article.\n")],
                                          settings, embedder)):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert words in str(info.value)
        assert f"python -m indexer repair --index {settings.index_dir}" in str(info.value)
    done = repair_index(settings.index_dir)
    assert (done.generation, done.switched, done.damaged) == (first, True, (newest.name,))
    assert newest.exists(), "repair deletes nothing"
    assert "glacier" not in _ids(settings.index_dir)
    assert store_answers(LocalStore(settings.index_dir), embedder) == answers
    # Writes work again; the damaged generation is cleaned away by the next one.
    add_documents([_new_doc(tmp_path)], settings, embedder)
    assert "glacier" in _ids(settings.index_dir) and not newest.exists()


def test_damage_every_generation_shares_leaves_nothing_to_repair(fake_index: FakeIndex, tmp_path: Path) -> None:
    settings = fake_index.settings
    add_documents([_new_doc(tmp_path)], settings, fake_index.embedder)
    shared = _segments(settings.index_dir)[0]
    assert shared in _segments(settings.index_dir, sorted(p.name for p in settings.index_dir.glob("gen-*"))[0])
    _flip_last_byte(shared / "documents.jsonl")
    with pytest.raises(IndexMismatchError) as info:
        repair_index(settings.index_dir)
    assert "No generation of the index" in str(info.value) and "python -m indexer build" in str(info.value)
    assert len(list(settings.index_dir.glob("gen-*"))) == 2, "nothing was deleted"


# --- 3. leftovers of interrupted writes, and what is never deleted -----------------------

def test_leftovers_are_cleaned_by_the_next_write_but_never_a_live_one(fake_index: FakeIndex, tmp_path: Path) -> None:
    index_dir = fake_index.settings.index_dir
    live, (live_seg,) = _live(index_dir), _segments(index_dir)
    # A write killed between the rename and the switch: a generation (newer than everything)
    # and a segment that were never made current, and the leftovers of other writes.
    orphan = index_dir / "gen-29991231T235959-000000000-1"
    shutil.copytree(live, orphan)
    orphan_seg = index_dir / "seg-29991231T235959-000000000-1"
    shutil.copytree(live_seg, orphan_seg)
    (index_dir / f".{CURRENT}.tmp-12345").write_text(orphan.name + "\n", encoding="utf-8")
    (index_dir / ".tmp-gen-half-written").mkdir()
    (index_dir / ".tmp-seg-half-written").mkdir()
    (index_dir / ".tmp-seg-half-written" / "passages.npy").write_bytes(b"half")
    add_documents([_new_doc(tmp_path)], fake_index.settings, fake_index.embedder)
    new, (kept_seg, new_seg) = _live(index_dir), _segments(index_dir)
    assert kept_seg == live_seg
    names = sorted(p.name for p in index_dir.iterdir())
    assert names == sorted([".lock", CURRENT, live.name, new.name, live_seg.name, new_seg.name]), names
    assert _loads(index_dir, live.name) and _loads(index_dir, new.name), "the live and the previous one are whole"
    # The next write deletes the generation before the previous one, never a segment in use.
    remove_documents(["glacier"], fake_index.settings, fake_index.embedder)  # a segment wholly removed
    newest = _live(index_dir)
    assert not live.exists() and new.exists() and newest.exists()
    assert _segments(index_dir) == [live_seg] and new_seg.exists(), "the previous generation still lists it"
    assert _loads(index_dir, new.name) and _loads(index_dir, newest.name)
    # A failure between the rename and the switch removes the generation and segment it wrote.
    before = sorted(p.name for p in index_dir.iterdir())

    def fail(*args: object) -> None:
        raise OSError(errno.EIO, "injected")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "write_pointer", fail)
        with pytest.raises(IndexWriteError, match="injected"):
            add_documents([_new_doc(tmp_path, "other.txt", "Other\n\nA different article entirely.\n")],
                          fake_index.settings, fake_index.embedder)
    assert _live(index_dir) == newest
    assert sorted(p.name for p in index_dir.iterdir()) == before


def test_a_damaged_pointer_makes_a_rebuild_keep_every_generation(fake_index: FakeIndex) -> None:
    settings = fake_index.settings
    build_index(fake_index.documents[:2], settings, fake_index.embedder)  # two generations, two segments
    before = {p.name for p in settings.index_dir.iterdir() if p.name.startswith(("gen-", "seg-"))}
    (settings.index_dir / CURRENT).write_text("../somewhere\n", encoding="utf-8")
    (settings.index_dir / ".tmp-gen-half-written").mkdir()
    build_index(fake_index.documents, settings, fake_index.embedder)  # which generation was live is unknown
    after = {p.name for p in settings.index_dir.iterdir() if p.name.startswith(("gen-", "seg-"))}
    assert before < after and len(after - before) == 2, "nothing was deleted; one generation and segment added"
    assert not (settings.index_dir / ".tmp-gen-half-written").exists()
    assert _ids(settings.index_dir) == sorted(d.doc_id for d in fake_index.documents)


# --- 6, 12. CURRENT that is not text, not a file, or points outside ---------------------

@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / CURRENT).write_bytes(b"\xff\xfe"), "not UTF-8"),
    (lambda d: ((d / CURRENT).unlink(), (d / CURRENT).mkdir()), "not a plain file"),
    (lambda d: (d / CURRENT).write_text("../other/" + _live(d).name + "\n"), "not the name"),
    (lambda d: (d / CURRENT).write_text("/etc\n"), "not the name"),
    (lambda d: (d / CURRENT).write_text("gen-missing\n"), "missing"),
    (lambda d: (d / CURRENT).write_text(next(d.glob("seg-*")).name + "\n"), "not the name"),
], ids=["not-utf8", "a-directory", "relative-outside", "absolute", "dangling", "a-segment"])
def test_a_damaged_current_is_refused_everywhere(fake_index: FakeIndex, tmp_path: Path, damage, words) -> None:  # type: ignore[no-untyped-def]
    settings = fake_index.settings
    before = {p.name for p in settings.index_dir.iterdir() if p.name.startswith(("gen-", "seg-"))}
    damage(settings.index_dir)
    for attempt in (lambda: LocalStore(settings.index_dir).document_infos(),
                    lambda: LocalStore(settings.index_dir).verify(),
                    lambda: LocalStore(settings.index_dir).version(),
                    lambda: add_documents([_new_doc(tmp_path)], settings, fake_index.embedder),
                    lambda: remove_documents(["chess"], settings, fake_index.embedder),
                    lambda: LocalStore(settings.index_dir).compact()):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert "damaged" in str(info.value) and words in str(info.value)
    assert {p.name for p in settings.index_dir.iterdir() if p.name.startswith(("gen-", "seg-"))} == before
    assert repair_index(settings.index_dir).switched
    assert len(_ids(settings.index_dir)) == len(SYNTHETIC_ARTICLES)
    if words == "not a plain file":
        assert len(list(settings.index_dir.glob(f".{CURRENT}.damaged-*"))) == 1, "moved aside, not deleted"


# --- 7. a manifest that is not what we wrote --------------------------------------------

def _edit(index_dir: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = _live(index_dir) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _edit_segment(index_dir: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Change the live generation's first segment's ``segment.json``, and its checksum in the
    generation's manifest to match (so only the change itself is wrong)."""
    path = _segments(index_dir)[0] / SEGMENT_MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    _edit(index_dir, lambda m: m["segments"][0].update(checksum=sha256_file(path)))


@pytest.mark.parametrize("change, words", [
    (lambda m: m.pop("model"), "lacks 'model'"),
    (lambda m: m["model"].pop("dimension"), "lacks 'model.dimension'"),
    (lambda m: m.update(segments={"a": 1}), "'segments' of type dict"),
    (lambda m: m.update(model="all-MiniLM-L6-v2"), "'model' of type str"),
    (lambda m: m["segments"][0].update(checksum=12), "'segments[0].checksum' of type int"),
    (lambda m: m["segments"][0].update(checksum="0" * 64), "segment.json does not match its checksum"),
    (lambda m: m.update(passages=True), "of type bool"),
    (lambda m: m["chunking"].update(min_words=-1), "below 0"),
    (lambda m: m["segments"][0].update(removed=["x"]), "not a list of row numbers"),
    (lambda m: m["segments"][0].update(removed=[99]), "removes documents the segment does not hold"),
    (lambda m: m["model"].update(dimension=512), "the manifest says 512"),
    (lambda m: m.update(documents=99), "counts differ"),
    (lambda m: m["segments"][0].update(name="seg-missing"), "is missing"),
    (lambda m: m["segments"][0].update(name="../elsewhere/" + m["segments"][0]["name"]), "not the name of a segment"),
    (lambda m: m["segments"][0].update(name="/tmp"), "not the name of a segment"),
    (lambda m: m.update(format_version="3"), "format version '3'"),
], ids=["no-model", "no-dimension", "segments-dict", "model-string", "checksum-int", "checksum-wrong",
        "count-bool", "chunking-negative", "removed-strings", "removed-out-of-range", "dimension-changed",
        "count-changed", "segment-unknown", "segment-outside", "segment-absolute", "version-string"])
def test_a_malformed_manifest_is_refused_by_load_verify_and_add(fake_index: FakeIndex, tmp_path: Path,
                                                                 change, words) -> None:  # type: ignore[no-untyped-def]
    settings = fake_index.settings
    (tmp_path / "elsewhere").mkdir()
    shutil.copytree(_segments(settings.index_dir)[0], tmp_path / "elsewhere" / _segments(settings.index_dir)[0].name)
    _edit(settings.index_dir, change)
    _refused_by_load_verify_and_add(fake_index, tmp_path, words)


@pytest.mark.parametrize("change, words", [
    (lambda m: m["vector_index"].update(type="annoy"), "vector_index.type"),
    (lambda m: m["files"].pop("sentences.npy"), "does not list sentences.npy"),
    (lambda m: m["files"]["passages.npy"].update(bytes="12"), "of type str"),
    (lambda m: m["files"]["passages.npy"].update(bytes=12), "passages.npy has"),
    (lambda m: m.update(dimension=0), "below 1"),
    (lambda m: m.update(dimension=32), "have 64 dimensions and"),
    (lambda m: m.update(passages=m["passages"] + 1), "counts differ"),
    (lambda m: m.update(format_version=2), "segment format version 2"),
    (lambda m: m["files"].update({"../../../etc/passwd": {"bytes": 1, "sha256": "0"}}), "bad entry"),
], ids=["index-type", "file-unlisted", "bytes-string", "bytes-wrong", "dimension-zero", "dimension-other",
        "count-changed", "segment-version", "file-outside"])
def test_a_malformed_segment_manifest_is_refused_by_load_verify_and_add(fake_index: FakeIndex, tmp_path: Path,
                                                                         change, words) -> None:  # type: ignore[no-untyped-def]
    _edit_segment(fake_index.settings.index_dir, change)
    _refused_by_load_verify_and_add(fake_index, tmp_path, words)


def _refused_by_load_verify_and_add(fake_index: FakeIndex, tmp_path: Path, words: str) -> None:
    settings = fake_index.settings
    for attempt in (lambda: LocalStore(settings.index_dir).document_infos(),
                    lambda: LocalStore(settings.index_dir).verify(),
                    lambda: Searcher.load(settings, fake_index.embedder).ask("penguins"),
                    lambda: add_documents([_new_doc(tmp_path)], settings, fake_index.embedder)):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert words in str(info.value) and "python -m indexer build" in str(info.value)


def _rewrite_array(index_dir: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    """Change one array of the live segment and refresh every checksum, as if written so."""
    seg = _segments(index_dir)[0]
    array = np.load(seg / name)
    change(array)
    np.save(seg / name, array)
    _refresh_checksums(index_dir)


def _refresh_checksums(index_dir: Path) -> None:
    seg = _segments(index_dir)[0]
    _edit_segment(index_dir, lambda m: m.update(files=file_table(seg)))


def _shift_text_offset(index_dir: Path) -> None:
    path = _segments(index_dir)[0] / "documents.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[-1]["text_offset"] += 10
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _refresh_checksums(index_dir)


@pytest.mark.parametrize("damage, words", [
    (lambda d: _rewrite_array(d, "passages.npy", lambda a: a.__setitem__((0, 2), 10**6)), "points outside its article"),
    (lambda d: _rewrite_array(d, "sentences.npy", lambda a: a.__setitem__((1, 0), 7)), "points outside its article"),
    (lambda d: _rewrite_array(d, "passages.npy", lambda a: a.__setitem__((0, 3), a[0, 3] + 1)),
     "sentence range does not match its offsets"),
    (lambda d: _rewrite_kinds(d), "sentence kinds do not match"),
    (_shift_text_offset, "text lies outside texts.bin"),
], ids=["passage-past-article", "sentence-bad-document", "passage-sentences", "kinds-short", "text-offset"])
def test_every_row_is_checked_against_its_article(fake_index: FakeIndex, damage, words: str) -> None:  # type: ignore[no-untyped-def]
    damage(fake_index.settings.index_dir)
    LocalStore(fake_index.settings.index_dir).manifest  # noqa: B018 - the manifests themselves are fine
    for attempt in (lambda: LocalStore(fake_index.settings.index_dir).verify(),
                    lambda: LocalStore(fake_index.settings.index_dir).document_infos()):
        with pytest.raises(IndexMismatchError, match=words):
            attempt()


def _rewrite_kinds(index_dir: Path) -> None:
    seg = _segments(index_dir)[0]
    np.save(seg / "sentence_kinds.npy", np.load(seg / "sentence_kinds.npy")[:-1])
    _refresh_checksums(index_dir)


# --- a format-2 index: refused until upgraded, then nothing is lost ---------------------

def _v2_copy(tmp_path: Path) -> Path:
    index_dir = tmp_path / "old-index"
    shutil.copytree(V2_INDEX, index_dir)
    return index_dir


def _v2_documents() -> list[dict]:  # type: ignore[type-arg]
    (gen,) = V2_INDEX.glob("gen-*")
    assert json.loads((gen / MANIFEST).read_text(encoding="utf-8"))["format_version"] == 2
    return [json.loads(line) for line in (gen / "documents.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_format_2_index_is_refused_naming_upgrade(tmp_path: Path) -> None:
    index_dir = _v2_copy(tmp_path)
    settings = replace(Settings(index_dir=index_dir, model_path=None, model_name=FakeEmbedder().name),
                       chunking=FAKE_CHUNKING)
    for attempt in (lambda: LocalStore(index_dir).document_infos(), lambda: LocalStore(index_dir).info,
                    lambda: LocalStore(index_dir).verify(), lambda: Searcher.load(settings, FakeEmbedder()),
                    lambda: add_documents([_new_doc(tmp_path)], settings, FakeEmbedder()),
                    lambda: repair_index(index_dir)):  # not damage: repair does not apply
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert "format version 2" in str(info.value) and "python -m indexer upgrade" in str(info.value)
    # The articles it stores are read back whole.
    stored = {d.doc_id: d for d in legacy_documents(index_dir) or ()}
    assert sorted(stored) == ["harbour", "orchard"]
    for raw in _v2_documents():
        d = stored[raw["doc_id"]]
        assert (d.title, d.source, d.text, d.sha256) == (raw["title"], raw["source"], raw["text"], raw["sha256"])
    assert legacy_documents(tmp_path / "nowhere") is None
    written = sorted(p.name for p in index_dir.rglob("*") if p.name != ".lock")  # repair took the lock
    assert written == sorted(p.name for p in V2_INDEX.rglob("*")), "refusing changed nothing"


@pytest.mark.parametrize("command", ["upgrade", "add"])
def test_upgrade_rebuilds_a_format_2_index_from_its_articles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str], command: str) -> None:
    import indexer.__main__ as cli

    for name in [k for k in os.environ if k.startswith("VERBATIM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(cli, "_embedder", lambda settings: FakeEmbedder())  # no model load
    index_dir = _v2_copy(tmp_path)
    new = tmp_path / "glacier.txt"
    new.write_text(NEW_ARTICLE, encoding="utf-8")
    args = ["upgrade"] if command == "upgrade" else ["add", str(new)]
    assert cli.main([*args, "--index", str(index_dir)]) == 0
    out, err = capsys.readouterr()
    assert "Upgrading the index" in err and "format 2" in err
    store = LocalStore(index_dir)
    assert store.manifest.format_version == 3 and store.info.model.name == FakeEmbedder().name
    expected = {"harbour", "orchard"} | ({"glacier"} if command == "add" else set())
    assert set(_ids(index_dir)) == expected
    for raw in _v2_documents():  # every article, its text and citation source as they were
        d = store.document(raw["doc_id"])
        assert d is not None and (d.title, d.source, d.text, d.sha256) == (
            raw["title"], raw["source"], raw["text"], raw["sha256"])
    # The same answers as a fresh build of the same articles.
    settings = Settings.from_env().with_index(tmp_path / "fresh")
    articles = legacy_documents(V2_INDEX) or []
    if command == "add":
        articles += load_documents([new])[0]
    build_index(articles, settings, FakeEmbedder())
    assert store_answers(store, FakeEmbedder()) == store_answers(LocalStore(settings.index_dir), FakeEmbedder())
    # Upgraded: nothing more to do, and the next write cleans the old generation away.
    assert cli.main(["upgrade", "--index", str(index_dir)]) == 0
    assert "nothing to upgrade" in capsys.readouterr().out
    remove_documents(["orchard"], settings.with_index(index_dir), FakeEmbedder())
    assert not any((index_dir / g.name).exists() for g in V2_INDEX.glob("gen-*"))


@pytest.mark.parametrize("damage", [
    lambda f: f.write_text(f.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8"),
    lambda f: f.write_text(f.read_text(encoding="utf-8") + '{"doc_id": "x", "title": "X"}\n', encoding="utf-8"),
    lambda f: f.unlink(),
], ids=["not-json", "not-an-article", "missing"])
def test_a_damaged_format_2_index_is_refused_not_half_upgraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str], damage) -> None:  # type: ignore[no-untyped-def]
    import indexer.__main__ as cli

    monkeypatch.setattr(cli, "_embedder", lambda settings: FakeEmbedder())
    index_dir = _v2_copy(tmp_path)
    (gen,) = index_dir.glob("gen-*")
    damage(gen / "documents.jsonl")
    files = sorted(p.name for p in index_dir.rglob("*"))
    with pytest.raises(IndexMismatchError, match="cannot be upgraded"):
        legacy_documents(index_dir)
    assert cli.main(["upgrade", "--index", str(index_dir)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot be upgraded" in err and "python -m indexer build" in err
    assert sorted(p.name for p in index_dir.rglob("*")) == files, "nothing was written"


@pytest.mark.slow
def test_cli_refuses_a_format_2_index_until_upgraded(tmp_path: Path) -> None:
    index_dir = _v2_copy(tmp_path)
    for args in (("indexer", "list"), ("indexer", "verify"), ("retrieval", "ask", "When did the harbour reopen?")):
        _refused(run_module(*args, "--index", str(index_dir)), 3, "format version 2", "python -m indexer upgrade")
    done = run_module("indexer", "upgrade", "--index", str(index_dir))
    assert done.returncode == 0 and "Upgraded the index" in done.stdout, done.stderr
    listed = run_module("indexer", "list", "--json", "--index", str(index_dir))
    assert [json.loads(line)["doc_id"] for line in listed.stdout.splitlines()] == ["harbour", "orchard"]
    asked = run_module("retrieval", "ask", "--json", "When did the harbour in Kiel reopen?", "--index",
                       str(index_dir))
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["hits"][0]["doc_id"] == "harbour"


# --- 8, 9. a read-only folder, a full disk ----------------------------------------------

@pytest.mark.parametrize("operation", ["add", "remove"])
@pytest.mark.parametrize("code, words", [(errno.EROFS, "is not writable"), (errno.EACCES, "is not writable"),
                                         (errno.ENOSPC, "not enough free disk space")])
def test_write_failures_are_messages_and_keep_the_index(fake_index: FakeIndex, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, code: int,
                                                        words: str, operation: str) -> None:
    settings = fake_index.settings
    add_documents([_new_doc(tmp_path, "more.txt", "More\n\n" + "A longer article about many things. " * 12)],
                  settings, fake_index.embedder)  # so that removing chess stays under the compaction share
    before = _live(settings.index_dir)
    entries = sorted(p.name for p in settings.index_dir.iterdir())
    answers = store_answers(LocalStore(settings.index_dir), fake_index.embedder)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    if operation == "add":  # a data file of the new segment
        monkeypatch.setattr(local.np, "save", fail)
        run = lambda: add_documents([_new_doc(tmp_path)], settings, fake_index.embedder)  # noqa: E731
    else:  # a remove writes only the generation's manifest
        monkeypatch.setattr(local, "fsync_tree", fail)
        run = lambda: remove_documents(["chess"], settings, fake_index.embedder)  # noqa: E731
    with pytest.raises(IndexWriteError) as info:
        run()
    assert words in str(info.value) and "the existing index is unchanged" in str(info.value)
    monkeypatch.undo()
    assert _live(settings.index_dir) == before
    assert sorted(p.name for p in settings.index_dir.iterdir()) == entries
    assert store_answers(LocalStore(settings.index_dir), fake_index.embedder) == answers
    segments = sorted(settings.index_dir.glob("seg-*"))
    run()  # and it works once the disk does
    assert _live(settings.index_dir) != before
    if operation == "remove":
        assert sorted(settings.index_dir.glob("seg-*")) == segments, "the remove wrote only a generation"


def test_a_faiss_write_error_is_a_message(fake_index: FakeIndex, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed: No space left on device")

    import indexer.ann as ann

    before = _live(fake_index.settings.index_dir)
    monkeypatch.setattr(ann.faiss, "write_index", fail)
    with pytest.raises(IndexWriteError, match="not enough free disk space"):
        add_documents([_new_doc(tmp_path)], fake_index.settings, fake_index.embedder)
    assert _live(fake_index.settings.index_dir) == before
    assert not list(fake_index.settings.index_dir.glob(".tmp-*"))


def test_free_space_is_checked_before_embedding(fake_index: FakeIndex, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuse(FakeEmbedder):
        def encode(self, texts, **kwargs):  # type: ignore[no-untyped-def, override]
            raise AssertionError("embedding started before the space check")

    monkeypatch.setattr(folder.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    for attempt in (lambda: add_documents([_new_doc(tmp_path)], fake_index.settings, Refuse()),
                    lambda: build_index([_new_doc(tmp_path)], fake_index.settings, Refuse())):
        with pytest.raises(IndexWriteError, match=r"needs about [\d.,]+ MB and 0.0 MB are free"):
            attempt()
    assert len(_ids(fake_index.settings.index_dir)) == len(SYNTHETIC_ARTICLES)


def test_lock_file_that_cannot_be_opened_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def guarded(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name == folder.LOCK:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    with pytest.raises(IndexWriteError, match="is not writable"):
        with folder.write_lock(tmp_path / "index"):
            pass


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (root only, where mounting is allowed)."""
    path.mkdir(parents=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip()}); the injected-failure "
                    "tests above cover the same code")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fake_settings(index_dir: Path):  # type: ignore[no-untyped-def]
    return Settings(index_dir=index_dir, model_path=None, model_name=FakeEmbedder().name,
                    chunking=FAKE_CHUNKING, upload_dir=index_dir.parent / "uploads")


def test_a_really_read_only_and_a_really_full_disk(tmp_path: Path) -> None:
    folder_ = write_articles(tmp_path / "articles", SYNTHETIC_ARTICLES)
    docs, _ = load_documents([folder_])
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        settings = _fake_settings(disk / "index")
        add_documents(docs[:2], settings, FakeEmbedder())
        before = _ids(settings.index_dir)
        answers = store_answers(LocalStore(settings.index_dir), FakeEmbedder())
        # Full: fill the disk, then add.
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            for _ in range(1000):  # 64 MB at most; the disk holds 4
                os.write(fd, b"\0" * (1 << 16))
        os.close(fd)
        with pytest.raises(IndexWriteError, match="free disk space"):
            add_documents(docs[2:], settings, FakeEmbedder())
        assert _ids(settings.index_dir) == before
        filler.unlink()
        # Read-only: remount, then add and remove.
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for attempt in (lambda: add_documents(docs[2:], settings, FakeEmbedder()),
                        lambda: remove_documents([before[0]], settings, FakeEmbedder())):
            with pytest.raises(IndexWriteError, match="not writable"):
                attempt()
        assert store_answers(LocalStore(settings.index_dir), FakeEmbedder()) == answers
        LocalStore(settings.index_dir).verify()


# --- 2. uploads whose names clean to the same name --------------------------------------

def test_uploads_whose_names_clean_alike_are_all_kept(tmp_path: Path) -> None:
    settings = _fake_settings(tmp_path / "index")
    files = [(name, f"Article {n}\n\nThis is upload number {n}, about topic {name}.\n".encode())
             for n, name in enumerate(["a b.txt", "a_b.txt", "café.txt", "cafe.txt"])]
    report = upload_articles(files, settings, FakeEmbedder())
    assert len(report.added) == 4 and not report.skipped
    saved = sorted(p.name for p in settings.upload_dir.iterdir())
    assert len(saved) == 4 and "a_b.txt" in saved and "cafe.txt" in saved
    assert len(_ids(settings.index_dir)) == 4
    # Uploading one again updates that article, and only it.
    again = upload_articles([("a b.txt", b"Article 0\n\nA corrected version of upload zero.\n")],
                            settings, FakeEmbedder())
    assert again.updated == (Path(upload_name("a b.txt")).stem,) and len(_ids(settings.index_dir)) == 4


def test_an_upload_never_replaces_an_article_from_another_file(fake_index: FakeIndex) -> None:
    settings = replace(fake_index.settings, upload_dir=fake_index.folder.parent / "uploads")
    report = upload_articles([("penguins.txt", b"Penguins\n\nA different article that reuses the name.\n"),
                              ("penguins.txt", b"Penguins\n\nAnother one with the same name.\n")],
                             settings, fake_index.embedder)
    assert report.added == () and report.updated == ()
    reasons = [s.reason for s in report.skipped]
    assert any("already has the id 'penguins'" in r and "rename this file" in r for r in reasons), reasons
    assert any("same name" in r for r in reasons), reasons
    assert not (settings.upload_dir / "penguins.txt").exists(), "a refused upload is not saved"
    original = LocalStore(settings.index_dir).document("penguins")
    assert original is not None and original.source == str(fake_index.folder / "penguins.txt")
    assert original == next(d for d in fake_index.documents if d.doc_id == "penguins")


def test_skip_reasons_do_not_repeat_the_path(tmp_path: Path) -> None:
    report = upload_articles([("binary_renamed.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")],
                             _fake_settings(tmp_path / "index"), FakeEmbedder())
    (skip,) = report.skipped
    assert skip.path == "binary_renamed.txt"
    assert "binary_renamed" not in skip.reason and "not a text file" in skip.reason
    assert "UTF-8" not in skip.reason


# --- 4, 5. limits, and bytes that are not text ------------------------------------------

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx(paragraphs: int, text: str = "a") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0"?><w:document {_W}><w:body>'.encode())
            block = (f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" * 1000).encode()
            for _ in range(paragraphs // 1000):
                f.write(block)
            f.write(b"</w:body></w:document>")
    return buf.getvalue()


def test_a_docx_zip_bomb_is_refused_before_unpacking() -> None:
    bomb = _docx(30_000_000)  # 1 GB of XML in a few MB
    assert len(bomb) < 5_000_000

    def unpack(*args: object, **kwargs: object) -> None:
        raise AssertionError("a part of the bomb was unpacked")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "open", unpack)
        with pytest.raises(DocumentError, match="unpacks to .* VERBATIM_MAX_EXTRACTED_BYTES"):
            extract(Path("bomb.docx"), bomb)


def test_a_docx_with_too_much_text_stops_at_the_limit() -> None:
    with pytest.raises(DocumentError, match="VERBATIM_MAX_ARTICLE_CHARS"):
        extract(Path("long.docx"), _docx(20_000, "word " * 20), Limits(max_chars=100_000))


@pytest.mark.parametrize("text, limits, setting", [
    ("Title\n" + "a\n" * 30, Limits(max_sentences=20), "VERBATIM_MAX_SENTENCES"),
    ("Title\n\n" + "One two three four five six seven eight nine ten. " * 200, Limits(max_passages=5),
     "VERBATIM_MAX_PASSAGES"),
    ("Title\n" + "x" * 5000, Limits(max_chars=1000), "VERBATIM_MAX_ARTICLE_CHARS"),
    ("Title\n" + "x" * 5000, Limits(max_file_bytes=1000), "VERBATIM_MAX_FILE_BYTES"),
], ids=["sentences", "passages", "characters", "bytes"])
def test_each_limit_skips_a_file_naming_its_setting(tmp_path: Path, text: str, limits: Limits,
                                                    setting: str) -> None:
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    docs, skipped = load_documents([path], limits)
    assert docs == [] and setting in skipped[0].reason


def test_a_file_of_tiny_lines_is_skipped(tmp_path: Path) -> None:
    """One sentence a line: over the sentence limit (and, at a million lines, over the
    character limit too). Splitting it no longer looks back to the start of the text for
    every period, which made such a file take hours."""
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"Line {i} ends here.\n" for i in range(200_000)), encoding="utf-8")
    docs, skipped = load_documents([path], Limits(max_chars=10**8))
    assert docs == [] and "VERBATIM_MAX_SENTENCES" in skipped[0].reason
    path.write_text("".join(f"Line {i}.\n" for i in range(1_000_000)), encoding="utf-8")
    docs, skipped = load_documents([path])
    assert docs == [] and "VERBATIM_MAX_ARTICLE_CHARS" in skipped[0].reason


@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_are_not_a_text_file(seed: int) -> None:
    data = np.random.default_rng(seed).integers(1, 256, 20_000, dtype=np.uint8).tobytes()
    with pytest.raises(DocumentError, match="not a text file"):
        extract(Path("noise.txt"), data)


def test_utf16_without_bom_gets_encoding_advice_and_binary_does_not() -> None:
    with pytest.raises(DocumentError, match="UTF-16 text without a byte order mark"):
        extract(Path("u.txt"), "Plain words in UTF-16.".encode("utf-16-le"))
    with pytest.raises(DocumentError, match="not a text file") as info:
        extract(Path("p.txt"), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    assert "UTF-8" not in str(info.value)


# --- 10. a question with undecodable bytes ----------------------------------------------

def test_a_question_with_undecodable_bytes_is_refused() -> None:
    question = b"When did \xff Turkey join NATO?".decode("utf-8", "surrogateescape")
    with pytest.raises(Exception, match="not UTF-8 text") as info:
        check_question(question, 2000)
    assert type(info.value).__name__ == "QuestionError"


# --- 13, 14. terminal output ------------------------------------------------------------

def test_printable_escapes_what_steers_a_terminal() -> None:
    hostile = "Drone sale was \x1b[2J\x1b]0;pwned\x07confirmed.\r\u202eevil\x9b31m"
    shown = printable(hostile)
    assert not any(ch in shown for ch in "\x1b\x07\r\u202e\x9b")
    assert "\\x1b[2J" in shown and "\\u202e" in shown
    assert printable("bad\nid") == "bad\\nid" and printable("a\nb", multiline=True) == "a\nb"
    line = json_line({"text": hostile})
    assert json.loads(line) == {"text": hostile} and "\x1b" not in line and "\x9b" not in line


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real-model index (built by the CLI) of an article with ANSI escapes and one whose
    file name holds a newline."""
    root = tmp_path_factory.mktemp("hostile")
    folder = root / "articles"
    folder.mkdir()
    (folder / "ansi.txt").write_bytes(b"T\n\nDrone sale was \x1b[2J\x1b]0;pwned\x07confirmed.\n")
    (folder / "bad\nid.txt").write_text("Cats\n\nThe cat show opened on Sunday in the town hall.\n",
                                        encoding="utf-8")
    done = run_module("indexer", "build", str(folder), "--index", str(root / "index"))
    assert done.returncode == 0, done.stderr
    return root / "index"


@pytest.mark.slow
def test_ask_and_list_print_control_characters_escaped(hostile_index: Path) -> None:
    ask = run_module("retrieval", "ask", "Was the drone sale confirmed?", "--index", str(hostile_index))
    assert ask.returncode == 0, ask.stderr
    assert "\x1b" not in ask.stdout and "\x07" not in ask.stdout
    assert "Drone sale was \\x1b[2J\\x1b]0;pwned\\x07confirmed." in ask.stdout
    listed = run_module("indexer", "list", "--index", str(hostile_index))
    assert listed.returncode == 0
    rows = listed.stdout.splitlines()
    assert len(rows) == 3 and any(r.startswith("bad\\nid  ") for r in rows), rows
    as_json = run_module("retrieval", "ask", "--json", "Was the drone sale confirmed?", "--index",
                         str(hostile_index))
    assert "\x1b" not in as_json.stdout
    assert "\x1b[2J" in json.loads(as_json.stdout)["hits"][0]["text"]


# --- CLI: exit codes and messages, never a traceback ------------------------------------

def _refused(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    for word in words:
        assert word in proc.stderr


@pytest.mark.slow
def test_cli_refuses_damage_and_bad_bytes_with_messages(hostile_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "t"
    shutil.copytree(hostile_index, index)
    new = tmp_path / "x.txt"
    new.write_text(NEW_ARTICLE, encoding="utf-8")
    (index / CURRENT).write_bytes(b"\xff\xfe")
    for args in (("indexer", "add", str(new)), ("indexer", "list"), ("indexer", "verify"),
                 ("retrieval", "ask", "When?")):
        _refused(run_module(*args, "--index", str(index)), 3, "damaged", "python -m indexer repair")
    repaired = run_module("indexer", "repair", "--index", str(index))
    assert repaired.returncode == 0 and "Repaired" in repaired.stdout
    bad = b"When did \xff Turkey join NATO?".decode("utf-8", "surrogateescape")
    for command in ("ask", "compare"):
        _refused(run_module("retrieval", command, bad, "--index", str(index)), 2, "not UTF-8 text")


@pytest.mark.slow
def test_add_of_an_empty_folder_warns(hostile_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "t"
    shutil.copytree(hostile_index, index)
    (tmp_path / "empty").mkdir()
    done = run_module("indexer", "add", str(tmp_path / "empty"), "--index", str(index))
    assert done.returncode == 0 and "warning: no article files in" in done.stderr
    assert "the index is unchanged" in done.stderr


# --- 11. Ctrl-C at any moment, imports included -----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("args", [("indexer", "list", "--index", "nowhere"),
                                  ("retrieval", "ask", "When?", "--index", "nowhere")])
def test_ctrl_c_during_start_up_says_interrupted(args: tuple[str, ...]) -> None:
    seen = 0
    for delay in (0.05, 0.1, 0.15, 0.2, 0.3):
        proc = subprocess.Popen(module_command(*args), env=subprocess_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # Before our first line runs (the interpreter starting up) nothing can catch it.
        assert "Traceback" not in err or not any(part in err for part in ("/indexer/", "/retrieval/")), err
        if proc.returncode == 130:
            seen += 1
            assert "interrupted" in err
    assert seen, "no run was interrupted"


@pytest.mark.slow
def test_ctrl_c_at_any_moment_of_an_add_keeps_a_whole_index(hostile_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "t"
    shutil.copytree(hostile_index, index)
    before = set(_ids(index))
    new = tmp_path / "glacier.txt"
    new.write_text(NEW_ARTICLE, encoding="utf-8")
    outcomes = set()
    for delay in (0.1, 0.4, 0.8, 1.2, 1.6, 2.5):
        proc = subprocess.Popen(module_command("indexer", "add", str(new), "--index", str(index)),
                                env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        after = set(_ids(index))  # always loads: a whole generation, old or new
        assert after in (before, before | {"glacier"}), (delay, err)
        assert "Traceback" not in err or not any(part in err for part in ("/indexer/", "/retrieval/")), err
        if proc.returncode == 130:  # the message says which
            assert after == (before if "the previous index is unchanged" in err else before | {"glacier"}), err
        outcomes.add((proc.returncode, after == before))
        if after != before:  # start again from the old index
            shutil.rmtree(index)
            shutil.copytree(hostile_index, index)
    assert (130, True) in outcomes, outcomes
