"""Sentence splitting and chunking: exact offsets, whole sentences, sizes and overlap."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from indexer.chunking import chunk_text, split_sentences, word_count
from indexer.errors import ConfigError
from indexer.settings import ChunkingParams
from indexer.types import Chunk, Span

# --- strategies -------------------------------------------------------------------------

# Characters that matter to the splitter: terminators, closing and opening quotes and
# brackets, every kind of whitespace it might meet, upper/lower case, digits, accents.
_BOUNDARY_CHARS = " \n\t\r\u00a0\u2028.!?…\"'”’“‘()[]aBcXyZ09ÀÉéß-,;:"
_BOUNDARY_PIECES = [*_BOUNDARY_CHARS, "Mr", "U.S", "K", "e.g"]

texts = st.one_of(
    st.text(),  # anything Unicode, including newlines and control characters
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet=_BOUNDARY_CHARS, max_size=200),
    st.lists(st.sampled_from(_BOUNDARY_PIECES), max_size=120).map("".join),
)

_words = st.sampled_from(
    ["the", "Turkey", "joined", "NATO", "in", "1952", "Mr.", "U.S.", "officials", "said", "K.",
     "Erdogan", "drones", "“quoted”", "(aside)", "Zürich", "über", "e.g.", "No.", "3.5", "a"]
)
_sentence = st.builds(
    lambda first, rest, end: " ".join([first.capitalize(), *rest]) + end,
    _words, st.lists(_words, max_size=25), st.sampled_from([".", "!", "?", "…", ".”", "?\"", "!)", ""]),
)
_separator = st.sampled_from([" ", "  ", "\n", "\n\n", " \t", "\r\n", " \n "])
sentence_texts = st.builds(
    lambda parts, seps, lead, trail: lead + "".join(p + s for p, s in zip(parts, seps)) + trail,
    st.lists(_sentence, min_size=1, max_size=30),
    st.lists(_separator, min_size=30, max_size=30),
    st.sampled_from(["", " ", "\n", "\n\n  "]),
    st.sampled_from(["", " ", "\n"]),
)
any_text = st.one_of(texts, sentence_texts)
# Chunking is only interesting with several sentences: weight sentence-like text.
chunkable_text = st.one_of(texts, sentence_texts, sentence_texts, sentence_texts)


@st.composite
def chunking_params(draw: st.DrawFn, most_min_words: int = 30) -> ChunkingParams:
    low = draw(st.integers(1, most_min_words))
    high = draw(st.integers(low, 2 * most_min_words))
    return ChunkingParams(min_words=low, max_words=high, overlap_sentences=draw(st.integers(0, 4)))


def _sentence_index(sentences: list[Span]) -> dict[Span, int]:
    return {s: i for i, s in enumerate(sentences)}


# --- sentence properties ----------------------------------------------------------------

@given(any_text)
@example("Hi there. Bye!\nTitle")
@example("")
@example(" \n\t ")
@example("a\r\nb")
def test_sentences_are_stripped_ordered_disjoint_and_lose_nothing(text: str) -> None:
    spans = split_sentences(text)
    previous_end = 0
    for span in spans:
        sentence = text[span.start:span.end]
        assert sentence, "empty sentence span"
        assert sentence == sentence.strip(), f"span {span} not stripped: {sentence!r}"
        assert "\n" not in sentence, "a newline always ends a sentence"
        assert span.start >= previous_end, "sentences overlap or are out of order"
        # Only whitespace is dropped between sentences: no character of the article is lost.
        assert text[previous_end:span.start].strip() == ""
        previous_end = span.end
    assert text[previous_end:].strip() == ""


@given(any_text)
def test_every_non_blank_line_yields_sentences_inside_it(text: str) -> None:
    spans = split_sentences(text)
    offset = 0
    for line in text.split("\n"):
        line_spans = [s for s in spans if offset <= s.start and s.end <= offset + len(line)]
        if line.strip():
            assert line_spans, f"line {line!r} has no sentence"
            assert line_spans[0].start == offset + len(line) - len(line.lstrip())
            assert line_spans[-1].end == offset + len(line.rstrip())
        offset += len(line) + 1


# --- chunk properties -------------------------------------------------------------------

@settings(max_examples=300)
@given(chunkable_text, chunking_params())
@example("Hi there. Bye!\nTitle", ChunkingParams(1, 1, 0))
def test_chunks_slice_back_and_are_runs_of_whole_sentences(text: str, params: ChunkingParams) -> None:
    sentences = split_sentences(text)
    position = _sentence_index(sentences)
    chunks = chunk_text(text, params, doc_id="doc")
    assert bool(chunks) == bool(sentences)
    for ordinal, chunk in enumerate(chunks):
        assert isinstance(chunk, Chunk)
        assert chunk.ordinal == ordinal and chunk.doc_id == "doc"
        assert chunk.chunk_id == f"doc#{ordinal}"
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        assert chunk.sentences, "a chunk holds at least one sentence"
        assert chunk.start == chunk.sentences[0].start and chunk.end == chunk.sentences[-1].end
        # The chunk's sentences are a contiguous run of the document's sentences.
        first = position[chunk.sentences[0]]
        assert list(chunk.sentences) == sentences[first:first + len(chunk.sentences)]
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)), "chunks are in document order, no two start together"


@given(chunkable_text, chunking_params())
def test_every_sentence_is_in_a_chunk(text: str, params: ChunkingParams) -> None:
    sentences = split_sentences(text)
    covered = {s for c in chunk_text(text, params) for s in c.sentences}
    assert covered == set(sentences)


@settings(max_examples=300)
@given(chunkable_text, chunking_params())
def test_chunk_size_limits(text: str, params: ChunkingParams) -> None:
    sentences = split_sentences(text)
    position = _sentence_index(sentences)
    for chunk in chunk_text(text, params):
        words = word_count(chunk.text)
        # A chunk's words are exactly its sentences' words (only whitespace between them).
        assert words == sum(word_count(s.slice(text)) for s in chunk.sentences)
        if len(chunk.sentences) > 1:
            assert words <= params.max_words, f"{words} words > max_words {params.max_words}"
        if words < params.min_words:
            # Short only when the text ran out or the next sentence would not fit.
            nxt = position[chunk.sentences[-1]] + 1
            assert nxt == len(sentences) or words + word_count(sentences[nxt].slice(text)) > params.max_words


@settings(max_examples=300)
@given(sentence_texts, chunking_params(most_min_words=12))
def test_consecutive_chunks_overlap_by_the_configured_sentences(text: str, params: ChunkingParams) -> None:
    chunks = chunk_text(text, params)
    k = params.overlap_sentences
    for left, right in zip(chunks, chunks[1:]):
        shared = set(left.sentences) & set(right.sentences)
        assert len(shared) <= k
        if len(left.sentences) > k and len(right.sentences) > k:
            # The overlap is skipped only when the k shared sentences would fill the next
            # chunk by themselves (>= min_words) or leave no room for a new sentence.
            tail = left.sentences[len(left.sentences) - k:]
            tail_words = sum(word_count(s.slice(text)) for s in tail)
            first_new = right.sentences[len(shared)] if len(right.sentences) > len(shared) else None
            new_words = word_count(first_new.slice(text)) if first_new else 0
            if tail_words < params.min_words and tail_words + new_words <= params.max_words:
                assert len(shared) == k
                assert list(right.sentences[:k]) == list(tail)
            else:
                assert not shared


def test_no_chunk_is_contained_in_its_predecessor() -> None:
    text = "Short one here. " + " ".join(["Long"] * 70) + ". Another short one."
    chunks = chunk_text(text, ChunkingParams())  # min 60, max 150, overlap 1
    for left, right in zip(chunks, chunks[1:]):
        assert not set(right.sentences) <= set(left.sentences), (
            f"chunk {right.ordinal} [{right.start}:{right.end}] lies inside chunk {left.ordinal} "
            f"[{left.start}:{left.end}]"
        )


# --- examples ---------------------------------------------------------------------------

def _sentences(text: str) -> list[str]:
    return [s.slice(text) for s in split_sentences(text)]


@pytest.mark.parametrize("text", [
    "Mr. Erdogan met the press on Thursday.",
    "Mrs. Smith and Dr. Jones spoke. ",
    "U.S. officials said the sale would go ahead.",
    "The U.S. Congress imposed sanctions.",
    "Russian Defense Minister Sergei K. Shoigu said more troops would come.",
    "President George W. Bush visited Ankara.",
    "The talks ran until 5 p.m. Moscow time.",
    "Gen. Milley and Sen. Graham disagreed.",
    "Sales rose 3.5 percent in 2021.",
])
def test_abbreviations_and_initials_do_not_end_a_sentence(text: str) -> None:
    assert _sentences(text) == [text.strip()]


@pytest.mark.parametrize("text, expected", [
    ("Is it over? No one knows.", ["Is it over?", "No one knows."]),
    ("It flew! Then it fell.", ["It flew!", "Then it fell."]),
    ("What?! Really.", ["What?!", "Really."]),
    ("Wait... Then go.", ["Wait...", "Then go."]),
    ("It ended… 2022 began.", ["It ended…", "2022 began."]),
    ("He said “We will win.” Then he left.", ["He said “We will win.”", "Then he left."]),
    ("She wrote ‘Never.’ Nobody replied.", ["She wrote ‘Never.’", "Nobody replied."]),
    ('He said "Stop." Then it stopped.', ['He said "Stop."', "Then it stopped."]),
    ("It was big. “Very big,” he said.", ["It was big.", "“Very big,” he said."]),
    ("It was cheap (very cheap.) Buyers came.", ["It was cheap (very cheap.)", "Buyers came."]),
    ("The end. Über alles.", ["The end.", "Über alles."]),
])
def test_terminators_split(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("A headline without a period\nThe body starts here.", ["A headline without a period", "The body starts here."]),
    ("one\ntwo", ["one", "two"]),
    ("Mr.\nSmith", ["Mr.", "Smith"]),
    ("line one\r\n\r\nline two\r\n", ["line one", "line two"]),
    ("  indented\n\n\n   \nlast  ", ["indented", "last"]),
])
def test_newline_always_ends_a_sentence(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


def test_lower_case_after_period_does_not_split() -> None:
    assert _sentences("The rate was 2 pct. lower than last year.") == ["The rate was 2 pct. lower than last year."]


def test_chunking_example_with_overlap() -> None:
    # Six sentences of 4 words; chunks of at least 8 words share one sentence.
    text = " ".join(f"Sentence number {n} here." for n in range(1, 7))
    chunks = chunk_text(text, ChunkingParams(min_words=8, max_words=12, overlap_sentences=1), "d")
    assert [c.text for c in chunks] == [
        "Sentence number 1 here. Sentence number 2 here.",
        "Sentence number 2 here. Sentence number 3 here.",
        "Sentence number 3 here. Sentence number 4 here.",
        "Sentence number 4 here. Sentence number 5 here.",
        "Sentence number 5 here. Sentence number 6 here.",
    ]
    no_overlap = chunk_text(text, ChunkingParams(min_words=8, max_words=12, overlap_sentences=0))
    assert [len(c.sentences) for c in no_overlap] == [2, 2, 2]


def test_long_sentence_is_never_cut() -> None:
    long = "Word " * 40 + "end."
    text = f"Short first. {long} Short last."
    chunks = chunk_text(text, ChunkingParams(min_words=5, max_words=10, overlap_sentences=0))
    assert [c.text for c in chunks] == ["Short first.", long.strip(), "Short last."]


def test_empty_and_blank_text_give_no_chunks() -> None:
    assert chunk_text("", ChunkingParams()) == []
    assert chunk_text(" \n\t\n ", ChunkingParams()) == []


@pytest.mark.parametrize("kwargs", [
    {"min_words": 0}, {"min_words": 10, "max_words": 5}, {"overlap_sentences": -1},
])
def test_invalid_chunking_params_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        ChunkingParams(**kwargs)


def test_span_rejects_inverted_range() -> None:
    with pytest.raises(ValueError):
        Span(5, 3)
