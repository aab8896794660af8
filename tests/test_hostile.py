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

import indexer.store as store
from indexer.documents import load_documents
from indexer.errors import DocumentError, IndexMismatchError, IndexNotFoundError, IndexWriteError
from indexer.loaders import extract, upload_name
from indexer.settings import Limits
from indexer.store import CURRENT, MANIFEST, current_generation, load_index, repair_index, verify_index
from indexer.terminal import json_line, printable
from indexer.update import add_documents, remove_documents, upload_articles
from support import FAKE_CHUNKING, SYNTHETIC_ARTICLES, FakeEmbedder, FakeIndex, module_command, \
    run_module, subprocess_env, write_articles
from retrieval.searcher import Searcher, check_question

NEW_ARTICLE = "Glacier report\n\nThe glacier retreated forty metres this summer, the survey found.\n"


def _ids(index_dir: Path) -> list[str]:
    return [d.doc_id for d in load_index(index_dir).documents]


def _new_doc(tmp_path: Path, name: str = "glacier.txt", text: str = NEW_ARTICLE):  # type: ignore[no-untyped-def]
    path = tmp_path / "new" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    docs, skipped = load_documents([path])
    assert not skipped
    return docs[0]


# --- 1. CURRENT deleted: damage, not "no index yet" -------------------------------------

def test_missing_current_beside_generations_is_damage_and_repair_restores(fake_index: FakeIndex,
                                                                           tmp_path: Path) -> None:
    settings, embedder = fake_index.settings, fake_index.embedder
    before = _ids(settings.index_dir)
    (settings.index_dir / CURRENT).unlink()
    for attempt in (lambda: load_index(settings.index_dir),
                    lambda: add_documents([_new_doc(tmp_path)], settings, embedder)):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert "CURRENT file is missing" in str(info.value)
        assert "python -m indexer repair --index" in str(info.value)
    assert list(settings.index_dir.glob("gen-*")), "nothing was deleted"
    done = repair_index(settings.index_dir)
    assert done.switched and done.documents == len(before)
    assert _ids(settings.index_dir) == before
    # Now writes work again, and keep every article.
    add_documents([_new_doc(tmp_path)], settings, embedder)
    assert _ids(settings.index_dir) == sorted([*before, "glacier"])


def test_repair_of_an_intact_index_changes_nothing(fake_index: FakeIndex) -> None:
    live = current_generation(fake_index.settings.index_dir).name
    done = repair_index(fake_index.settings.index_dir)
    assert (done.generation, done.switched) == (live, False)
    with pytest.raises(IndexNotFoundError):
        repair_index(fake_index.settings.index_dir.parent / "nowhere")


def test_repair_passes_over_a_damaged_newest_generation(fake_index: FakeIndex, tmp_path: Path) -> None:
    settings = fake_index.settings
    first = current_generation(settings.index_dir).name
    add_documents([_new_doc(tmp_path)], settings, fake_index.embedder)
    newest = current_generation(settings.index_dir)
    (newest / "chunks.npy").write_bytes(b"garbage")
    with pytest.raises(IndexMismatchError, match="python -m indexer repair"):
        load_index(settings.index_dir)
    done = repair_index(settings.index_dir)
    assert done.generation == first and done.damaged == (newest.name,)
    assert newest.exists(), "repair deletes nothing"
    assert "glacier" not in _ids(settings.index_dir)


# --- 3. a write killed between the rename and the switch --------------------------------

