"""Extracting article text from files: plain text, Markdown, HTML, PDF and Word (.docx).

A pure function layer: :func:`extract` takes the file's name and bytes (reading the file,
size limits and document ids are the caller's business) and returns an :class:`Extracted`.
Every failure is a :class:`~indexer.errors.DocumentError` whose message names the file and
says what to do; a third-party parser's own exceptions never escape.

What ``Extracted.text`` is, per format (it is what gets stored, chunked and cited):

* ``.txt``/``.md``: exactly the file's bytes decoded with one codec, nothing normalised
  (not even line endings). That codec is UTF-8 when ``note`` is None (a UTF-8 byte order
  mark is kept as U+FEFF, as :func:`bytes.decode` keeps it); otherwise ``note`` names it
  (UTF-16 with a byte order mark, else cp1252, else Latin-1).
* ``.html``/``.htm``: the main text found by trafilatura (no scripts, styles, navigation
  or comments), one line per paragraph or heading.
* ``.pdf``: the text of each page (pypdf), pages joined with a blank line.
* ``.docx``: the body paragraphs (python-docx), joined with a blank line; tables, headers
  and footers are left out.

For the extracted formats (everything but ``.txt``/``.md``) line endings are normalised
to ``\\n`` and control characters other than tab and newline are removed.

``title``, ``date`` and ``url`` are None when the format does not give them; callers fall
back on the text (first line, first URL), as they do for plain text, which never sets them.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from indexer.errors import DocumentError

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".docx")

_BINARY_PROBE = 8192
# Line separators other than \n, and control characters that have no place in stored text
# (tab and newline stay). Lone surrogates cannot be encoded as UTF-8 and are dropped too.
_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f\ud800-\udfff]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Meaningless titles that PDF producers write into the metadata.
_JUNK_PDF_TITLE = re.compile(r"(?i)^(untitled|microsoft word - .*|document\d*|.*\.(docx?|pdf|odt|rtf))$")

_MAX_UPLOAD_NAME = 120
_UPLOAD_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Extracted:
    """The text of one file, and what the format says about it.

    ``date`` is ISO ``yyyy-mm-dd`` when known. ``note`` is a remark for the user about how
    the text was obtained (e.g. a fallback encoding), or None.
    """

    text: str
    title: str | None = None
    date: str | None = None
    url: str | None = None
    note: str | None = None


def extract(path: Path, data: bytes) -> Extracted:
    """Extract the article in ``data``, the contents of the file ``path``.

    The format is chosen by ``path``'s suffix (case-insensitive); ``path`` is otherwise
    only used in messages.

    Raises:
        DocumentError: unsupported suffix, binary or undecodable content, a file the
            parser rejects (corrupt, encrypted), or no text at all.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        result = _extract_text(path, data)
    elif suffix in HTML_SUFFIXES:
        result = _extract_html(path, data)
    elif suffix == ".pdf":
        result = _extract_pdf(path, data)
    elif suffix == ".docx":
        result = _extract_docx(path, data)
    else:
        raise DocumentError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}. Convert it to one of these first."
        )
    if not result.text.replace("\ufeff", "").strip():
        raise DocumentError(f"{path}: has no text (the file is empty or only whitespace); "
                            "check that it is the article you meant")
    return result


# --- plain text and Markdown ---------------------------------------------------------------

