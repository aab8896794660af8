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

Extraction is bounded by :class:`~indexer.settings.Limits`: a .docx is read as a stream
(never unpacked whole) only when its parts unpack to at most ``max_extracted_bytes``, and
every format stops with a DocumentError naming the limit once the text passes ``max_chars``.
Bytes that are not text (binary data, random bytes) are refused as "not a text file"; only
text in another encoding gets encoding advice.

``title``, ``date`` and ``url`` are None when the format does not give them; callers fall
back on the text (first line, first URL), as they do for plain text, which never sets them.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from indexer.errors import DocumentError
from indexer.files import HTML_SUFFIXES, SUPPORTED_SUFFIXES, TEXT_SUFFIXES  # noqa: F401 - re-exported
from indexer.settings import Limits


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


def extract(path: Path, data: bytes, limits: Limits = Limits()) -> Extracted:
    """Extract the article in ``data``, the contents of the file ``path``.

    The format is chosen by ``path``'s suffix (case-insensitive); ``path`` is otherwise
    only used in messages. ``limits`` bounds what the file may unpack to and how much text
    it may hold (``max_extracted_bytes``, ``max_chars``).

    Raises:
        DocumentError: unsupported suffix, binary or undecodable content, a file the
            parser rejects (corrupt, encrypted), no text at all, or a limit passed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        result = _extract_text(path, data)
    elif suffix in HTML_SUFFIXES:
        result = _extract_html(path, data)
    elif suffix == ".pdf":
        result = _extract_pdf(path, data, limits)
    elif suffix == ".docx":
        result = _extract_docx(path, data, limits)
    else:
        raise DocumentError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}. Convert it to one of these first."
        )
    if not result.text.replace("\ufeff", "").strip():
        raise DocumentError(f"{path}: has no text (the file is empty or only whitespace); "
                            "check that it is the article you meant")
    check_chars(path, len(result.text), limits)
    return result


def check_chars(path: Path, chars: int, limits: Limits) -> None:
    """Refuse more text than ``limits.max_chars``, naming the setting."""
    if chars > limits.max_chars:
        raise DocumentError(
            f"{path}: holds more than {limits.max_chars:,} characters of text, the limit for one "
            "article (setting VERBATIM_MAX_ARTICLE_CHARS); split it into smaller articles, or "
            "raise the limit")


# --- plain text and Markdown ---------------------------------------------------------------

# Characters that text in a Western single-byte encoding hardly ever holds: C0 and C1
# controls other than tab, newline, carriage return and form feed.
_UNTEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
# More than this share of such characters (and more than two), or fewer letters and spaces
# than the other share, in a file that is not UTF-8: random or binary bytes (measured: random bytes
# decoded as Latin-1 hold about 25% controls and under 45% letters and spaces; text in
# cp1252 or Latin-1 has no controls and over 80% letters and spaces).
_MAX_UNTEXT_SHARE = 0.01
_MIN_LETTER_SHARE = 0.6


def _not_text(path: Path, what: str) -> DocumentError:
    return DocumentError(f"{path}: is not a text file ({what}); if it is an article, save "
                         "it as .txt, .md, .html, .pdf or .docx")


def _looks_like_utf16(probe: bytes) -> bool:
    """ASCII-range text in UTF-16 without a byte order mark: every other byte is NUL."""
    if len(probe) < 4:
        return False
    for zeros, chars in ((probe[1::2], probe[0::2]), (probe[0::2], probe[1::2])):
        if zeros.count(0) >= 0.95 * len(zeros) and sum(32 <= b < 127 or b in b"\t\n\r"
                                                       for b in chars) >= 0.95 * len(chars):
            return True
    return False


def _extract_text(path: Path, data: bytes) -> Extracted:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            # "utf-16" reads the byte order mark and drops it.
            return Extracted(data.decode("utf-16"), note="decoded as UTF-16 (byte order mark), not UTF-8")
        except UnicodeDecodeError:
            pass  # not really UTF-16: judged below like any other bytes
    probe = data[:_BINARY_PROBE]
    if b"\x00" in probe:
        if _looks_like_utf16(probe):
            raise DocumentError(f"{path}: looks like UTF-16 text without a byte order mark; "
                                "re-save it as UTF-8 and add it again")
        raise _not_text(path, "it holds binary data: NUL bytes")
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
    sample = text[:65536]
    letters = sum(ch.isalpha() or ch.isspace() for ch in sample)
    if (len(_UNTEXT.findall(sample)) > max(2, _MAX_UNTEXT_SHARE * len(sample))
            or letters < _MIN_LETTER_SHARE * len(sample)):
        raise _not_text(path, "its bytes are neither UTF-8 nor text in another encoding")
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

def _extract_pdf(path: Path, data: bytes, limits: Limits) -> Extracted:
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
        pages: list[str] = []
        chars = 0
        for page in reader.pages:
            pages.append(_clean(page.extract_text() or "").strip())
            chars += len(pages[-1])
            check_chars(path, chars, limits)  # stop reading early, not after every page
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

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
_MAIN_PART = re.compile(r'Type="[^"]*/officeDocument"[^>]*Target="/?([^"]+)"|'
                        r'Target="/?([^"]+)"[^>]*Type="[^"]*/officeDocument"')
# What a run's children say in plain text, as python-docx's ``Paragraph.text`` has it.
_RUN_TEXT = {f"{_W}tab": "\t", f"{_W}ptab": "\t", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


def _run_text(run) -> str:  # type: ignore[no-untyped-def]
    out = []
    for child in run:
        if child.tag == f"{_W}t":
            out.append(child.text or "")
        elif child.tag == f"{_W}br":
            out.append("\n" if child.get(f"{_W}type", "textWrapping") == "textWrapping" else "")
        else:
            out.append(_RUN_TEXT.get(child.tag, ""))
    return "".join(out)


def _paragraph_text(paragraph) -> str:  # type: ignore[no-untyped-def]
    """A body paragraph's text: its runs and its hyperlinks' runs, in order."""
    out = []
    for child in paragraph:
        if child.tag == f"{_W}r":
            out.append(_run_text(child))
        elif child.tag == f"{_W}hyperlink":
            out.extend(_run_text(r) for r in child if r.tag == f"{_W}r")
    return "".join(out)


def _extract_docx(path: Path, data: bytes, limits: Limits) -> Extracted:
    """The body paragraphs of a .docx, streamed: the archive is checked against
    ``max_extracted_bytes`` before anything is unpacked, the main XML part is parsed
    paragraph by paragraph (each freed once read), and reading stops at ``max_chars``."""
    from lxml import etree

    def unreadable(exc: BaseException) -> DocumentError:
        return DocumentError(f"{path}: cannot be read as a Word .docx file ({type(exc).__name__}: "
                             f"{exc}); old .doc files are not supported: save it as .docx or .txt")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise unreadable(exc) from exc
    # Reading a member never yields more than the size its header declares, so the sum of
    # the declared sizes bounds the work and memory of everything below.
    if unpacked > limits.max_extracted_bytes:
        raise DocumentError(
            f"{path}: unpacks to {unpacked:,} bytes, over the limit of {limits.max_extracted_bytes:,} "
            "(setting VERBATIM_MAX_EXTRACTED_BYTES); a Word file that large is mostly images or "
            "a zip bomb: save the article's text as .txt")
    parser_options = {"resolve_entities": False, "no_network": True, "huge_tree": False}
    try:
        rels = archive.read("_rels/.rels").decode("utf-8", "replace") if "_rels/.rels" in archive.NameToInfo else ""
        match = _MAIN_PART.search(rels)
        body = next((g for g in match.groups() if g), None) if match else None
        body = body if body in archive.NameToInfo else "word/document.xml"
        if body not in archive.NameToInfo:
            raise DocumentError(f"{path}: is not a Word document (no main document part); "
                                "save it as .docx or .txt")
        paragraphs: list[str] = []
        chars = 0
        with archive.open(body) as stream:
            for _, element in etree.iterparse(stream, events=("end",), tag=f"{_W}p", **parser_options):
                parent = element.getparent()
                if parent is not None and parent.tag == f"{_W}body":
                    text = _clean(_paragraph_text(element)).strip()
                    if text:
                        paragraphs.append(text)
                        chars += len(text) + 2
                        check_chars(path, chars, limits)
                    element.clear()
                    while element.getprevious() is not None:  # free what was read
                        del parent[0]
        title = None
        if "docProps/core.xml" in archive.NameToInfo:
            core = etree.fromstring(archive.read("docProps/core.xml"), etree.XMLParser(**parser_options))
            found = core.find(_DC_TITLE)
            title = _one_line(found.text if found is not None else None)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and lxml all raise their own
        raise unreadable(exc) from exc
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


def upload_name(name: str) -> str:
    """The file name an upload is saved under: :func:`safe_upload_name`, plus a short hash
    of the name as given when making it safe changed it, so that two different names
    never share a file ("a b.txt" and "a_b.txt", "café.txt" and "cafe.txt"). The same name
    always maps to the same file, so uploading it again updates that article.

    >>> upload_name("a_b.txt"), upload_name("a b.txt")
    ('a_b.txt', 'a_b-cd6c4a05.txt')

    Raises:
        DocumentError: see :func:`safe_upload_name`.
    """
    safe = safe_upload_name(name)
    given = name.replace("\\", "/").rsplit("/", 1)[-1]
    if safe == given:
        return safe
    path = PurePosixPath(safe)
    suffix = path.suffix if 1 < len(path.suffix) <= 16 else ""
    stem = safe[: len(safe) - len(suffix)] if suffix else safe
    tag = hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[: _MAX_UPLOAD_NAME - len(suffix) - 9]}-{tag}{suffix}"


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
