"""Finding and reading article files into :class:`Document` objects."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from indexer.chunking import article_spans
from indexer.errors import DocumentError
from indexer.files import SUPPORTED_SUFFIXES, Skipped, find_files  # noqa: F401 - re-exported
from indexer.loaders import extract
from indexer.settings import ChunkingParams, Limits
from indexer.types import Document

_URL = re.compile(r"https?://[^\s<>\"'”’)\]]+")


def title_of(text: str) -> str:
    """The first non-empty line, without Markdown heading marks."""
    for line in text.splitlines():
        line = line.strip().lstrip("\ufeff").strip()
        if line:
            return line.lstrip("#").strip() or line
    return ""


def first_url(text: str) -> str | None:
    match = _URL.search(text)
    return match.group(0).rstrip(".,;:") if match else None


def read_document(path: str | Path, limits: Limits = Limits()) -> Document:
    """Read one article file.

    Args:
        path: the file; ``Document.source`` keeps it as given.
        limits: larger files, or files that unpack to more or hold more text, are refused.

    ``.txt`` and ``.md`` files are decoded as UTF-8 (other encodings are detected and noted
    in ``Document.note``); HTML, PDF and Word files are reduced to their main text
    (:mod:`indexer.loaders`). ``Document.text`` is what all offsets refer to.

    Raises:
        DocumentError: unreadable, too large, binary, undecodable, or without text.
    """
    path = Path(path)
    try:
        check_size(path, path.stat().st_size, limits)
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return document_from_bytes(path, data, limits)


def check_size(path: Path | str, size: int, limits: Limits) -> None:
    """Refuse a file larger than ``limits.max_file_bytes``, naming the setting."""
    if size > limits.max_file_bytes:
        mb = 1024 * 1024
        raise DocumentError(f"{path}: {size / mb:.1f} MB ({size:,} bytes) is over the limit of "
                            f"{limits.max_file_bytes / mb:.1f} MB ({limits.max_file_bytes:,} bytes) for one "
                            "file (setting VERBATIM_MAX_FILE_BYTES)")


def check_article(doc: Document, limits: Limits, chunking: ChunkingParams) -> None:
    """Refuse an article with more sentences or passages than ``limits`` allow: each is
    embedded while the index's writer lock is held.

    Raises:
        DocumentError: naming the limit and its setting.
    """
    sentences, passages = article_spans(doc.text, chunking, doc.doc_id)
    for count, limit, what, setting in (
            (len(sentences), limits.max_sentences, "sentences", "VERBATIM_MAX_SENTENCES"),
            (len(passages), limits.max_passages, "passages", "VERBATIM_MAX_PASSAGES")):
        if count > limit:
            raise DocumentError(f"{doc.source}: has {count:,} {what}, over the limit of {limit:,} "
                                f"for one article (setting {setting}); split it into smaller "
                                "articles, or raise the limit")


def document_from_bytes(path: Path, data: bytes, limits: Limits = Limits()) -> Document:
    """Build a :class:`Document` from a file's name and bytes (see :func:`read_document`)."""
    extracted = extract(path, data, limits)
    text = extracted.text
    return Document(
        doc_id=path.stem,
        title=extracted.title or title_of(text),
        source=str(path),
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        url=extracted.url or first_url(text),
        date=extracted.date,
        note=extracted.note,
    )


def load_documents(
    paths: Iterable[str | Path], limits: Limits = Limits(), chunking: ChunkingParams = ChunkingParams()
) -> tuple[list[Document], list[Skipped]]:
    """Read every article under ``paths``; files that cannot be used are skipped, not fatal.

    A file over one of ``limits`` (size, unpacked size, characters, sentences or passages
    with ``chunking``) is skipped with the limit named. Two files with the same stem would
    get the same document id, and two files with the same content are duplicates: in both
    cases the second is skipped, with the reason.
    """
    files, skipped = find_files(paths)
    docs: list[Document] = []
    seen: dict[str, str] = {}
    contents: dict[str, str] = {}
    for path in files:
        try:
            doc = read_document(path, limits)
            check_article(doc, limits, chunking)
        except DocumentError as exc:
            skipped.append(Skipped.because(path, exc))
            continue
        if doc.doc_id in seen:
            skipped.append(Skipped(str(path), f"same document id {doc.doc_id!r} as {seen[doc.doc_id]}; "
                                   "rename one of the files"))
            continue
        if doc.sha256 in contents:
            skipped.append(Skipped(str(path), f"duplicate: same content as {contents[doc.sha256]}"))
            continue
        seen[doc.doc_id] = doc.source
        contents[doc.sha256] = doc.source
        docs.append(doc)
    return docs, skipped

