"""Reciprocal-rank fusion against hand-computed cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval.fusion import rrf_fuse

# Two rankings. 7 is first in A only; 9 is fourth in both; 3 is first in B only.
A = [7, 1, 2, 9]
B = [3, 4, 5, 9]


def test_hand_computed_k60() -> None:
    # score(d) = sum over rankings of 1 / (60 + rank)
    expected = [
        (9, 1 / 64 + 1 / 64),  # 0.03125: fourth twice beats first once
        (3, 1 / 61),           # 0.016393: ties with 7 on score and best rank -> smaller id first
        (7, 1 / 61),
        (1, 1 / 62),           # 0.016129, tie with 4 -> id order
        (4, 1 / 62),
        (2, 1 / 63),           # 0.015873, tie with 5
        (5, 1 / 63),
    ]
    fused = rrf_fuse([A, B], k=60)
    assert [d for d, _ in fused] == [d for d, _ in expected]
    assert [s for _, s in fused] == pytest.approx([s for _, s in expected], abs=1e-12)
    assert fused[0][1] == pytest.approx(0.03125)


def test_hand_computed_k1_changes_the_winner() -> None:
    # With k = 1 the top of a single ranking counts far more: 1/2 > 2/5.
    expected = [
        (3, 1 / 2),   # 0.5, tie with 7 (both best rank 1) -> id order
        (7, 1 / 2),
        (9, 1 / 5 + 1 / 5),  # 0.4
        (1, 1 / 3),
        (4, 1 / 3),
        (2, 1 / 4),
        (5, 1 / 4),
    ]
    fused = rrf_fuse([A, B], k=1)
    assert [d for d, _ in fused] == [d for d, _ in expected]
    assert [s for _, s in fused] == pytest.approx([s for _, s in expected], abs=1e-12)


def test_equal_scores_are_ordered_by_best_rank_before_id() -> None:
    # k = 1: 99 is first in one ranking (1/2); 5 is third in both (1/4 + 1/4 = 1/2). Same
    # score; 99's best rank (1) beats 5's (3) although its id is larger. 2 also scores 1/2
    # with best rank 1, and comes before 99 by id.
    fused = rrf_fuse([[99, 1, 5], [2, 3, 5]], k=1)
    assert fused == [(2, 0.5), (99, 0.5), (5, 0.5), (1, 1 / 3), (3, 1 / 3)]


def test_weights_scale_each_ranking() -> None:
    rankings = [[1, 2], [2, 1]]
    # Unweighted, 1 and 2 tie (1/61 + 1/62 each); weights decide.
    first_heavy = rrf_fuse(rankings, k=60, weights=[2.0, 1.0])
    assert first_heavy == [(1, pytest.approx(2 / 61 + 1 / 62)), (2, pytest.approx(2 / 62 + 1 / 61))]
    second_heavy = rrf_fuse(rankings, k=60, weights=[1.0, 2.0])
    assert [d for d, _ in second_heavy] == [2, 1]
    # A zero weight removes a ranking's influence but keeps its ids (with score 0).
    only_first = rrf_fuse([[5, 6], [6, 7]], k=60, weights=[1.0, 0.0])
    assert only_first == [(5, pytest.approx(1 / 61)), (6, pytest.approx(1 / 62)), (7, 0.0)]


def test_single_ranking_keeps_its_order() -> None:
    assert rrf_fuse([[4, 8, 2]], k=10) == [(4, 1 / 11), (8, 1 / 12), (2, 1 / 13)]


def test_empty_inputs() -> None:
    assert rrf_fuse([]) == []
    assert rrf_fuse([[], []]) == []


@pytest.mark.parametrize("k", [0, -5])
def test_bad_k_is_refused_with_the_value(k: int) -> None:
    with pytest.raises(ValueError, match=rf"k must be at least 1; got {k}"):
        rrf_fuse([[1, 2]], k=k)


@pytest.mark.parametrize("weights", [[1.0], [1.0, 1.0, 1.0], []])
def test_weight_count_must_match_rankings(weights: list[float]) -> None:
    with pytest.raises(ValueError, match=rf"{len(weights)} weights for 2 rankings"):
        rrf_fuse([[1], [2]], weights=weights)


_ranking = st.lists(st.integers(0, 30), unique=True, max_size=20)


@given(_ranking, _ranking, st.integers(1, 200))
def test_fusion_properties(a: list[int], b: list[int], k: int) -> None:
    fused = rrf_fuse([a, b], k=k)
    ids = [d for d, _ in fused]
    assert sorted(ids) == sorted(set(a) | set(b)), "every id once, no others"
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    for doc, score in fused:
        expected = sum(1 / (k + r.index(doc) + 1) for r in (a, b) if doc in r)
        assert score == pytest.approx(expected, rel=1e-12)
    # Deterministic: the order of the rankings and repeated calls do not change the result.
    assert rrf_fuse([b, a], k=k) == fused
    assert rrf_fuse([a, b], k=k) == fused
