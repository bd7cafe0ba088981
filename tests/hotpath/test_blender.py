"""hotpath.Blender: exact pools, every error class, and the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath import Blender, LayoutError, ShapeError, UnknownItemError, reference

u32 = np.uint32
f32 = np.float32


def src(items: list[int], scores: list[float], quota: int) -> tuple[np.ndarray, np.ndarray, int]:
    return (np.array(items, u32), np.array(scores, f32), quota)


def none() -> np.ndarray:
    return np.array([], u32)


def check(got: tuple[np.ndarray, ...], items: list[int], source: list[int], score: list[float]) -> None:
    assert [a.dtype for a in got] == [np.uint32, np.uint8, np.float32]
    assert got[0].tolist() == items
    assert got[1].tolist() == source
    np.testing.assert_array_equal(got[2], np.array(score, f32))


def assert_same(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_quotas_first_then_top_up() -> None:
    sources = [
        src([1, 2, 3, 4], [0.9, 0.8, 0.7, 0.6], 2),
        src([10, 11, 12], [0.5, 0.4, 0.3], 1),
    ]
    got = Blender(100).blend(sources, none(), 6)
    check(got, [1, 2, 10, 3, 4, 11], [0, 0, 1, 0, 0, 1], [0.9, 0.8, 0.5, 0.7, 0.6, 0.4])


def test_exclusion_and_dedup_keep_the_first_takers_score() -> None:
    sources = [
        src([1, 2, 3], [0.9, 0.8, 0.7], 2),
        src([2, 5, 1, 6], [0.1, 0.2, 0.3, 0.4], 2),
    ]
    got = Blender(100).blend(sources, np.array([1], u32), 10)
    check(got, [2, 3, 5, 6], [0, 0, 1, 1], [0.8, 0.7, 0.2, 0.4])


def test_pool_size_stops_everything() -> None:
    sources = [src([1, 2, 3], [0, 0, 0], 3), src([4, 5], [0, 0], 2)]
    check(Blender(100).blend(sources, none(), 2), [1, 2], [0, 0], [0, 0])
    check(Blender(100).blend(sources, none(), 0), [], [], [])


def test_pass_two_resumes_where_pass_one_stopped() -> None:
    sources = [src([7, 8, 9], [1, 2, 3], 1), src([8, 20], [4, 5], 0)]
    check(
        Blender(100).blend(sources, none(), 4),
        [7, 8, 9, 20],
        [0, 0, 0, 1],
        [1, 2, 3, 5],
    )


def test_empty_and_exhausted_sources() -> None:
    check(Blender(100).blend([], none(), 10), [], [], [])
    check(Blender(100).blend([src([1, 1, 1], [3, 2, 1], 5)], none(), 10), [1], [0], [3])


def test_matches_reference_on_random_inputs(rng: np.random.Generator) -> None:
    blender = Blender(60)
    for _ in range(200):
        sources = []
        for _ in range(int(rng.integers(0, 6))):
            items = rng.integers(0, 60, int(rng.integers(0, 40))).astype(u32)
            scores = rng.standard_normal(len(items), dtype=f32)
            sources.append((items, scores, int(rng.integers(0, 15))))
        exclude = rng.integers(0, 60, int(rng.integers(0, 10))).astype(u32)
        pool_size = int(rng.integers(0, 80))
        got = blender.blend(sources, exclude, pool_size)
        assert_same(got, reference.blend(sources, exclude, pool_size))


# --- errors ------------------------------------------------------------------


def test_length_mismatch_raises_shape_error() -> None:
    with pytest.raises(ShapeError, match="expected length 2, got 1"):
        Blender(10).blend([src([1, 2], [0.5], 1)], none(), 5)


def test_negative_sizes_raise_shape_error() -> None:
    with pytest.raises(ShapeError, match="pool_size"):
        Blender(10).blend([], none(), -1)
    with pytest.raises(ValueError, match="quota"):
        Blender(10).blend([src([1], [0.5], -1)], none(), 5)


def test_unknown_ids_raise_unknown_item_error() -> None:
    with pytest.raises(UnknownItemError, match=r"\[1\] = 10"):
        Blender(10).blend([src([1, 10], [0, 0], 1)], none(), 5)
    with pytest.raises(IndexError, match="exclude"):
        Blender(10).blend([], np.array([3, 11], u32), 5)


def test_wrong_dtype_raises_layout_error() -> None:
    with pytest.raises(LayoutError, match=r"sources\[0\].items: expected dtype uint32"):
        Blender(10).blend([(np.array([1], np.int64), np.array([0], f32), 1)], none(), 5)
    with pytest.raises(LayoutError, match=r"sources\[0\].scores"):
        Blender(10).blend([(np.array([1], u32), np.array([0.0]), 1)], none(), 5)
    with pytest.raises(TypeError, match="exclude"):
        Blender(10).blend([], [1, 2], 5)  # type: ignore[arg-type]


def test_malformed_source_raises_layout_error() -> None:
    with pytest.raises(LayoutError, match=r"sources\[1\]"):
        Blender(10).blend([src([1], [0], 1), src([2], [0], 1)[:2]], none(), 5)  # type: ignore[list-item]
    with pytest.raises(LayoutError, match=r"sources\[0\]"):
        Blender(10).blend([(np.array([1], u32), np.array([0], f32), 1.5)], none(), 5)  # type: ignore[list-item]
    with pytest.raises(LayoutError, match="iterable"):
        Blender(10).blend(3, none(), 5)  # type: ignore[arg-type]


def test_non_contiguous_raises_layout_error() -> None:
    items = np.array([1, 2, 3, 4], u32)[::2]
    with pytest.raises(LayoutError, match="not C-contiguous"):
        Blender(10).blend([(items, np.zeros(2, f32), 1)], none(), 5)
