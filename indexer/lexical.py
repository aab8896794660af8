"""The text analysis shared by the BM25 index (build time) and BM25 queries (query time)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

BM25_PARAMS = {"k1": 1.5, "b": 0.75, "method": "lucene", "stemmer": "english", "stopwords": "en"}


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


# bm25s.tokenize's analysis (its default token pattern and English stop words), done
# directly: the same tokens (tests/test_lexical.py compares them), without building a
# vocabulary and a progress bar for every call, which cost a query about 2 ms.
# The stop words are bm25s's English list (bm25s.stopwords.STOPWORDS_EN), copied: importing
# bm25s loads scipy, a quarter of a second of every query process's start-up
# (tests/test_lexical.py checks the copy against bm25s).
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
    "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
    "will", "with"))


def analyze(texts: Sequence[str]) -> list[list[str]]:
    """Lower-case, split into words, drop English stop words, stem (Snowball English)."""
    stem = _stemmer().stemWords
    return [stem([t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]) for text in texts]


def build_bm25(texts: Sequence[str]) -> Any:
    """A bm25s BM25 index over ``texts`` (row i of the index is ``texts[i]``): the reference
    the local store's own scoring is tested against (tests/test_store.py)."""
    import bm25s

    retriever = bm25s.BM25(k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"], method=BM25_PARAMS["method"])
    tokens = analyze(texts)
    if not any(tokens):
        # bm25s cannot index an empty vocabulary (a corpus of stop words only); a term no
        # query can produce (analysis lower-cases) keeps the index valid and matches nothing.
        tokens = [["NO_TERMS"] for _ in tokens]
    retriever.index(tokens, show_progress=False)
    return retriever