def test_a_never_live_generation_is_not_kept_as_the_previous_one(fake_index: FakeIndex, tmp_path: Path) -> None:
    index_dir = fake_index.settings.index_dir
    live = current_generation(index_dir)
    orphan = index_dir / "gen-29991231T235959-000000000-1"  # newer than everything
    shutil.copytree(live, orphan)
    (index_dir / f".{CURRENT}.tmp-12345").write_text(orphan.name + "\n", encoding="utf-8")
    (index_dir / ".tmp-gen-half-written").mkdir()
    add_documents([_new_doc(tmp_path)], fake_index.settings, fake_index.embedder)
    names = sorted(p.name for p in index_dir.iterdir())
    new = current_generation(index_dir).name
    assert names == sorted([".lock", CURRENT, live.name, new]), names
    # A failure between the rename and the switch removes the generation it renamed.
    before = current_generation(index_dir)

    def fail(*args: object) -> None:
        raise OSError(errno.EIO, "injected")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_write_pointer", fail)
        with pytest.raises(IndexWriteError, match="injected"):
            add_documents([_new_doc(tmp_path, "other.txt", "Other\n\nA different article entirely.\n")],
                          fake_index.settings, fake_index.embedder)
    assert current_generation(index_dir) == before
    assert sorted(p.name for p in index_dir.glob("gen-*")) == sorted([live.name, new])


# --- 6, 12. CURRENT that is not text, not a file, or points outside ---------------------

@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / CURRENT).write_bytes(b"\xff\xfe"), "not UTF-8"),
    (lambda d: ((d / CURRENT).unlink(), (d / CURRENT).mkdir()), "not a plain file"),
    (lambda d: (d / CURRENT).write_text("../other/" + current_generation(d).name + "\n"), "not the name"),
    (lambda d: (d / CURRENT).write_text("/etc\n"), "not the name"),
    (lambda d: (d / CURRENT).write_text("gen-missing\n"), "missing"),
], ids=["not-utf8", "a-directory", "relative-outside", "absolute", "dangling"])
def test_a_damaged_current_is_refused_everywhere(fake_index: FakeIndex, tmp_path: Path, damage, words) -> None:  # type: ignore[no-untyped-def]
    settings = fake_index.settings
    before = {p.name for p in settings.index_dir.glob("gen-*")}
    damage(settings.index_dir)
    for attempt in (lambda: load_index(settings.index_dir), lambda: verify_index(settings.index_dir),
                    lambda: add_documents([_new_doc(tmp_path)], settings, fake_index.embedder),
                    lambda: remove_documents(["chess"], settings, fake_index.embedder)):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert "damaged" in str(info.value) and words in str(info.value)
    assert {p.name for p in settings.index_dir.glob("gen-*")} == before
    assert repair_index(settings.index_dir).switched
    assert len(_ids(settings.index_dir)) == len(SYNTHETIC_ARTICLES)


# --- 7. a manifest that is not what we wrote --------------------------------------------

