"""Citations for people: outlet, date and paragraph, derived from an indexed article.

The exact file and character span stay in every hit (``source``, ``start``, ``end``); this
adds what a reader looks for first.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from pathlib import PurePath
from urllib.parse import urlsplit

from indexer.types import Document
from retrieval.types import Citation

# A date in a news URL's path: /2022/02/03/ (the New York Times, the Guardian, ...).
_URL_DATE = re.compile(r"/((?:19|20)\d\d)/(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])(?=/)")
_HOST_PREFIX = re.compile(r"^(?:www\d*|m|amp|edition|mobile)\.")


def outlet(doc: Document) -> str:
    """The site the article came from (``nytimes.com``), else the folder of its file."""
    if doc.url:
        host = urlsplit(doc.url).hostname or ""
        host = _HOST_PREFIX.sub("", host.lower())
        if host:
            return host
    folder = PurePath(doc.source).parent.name
    return folder or "this folder"


def article_date(doc: Document) -> str | None:
    """The article's date (ISO): the one its format gave, else one in its URL's path."""
    if doc.date:
        return doc.date
    match = _URL_DATE.search(urlsplit(doc.url).path + "/") if doc.url else None
    if not match:
        return None
    try:
        return _dt.date(*map(int, match.groups())).isoformat()
    except ValueError:
        return None


def paragraph_of(text: str, offset: int, headings: Sequence[tuple[int, int]] = ()) -> int:
    """The paragraph (non-blank line) holding ``offset``, counting only lines of text: the
    headline and the headings (``headings``, spans of title and heading sentences) are
    not paragraphs. Without ``headings``, the first non-blank line counts as the headline.

    >>> paragraph_of("Headline\\n\\nFirst one.\\nA heading\\nSecond one.", 31, [(0, 8), (21, 30)])
    2
    """
    line_start = text.rfind("\n", 0, offset) + 1
    heading_lines = {text.rfind("\n", 0, s) + 1 for s, _ in headings}
    count, at = 0, 0
    for line in text[:line_start].split("\n")[:-1]:
        if line.strip() and at not in heading_lines:
            count += 1
        at += len(line) + 1
    if not headings:
        count -= 1  # the first non-blank line: the headline
    return max(count, 0) + 1


def cite(doc: Document, answer_start: int, headings: Sequence[tuple[int, int]] = ()) -> Citation:
    """The citation of the passage whose answer sentence starts at ``answer_start``
    (``headings``: the article's title and heading spans, which are not paragraphs)."""
    return Citation(outlet(doc), article_date(doc), paragraph_of(doc.text, answer_start, headings), doc.url)


def readable_date(iso: str | None) -> str | None:
    """``2022-02-03`` as "3 February 2022" (None stays None; anything else as given).

    >>> readable_date("2022-02-03")
    '3 February 2022'
    """
    if not iso:
        return None
    try:
        day = _dt.date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{day.day} {day:%B %Y}"
