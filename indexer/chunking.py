"""Sentence splitting and chunking with exact character offsets.

Plain functions, no state. Every span refers to the text passed in, so
``text[span.start:span.end]`` is always the sentence or chunk itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from indexer.boilerplate import boilerplate_start
from indexer.settings import ChunkingParams
from indexer.types import Chunk, Span

# A sentence ends at . ! ? or … (possibly repeated), optionally followed by closing
# quotes or brackets, then whitespace, then something that can start a sentence.
_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9À-Ý])""")
_LINE = re.compile(r"[^\n]+")
_WORD_BEFORE = re.compile(r"(\S+)$")

# Tokens after which a period does not end a sentence (compared lower-case, without the
# final period).
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof gen lt col maj sgt capt adm cmdr sen rep gov pres st jr sr vs
    etc e.g i.e u.s u.k u.n u.s.a e.u no nos fig approx dept est inc ltd corp co
    jan feb mar apr jun jul aug sep sept oct nov dec mt ft rev hon""".split()
)


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at ``text[dot]`` closes an abbreviation or an initial."""
    match = _WORD_BEFORE.search(text, max(0, dot - 64), dot)  # a bounded look back: O(1) a period
    if match is None:
        return False
    word = match.group(1).lstrip("\"'“‘([").lower()
    if word in _ABBREVIATIONS:
        return True
    # A single letter ("J. Smith") or dotted initials ("U.S", "a.m") are not sentence ends.
    return len(word) == 1 and word.isalpha() or bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]", word))


def split_sentences(text: str) -> list[Span]:
    """Split ``text`` into sentence spans.

    Line breaks always end a sentence (titles, headings and paragraphs in news text
    carry no final period). Leading and trailing whitespace is excluded from each span,
    and whitespace-only stretches produce no span.

    >>> [s.slice("Hi there. Bye!\\nTitle") for s in split_sentences("Hi there. Bye!\\nTitle")]
    ['Hi there.', 'Bye!', 'Title']
    """
    spans: list[Span] = []
    for line in _LINE.finditer(text):
        start = line.start()
        for end_match in _END.finditer(text, line.start(), line.end()):
            first = end_match.group(0)[0]
            if first == "." and _is_abbreviation(text, end_match.start()):
                continue
            _append_trimmed(text, start, end_match.end(), spans)
            start = end_match.end()
        _append_trimmed(text, start, line.end(), spans)
    return spans


def _blank(char: str) -> bool:
    # A byte-order mark (U+FEFF) is not content either, though str.isspace() says so.
    return char.isspace() or char == "\ufeff"


def _append_trimmed(text: str, start: int, end: int, spans: list[Span]) -> None:
    while start < end and _blank(text[start]):
        start += 1
    while end > start and _blank(text[end - 1]):
        end -= 1
    if end > start:
        spans.append(Span(start, end))


def word_count(text: str) -> int:
    return len(text.split())


def chunk_sentences(
    text: str, sentences: Sequence[Span], params: ChunkingParams, doc_id: str = ""
) -> list[Chunk]:
    """Group consecutive sentences into chunks of roughly ``min_words``–``max_words`` words.

    Sentences are added until the chunk reaches ``min_words``; a sentence that would
    take it past ``max_words`` starts the next chunk instead (a single sentence longer
    than ``max_words`` is a chunk of its own: sentences are never cut). The next chunk
    starts ``overlap_sentences`` sentences before the previous one ended, unless those
    sentences alone would fill it (then it starts right after). Every sentence belongs to
    at least one chunk, and every chunk adds at least one sentence to its predecessor.
    """
    words = [word_count(s.slice(text)) for s in sentences]
    chunks: list[Chunk] = []
    i, n = 0, len(sentences)
    while i < n:
        j, total = i, 0
        while j < n and total < params.min_words:
            if j > i and total + words[j] > params.max_words:
                break
            total += words[j]
            j += 1
        start, end = sentences[i].start, sentences[j - 1].end
        chunks.append(
            Chunk(
                doc_id=doc_id,
                ordinal=len(chunks),
                start=start,
                end=end,
                text=text[start:end],
                sentences=tuple(sentences[i:j]),
            )
        )
        if j >= n:
            break
        # Overlap only when the shared sentences leave room for new ones: the next chunk
        # must add at least one sentence, or it would lie inside this one.
        start = max(i + 1, j - params.overlap_sentences)
        shared = sum(words[start:j])
        i = start if shared < params.min_words and shared + words[j] <= params.max_words else j
    return chunks


