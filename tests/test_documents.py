"""Reading article files: titles, ids, URLs, sources, and what gets skipped (API and CLI)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from indexer.documents import first_url, load_documents, read_document, title_of
from indexer.errors import DocumentError
from indexer.settings import Limits
from indexer.stores.local import LocalStore
from support import run_module

GOOD = "Turkey sells drones to Ukraine\n\nThe Bayraktar TB2 drone was sold to Ukraine in 2019. It flew well.\n"


@pytest.mark.parametrize("text, title", [
    ("First line\nSecond line", "First line"),
    ("\n\n   \n  Indented title  \nBody.", "Indented title"),
    ("# Markdown heading\n\nBody.", "Markdown heading"),
    ("\ufeffTitle after a BOM\nBody", "Title after a BOM"),
    ("\r\n\r\nWindows title\r\nBody", "Windows title"),
    ("###\nBody", "###"),
    ("Only one line without newline", "Only one line without newline"),
])
def test_title_is_the_first_non_empty_line(text: str, title: str) -> None:
    assert title_of(text) == title


@pytest.mark.parametrize("text, url", [
    ("Source: https://example.com/news/article-1.\nMore.", "https://example.com/news/article-1"),
    ("See (https://example.org/a/b?x=1&y=2) for more.", "https://example.org/a/b?x=1&y=2"),
    ("He linked “http://news.example.net/story”, then left.", "http://news.example.net/story"),
    ("First https://a.example/1, then https://b.example/2", "https://a.example/1"),
    ("<a href=\"https://x.example/p\">x</a>", "https://x.example/p"),
    ("No link here, only example.com and ftp://old.example", None),
])
def test_first_url(text: str, url: str | None) -> None:
    assert first_url(text) == url


def test_read_document_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    data = ("Erdogan visits Kyiv\r\n\r\nRead it at https://example.com/kyiv.\r\nThe visit was short.\r\n"
            "Ünïcödé text.\r\n").encode("utf-8")
    (folder / "007_abc.txt").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    doc = read_document("news/007_abc.txt")
    assert doc.doc_id == "007_abc"
    assert doc.title == "Erdogan visits Kyiv"
    assert doc.source == "news/007_abc.txt", "the source is kept exactly as given"
    assert doc.url == "https://example.com/kyiv"
    assert doc.text == data.decode("utf-8"), "the text is the file's characters, \\r\\n included"
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    absolute = read_document(tmp_path / "news" / "007_abc.txt")
    assert absolute.source == str(tmp_path / "news" / "007_abc.txt")
    assert absolute.doc_id == doc.doc_id and absolute.text == doc.text


LATIN1 = "Café in Zürich\nThe café served crème brûlée.\n".encode("latin-1")


def _bad_folder(root: Path) -> Path:
    """Two good articles (one nested), a Latin-1 one, and files that cannot be indexed."""
    folder = root / "articles"
    (folder / "nested").mkdir(parents=True)
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    (folder / "nested" / "deep.md").write_text("# Deep article\n\nFound recursively.\n", encoding="utf-8")
    (folder / "latin1.txt").write_bytes(LATIN1)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text(" \n\t\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary\x00data" * 10)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    (folder / "notes.rtf").write_bytes(b"{\\rtf1 unsupported}")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "secret.txt").write_text("Hidden folders are skipped.\n", encoding="utf-8")
    return folder


BAD_FILES = ("empty.txt", "blank.md", "binary.txt", "broken.pdf", "notes.rtf")


def test_load_documents_skips_bad_files_with_reasons(tmp_path: Path) -> None:
    folder = _bad_folder(tmp_path)
    # notes.rtf is named directly: a folder scan ignores unsupported suffixes, a named file is
    # reported.
    docs, skipped = load_documents([folder, folder / "notes.rtf", tmp_path / "missing"])
    assert sorted(d.doc_id for d in docs) == ["deep", "good", "latin1"]
    good = next(d for d in docs if d.doc_id == "good")
    assert good.source == str(folder / "good.txt") and good.text == GOOD and good.note is None
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {*BAD_FILES, "missing"}
    assert "no text" in reasons["empty.txt"] and "no text" in reasons["blank.md"]
    assert "binary" in reasons["binary.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert "unsupported file type '.rtf'" in reasons["notes.rtf"] and ".txt" in reasons["notes.rtf"]
    assert "no such file" in reasons["missing"]
    # A reason does not repeat the path (the caller prints "skipped PATH: REASON").
    assert all(not s.reason.startswith(s.path) for s in skipped)


def test_invalid_utf8_falls_back_to_a_single_byte_codec_with_a_note(tmp_path: Path) -> None:
    folder = _bad_folder(tmp_path)
    doc = read_document(folder / "latin1.txt")
    assert doc.text == LATIN1.decode("cp1252") == LATIN1.decode("latin-1")
    assert doc.title == "Café in Zürich"
    assert doc.note is not None and "not UTF-8" in doc.note and "byte 3" in doc.note


def test_unsupported_files_inside_a_folder_are_not_indexed(tmp_path: Path) -> None:
    folder = _bad_folder(tmp_path)
    docs, skipped = load_documents([folder])
    assert "notes" not in {d.doc_id for d in docs}
    assert "secret" not in {d.doc_id for d in docs}, "files under hidden folders are ignored"


def test_duplicate_stems_keep_the_first(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("First article.\n", encoding="utf-8")
    (tmp_path / "b" / "same.md").write_text("Second article.\n", encoding="utf-8")
    docs, skipped = load_documents([tmp_path / "a", tmp_path / "b"])
    assert [d.text for d in docs] == ["First article.\n"]
    assert len(skipped) == 1 and skipped[0].path == str(tmp_path / "b" / "same.md")
    assert "same document id 'same'" in skipped[0].reason


def test_file_named_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("An article.\n", encoding="utf-8")
    docs, skipped = load_documents([tmp_path, tmp_path / "x.txt"])
    assert [d.doc_id for d in docs] == ["x"] and skipped == []


def test_read_document_errors(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 100, encoding="utf-8")
    with pytest.raises(DocumentError, match="over the limit"):
        read_document(big, Limits(max_file_bytes=10))
    with pytest.raises(DocumentError, match="cannot be read"):
        read_document(tmp_path / "absent.txt")


def _run_build(args: list[str], index: Path) -> subprocess.CompletedProcess[str]:
    return run_module("indexer", "build", *args, "--index", str(index))


@pytest.mark.slow
def test_cli_build_skips_bad_files_with_warnings(tmp_path: Path) -> None:
    folder = _bad_folder(tmp_path)
    index = tmp_path / "index"
    proc = _run_build([str(folder), str(folder / "notes.rtf")], index)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    for name in BAD_FILES:
        assert any(str(folder / name) in line for line in warnings), f"no warning for {name}:\n{proc.stderr}"
    assert len(warnings) == len(BAD_FILES)
    assert "Indexed 3 articles" in proc.stdout
    store = LocalStore(index)
    assert [d.doc_id for d in store.document_infos()] == ["deep", "good", "latin1"]
    good = store.document("good")
    assert good is not None and good.source == str(folder / "good.txt") and good.text == GOOD
    latin1 = next(d for d in store.document_infos() if d.doc_id == "latin1")
    assert latin1.note is not None and latin1.offsets_in == "extracted"  # the encoding is noted


@pytest.mark.slow
def test_cli_build_with_no_readable_files_fails_with_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    index = tmp_path / "index"
    proc = _run_build([str(folder)], index)
    assert proc.returncode != 0
    assert "no readable articles" in proc.stderr and str(folder) in proc.stderr
    assert f"warning: skipped {folder / 'empty.txt'}: " in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (index / "CURRENT").exists()


def test_offsets_in_says_whether_offsets_index_the_file(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_bytes("Title\n\nUTF-8 text, café.\r\n".encode("utf-8"))
    (tmp_path / "latin.txt").write_bytes("Title\n\nLatin-1 text, caf\xe9.\n".encode("latin-1"))
    (tmp_path / "page.html").write_text(
        "<html><head><title>Page</title></head><body><article><p>" + "Words in a page. " * 20
        + "</p></article></body></html>", encoding="utf-8")
    plain, latin, page = (read_document(tmp_path / n) for n in ("plain.txt", "latin.txt", "page.html"))
    assert plain.offsets_in == "file"
    assert plain.text == (tmp_path / "plain.txt").open(encoding="utf-8", newline="").read()
    assert latin.note is not None and latin.offsets_in == "extracted"
    assert page.offsets_in == "extracted"
