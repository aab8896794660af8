"""Reciprocal-rank fusion of several rankings."""

from __future__ import annotations

from collections.abc import Sequence


def rrf_fuse(
    rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse rankings of ids by reciprocal rank: ``score(d) = sum_i w_i / (k + rank_i(d))``.

    Ranks start at 1. Ids missing from a ranking get nothing from it. Ties are broken by
    the id's best rank in any ranking, then by the id itself, so the result is
    deterministic.

    >>> rrf_fuse([[7, 3], [3, 9]], k=60)[0][0]
    3
    """
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
            best[doc] = min(best.get(doc, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))
