"""Safe HTML for passages: article text is always escaped, so markup in an article shows
as text and can never run or restyle the page. Only ``<mark>`` tags we add are HTML."""

from __future__ import annotations

import html
from collections.abc import Sequence


def highlight_html(text: str, base: int, marks: Sequence[tuple[int, int, str]]) -> str:
    """Escape ``text`` and wrap the given ranges in ``<mark class=...>``.

    Args:
        text: the text to show; it starts at offset ``base`` of its document.
        base: the document offset of ``text[0]``.
        marks: ``(start, end, css_class)`` in document coordinates; ranges outside the
            text are clipped, overlapping ranges are nested by order (outer first).

    >>> highlight_html("a <b> c", 10, [(12, 15, "answer")])
    'a <mark class="answer">&lt;b&gt;</mark> c'
    """
    events: list[tuple[int, int, str]] = []  # (position, order, html)
    for order, (start, end, css) in enumerate(marks):
        start, end = max(start - base, 0), min(end - base, len(text))
        if start >= end:
            continue
        events.append((start, 1, f'<mark class="{html.escape(css)}">'))
        events.append((end, -1 - (len(marks) - order), "</mark>"))
    events.sort(key=lambda e: (e[0], e[1]))
    out, pos = [], 0
    for position, _, tag in events:
        out.append(html.escape(text[pos:position]))
        out.append(tag)
        pos = position
    out.append(html.escape(text[pos:]))
    return "".join(out)