def chunk_text(text: str, params: ChunkingParams, doc_id: str = "") -> list[Chunk]:
    """Split ``text`` into sentences, then into chunks (see :func:`chunk_sentences`)."""
    return chunk_sentences(text, split_sentences(text), params, doc_id)


def article_spans(text: str, params: ChunkingParams, doc_id: str = "") -> tuple[list[Span], list[Chunk]]:
    """An article's indexed sentences and its passages. Trailing page furniture (comment
    prompts, subscription pleas, teasers: :mod:`indexer.boilerplate`) stays in the stored
    text but has no sentences, so it is neither chunked nor indexed."""
    cut = boilerplate_start(text)
    spans = [s for s in split_sentences(text) if s.start < cut]
    return spans, chunk_sentences(text, spans, params, doc_id)


# What a sentence is, for choosing answers: headings are searchable context, never answers.
BODY, TITLE, HEADING = 0, 1, 2
_MAX_HEADING_WORDS = 15
_MAX_QUESTION_HEADING_WORDS = 12
_SENTENCE_END = re.compile(r"""[.!…:;,]["'”’)\]]*$""")
_LIST_ITEM = re.compile(r"^(?:[-–—*•·▪●]|\d{1,3}[.)])\s")
_HEADING_KEY = re.compile(r"[\W_]+")


def _key(text: str) -> str:
    return _HEADING_KEY.sub(" ", text.casefold()).strip()


def _title_case(words: list[str]) -> bool:
    """Most longer words capitalised, as in "Why Is Turkey Selling Drones to Ukraine?"."""
    long = [w for w in words if sum(ch.isalpha() for ch in w) >= 4]
    return bool(long) and sum(w[:1].isupper() for w in long) >= 0.6 * len(long)


def sentence_kinds(text: str, spans: Sequence[Span], title: str = "") -> list[int]:
    """For each sentence span of ``text``: :data:`TITLE`, :data:`HEADING` or :data:`BODY`.

    Rules, per line (sentences never span a line break; news text is one paragraph a
    line):

    * every sentence of the first non-blank line is the TITLE, as is a line that repeats
      it (or repeats ``title``, the title the format gave) anywhere in the article;
    * a line that is one sentence on its own is a HEADING when it is a Markdown heading
      (``# …``), or has at most 15 words and does not end like a sentence (``.``, ``!``,
      ``…``, ``:``, ``;``, ``,``), or is a question of at most 12 words in title case
      ("Why Is Turkey Selling Drones to Ukraine?"); list items ("- …", "1. …") stay BODY;
    * everything else is BODY.

    >>> text = "A headline\\n\\nIt rained. It poured.\\nThe Aftermath\\nRoads flooded."
    >>> sentence_kinds(text, split_sentences(text))
    [1, 0, 0, 2, 0]
    """
    kinds = [BODY] * len(spans)
    first = next((m for m in _LINE.finditer(text) if m.group(0).strip()), None)
    title_keys = {k for k in (_key(first.group(0).lstrip("\ufeff#")) if first else "", _key(title)) if k}
    line_of: dict[int, list[int]] = {}
    for i, span in enumerate(spans):
        start = text.rfind("\n", 0, span.start) + 1
        line_of.setdefault(start, []).append(i)
    for start, members in line_of.items():
        end = text.find("\n", start)
        line = text[start: len(text) if end < 0 else end].strip().lstrip("\ufeff").strip()
        if first is not None and start == first.start():
            kind = TITLE
        elif len(members) != 1:
            continue
        elif _key(line.lstrip("#")) in title_keys:
            kind = TITLE
        elif line.startswith("#"):
            kind = HEADING
        else:
            words = line.split()
            if _LIST_ITEM.match(line):
                continue
            if line.endswith("?"):
                heading = len(words) <= _MAX_QUESTION_HEADING_WORDS and _title_case(words)
            else:
                heading = len(words) <= _MAX_HEADING_WORDS and not _SENTENCE_END.search(line)
            if not heading:
                continue
            kind = HEADING
        for i in members:
            kinds[i] = kind
    return kinds
