"""indexer.loaders: text, Markdown, HTML, PDF and .docx extraction, and upload names.

Every fixture is generated here (python-docx writes the .docx, :func:`make_pdf` writes a
minimal PDF by hand, pypdf encrypts it), so no binary files live in the repository.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.errors import DocumentError
from indexer.loaders import SUPPORTED_SUFFIXES, Extracted, extract, safe_upload_name

PARAGRAPHS = [
    "President Recep Tayyip Erdogan of Turkey on Thursday agreed to expand the supply of a "
    "long-range armed drone to the Ukrainian Army.",
    "The production unit, first used in combat in Ukraine last fall, angered Russian officials.",
    "Ukraine does not need an equal capacity with the Russian Army to prevent an intervention, he said.",
]


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF: each page shows its strings, one Helvetica line each."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = 1 + 2 * len(pages) + 2  # after the font, each page's two objects and the catalog
    kids = []
    for lines in pages:
        ops = [b"BT /F1 12 Tf 72 720 Td 14 TL"]
        for line in lines:
            escaped = re.sub(rb"([\\()])", rb"\\\1", line.encode("latin-1"))
            ops.append(b"(" + escaped + b") Tj T*")
        stream = b"\n".join([*ops, b"ET"])
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, content, font)))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))) == pages_id
    info = add(b"<< /Title (%s) >>" % title.encode("latin-1")) if title else None
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"/Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def make_docx(paragraphs: list[str], title: str = "") -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


HTML = f"""<!DOCTYPE html>\r
<html lang="en"><head><meta charset="utf-8">\r
<title>Drone deal | Example News</title>
<meta property="og:title" content="Turkey expands drone deal with Ukraine">
<meta property="og:url" content="https://news.example.com/2022/02/03/drones.html">
<link rel="canonical" href="https://news.example.com/2022/02/03/drones.html">
<meta property="article:published_time" content="2022-02-03T10:00:00Z">
<style>body {{ font-family: STYLESECRET; }}</style>
<script>alert(1)</script>
</head><body><nav><a href="/">Home</a> | <a href="/world">World</a></nav>
<article><h1>Turkey expands drone deal with Ukraine</h1>\r
<p>{PARAGRAPHS[0]}</p>\r
<script>var secret = "SCRIPTSECRET";</script>
<p>{PARAGRAPHS[1]}</p>
<p>{PARAGRAPHS[2]}</p>
</article>
<div id="comments" class="comments"><h3>Comments</h3>
<p>I think this is a COMMENTSECRET remark that should never be indexed as the article.</p></div>
<footer>Copyright 2022 Example News</footer></body></html>"""


def write(tmp_path: Path, name: str, data: bytes) -> tuple[Path, bytes]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, path.read_bytes()


# --- plain text and Markdown ---------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".txt", ".md", ".TXT"])
def test_utf8_text_is_the_file_exactly(tmp_path: Path, suffix: str) -> None:
    raw = "\ufeffTitle – café\r\n\r\nBody line.\rLast line\n".encode()
    path, data = write(tmp_path, f"a{suffix}", raw)
    result = extract(path, data)
    assert result == Extracted(text=raw.decode("utf-8"))  # BOM and \r\n kept, no metadata


def test_cp1252_fallback_sets_a_note(tmp_path: Path) -> None:
    path, data = write(tmp_path, "old.txt", "Caf\u00e9 \u201cquoted\u201d \u2013 50\u20ac".encode("cp1252"))
    result = extract(path, data)
    assert result.text == "Caf\u00e9 \u201cquoted\u201d \u2013 50\u20ac"
    assert result.note is not None and "cp1252" in result.note and "UTF-8" in result.note


def test_latin1_when_cp1252_cannot_decode(tmp_path: Path) -> None:
    path, data = write(tmp_path, "odd.txt", b"Text with \x81 and \xe9")  # 0x81 is undefined in cp1252
    result = extract(path, data)
    assert result.text == "Text with \x81 and \u00e9"
    assert result.note is not None and "Latin-1" in result.note


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, codec: str) -> None:
    text = "Kyiv – Ukraine\r\nSecond line."
    raw = text.encode(codec)
    if codec != "utf-16":
        raw = ("\ufeff" + text).encode(codec)
    path, data = write(tmp_path, "u16.md", raw)
    result = extract(path, data)
    assert result.text == text
    assert result.note is not None and "UTF-16" in result.note


def test_binary_text_file_is_refused(tmp_path: Path) -> None:
    path, data = write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DocumentError, match=r"image\.txt.*binary"):
        extract(path, data)


@pytest.mark.parametrize("raw", [b"", b"   \n\t\r\n", "\ufeff\n".encode()])
def test_empty_text_file_is_refused(tmp_path: Path, raw: bytes) -> None:
    path, data = write(tmp_path, "empty.txt", raw)
    with pytest.raises(DocumentError, match=r"empty\.txt.*has no text"):
        extract(path, data)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path, data = write(tmp_path, "notes.rtf", b"{\\rtf1 hello}")
    with pytest.raises(DocumentError, match=r"notes\.rtf.*unsupported.*\.txt"):
        extract(path, data)
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".html", ".htm", ".pdf", ".docx"}


# --- HTML ------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_html_main_text_and_metadata(tmp_path: Path, suffix: str) -> None:
    path, data = write(tmp_path, f"page{suffix}", HTML.encode())
    result = extract(path, data)
    for paragraph in PARAGRAPHS:
        assert paragraph in result.text
    for secret in ("alert(1)", "STYLESECRET", "SCRIPTSECRET", "font-family", "COMMENTSECRET"):
        assert secret not in result.text
    assert "\r" not in result.text
    assert result.title == "Turkey expands drone deal with Ukraine"
    assert result.date == "2022-02-03"
    assert result.url == "https://news.example.com/2022/02/03/drones.html"


def test_html_without_metadata(tmp_path: Path) -> None:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    path, data = write(tmp_path, "bare.html", f"<html><body><div>{body}</div></body></html>".encode())
    result = extract(path, data)
    assert PARAGRAPHS[1] in result.text
    assert result.date is None and result.url is None


@pytest.mark.parametrize("html", [
    "",
    "<html><head><title>Nothing</title><script>alert(1)</script></head><body></body></html>",
    "<html><body>\n \t </body></html>",
])
def test_html_without_article_is_refused(tmp_path: Path, html: str) -> None:
    path, data = write(tmp_path, "empty.html", html.encode())
    with pytest.raises(DocumentError, match=r"empty\.html"):
        extract(path, data)


# --- PDF -------------------------------------------------------------------------------------

def test_pdf_pages_joined_with_blank_line(tmp_path: Path) -> None:
    raw = make_pdf([[PARAGRAPHS[0][:60], "(and more)"], [], [PARAGRAPHS[1][:60]]], title="Drone deal")
    path, data = write(tmp_path, "article.pdf", raw)
    result = extract(path, data)
    assert result.text == f"{PARAGRAPHS[0][:60]}\n(and more)\n\n{PARAGRAPHS[1][:60]}"
    assert result.title == "Drone deal"
    assert result.note is not None and "1 of 3 pages" in result.note


def test_pdf_junk_title_is_ignored(tmp_path: Path) -> None:
    path, data = write(tmp_path, "a.PDF", make_pdf([["Some text."]], title="Microsoft Word - draft.docx"))
    assert extract(path, data) == Extracted(text="Some text.")


def test_image_only_pdf_is_refused(tmp_path: Path) -> None:
    path, data = write(tmp_path, "scan.pdf", make_pdf([[], []]))
    with pytest.raises(DocumentError, match=r"scan\.pdf.*no extractable text"):
        extract(path, data)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    path, data = write(tmp_path, "locked.pdf", encrypt_pdf(make_pdf([["Secret text."]]), "secret"))
    with pytest.raises(DocumentError, match=r"locked\.pdf.*encrypted.*no extractable text"):
        extract(path, data)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    path, data = write(tmp_path, "owner.pdf", encrypt_pdf(make_pdf([["Open text."]]), ""))
    assert extract(path, data).text == "Open text."


def test_damaged_pdf_is_refused(tmp_path: Path) -> None:
    path, data = write(tmp_path, "broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    with pytest.raises(DocumentError, match=r"broken\.pdf"):
        extract(path, data)


# --- Word ------------------------------------------------------------------------------------

def test_docx_paragraphs_and_title(tmp_path: Path) -> None:
    path, data = write(tmp_path, "a.docx", make_docx(["", *PARAGRAPHS, "  "], title="Core title"))
    result = extract(path, data)
    assert result.text == "\n\n".join(PARAGRAPHS)
    assert result.title == "Core title"
    assert result.date is None and result.url is None


def test_docx_title_falls_back_to_first_paragraph(tmp_path: Path) -> None:
    path, data = write(tmp_path, "b.docx", make_docx(["", "The headline", PARAGRAPHS[0]]))
    result = extract(path, data)
    assert result.title == "The headline"
    assert result.text == f"The headline\n\n{PARAGRAPHS[0]}"


def test_empty_docx_is_refused(tmp_path: Path) -> None:
    path, data = write(tmp_path, "blank.docx", make_docx(["", "   "]))
    with pytest.raises(DocumentError, match=r"blank\.docx.*no text"):
        extract(path, data)


@pytest.mark.parametrize("raw", [b"", b"PK\x03\x04 not really a zip", b"plain text"])
def test_not_a_docx_is_refused(tmp_path: Path, raw: bytes) -> None:
    path, data = write(tmp_path, "fake.docx", raw)
    with pytest.raises(DocumentError, match=r"fake\.docx"):
        extract(path, data)


# --- fuzzing: DocumentError or a result, nothing else ---------------------------------------

def _check(path: Path, data: bytes) -> Extracted | None:
    try:
        result = extract(path, data)
    except DocumentError as exc:
        assert str(path) in str(exc)
        return None
    assert isinstance(result, Extracted)
    assert isinstance(result.text, str) and result.text.replace("\ufeff", "").strip()
    assert result.date is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", result.date)
    if path.suffix.lower() not in (".txt", ".md"):
        assert "\r" not in result.text
        result.text.encode("utf-8")  # storable: no lone surrogates
    return result


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(suffix=st.sampled_from(SUPPORTED_SUFFIXES), data=st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes(suffix: str, data: bytes) -> None:
    _check(Path(f"fuzz{suffix}"), data)


@settings(max_examples=150)
@given(data=st.one_of(st.binary(max_size=500), st.text(max_size=300).map(str.encode)))
def test_fuzz_text_formats_decode_exactly(data: bytes) -> None:
    result = _check(Path("fuzz.txt"), data)
    if result is not None and result.note is None:
        assert result.text == data.decode("utf-8")


_SEEDS = {
    ".pdf": make_pdf([["Hello (world) text.", "Line two."], ["Page two."]], title="T"),
    ".docx": make_docx(["Title", *PARAGRAPHS]),
    ".html": HTML.encode(),
}


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(
    suffix=st.sampled_from(sorted(_SEEDS)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=0, max_size=8)),
                   min_size=1, max_size=6),
    cut=st.floats(0.05, 1),
)
def test_fuzz_damaged_documents(suffix: str, edits: list[tuple[float, bytes]], cut: float) -> None:
    """Valid files with bytes overwritten and the end cut off."""
    data = bytearray(_SEEDS[suffix])
    for where, patch in edits:
        at = int(where * len(data))
        data[at : at + len(patch)] = patch
    _check(Path(f"damaged{suffix}"), bytes(data[: max(1, int(cut * len(data)))]))


def test_fuzz_seeds_are_valid() -> None:
    for suffix, data in _SEEDS.items():
        assert _check(Path(f"seed{suffix}"), data) is not None


# --- upload names ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("article.txt", "article.txt"),
    ("../../x.txt", "x.txt"),
    ("/etc/passwd", "passwd"),
    ("C:\\Users\\me\\My Article (1).PDF", "My_Article__1_.PDF"),
    ("..\\..\\evil.md", "evil.md"),
    ("a\x00b.txt", "ab.txt"),
    (".hidden.html", "hidden.html"),
    ("...secret", "secret"),
    ("  spaced name.docx ", "spaced_name.docx"),
    ("résumé.txt", "resume.txt"),
    ("news;rm -rf *.txt", "news_rm_-rf__.txt"),
])
def test_safe_upload_name(name: str, expected: str) -> None:
    assert safe_upload_name(name) == expected


def test_safe_upload_name_keeps_the_suffix_when_shortening() -> None:
    name = safe_upload_name("a" * 300 + ".docx")
    assert len(name) == 120 and name.endswith(".docx")
    assert len(safe_upload_name("x." + "b" * 300)) == 120


@pytest.mark.parametrize("name", ["", "   ", "..", "../..", "/", "dir/", "\x00", "日本"])
def test_safe_upload_name_refuses_nothing_left(name: str) -> None:
    with pytest.raises(DocumentError, match="file name"):
        safe_upload_name(name)


@given(st.text(max_size=300))
def test_safe_upload_name_is_always_safe(name: str) -> None:
    try:
        safe = safe_upload_name(name)
    except DocumentError:
        return
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}", safe)
    assert safe not in {".", ".."} and "/" not in safe
