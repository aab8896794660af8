"""The BM25 analysis: indexer.lexical.analyze gives exactly bm25s.tokenize's tokens."""

from __future__ import annotations

import bm25s
from hypothesis import given, settings, strategies as st

from indexer.lexical import _STOPWORDS, _stemmer, analyze
from support import REPO_ROOT, SYNTHETIC_ARTICLES


def _reference(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, lower=True, stopwords="en", stemmer=_stemmer(), return_ids=False,
                          show_progress=False)


def test_analyze_equals_bm25s_on_real_text() -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "seeds").glob("*.txt"))]
    texts += list(SYNTHETIC_ARTICLES.values())
    texts += ["", "the of and", "Ankara's S-400 (Turkey) – 1952!", "ÇELİK İzmir naïve café", "x y z 10 2022"]
    assert analyze(texts) == _reference(texts)


@settings(max_examples=200)
@given(st.lists(st.text(max_size=80), max_size=5))
def test_analyze_equals_bm25s_on_any_text(texts: list[str]) -> None:
    assert analyze(texts) == _reference(texts)


def test_the_stop_words_are_bm25s_english_ones() -> None:
    from bm25s.stopwords import STOPWORDS_EN

    assert _STOPWORDS == frozenset(STOPWORDS_EN)
