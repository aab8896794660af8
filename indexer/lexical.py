"""The text analysis shared by the BM25 index (build time) and BM25 queries (query time)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import bm25s

BM25_PARAMS = {"k1": 1.5, "b": 0.75, "method": "lucene", "stemmer": "english", "stopwords": "en"}


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


def analyze(texts: Sequence[str]) -> list[list[str]]:
    """Lower-case, split into words, drop English stop words, stem (Snowball English)."""
    return bm25s.tokenize(  # type: ignore[no-any-return]
        list(texts), lower=True, stopwords="en", stemmer=_stemmer(),
        return_ids=False, show_progress=False,
    )


def build_bm25(texts: Sequence[str]) -> bm25s.BM25:
    """A BM25 index over ``texts`` (row i of the index is ``texts[i]``)."""
    retriever = bm25s.BM25(k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"], method=BM25_PARAMS["method"])
    tokens = analyze(texts)
    if not any(tokens):
        # bm25s cannot index an empty vocabulary (a corpus of stop words only); a term no
        # query can produce (analysis lower-cases) keeps the index valid and matches nothing.
        tokens = [["NO_TERMS"] for _ in tokens]
    retriever.index(tokens, show_progress=False)
    return retriever
