"""hotpath.Reranker: exact orderings, exploration, errors, and the NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hotpath import LayoutError, Reranker, ShapeError, UnknownItemError, reference

u32 = np.uint32
f32 = np.float32

CANDS = np.arange(5, dtype=u32)
SCORES = np.array([5, 4, 3, 2, 1], f32)


@pytest.fixture
def reranker() -> Reranker:
    """Items 0..5 with primary genres 0, 0, 1, 1, 2."""
    return Reranker(np.array([0, 0, 1, 1, 2], np.uint16))


def positions(r: Reranker, k: int, cap: int) -> list[int]:
    pos, explored = r.rerank(CANDS, SCORES, k, cap, 0.0, 0)
    assert pos.dtype == np.uint32 and explored.dtype == np.bool_
    assert not explored.any()
    return pos.tolist()


def test_score_order_ties_by_position_nan_last(reranker: Reranker) -> None:
    scores = np.array([0.5, math.nan, 0.9, 0.5, -math.inf, math.nan, -0.0, 0.0], f32)
    cands = np.zeros(8, u32)
    pos, _ = reranker.rerank(cands, scores, 8, 0, 0.0, 0)
    assert pos.tolist() == [2, 0, 3, 6, 7, 4, 1, 5]


def test_genre_cap_then_skipped_in_order(reranker: Reranker) -> None:
    assert positions(reranker, 3, 1) == [0, 2, 4]
    assert positions(reranker, 2, 1) == [0, 2]
    assert positions(reranker, 5, 1) == [0, 2, 4, 1, 3]
    assert positions(reranker, 9, 1) == [0, 2, 4, 1, 3]
    assert positions(reranker, 4, 2) == [0, 1, 2, 3]


def test_non_positive_cap_means_no_cap(reranker: Reranker) -> None:
    assert positions(reranker, 3, 0) == [0, 1, 2]
    assert positions(reranker, 3, -5) == [0, 1, 2]
    assert positions(reranker, 0, 1) == []


def test_positions_index_the_inputs(reranker: Reranker) -> None:
    pos, _ = reranker.rerank(np.array([4, 4, 0], u32), np.array([1, 3, 2], f32), 3, 0, 0.0, 0)
    assert pos.tolist() == [1, 2, 0]


def test_exploration_with_known_draws(reranker: Reranker) -> None:
    # SplitMix64(42): slot 0 and 1 always explore at epsilon = 1.
    rng = reference.SplitMix64(42)
    slots, rest = [0, 1], [2, 3, 4]
    for i in range(2):
        rng.next_u64()
        j = rng.next_u64() % len(rest)
        slots[i], rest[j] = rest[j], slots[i]
    pos, explored = reranker.rerank(CANDS, SCORES, 2, 0, 1.0, 42)
    assert pos.tolist() == slots
    assert explored.tolist() == [True, True]


def test_exploration_needs_leftovers_and_is_seeded(reranker: Reranker) -> None:
    pos, explored = reranker.rerank(CANDS, SCORES, 5, 0, 1.0, 7)
    assert pos.tolist() == [0, 1, 2, 3, 4] and not explored.any()
    cands = np.arange(5, dtype=u32).repeat(40)
    scores = np.arange(200, dtype=f32)
    runs = [reranker.rerank(cands, scores, 50, 0, 0.3, seed) for seed in (1, 1, 2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][0].tolist() != runs[2][0].tolist()
    assert 5 <= runs[0][1].sum() <= 30


def test_splitmix64_reference_vector() -> None:
    rng = reference.SplitMix64(1234567)
    assert [rng.next_u64() for _ in range(3)] == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
    ]


def test_matches_reference_on_random_inputs(rng: np.random.Generator) -> None:
    n_items = 50
    genres = rng.integers(0, 6, n_items).astype(np.uint16)
    reranker = Reranker(genres)
    for _ in range(300):
        n = int(rng.integers(0, 80))
        cands = rng.integers(0, n_items, n).astype(u32)
        scores = rng.integers(0, 10, n).astype(f32)  # many ties
        scores[rng.random(n) < 0.1] = np.nan
        args = (
            cands,
            scores,
            int(rng.integers(0, 90)),
            int(rng.integers(-1, 5)),
            float(rng.choice([0.0, 0.1, 0.5, 1.0])),
            int(rng.integers(0, 2**64, dtype=np.uint64)),
        )
        got = reranker.rerank(*args)
        want = reference.rerank(genres, *args)
        assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# --- errors ------------------------------------------------------------------


def test_length_mismatch_raises_shape_error(reranker: Reranker) -> None:
    with pytest.raises(ShapeError, match="scores: expected length 5, got 4"):
        reranker.rerank(CANDS, SCORES[:4].copy(), 2, 0, 0.0, 0)


def test_unknown_candidate_raises_unknown_item_error(reranker: Reranker) -> None:
    with pytest.raises(UnknownItemError, match=r"candidates\[1\] = 5"):
        reranker.rerank(np.array([0, 5], u32), np.zeros(2, f32), 2, 0, 0.0, 0)


@pytest.mark.parametrize("epsilon", [-0.1, 1.1, math.nan])
def test_bad_epsilon_raises_shape_error(reranker: Reranker, epsilon: float) -> None:
    with pytest.raises(ShapeError, match="epsilon"):
        reranker.rerank(CANDS, SCORES, 2, 0, epsilon, 0)


def test_negative_n_results_raises_shape_error(reranker: Reranker) -> None:
    with pytest.raises(ValueError, match="n_results"):
        reranker.rerank(CANDS, SCORES, -1, 0, 0.0, 0)


def test_wrong_dtype_raises_layout_error(reranker: Reranker) -> None:
    with pytest.raises(LayoutError, match="scores: expected dtype float32"):
        reranker.rerank(CANDS, SCORES.astype(np.float64), 2, 0, 0.0, 0)
    with pytest.raises(LayoutError, match="item_primary_genre"):
        Reranker(np.array([0, 1], np.int32))


def test_non_contiguous_raises_layout_error(reranker: Reranker) -> None:
    with pytest.raises(LayoutError, match="candidates: array is not C-contiguous"):
        reranker.rerank((np.arange(10, dtype=u32) % 5)[::2], SCORES, 2, 0, 0.0, 0)
