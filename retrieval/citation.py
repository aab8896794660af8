"""Citations for people: outlet, date and paragraph, derived from an indexed article.

The exact file and character span stay in every hit (``source``, ``start``, ``end``); this
adds what a reader looks for first.
"""

from __future__ import annotations

import datetime as _dt
import re
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


def paragraph_of(text: str, offset: int) -> int:
    """The paragraph (non-blank line) holding ``offset``, counted from 1 after the first
    non-blank line, the headline (paragraph 0).

    >>> paragraph_of("Headline\n\nFirst one.\nSecond one.", 25)
    2
    """
    line_start = text.rfind("\n", 0, offset) + 1
    return sum(1 for line in text[:line_start].split("\n") if line.strip())


def cite(doc: Document, answer_start: int) -> Citation:
    """The citation of the passage whose answer sentence starts at ``answer_start``."""
    return Citation(outlet(doc), article_date(doc), paragraph_of(doc.text, answer_start), doc.url)


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
