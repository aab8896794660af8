"""indexer.boilerplate: trailing page furniture is recognised, real text never cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.boilerplate import boilerplate_spans, boilerplate_start, describe
from indexer.chunking import split_sentences

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def cut_lines(text: str) -> list[str]:
    return [line.strip() for line in text[boilerplate_start(text):].splitlines() if line.strip()]


# What is cut from each seed, line by line (the measurement; see also
# `python -m indexer.boilerplate`).
SEED_CUTS = {
    "000": ["https://www.nytimes.com/2022/02/03/world/europe/ukraine-turkey-russia-drones.html "
            "Turkey, a sometimes wavering NATO ally, backs Ukraine"],
    "001": ["In an age of both misinformation and too much information, quality journalism is more "
            "crucial than ever.",
            "By subscribing, you can help us tell the story well.",
            "Comments are closed."],
    "002": ["About Eleanor Blackburn",
            "Check Also",
            "Serbia’s purchase of FK-3s from China marks a shift in Vucic’s diplomatic and defense "
            "policy",
            "As the eyes of the world focused on Russia and its invasion of Ukraine, a …",
            "Leave a Reply",
            "Your email address will not be published."],
    "003": ["Comments (13)", "Join The Dispatch to participate in the comments."],
    "004": [],
}


@pytest.mark.parametrize("prefix", sorted(SEED_CUTS))
def test_seed_cuts(prefix: str) -> None:
    text = seed(prefix)
    start = boilerplate_start(text)
    assert cut_lines(text) == SEED_CUTS[prefix], describe(text)
    # The kept text ends with the last real paragraph, the cut starts on a line of its own.
    assert start == len(text) or text[start - 1] == "\n"
    kept = text[:start].rstrip()
    assert kept.endswith(("”", ".")), kept[-80:]


def test_seed_004_is_untouched() -> None:
    text = seed("004")
    assert boilerplate_start(text) == len(text)
    assert boilerplate_spans(text) == []


def test_spans_and_start_agree() -> None:
    text = seed("002")
    assert boilerplate_spans(text) == [(boilerplate_start(text), len(text))]


BODY = (
    "Turkey on Thursday agreed to expand the supply of armed drones to Ukraine, officials said.\n\n"
    "The State Department did not respond to questions about her comments.\n\n"
)


@pytest.mark.parametrize("ending", [
    "The State Department did not respond to questions about her comments.",
    "Readers who subscribe to the newspaper were told of the change on Friday.",
    "Comments made by the minister on Tuesday caused an uproar in Ankara.",
    "About 2,000 light anti-tank missiles were shipped to Ukraine in two weeks.",
    "Support for the measure has grown among lawmakers, polls show.",
    "Copyright holders sued the company in 2021, the filing shows.",
    "Related talks are expected to resume next week in Istanbul, the ministry said.",
    "More on that later, he told reporters.",
])
def test_real_sentences_mentioning_keywords_are_kept(ending: str) -> None:
    text = BODY + ending
    assert boilerplate_start(text) == len(text)


@pytest.mark.parametrize("tail", [
    "Leave a Reply\nYour email address will not be published. Required fields are marked *",
    "Comments are closed.",
    "Comments (0)",
    "13 Comments",
    "Join The Dispatch to participate in the comments.",
    "You must be logged in to post a comment.",
    "Share this:\nTwitter\nFacebook",
    "Facebook Twitter LinkedIn Email Print",
    "Tags: Turkey, Ukraine, drones",
    "About the author\nJane Doe covers defense for the paper.\nFollow her on Twitter.",
    "Read also:\nErdogan meets Putin in Sochi\nThe two leaders discussed grain exports …",
    "Related Articles\nHeadline one\nHeadline two\n\n© 2022 Example News. All rights reserved.",
    "https://example.com/story",
    "Source: https://example.com/story",
    "Subscribe to our newsletter for the latest updates.",
    "Please consider supporting independent journalism.",
    "Advertisement",
    "* * *",
])
def test_trailing_boilerplate_is_cut_exactly(tail: str) -> None:
    text = BODY + tail
    assert boilerplate_start(text) == len(BODY)
    assert boilerplate_spans(text) == [(len(BODY), len(text))]


def test_teaser_without_intro_is_kept() -> None:
    # Short lines are cut only after an intro such as "Check Also".
    text = BODY + "Serbia buys missiles from China\nLeave a Reply"
    assert cut_lines(text) == ["Leave a Reply"]


def test_long_paragraph_after_intro_stops_the_cut() -> None:
    paragraph = " ".join(["The ministry said the talks would continue."] * 8)
    text = BODY + f"Check Also\n{paragraph}\nLeave a Reply"
    assert cut_lines(text) == ["Leave a Reply"]


def test_url_with_other_text_is_kept() -> None:
    text = "Title line\n\n" + BODY + "https://example.com/x Another article entirely"
    assert boilerplate_start(text) == len(text)


def test_repeated_title_after_url_lines() -> None:
    text = "My Title\n\n" + BODY + "https://example.com/x\nMy title"
    assert cut_lines(text) == ["https://example.com/x", "My title"]


def test_title_is_never_cut() -> None:
    assert boilerplate_start("Comments") == len("Comments")
    assert boilerplate_start("Leave a Reply\nComments are closed.") == len("Leave a Reply\n")
    assert boilerplate_start("") == 0
    assert boilerplate_spans("   \n\n") == []


def test_crlf_text() -> None:
    text = BODY.replace("\n", "\r\n") + "Leave a Reply\r\nComments are closed.\r\n"
    assert boilerplate_start(text) == len(BODY.replace("\n", "\r\n"))


# --- properties ------------------------------------------------------------------------------

_PIECES = st.sampled_from([
    "Leave a Reply", "Comments (3)", "Check Also", "Read also:", "About Jane Doe", "Comments are closed.",
    "https://example.com/a", "Share", "Short teaser headline", "…", "", " ", "\r",
    "Turkey agreed on Thursday to expand the supply of armed drones to Ukraine, officials said.",
    "The State Department did not respond to questions about her comments.",
])
_TEXTS = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(_PIECES, st.text(max_size=60)), max_size=25).map("\n".join),
)


@given(_TEXTS)
def test_spans_are_a_trailing_suffix(text: str) -> None:
    spans = boilerplate_spans(text)
    start = boilerplate_start(text)
    assert 0 <= start <= len(text)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no overlap
    assert spans == ([(start, len(text))] if start < len(text) else [])
    if spans:
        # Starts on a line of its own, after the first non-blank line (the title).
        assert text[start - 1] == "\n"
        assert text[:start].strip()
        # No sentence straddles the cut.
        for sentence in split_sentences(text):
            assert sentence.end <= start or sentence.start >= start


@given(_TEXTS)
def test_cutting_is_idempotent(text: str) -> None:
    start = boilerplate_start(text)
    kept = text[:start]
    assert boilerplate_start(kept) == len(kept)


_VOCABULARY = ["comments", "Comments", "subscribe", "about", "About", "related", "Related", "share",
               "Check", "also", "Leave", "Reply", "Read", "more", "the", "minister", "Turkey", "drones"]


@given(st.lists(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=12).map(" ".join),
                min_size=1, max_size=6))
def test_appended_boilerplate_is_cut_at_the_seam(sentences: list[str]) -> None:
    # Content lines that are sentences, even full of trigger words, then a known trailer:
    # the cut is exactly the trailer.
    body = "Title\n\n" + "\n\n".join(s + " and the ministry said so on Thursday." for s in sentences) + "\n\n"
    text = body + "About Jane Doe\n\nCheck Also\n\nSome headline\n\nLeave a Reply\n"
    assert boilerplate_start(text) == len(body)


if __name__ == "__main__":  # print the measurement on the seeds
    for path in sorted(SEEDS.glob("*.txt")):
        print(f"{path.name}: {describe(path.read_text(encoding='utf-8'))}")
