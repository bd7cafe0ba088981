"""hotpath.item_rows: the item arrays as views of a packed item table, with the core's layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hotpath import ShapeError, item_row_layout, write_item_rows
from hotpath.item_rows import item_columns
from tests.hotpath.conftest import ItemTable


def test_the_layout_is_the_core_s() -> None:
    # emb 8 | genre 4 | dense 5 | first_ts's 2 halves, padded to 32 floats; 64 | 12 | 17 | 2 -> 96 in a 1M bundle.
    assert item_row_layout(8, 4, 5) == (32, [("emb", 0, 8), ("genre", 8, 12), ("dense", 12, 17), ("first_ts", 17, 19)])
    assert item_row_layout(64, 12, 17) == (
        96,
        [("emb", 0, 64), ("genre", 64, 76), ("dense", 76, 93), ("first_ts", 93, 95)],
    )


def test_columns_are_views_of_the_written_rows(
    tmp_path: Path, rng: np.random.Generator, make_items: Callable[..., ItemTable]
) -> None:
    for k, (emb_dim, n_genres, item_dim) in enumerate([(8, 4, 5), (64, 12, 17), (3, 2, 2)]):
        dense, emb, genre, first_ts = make_items(rng, 257, item_dim=item_dim, emb_dim=emb_dim, n_genres=n_genres)
        first_ts[:3] = (-1.0, 1.7e9 + 0.123456789, np.finfo(np.float64).max)  # every bit of the f64 kept
        path = tmp_path / f"rows-{k}.npy"
        write_item_rows(path, dense, emb, genre, first_ts)
        rows = np.load(path, mmap_mode="r")
        cols = item_columns(np.ascontiguousarray(rows), emb_dim, n_genres, item_dim)
        assert cols.n_items == 257
        for got, want in ((cols.emb, emb), (cols.genre, genre), (cols.dense, dense), (cols.first_ts, first_ts)):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            assert np.shares_memory(got, rows) and not got.flags.writeable  # views of the read-only map


def test_a_table_of_other_dimensions_is_refused() -> None:
    rows = np.zeros((4, 32), np.float32)
    with pytest.raises(ShapeError, match=r"float32 \(4, 32\), expected float32 rows of 48 floats \(emb 30, genres"):
        item_columns(rows, 30, 4, 5)
    with pytest.raises(ShapeError, match="expected float32 rows of 32 floats"):
        item_columns(rows.astype(np.float64), 8, 4, 5)
    with pytest.raises(ShapeError, match="not a C-contiguous table"):
        item_columns(np.zeros((4, 64), np.float32)[:, ::2], 8, 4, 5)
    assert issubclass(ShapeError, ValueError)