def _extract_text(path: Path, data: bytes) -> Extracted:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            # "utf-16" reads the byte order mark and drops it.
            return Extracted(data.decode("utf-16"), note="decoded as UTF-16 (byte order mark), not UTF-8")
        except UnicodeDecodeError:
            pass  # not really UTF-16: judged below like any other bytes
    if b"\x00" in data[:_BINARY_PROBE]:
        raise DocumentError(f"{path}: looks like a binary file, not text (it contains NUL bytes); "
                            "if it is UTF-16 text without a byte order mark, re-save it as UTF-8")
    try:
        return Extracted(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        where = exc.start
    try:
        text = data.decode("cp1252")
        codec = "cp1252 (Windows Western European)"
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # decodes any bytes
        codec = "Latin-1"
    return Extracted(text, note=f"decoded as {codec}, not UTF-8 (invalid UTF-8 at byte {where}); "
                                "re-save the file as UTF-8 if characters look wrong")


# --- HTML ------------------------------------------------------------------------------------

def _extract_html(path: Path, data: bytes) -> Extracted:
    import trafilatura  # imported here: the plain-text path does not need it

    try:
        doc = trafilatura.bare_extraction(
            data,
            include_comments=False,
            include_tables=True,
            with_metadata=True,
            # Only dates the page states in its markup, not guesses from its text.
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's problem
        raise DocumentError(f"{path}: cannot be parsed as HTML ({type(exc).__name__}: {exc}); "
                            "save the article as plain text (.txt) instead") from exc
    text = _clean(doc.text) if doc is not None and doc.text else ""
    if not text.strip():
        raise DocumentError(f"{path}: no article text found in this HTML page (it may be empty, "
                            "mostly navigation, or built by JavaScript); save the article's text "
                            "as a .txt file instead")
    return Extracted(
        text,
        title=_one_line(doc.title),
        date=_iso_date(doc.date),
        url=doc.url if isinstance(doc.url, str) and re.match(r"https?://\S+$", doc.url) else None,
    )


# --- PDF -------------------------------------------------------------------------------------

def _extract_pdf(path: Path, data: bytes) -> Extracted:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")  # many PDFs only have an owner password
            except Exception:  # noqa: BLE001 - e.g. AES without the cryptography package
                unlocked = 0
            if not unlocked:
                raise DocumentError(f"{path}: is an encrypted PDF with no extractable text here; "
                                    "save an unprotected copy (or the article as .txt) and add that")
        pages = [_clean(page.extract_text() or "").strip() for page in reader.pages]
        title = _one_line(reader.metadata.title if reader.metadata else None)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files
        raise DocumentError(f"{path}: cannot be read as a PDF ({type(exc).__name__}: {exc}); "
                            "the file may be damaged: re-export it, or save the article as .txt") from exc
    texts = [p for p in pages if p]
    if not texts:
        raise DocumentError(f"{path}: has no extractable text: it looks like a scanned or image-only "
                            "PDF; run OCR on it, or save the article as .txt")
    note = None
    if len(texts) < len(pages):
        note = f"{len(pages) - len(texts)} of {len(pages)} pages had no extractable text (images?)"
    if title and _JUNK_PDF_TITLE.match(title):
        title = None
    return Extracted("\n\n".join(texts), title=title, note=note)


# --- Word ------------------------------------------------------------------------------------

def _extract_docx(path: Path, data: bytes) -> Extracted:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs = [_clean(p.text).strip() for p in document.paragraphs]
        title = _one_line(document.core_properties.title)
    except Exception as exc:  # noqa: BLE001 - python-docx, zipfile and lxml all raise their own
        raise DocumentError(f"{path}: cannot be read as a Word .docx file ({type(exc).__name__}: {exc}); "
                            "old .doc files are not supported: save it as .docx or .txt") from exc
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        raise DocumentError(f"{path}: has no text in its body paragraphs (text in tables, text "
                            "boxes or images is not read); save the article as .txt")
    return Extracted("\n\n".join(paragraphs), title=title or _one_line(paragraphs[0]))


# --- helpers ---------------------------------------------------------------------------------

def _clean(text: str) -> str:
    """Normalise line endings to \\n and drop control characters (extracted formats only)."""
    return _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))


def _one_line(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(_clean(value).split())
    return value or None


def _iso_date(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _ISO_DATE.match(value.strip())
    if not match:
        return None
    try:
        return _dt.date.fromisoformat(match.group(0)).isoformat()
    except ValueError:
        return None


def safe_upload_name(name: str) -> str:
    """A safe file name for a file uploaded from a browser.

    Keeps only the last path component (``/`` and ``\\`` both separate), drops NUL bytes,
    leading dots and spaces, turns accented letters into plain ones and every other
    character outside ``[A-Za-z0-9._-]`` into ``_``, and shortens the result to 120
    characters, keeping the suffix.

    >>> safe_upload_name("../../etc/passwd.txt")
    'passwd.txt'

    Raises:
        DocumentError: nothing usable is left (e.g. ``""``, ``".."``, ``"/"``).
    """
    cleaned = name.replace("\x00", "").replace("\\", "/")
    base = cleaned.rsplit("/", 1)[-1].strip().lstrip(". ")
    base = unicodedata.normalize("NFKD", base)
    base = "".join(ch for ch in base if not unicodedata.combining(ch))
    base = _UPLOAD_UNSAFE.sub("_", base).lstrip(".")
    if not base.strip("_."):
        raise DocumentError(f"cannot use {name!r} as a file name: nothing is left once directories "
                            "and unsafe characters are removed; rename the file and upload it again")
    if len(base) > _MAX_UPLOAD_NAME:
        suffix = PurePosixPath(base).suffix
        if 1 < len(suffix) <= 16:
            base = base[: _MAX_UPLOAD_NAME - len(suffix)] + suffix
        else:
            base = base[:_MAX_UPLOAD_NAME]
    return base
