"""hotpath.Assembler: exact rows, every error class, and the NumPy reference."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from hotpath import (
    Assembler,
    HotpathError,
    ItemRowsError,
    LayoutError,
    ShapeError,
    UnknownItemError,
    reference,
    write_item_rows,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.hotpath.conftest import ItemTable

DAY = 86_400.0
NOW = 1.7e9
f32 = np.float32
u32 = np.uint32


@dataclass
class Items:
    dense: np.ndarray
    emb: np.ndarray
    genre: np.ndarray
    first_ts: np.ndarray

    def args(self) -> tuple[np.ndarray, ...]:
        return (self.dense, self.emb, self.genre, self.first_ts)


def small_items() -> Items:
    """3 items, I = 2, D = 3, G = 2."""
    return Items(
        dense=np.array([[1, 2], [3, 4], [5, 6]], f32),
        emb=np.array([[1, 0, 0], [0, 1, 0], [1, 2, 3]], f32),
        genre=np.array([[1, 0], [0, 1], [0.5, 0.5]], f32),
        first_ts=np.array([0.0, -1.0, 10 * DAY]),
    )


def user_args(cands: list[int], last_ts: float = 9 * DAY, now: float = 10 * DAY) -> tuple:
    return (
        np.array([7, 8], f32),
        np.array([1, 2, 3], f32),
        np.array([2, 4], f32),
        last_ts,
        now,
        np.array([9], f32),
        np.array(cands, u32),
    )


@pytest.fixture
def small() -> Assembler:
    return Assembler(*small_items().args())


def test_properties(small: Assembler) -> None:
    assert (small.n_items, small.item_dim, small.emb_dim, small.n_genres) == (
        3,
        2,
        3,
        2,
    )
    assert small.n_features(24, 4) == 24 + 2 + 4 + 4
    assert repr(small) == "Assembler(n_items=3, item_dim=2, emb_dim=3, n_genres=2)"


def test_exact_rows(small: Assembler) -> None:
    out = small.assemble(*user_args([2, 0, 1]))
    ln2, ln11 = math.log(2), math.log(11)
    want = np.array(
        [
            [7, 8, 5, 6, 14, 3, ln2, 0, 9],  # item 2: first seen now
            [7, 8, 1, 2, 1, 2, ln2, ln11, 9],  # item 0: 10 days old
            [7, 8, 3, 4, 2, 4, ln2, -1, 9],  # item 1: unknown first_ts
        ],
        f32,
    )
    np.testing.assert_array_equal(out, want)


def test_output_is_c_contiguous_float32(small: Assembler) -> None:
    out = small.assemble(*user_args([0, 1]))
    assert out.dtype == np.float32
    assert out.shape == (2, small.n_features(2, 1))
    assert out.flags.c_contiguous and out.flags.writeable


def test_unknown_or_future_user_time(small: Assembler) -> None:
    assert small.assemble(*user_args([0], last_ts=-1.0))[0, 6] == -1.0
    assert small.assemble(*user_args([0], last_ts=20 * DAY))[0, 6] == 0.0


def test_zero_candidates(small: Assembler) -> None:
    out = small.assemble(*user_args([]))
    assert out.shape == (0, 9) and out.dtype == np.float32


def test_item_table_is_copied() -> None:
    items = small_items()
    assembler = Assembler(*items.args())
    before = assembler.assemble(*user_args([0, 1, 2]))
    items.dense[:] = 100.0
    items.first_ts[:] = -1.0
    np.testing.assert_array_equal(assembler.assemble(*user_args([0, 1, 2])), before)


def test_matches_reference_on_random_inputs(rng: np.random.Generator, make_items: Callable[..., ItemTable]) -> None:
    for _ in range(20):
        items = make_items(rng, n_items=int(rng.integers(1, 300)))
        assembler = Assembler(*items)
        user: tuple[Any, ...] = (
            rng.standard_normal(int(rng.integers(0, 6)), dtype=f32),
            rng.standard_normal(8, dtype=f32),
            rng.random(4, dtype=f32),
            float(rng.choice([-1.0, NOW - 3 * DAY, NOW + DAY])),
            NOW,
            rng.standard_normal(int(rng.integers(0, 4)), dtype=f32),
            rng.integers(0, len(items[3]), int(rng.integers(0, 200))).astype(u32),
        )
        got = assembler.assemble(*user)
        want = reference.assemble(*items, *user)
        assert got.shape == want.shape
        # float32 sums in a different order: equal within a few ulps of the terms.
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- the item rows file ------------------------------------------------------


def test_mapped_rows_assemble_the_same_bits(
    tmp_path: Path, rng: np.random.Generator, make_items: Callable[..., ItemTable]
) -> None:
    for k in range(5):
        items = make_items(rng, n_items=int(rng.integers(1, 300)))
        path = tmp_path / f"rows-{k}.npy"
        write_item_rows(path, *items)
        # An .npy file numpy reads: a row per item, [emb 8 | genre 4 | dense 5 | first_ts's 2 halves | 0 ...] (32).
        rows = np.load(path)
        assert rows.dtype == f32 and rows.shape == (len(items[3]), 32)
        np.testing.assert_array_equal(rows[:, :8], items[1])
        np.testing.assert_array_equal(rows[:, 8:12], items[2])
        np.testing.assert_array_equal(rows[:, 12:17], items[0])
        np.testing.assert_array_equal(rows[:, 17:19].copy().view(np.float64)[:, 0], items[3])
        assert not rows[:, 19:].any()
        mapped = Assembler.open(path, 8, 4, items[0].shape[1])
        owned = Assembler(*items)
        assert repr(mapped) == repr(owned)
        cands = rng.integers(0, len(items[3]), 500).astype(u32)
        user = (rng.standard_normal(3, dtype=f32), rng.standard_normal(8, dtype=f32), rng.random(4, dtype=f32))
        args = (*user, NOW - DAY, NOW, rng.standard_normal(2, dtype=f32), cands)
        np.testing.assert_array_equal(mapped.assemble(*args), owned.assemble(*args))


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's mappings from /proc")
def test_a_dropped_mapped_assembler_unmaps_its_file(tmp_path: Path) -> None:
    # The unmap runs on a thread of its own (not with the GIL held in Python's deallocation): it must still run.
    path = tmp_path / "rows.npy"
    write_item_rows(path, *small_items().args())
    mapped = Assembler.open(path, 3, 2, 2)

    def mapped_now() -> bool:
        return str(path.resolve()) in Path("/proc/self/maps").read_text()

    assert mapped_now()
    del mapped
    deadline = time.monotonic() + 10.0
    while mapped_now() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not mapped_now()


def test_a_bad_item_rows_file_raises_item_rows_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.npy"
    write_item_rows(path, *small_items().args())
    assert issubclass(ItemRowsError, HotpathError) and issubclass(ItemRowsError, OSError)
    with pytest.raises(ItemRowsError, match=r"rows\.npy: rows of 16 floats, expected 32"):
        Assembler.open(path, 20, 2, 2)
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    with pytest.raises(ItemRowsError, match=r"rows\.npy: 316 bytes, expected 320 \(3 rows of 16 floats"):
        Assembler.open(path, 3, 2, 2)
    np.save(path, np.zeros((3, 16), np.float64))
    with pytest.raises(ItemRowsError, match="dtype is not little-endian f32"):
        Assembler.open(path, 3, 2, 2)
    with pytest.raises(ItemRowsError, match="No such file"):
        Assembler.open(tmp_path / "none.npy", 3, 2, 2)
    with pytest.raises(ItemRowsError, match=r"none/rows\.npy"):
        write_item_rows(tmp_path / "none" / "rows.npy", *small_items().args())


# --- errors ------------------------------------------------------------------


def test_wrong_user_lengths_raise_shape_error(small: Assembler) -> None:
    args = list(user_args([0]))
    args[1] = np.ones(4, f32)
    with pytest.raises(ShapeError, match="user_emb: expected length 3, got 4"):
        small.assemble(*args)
    args = list(user_args([0]))
    args[2] = np.ones(1, f32)
    with pytest.raises(ValueError, match="user_genre"):
        small.assemble(*args)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_non_finite_now_raises_shape_error(small: Assembler, now: float) -> None:
    with pytest.raises(ShapeError, match="now_ts"):
        small.assemble(*user_args([0], now=now))


def test_nan_times_raise_shape_error(small: Assembler) -> None:
    with pytest.raises(ShapeError, match="user_last_ts"):
        small.assemble(*user_args([0], last_ts=math.nan))
    items = small_items()
    items.first_ts[1] = math.nan
    with pytest.raises(ShapeError, match="item_first_ts"):
        Assembler(*items.args())


def test_unknown_candidate_raises_unknown_item_error(small: Assembler) -> None:
    with pytest.raises(UnknownItemError, match=r"candidates\[1\] = 3"):
        small.assemble(*user_args([0, 3]))
    with pytest.raises(IndexError):
        small.assemble(*user_args([2**32 - 1]))


def test_table_rows_disagree_raise_shape_error() -> None:
    items = small_items()
    items.emb = items.emb[:2].copy()
    with pytest.raises(ShapeError, match="item_emb rows: expected length 3, got 2"):
        Assembler(*items.args())
    items = small_items()
    items.first_ts = np.zeros(4)
    with pytest.raises(ShapeError, match="rows"):
        Assembler(*items.args())


def test_wrong_dimensions_raise_shape_error(small: Assembler) -> None:
    items = small_items()
    items.dense = items.dense.ravel()
    with pytest.raises(ShapeError, match="item_dense: expected a 2-D array"):
        Assembler(*items.args())
    args = list(user_args([0]))
    args[0] = np.ones((1, 2), f32)
    with pytest.raises(ShapeError, match="user_dense: expected a 1-D array"):
        small.assemble(*args)


@pytest.mark.parametrize(
    ("index", "bad"),
    [
        (0, np.ones(2, np.float64)),
        (5, np.ones(1, np.float16)),
        (6, np.array([0], np.int64)),
        (6, np.array([0], np.dtype(">u4"))),
        (6, [0, 1]),
    ],
)
def test_wrong_dtype_raises_layout_error(small: Assembler, index: int, bad: object) -> None:
    args = list(user_args([0]))
    args[index] = bad
    with pytest.raises(LayoutError):
        small.assemble(*args)


def test_wrong_table_dtype_raises_layout_error() -> None:
    items = small_items()
    items.first_ts = items.first_ts.astype(f32)
    with pytest.raises(TypeError, match="item_first_ts: expected dtype float64, got float32"):
        Assembler(*items.args())


def test_non_contiguous_raises_layout_error(small: Assembler) -> None:
    args = list(user_args([0, 1, 2, 0]))
    args[6] = args[6][::2]
    with pytest.raises(LayoutError, match="not C-contiguous"):
        small.assemble(*args)
    items = small_items()
    items.emb = np.asfortranarray(items.emb)
    with pytest.raises(LayoutError, match="item_emb"):
        Assembler(*items.args())
    items = small_items()
    items.dense = np.ones((3, 4), f32)[:, ::2]
    with pytest.raises(LayoutError):
        Assembler(*items.args())


def test_errors_share_the_base_class() -> None:
    for cls in (ShapeError, UnknownItemError, LayoutError):
        assert issubclass(cls, HotpathError)
    assert issubclass(HotpathError, Exception)