def _edit(index_dir: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = current_generation(index_dir) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("change, words", [
    (lambda m: m.pop("model"), "lacks 'model'"),
    (lambda m: m["model"].pop("dimension"), "lacks 'model.dimension'"),
    (lambda m: m.update(files=list(m["files"])), "'files' of type list"),
    (lambda m: m.update(model="all-MiniLM-L6-v2"), "'model' of type str"),
    (lambda m: m["files"]["chunks.npy"].update(bytes="12"), "of type str"),
    (lambda m: m["corpus"].update(chunks=True), "of type bool"),
    (lambda m: m["chunking"].update(min_words=-1), "below 0"),
    (lambda m: m["files"].pop("sentences.npy"), "does not list sentences.npy"),
    (lambda m: m["model"].update(dimension=512), "the manifest says 512"),
    (lambda m: m["corpus"].update(documents=99), "counts differ"),
    (lambda m: m["vector_index"].update(type="annoy"), "vector_index.type"),
    (lambda m: m.update(sources="seeds"), "'sources' of type str"),
], ids=["no-model", "no-dimension", "files-list", "model-string", "bytes-string", "count-bool",
        "chunking-negative", "file-unlisted", "dimension-changed", "count-changed", "index-type",
        "sources-string"])
def test_a_malformed_manifest_is_refused_by_load_verify_and_add(fake_index: FakeIndex, tmp_path: Path,
                                                                 change, words) -> None:  # type: ignore[no-untyped-def]
    settings = fake_index.settings
    _edit(settings.index_dir, change)
    for attempt in (lambda: load_index(settings.index_dir), lambda: verify_index(settings.index_dir),
                    lambda: add_documents([_new_doc(tmp_path)], settings, fake_index.embedder)):
        with pytest.raises(IndexMismatchError) as info:
            attempt()
        assert words in str(info.value) and "python -m indexer build" in str(info.value)


def test_verify_checks_every_row_against_its_article(fake_index: FakeIndex) -> None:
    gen = current_generation(fake_index.settings.index_dir)
    chunks = np.load(gen / "chunks.npy")
    chunks[0, 2] = 10**6  # a passage ending past its article
    np.save(gen / "chunks.npy", chunks)
    _refresh_checksums(gen)
    with pytest.raises(IndexMismatchError, match="points outside its article"):
        verify_index(fake_index.settings.index_dir)


def _refresh_checksums(gen: Path) -> None:
    manifest = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = store._file_table(gen)
    (gen / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


# --- 8, 9. a read-only folder, a full disk ----------------------------------------------

@pytest.mark.parametrize("code, words", [(errno.EROFS, "is not writable"), (errno.EACCES, "is not writable"),
                                         (errno.ENOSPC, "not enough free disk space")])
def test_write_failures_are_messages_and_keep_the_index(fake_index: FakeIndex, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, code: int,
                                                        words: str) -> None:
    settings = fake_index.settings
    before = current_generation(settings.index_dir)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store.np, "save", fail)
    with pytest.raises(IndexWriteError) as info:
        add_documents([_new_doc(tmp_path)], settings, fake_index.embedder)
    assert words in str(info.value) and "the existing index is unchanged" in str(info.value)
    monkeypatch.undo()
    assert current_generation(settings.index_dir) == before
    assert not list(settings.index_dir.glob(".tmp-*"))
    assert len(_ids(settings.index_dir)) == len(SYNTHETIC_ARTICLES)


def test_a_faiss_write_error_is_a_message(fake_index: FakeIndex, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed: No space left on device")

    import indexer.ann as ann

    monkeypatch.setattr(ann.faiss, "write_index", fail)
    with pytest.raises(IndexWriteError, match="not enough free disk space"):
        add_documents([_new_doc(tmp_path)], fake_index.settings, fake_index.embedder)


def test_free_space_is_checked_before_embedding(fake_index: FakeIndex, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuse(FakeEmbedder):
        def encode(self, texts, **kwargs):  # type: ignore[no-untyped-def, override]
            raise AssertionError("embedding started before the space check")

    monkeypatch.setattr(store.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(IndexWriteError, match=r"needs about [\d.,]+ MB and 0.0 MB are free"):
        add_documents([_new_doc(tmp_path)], fake_index.settings, Refuse())
    assert len(_ids(fake_index.settings.index_dir)) == len(SYNTHETIC_ARTICLES)


def test_lock_file_that_cannot_be_opened_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def guarded(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name == store.LOCK:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    with pytest.raises(IndexWriteError, match="is not writable"):
        with store.write_lock(tmp_path / "index"):
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
    from indexer.settings import Settings
    return Settings(index_dir=index_dir, model_path=None, model_name=FakeEmbedder().name,
                    chunking=FAKE_CHUNKING, upload_dir=index_dir.parent / "uploads")


def test_a_really_read_only_and_a_really_full_disk(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", SYNTHETIC_ARTICLES)
    docs, _ = load_documents([folder])
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        settings = _fake_settings(disk / "index")
        add_documents(docs[:2], settings, FakeEmbedder())
        before = _ids(settings.index_dir)
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
        assert _ids(settings.index_dir) == before


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
    original = next(d for d in load_index(settings.index_dir).documents if d.doc_id == "penguins")
    assert original.source == str(fake_index.folder / "penguins.txt")


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
